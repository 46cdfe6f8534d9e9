#include "daemon/exec/fake/fake_executor.h"

#include <signal.h>

#include <utility>

namespace tg::daemon {

void FakeExecutor::start(const LaunchSpec& spec) {
  if (refuse.contains(spec.id)) return events_->on_start_failed(spec.id, "refused by the fake");
  FakeTask t;
  t.spec = spec;
  t.ignores_stop = ignores_stop.contains(spec.id);
  t.unkillable = unkillable.contains(spec.id);
  running[spec.id] = t;
  started.push_back(spec.id);
  held.insert(spec.id);
  events_->on_started(spec.id, RunHandle{static_cast<pid_t>(10'000 + spec.id), 1, "fake-boot"});
}

void FakeExecutor::release_started() {
  if (on_release) on_release();
  held.clear();
}

void FakeExecutor::abandon_started() {
  const std::set<proto::TaskId> ids = std::exchange(held, {});
  for (proto::TaskId id : ids)
    fail_exec(id, "the daemon stopped before the task's start was saved");
}

void FakeExecutor::signal(proto::TaskId id, int sig) {
  auto it = running.find(id);
  if (it == running.end()) return;
  it->second.signals.push_back(sig);
  if (!it->second.ignores_stop) gone(id, ExitStatus{std::nullopt, sig});
}

void FakeExecutor::kill(proto::TaskId id) {
  auto it = running.find(id);
  if (it == running.end()) return;
  it->second.signals.push_back(SIGKILL);
  if (!it->second.unkillable) gone(id, ExitStatus{std::nullopt, SIGKILL});
}

Executor::Abandoned FakeExecutor::abandon(proto::TaskId id) {
  auto it = running.find(id);
  if (it == running.end()) return {};
  abandoned.push_back(id);
  Abandoned out;
  out.left_behind =
      it->second.leader_exited ? "processes of its session" : "pid " + std::to_string(10'000 + id);
  signals_of_ended_[id] = it->second.signals;
  running.erase(it);
  return out;
}

bool FakeExecutor::reclaim(proto::TaskId id, const RunHandle& run) {
  reclaimed.emplace_back(id, run);
  return reclaim_finds;
}

bool FakeExecutor::settled() const {
  if (!held.empty()) return false;
  for (const auto& [id, t] : running) {
    if (t.leader_exited) return false;  // Lingering: the rest of it keeps its grace.
  }
  return true;
}

bool FakeExecutor::adopt(proto::TaskId id, const RunHandle& run, const std::string& log_path,
                         std::int64_t max_log_bytes) {
  if (!adoptable.contains(id)) return false;
  adopted.emplace_back(id, run);
  FakeTask& t = running[id];
  t.spec.id = id;
  t.spec.log_path = log_path;
  t.spec.max_log_bytes = max_log_bytes;
  return true;
}

void FakeExecutor::finish(proto::TaskId id, ExitStatus status) {
  if (!running.contains(id)) return;
  gone(id, status);
}

void FakeExecutor::fail_exec(proto::TaskId id, const std::string& why) {
  if (!running.contains(id)) return;
  events_->on_start_failed(id, why);
  gone(id, ExitStatus{127, std::nullopt});
}

void FakeExecutor::leader_exits(proto::TaskId id, ExitStatus status) {
  auto it = running.find(id);
  if (it == running.end() || it->second.leader_exited) return;
  it->second.leader_exited = true;
  events_->on_exited(id, status);
}

void FakeExecutor::log_grows(proto::TaskId id, std::int64_t size) {
  auto it = running.find(id);
  if (it == running.end()) return;
  FakeTask& t = it->second;
  if (t.spec.max_log_bytes == 0 || size <= t.spec.max_log_bytes || size <= t.log_reported) return;
  t.log_reported = size;
  events_->on_log_limit(id, size);
}

void FakeExecutor::gone(proto::TaskId id, std::optional<ExitStatus> status) {
  auto it = running.find(id);
  const bool reported = it->second.leader_exited;
  signals_of_ended_[id] = it->second.signals;
  running.erase(it);
  if (!reported && status) events_->on_exited(id, *status);
  events_->on_tree_gone(id, usage);
}

void FakeExecutor::deliver(proto::TaskId id, int sig) {
  if (!running.contains(id)) return;
  delivered.emplace_back(id, sig);
}

void FakeExecutor::run_hook(const HookSpec& spec) {
  hooks_run.push_back(spec);
  if (refuse_hooks) {
    HookOutcome out;
    out.start_error = "refused by the fake";
    return events_->on_hook_done(spec.id, out);
  }
  hooks_running.insert(spec.id);
}

void FakeExecutor::signal_hook(HookId id, int sig) {
  if (!hooks_running.contains(id)) return;
  hook_signals[id].push_back(sig);
  if (sig == SIGKILL || !hooks_ignore_term) finish_hook(id, ExitStatus{std::nullopt, sig});
}

void FakeExecutor::finish_hook(HookId id, ExitStatus status, std::string output) {
  if (hooks_running.erase(id) == 0) return;
  HookOutcome out;
  out.status = status;
  out.output_bytes = static_cast<std::int64_t>(output.size());
  out.output = std::move(output);
  events_->on_hook_done(id, out);
}

std::vector<int> FakeExecutor::signals_of(proto::TaskId id) const {
  if (auto it = running.find(id); it != running.end()) return it->second.signals;
  if (auto it = signals_of_ended_.find(id); it != signals_of_ended_.end()) return it->second;
  return {};
}

}  // namespace tg::daemon
