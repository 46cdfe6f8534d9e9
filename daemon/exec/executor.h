#pragma once

// The boundary between deciding and running (STYLE.md rule 23b). The engine (engine/) decides
// what starts, when it is stopped and how its end is recorded; an Executor runs tasks and
// reports what happened to them. The engine never touches a process, a user database or a
// cluster itself, which is what lets its decisions be tested with FakeExecutor
// (exec/fake/fake_executor.h) in virtual time. A new way to run tasks (cgroups, Slurm) is a new
// Executor, or a capability of one, not a branch in the engine.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.h"

namespace tg::daemon {

// What identifies a started task's run to the executor that started it, also after a crash of
// the daemon: stored with the task. For the local executor, its main process: pid, start time
// (/proc/PID/stat field 22) and the boot they belong to.
struct RunHandle {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  std::string boot_id;
};

// A task ready to run, with everything resolved that the engine knows. The executor adds what
// needs the system: credentials, the environment's defaults, the log file.
struct LaunchSpec {
  proto::TaskId id = 0;
  uid_t uid = 0;  // The submitter: the task runs as this user when the daemon is root.
  gid_t gid = 0;
  std::string group;
  std::vector<std::string> argv;  // With `shell`, joined by spaces and run by /bin/sh -c.
  bool shell = false;
  std::string cwd;
  // The submitted environment, or nullptr for a minimal one (PATH, HOME, USER, LANG). Tasks of
  // one batch share an env_id (0: none) and the executor may reuse what it built for it.
  const proto::Env* env = nullptr;
  std::int64_t env_id = 0;
  std::string log_path;  // Created by the task's start; stdout and stderr go there.
  // The task cannot gain privileges by an exec (setuid programs): the config's no_new_privs.
  bool no_new_privs = false;
  // The task's log may grow to this many bytes (0: no cap); past it, on_log_limit.
  std::int64_t max_log_bytes = 0;
  // A retried task's log keeps its earlier attempts' output: the first `log_keep` bytes stay
  // (0: it starts empty), and `log_header` (if any) is written before the attempt's own output.
  std::int64_t log_keep = 0;
  std::string log_header;
};

// How a task's main process ended: an exit code or a signal.
struct ExitStatus {
  std::optional<int> exit_code;
  std::optional<int> signal;
};

// A group's on-done hook (docs/usage.md "On-done hooks"): one shell command, run once a run of
// the group has ended, as the group's owner, with stdin /dev/null and cwd "/".
using HookId = std::uint64_t;  // Handed out by the engine; never reused by one daemon process.
struct HookSpec {
  HookId id = 0;
  uid_t uid = 0;  // The group's owner: the hook runs as this user when the daemon is root.
  gid_t gid = 0;
  std::string group;
  std::string command;  // Run by /bin/sh -c.
  // Added to a minimal environment for the owner (PATH, HOME, USER, LANG): TASKGROUPD_GROUP,
  // the run's counts, TASKGROUPD_SOCKET.
  proto::Env env;
  // Where its stdout and stderr go, read back and removed once it has ended.
  std::string output_path;
  bool no_new_privs = false;
};

// How a hook ended.
struct HookOutcome {
  ExitStatus status;                       // Empty if it never ran (start_error).
  std::optional<std::string> start_error;  // It could not be started: why.
  std::string output;                      // The first kMaxHookOutput bytes of its output.
  std::int64_t output_bytes = 0;           // All of its output, in bytes.
};
inline constexpr std::size_t kMaxHookOutput = 4096;

// What a task used, as far as its executor accounts for it (null where it does not:
// LocalExecutor without cgroups, or without the memory controller for memory_peak_bytes).
struct ResourceUsage {
  std::optional<std::int64_t> cpu_user_ms;
  std::optional<std::int64_t> cpu_system_ms;
  std::optional<std::int64_t> memory_peak_bytes;
};

// What an executor reports about a task, in this order: started or start_failed; then, for a
// started one, possibly start_failed (it never got to run its command), exited, and tree_gone.
// Reports come from the event loop, and also from inside an Executor call (start() reports a
// failure, or a start, before it returns). Implemented by the engine.
class ExecutorEvents {
 public:
  // The task runs from now on; `run` is what finds it again (stored with the task).
  virtual void on_started(proto::TaskId id, const RunHandle& run) = 0;
  // The task did not run its command: before on_started (nothing started), or after it (the
  // command could not be executed: a missing program, a cwd that does not exist).
  virtual void on_start_failed(proto::TaskId id, const std::string& why) = 0;
  // Its main process ended. What else it started may live on while it is being stopped.
  virtual void on_exited(proto::TaskId id, const ExitStatus& status) = 0;
  // Nothing of the task is left: it has ended, having used `usage`. No further report about it
  // follows.
  virtual void on_tree_gone(proto::TaskId id, const ResourceUsage& usage) = 0;
  // Its log has `size` bytes, more than LaunchSpec::max_log_bytes. Reported when a check finds
  // the log over the cap and larger than at the last report, until on_tree_gone: the first
  // report says the cap is crossed, later ones that the task goes on writing. How soon a check
  // follows a write is the executor's to state (LocalExecutor: log_watch.h); the executor
  // itself stops nothing.
  virtual void on_log_limit(proto::TaskId id, std::int64_t size) = 0;
  // A hook (Executor::run_hook) has ended, and nothing of it is left; or it never started.
  virtual void on_hook_done(HookId id, const HookOutcome& outcome) = 0;

 protected:
  ~ExecutorEvents() = default;
};

// Runs tasks. Owned by run() and used on the event loop's thread only; calls about a task
// the executor does not know (it has gone meanwhile) do nothing.
class Executor {
 public:
  // What this executor can promise, stated rather than guessed by the engine.
  struct Capabilities {
    bool kills_whole_tree = false;  // kill() reaches every process the task started.
    bool survives_restart = false;  // Tasks keep running while the daemon restarts.
    // How a task's processes are kept together, for status: "cgroups", "process groups".
    const char* isolation = "";
  };

  // What abandon() found.
  struct Abandoned {
    std::optional<ExitStatus> status;  // The main process's end, if it had ended.
    std::string left_behind;           // What is still alive, for the task's reason.
  };

  virtual ~Executor() = default;
  // Where reports go; set once, before the first start().
  virtual void bind(ExecutorEvents& events) = 0;
  [[nodiscard]] virtual Capabilities capabilities() const = 0;

  // Starts the task. Reports on_started or on_start_failed, possibly before it returns. A
  // started task waits, just before its command, until release_started().
  virtual void start(const LaunchSpec& spec) = 0;
  // Every start reported so far is saved: those tasks may run their command now. Holding them
  // until then is what makes starts exactly-once: after a crash of the daemon a task has
  // either never run its command or is on record as started. A task whose start is never
  // released (the daemon died first) ends without running its command.
  virtual void release_started() = 0;
  // The starts reported since the last release_started() will never be saved (the store has
  // stopped saving): those tasks end without running their command, reported as
  // on_start_failed and then their exit, like any child that fails before its exec.
  virtual void abandon_started() = 0;
  // Sends `sig` (the stop signal) to every process of the task. From then on the task is being
  // stopped: when its main process exits, the rest of it keeps its grace, and on_tree_gone
  // comes when the last of it is gone (or after kill()). Each process gets SIGCONT right after
  // `sig` (unless that is SIGKILL or SIGCONT), as under systemd: a stopped one must wake to act
  // on it, so its TERM trap runs within the grace.
  virtual void signal(proto::TaskId id, int sig) = 0;
  // SIGKILL to every process of the task, now and to any the executor finds later.
  virtual void kill(proto::TaskId id) = 0;
  // Sends `sig` to every process of the task, as a user asked (tgctl kill): nothing else is
  // sent with it (a SIGSTOP stays stopped) and the task is not being stopped by it; if it dies
  // of it, that is its own end.
  virtual void deliver(proto::TaskId id, int sig) = 0;
  // The task is still not gone long after kill() (a process in uninterruptible sleep): forget
  // it, reporting nothing more, and say what was left. Its main process is reaped if it ever
  // ends.
  [[nodiscard]] virtual Abandoned abandon(proto::TaskId id) = 0;
  // A task that was running when an earlier daemon stopped: kill what is left of it, if `run`
  // proves it is the task's (never a process that merely reuses its pid). True if it killed.
  virtual bool reclaim(proto::TaskId id, const RunHandle& run) = 0;
  // The daemon has drained: stop anything that would keep the event loop alive.
  virtual void shutdown() = 0;

  // --- Re-exec (sys/handover.h): running tasks outlive the program that started them.
  // No task is between its start and its command, and none lingers after a stop: what a task
  // is, is then all in the store (RunHandle), so another program can take it over.
  [[nodiscard]] virtual bool settled() const = 0;
  // This program is about to be replaced: stop watching every task and report nothing more.
  // Kills nothing: each task stays a child of this pid for the next program to adopt().
  virtual void hand_over() = 0;
  // A task the previous program of this pid handed over: watched from now on as if started
  // here (its exit, its log's cap). False if `run` is not a child of ours: then it is
  // recovered like any task found running after a crash.
  [[nodiscard]] virtual bool adopt(proto::TaskId id, const RunHandle& run,
                                   const std::string& log_path, std::int64_t max_log_bytes) = 0;
  // The socket tasks reach the daemon at (TASKGROUPD_SOCKET), known once it listens.
  virtual void set_socket_path(std::string path) = 0;

  // --- On-done hooks: not tasks (no state, no store), only a bounded child each.
  // Starts the hook without waiting for it; reports on_hook_done once it has ended (possibly
  // before this returns, if it cannot start). It is watched like a task, never waited for.
  virtual void run_hook(const HookSpec& spec) = 0;
  // Sends `sig` to every process of the hook (SIGKILL included); nothing if it has ended. After
  // shutdown() a hook is no longer watched: the engine waits for its hooks before draining.
  virtual void signal_hook(HookId id, int sig) = 0;
};

}  // namespace tg::daemon
