#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/error.h"
#include "daemon/exec/executor.h"
#include "daemon/exec/local/cgroup_tree.h"
#include "daemon/exec/local/cgroup_watch.h"
#include "daemon/exec/local/child.h"
#include "daemon/exec/local/hook_runner.h"
#include "daemon/exec/local/log_watch.h"
#include "daemon/exec/task_env.h"
#include "daemon/exec/users.h"

namespace tg::daemon {

// Runs tasks as child processes of the daemon (docs/design.md "Spawning"): clone without
// waiting for the exec, each child held before its exec until its start is saved (StartGate),
// a pidfd per child watched by the loop, each task in its own session, run as its submitter
// when the daemon is root. A task's processes are:
// - with a cgroup tree (cgroup_tree.h): those in its own cgroup, which the child enters before
//   anything else, so nothing can leave it. The stop signal goes to every process in it,
//   SIGKILL through cgroup.kill, and the task has ended when the cgroup is empty
//   (cgroup.events, watched through inotify: cgroup_watch.h); its CPU time and peak memory are
//   read then, and the cgroup removed.
// - without one: its session (task_session.h: the stop signal, SIGKILL and "is it gone" all
//   mean the whole session). A task stopped with a grace lingers after its main process exits
//   until the rest of its session is gone: one shared 50 ms /proc scan while any task lingers,
//   none otherwise.
// A task's log is watched against its cap (log_watch.h) from its exec on. Owned by run(); used
// on the loop's thread only.
class LocalExecutor final : public Executor {
 public:
  // `cgroups`: the tree tasks run in (CgroupTree::open), or nullopt: sessions only.
  LocalExecutor(boost::asio::any_io_executor ex, UserDirectory& users, unsigned task_umask,
                std::optional<CgroupTree> cgroups = std::nullopt);
  ~LocalExecutor() override;
  LocalExecutor(const LocalExecutor&) = delete;
  LocalExecutor& operator=(const LocalExecutor&) = delete;

  void bind(ExecutorEvents& events) override { events_ = &events; }
  [[nodiscard]] Capabilities capabilities() const override;
  void start(const LaunchSpec& spec) override;
  void release_started() override;
  void abandon_started() override { gate_.reset(); }  // Hung up: its children exit 127.
  void signal(proto::TaskId id, int sig) override;
  void kill(proto::TaskId id) override;
  [[nodiscard]] Abandoned abandon(proto::TaskId id) override;
  bool reclaim(proto::TaskId id, const RunHandle& run) override;
  void shutdown() override;
  [[nodiscard]] bool settled() const override;
  void hand_over() override;
  [[nodiscard]] bool adopt(proto::TaskId id, const RunHandle& run, const std::string& log_path,
                           std::int64_t max_log_bytes) override;
  void set_socket_path(std::string path) override { socket_ = std::move(path); }
  void deliver(proto::TaskId id, int sig) override;
  void run_hook(const HookSpec& spec) override { hooks_.run(spec); }
  void signal_hook(HookId id, int sig) override { hooks_.signal(id, sig); }

  // At start, before recovery: kills everything left in the task cgroups of an earlier daemon
  // (daemonized processes included) and removes them, except those of `keep` (handed over by a
  // re-exec: adopt() takes them, reclaim() kills them). Waits up to kReclaimWait for each.
  void reclaim_cgroups(const std::unordered_set<proto::TaskId>& keep);
  static constexpr std::chrono::seconds kReclaimWait{5};

 private:
  // A child between its clone and the moment its whole session is gone.
  struct Child {
    Child(const boost::asio::any_io_executor& ex, int pidfd) : pidfd(ex, pidfd), report(ex) {}
    boost::asio::posix::stream_descriptor pidfd;
    // Until the child has exec'd: the memory it runs on and the pipe it reports through.
    std::unique_ptr<Launch> launch;
    boost::asio::posix::stream_descriptor report;
    pid_t pid = 0;  // Also its session id and process group id, once it has called setsid().
    std::chrono::steady_clock::time_point spawned_at;
    std::string log_path;  // Watched against max_log_bytes from its exec on (log_watch_).
    std::int64_t max_log_bytes = 0;
    bool in_cgroup = false;  // It runs in its task cgroup (cgroups_).
    bool reaped = false;     // The leader has been waited for.
    bool stopping = false;   // signal() was called: the rest of the session keeps its grace.
    bool killed = false;     // kill() was called.
    // The leader exited (and was reported) while others of its session live on: it stays an
    // unreaped zombie, holding its pid (our sid), until they are gone.
    bool lingering = false;
  };

  // Every report to the engine goes through here (see the .cpp for the attribute).
  template <class Event, class... Args>
  void report(Event event, Args&&... args);
  [[nodiscard]] Result<SpawnSpec> prepare(const LaunchSpec& spec);
  void await_report(proto::TaskId id, Child& c);
  void await_exit(proto::TaskId id, Child& c);
  void on_exit(proto::TaskId id);
  // Reaps an abandoned child once it exits (kept in unreaped_ until then).
  void reap_when_exited(std::list<boost::asio::posix::stream_descriptor>::iterator where);
  // Kills what is left of the task, reaps the leader, reports its exit (unless lingering
  // already did) and, once nothing of it is left, that the tree is gone, forgetting the child.
  // A cgroup that still has processes (dying of SIGKILL) is waited for: on_cgroup_changed.
  void finish(proto::TaskId id, const std::optional<Error>& spawn_error);
  void on_cgroup_changed(proto::TaskId id);
  bool reclaim_session(proto::TaskId id, const RunHandle& run);
  // Sends `sig` to the task's processes: its cgroup's, or its session's.
  void send(Child& c, proto::TaskId id, int sig, bool then_cont);
  void watch_lingering();

  boost::asio::any_io_executor ex_;
  UserDirectory& users_;
  const unsigned task_umask_;
  const std::string boot_id_;  // Stored with each start: see reclaim().
  std::string socket_;
  ExecutorEvents* events_ = nullptr;
  TaskEnvironment env_;
  std::unordered_map<proto::TaskId, std::unique_ptr<Child>> children_;
  // Their leaders' pids: each leads a session of its own, so a scan for another task's leftover
  // processes need not read them.
  std::unordered_set<pid_t> leaders_;
  // The gate that children started since the last release_started() wait on before exec.
  std::optional<StartGate> gate_;
  boost::asio::steady_timer linger_timer_;  // Armed while any task is lingering.
  bool linger_armed_ = false;
  // Leaders of abandoned tasks that had not exited: reaped if they ever do.
  std::list<boost::asio::posix::stream_descriptor> unreaped_;
  LogWatch log_watch_;  // The logs of exec'd tasks with a cap: on_log_limit.
  HookRunner hooks_;    // On-done hooks: on_hook_done.
  const std::optional<CgroupTree> cgroups_;
  CgroupWatch cgroup_watch_;  // The cgroups of tasks being stopped, until they are empty.
};

}  // namespace tg::daemon
