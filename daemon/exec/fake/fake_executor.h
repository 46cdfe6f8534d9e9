#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/exec/executor.h"

namespace tg::daemon {

// An Executor without processes, for the engine's unit tests (Ninja's FakeCommandRunner, in
// spirit). It records what the engine asks and reports only what the test makes happen:
// finish() ends a task, leader_exits() ends only its main process; the stop signal and SIGKILL
// end a task the way a real one would (a task dies of the stop signal unless it ignores it, and
// of SIGKILL unless it is unkillable), reported synchronously from inside signal() and kill(),
// the hardest order for the engine. start() succeeds unless the test said otherwise.
class FakeExecutor final : public Executor {
 public:
  // One task as the fake runs it.
  struct FakeTask {
    LaunchSpec spec;
    std::vector<int> signals;       // Every signal sent, in order (SIGKILL included).
    bool ignores_stop = false;      // Lives on after the stop signal.
    bool unkillable = false;        // Lives on after SIGKILL too (uninterruptible sleep).
    bool leader_exited = false;     // leader_exits() ran: the rest of the tree lives on.
    std::int64_t log_reported = 0;  // The log size last reported by on_log_limit.
  };

  void bind(ExecutorEvents& events) override { events_ = &events; }
  [[nodiscard]] Capabilities capabilities() const override {
    return {.kills_whole_tree = true, .survives_restart = false, .isolation = "fake"};
  }
  void start(const LaunchSpec& spec) override;
  void release_started() override;
  void abandon_started() override;
  void signal(proto::TaskId id, int sig) override;
  void kill(proto::TaskId id) override;
  [[nodiscard]] Abandoned abandon(proto::TaskId id) override;
  bool reclaim(proto::TaskId id, const RunHandle& run) override;
  void shutdown() override { shut_down = true; }
  [[nodiscard]] bool settled() const override;
  void hand_over() override { handed_over = true; }
  [[nodiscard]] bool adopt(proto::TaskId id, const RunHandle& run, const std::string& log_path,
                           std::int64_t max_log_bytes) override;
  void set_socket_path(std::string path) override { socket = std::move(path); }
  void deliver(proto::TaskId id, int sig) override;
  void run_hook(const HookSpec& spec) override;
  void signal_hook(HookId id, int sig) override;

  // --- What the test makes happen.
  // The task's main process exits with `status` and nothing of it is left.
  void finish(proto::TaskId id, ExitStatus status);
  // It could not run its command (a missing program): start_failed, exit 127, gone.
  void fail_exec(proto::TaskId id, const std::string& why);
  // Only its main process exits; the rest stays until finish() or SIGKILL.
  void leader_exits(proto::TaskId id, ExitStatus status);
  // Its log now has `size` bytes: on_log_limit if that is over its max_log_bytes and more than
  // at the last report, as LocalExecutor's checks report it.
  void log_grows(proto::TaskId id, std::int64_t size);

  // The hook ends with `status` and `output`.
  void finish_hook(HookId id, ExitStatus status, std::string output = "");

  // --- What the test sets up.
  std::set<proto::TaskId> refuse;        // start() reports start_failed at once.
  std::set<proto::TaskId> ignores_stop;  // Applied when the task starts.
  std::set<proto::TaskId> unkillable;    // Likewise.
  bool reclaim_finds = false;            // What reclaim() answers.
  std::set<proto::TaskId> adoptable;     // adopt() takes these over (children of this pid).
  bool hooks_ignore_term = false;        // Hooks live on after SIGTERM (SIGKILL ends them).
  bool refuse_hooks = false;             // run_hook() reports a start error at once.
  ResourceUsage usage;                   // What every task is reported to have used.

  // --- What the engine did.
  std::map<proto::TaskId, FakeTask> running;  // Started and not yet reported gone.
  std::vector<proto::TaskId> started;         // Every start, in order.
  // Started, and not yet let run their command by release_started().
  std::set<proto::TaskId> held;
  std::function<void()> on_release;  // Called by release_started() first, if set.
  std::vector<proto::TaskId> abandoned;
  std::vector<std::pair<proto::TaskId, RunHandle>> reclaimed;
  std::string socket;
  bool shut_down = false;
  bool handed_over = false;
  std::vector<std::pair<proto::TaskId, RunHandle>> adopted;
  std::vector<std::pair<proto::TaskId, int>> delivered;  // deliver(): (task, signal), in order.
  std::vector<HookSpec> hooks_run;                       // Every run_hook(), in order.
  std::map<HookId, std::vector<int>> hook_signals;       // Every signal_hook(), by hook.
  std::set<HookId> hooks_running;                        // Started, not yet reported done.
  [[nodiscard]] bool is_running(proto::TaskId id) const { return running.contains(id); }
  // Signals the task got so far ({} if it never ran).
  [[nodiscard]] std::vector<int> signals_of(proto::TaskId id) const;

 private:
  void gone(proto::TaskId id, std::optional<ExitStatus> status);

  ExecutorEvents* events_ = nullptr;
  std::map<proto::TaskId, std::vector<int>> signals_of_ended_;
};

}  // namespace tg::daemon
