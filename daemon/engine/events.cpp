// Engine: what the executor reports (ExecutorEvents) and how a task's end is recorded.
#include <string.h>

#include <spdlog/spdlog.h>

#include "common/duration.h"
#include "common/size.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"
#include "daemon/log/printable.h"

namespace tg::daemon {

namespace {

// A start failure's reason, as stored, shown by tgctl and logged: an executor's message quotes
// what the user sent (a path, a cwd), which it caps, but one line of at most 1 KiB either way.
constexpr std::size_t kMaxStartFailureBytes = 1024;

}  // namespace

void Engine::on_started(proto::TaskId id, const RunHandle& run) {
  Task& t = tasks_.at(id);
  t.pid = run.pid;
  t.pid_start = run.start_time;
  t.boot_id = run.boot_id;
  t.started_at = now_ms();
  transition(t, TaskEvent::kStart);
  log_for(t).info("task {} running pid={} group='{}'", t.id, t.pid, t.group);
  Run& r = running_[id];
  r.log_cap = log_cap(t);  // What start() gave the executor: the same config, the same turn.
  if (t.timeout.count() > 0) arm_timeout(id, t.timeout);
}

void Engine::arm_timeout(proto::TaskId id, std::chrono::milliseconds after) {
  Run& r = running_.at(id);
  r.timeout = clock_.make_timer();
  r.timeout->arm(after, [this, id] {
    Run& run = running_.at(id);
    if (run.stopped) return;  // Already stopping for a cancel, which wins.
    Task& task = tasks_.at(id);
    task.reason = "timed_out: exceeded " + format_duration(task.timeout);
    stop(task, StopCause::kTimeout, config_.kill_grace);
  });
}

void Engine::on_start_failed(proto::TaskId id, const std::string& why) {
  Task& t = tasks_.at(id);
  std::string shown = printable(why, kMaxStartFailureBytes);
  if (t.state == TaskState::kRunning) {  // It will end soon: on_tree_gone records it.
    running_.at(id).start_failure = std::move(shown);
    return;
  }
  t.reason = "failed to start: " + shown;
  log_for(t).warn("task {} failed to start: {}", t.id, shown);
  transition(t, TaskEvent::kSpawnFail);
  Group& g = group_of(t);
  scheduler_.finished(g.id);
  after_end(t, g);
}

void Engine::on_exited(proto::TaskId id, const ExitStatus& status) {
  Task& t = tasks_.at(id);
  t.exit_code = status.exit_code;
  t.signal = status.signal;
}

void Engine::on_tree_gone(proto::TaskId id, const ResourceUsage& usage) {
  Task& t = tasks_.at(id);
  t.cpu_user_ms = usage.cpu_user_ms;
  t.cpu_system_ms = usage.cpu_system_ms;
  t.memory_peak_bytes = usage.memory_peak_bytes;
  const Run& r = running_.at(id);
  if (r.stop == StopCause::kNone && r.start_failure) {  // Not the command's exit: ours (127).
    t.exit_code.reset();
    t.signal.reset();
    t.reason = "failed to start: " + *r.start_failure;
    log_for(t).warn("task {} failed to start: {}", t.id, *r.start_failure);
    return close_task(id, TaskEvent::kExitFailure);
  }
  if (r.stop == StopCause::kNone && t.signal) {
    t.reason = std::string("killed by signal ") + std::to_string(*t.signal) + " (SIG" +
               (::sigabbrev_np(*t.signal) ? ::sigabbrev_np(*t.signal) : "?") + ")";
  }
  close_task(id, end_event(r.stop, t.exit_code && *t.exit_code == 0));
}

void Engine::on_log_limit(proto::TaskId id, std::int64_t size) {
  auto it = running_.find(id);
  if (it == running_.end()) return;
  Run& r = it->second;
  Task& t = tasks_.at(id);
  if (!r.log_over) {
    r.log_over = size;
    log_for(t).warn("task {} log exceeded {} ({} bytes)", id, format_size(r.log_cap), size);
    if (r.stopped) return;  // Already stopping (cancel, timeout, drain): that stop stands.
    t.reason = "log exceeded " + format_size(r.log_cap);
    return stop(t, StopCause::kLogLimit, config_.kill_grace);
  }
  // The grace is for cleaning up, not for filling the disk: the cap's overshoot stays bounded
  // even for a task that ignores the stop signal.
  if (!r.killed && size > *r.log_over + kLogStopSlack) {
    log_for(t).warn("task {} log grew to {} bytes after its stop signal", id, size);
    kill_now(t);
  }
}

TaskEvent Engine::end_event(StopCause cause, bool succeeded) {
  switch (cause) {
    case StopCause::kNone:
      return succeeded ? TaskEvent::kExitSuccess : TaskEvent::kExitFailure;
    case StopCause::kTimeout:
      return TaskEvent::kExitAfterTimeout;
    case StopCause::kCancel:
      return TaskEvent::kExitAfterCancel;
    case StopCause::kDrain:
      return TaskEvent::kExitAfterDrain;
    case StopCause::kLogLimit:  // The task's own doing, whatever its exit: failed.
      return TaskEvent::kExitFailure;
  }
  return TaskEvent::kExitFailure;
}

void Engine::give_up(proto::TaskId id) {
  if (!running_.contains(id)) return;
  Task& t = tasks_.at(id);
  const auto abandoned = executor_.abandon(id);
  if (abandoned.status) on_exited(id, *abandoned.status);
  const std::string what = abandoned.left_behind.empty() ? "something" : abandoned.left_behind;
  log_for(t).error("task {}: {} still alive {} after SIGKILL; recording it ended", id, what,
                   format_duration(kKillWait));
  t.reason +=
      "; " + what + " still alive " + format_duration(kKillWait) + " after SIGKILL, left behind";
  close_task(id, end_event(running_.at(id).stop, false));
}

void Engine::close_task(proto::TaskId id, TaskEvent event) {
  Task& t = tasks_.at(id);
  running_.erase(id);  // Cancels its timers.
  if (retry(t, event)) return;
  transition(t, event);
  log_for(t).info("task {} {} exit={} signal={}", id, proto::to_string(t.state),
                  t.exit_code ? std::to_string(*t.exit_code) : "-",
                  t.signal ? std::to_string(*t.signal) : "-");
  Group& g = group_of(t);
  scheduler_.finished(g.id);
  after_end(t, g);
  request_turn();
}

}  // namespace tg::daemon
