#pragma once

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/error.h"
#include "common/protocol.h"
#include "daemon/exec/local/child.h"
#include "daemon/model/config.h"
#include "daemon/model/group.h"
#include "daemon/model/peer.h"
#include "daemon/engine/scheduler.h"
#include "daemon/store/store.h"
#include "daemon/model/task.h"
#include "daemon/model/task_state.h"
#include "daemon/engine/waiter.h"

namespace tg::daemon {

// The daemon's state and everything that changes it: tasks, groups, the scheduler, the running
// children and their timers. Owned by run() and used only on the event loop's thread (no locks).
//
// Every mutation follows STYLE.md rule 18: validate -> next_state -> store -> memory -> act.
// Submits and cancels commit before they answer; the state changes of a burst of child exits
// and starts share one transaction (flush(), posted once per burst). A spawned child is written
// as running right after the burst that started it, before any reply or further I/O.
class Engine {
 public:
  Engine(boost::asio::any_io_executor ex, Store& store, Config config);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // Rebuilds memory from the store: queued tasks queue again in order; tasks that were running
  // when the daemon died become lost (or queued again with requeue) and their leftover process
  // groups are killed when pid and start time prove they are ours. Then starts what may start.
  [[nodiscard]] Result<void> recover();

  // --- Requests (dispatch.cpp). Each checks that the peer may act on what it names.
  [[nodiscard]] Result<proto::SubmitResult> submit(const Peer& peer, const proto::Submit& req);
  [[nodiscard]] Result<proto::ListResult> list(const Peer& peer, const proto::List& req) const;
  [[nodiscard]] Result<proto::ShowResult> show(const Peer& peer, const proto::Show& req) const;
  [[nodiscard]] Result<proto::CancelResult> cancel(const Peer& peer, const proto::Cancel& req);
  [[nodiscard]] Result<proto::GroupsResult> groups(const Peer& peer,
                                                   const proto::Groups& req) const;
  [[nodiscard]] Result<proto::GroupInfo> group_set(const Peer& peer, const proto::GroupSet& req);
  [[nodiscard]] Result<proto::GroupInfo> set_paused(const Peer& peer, const proto::GroupRef& ref,
                                                    bool paused);
  [[nodiscard]] proto::StatusResult status() const;

  // --- Long requests: the session parks a Waiter and asks again after each wake.
  // Resolves a wait's selection into the waiter; an error if the peer may not see it.
  [[nodiscard]] Result<void> prepare_wait(const Peer& peer, const proto::Wait& req, Waiter& w);
  // Progress of a prepared wait; done when counts.done() == counts.total().
  [[nodiscard]] proto::WaitResult wait_progress(const Waiter& w, TimeMs started_at) const;
  // The log file of a task the peer may see, and whether the task has ended.
  struct LogSource {
    std::string path;
    bool ended = false;
  };
  [[nodiscard]] Result<LogSource> log_source(const Peer& peer, proto::TaskId id) const;
  void watch(Waiter& w);
  void unwatch(Waiter& w);

  // --- Lifecycle (run.cpp).
  // SIGHUP / reload: new limits and timeouts apply at once; paths are kept.
  void apply_config(const Config& config);
  const Config& config() const { return config_; }
  // The socket clients really reach (systemd's when socket-activated); given to tasks.
  void set_socket_path(std::string path) { config_.socket = std::move(path); }
  // Called after a turn that changed the running or queued counts (systemd STATUS=).
  void on_counts_changed(std::function<void(const proto::StatusResult&)> f) {
    on_counts_changed_ = std::move(f);
  }
  void set_config_error(std::optional<std::string> error) { config_error_ = std::move(error); }
  // First SIGTERM/SIGINT: refuse submits, start nothing, give running tasks drain_timeout.
  // Second: stop them now. Third: SIGKILL them now. `on_idle` runs once nothing is running.
  void drain(std::function<void()> on_idle);
  [[nodiscard]] bool draining() const { return drain_level_ > 0; }
  // Wakes every waiter with an error; called just before the loop is shut down.
  void abort_waiters();
  // Writes what is pending (tasks and groups) in one transaction; `sync` to fsync it
  // (acknowledged changes, and the last call before the store closes). On failure it logs,
  // everything stays dirty and a timer retries it every second (until the drain is over).
  [[nodiscard]] Result<void> flush(bool sync = true);
  // Drops finished tasks past `retention` or beyond `retention_count`, with their logs: finds
  // the cutoff once, then deletes a small bounded slice per turn of the loop; then again after
  // an hour (or after a reload that changes the retention settings).
  void prune();

  [[nodiscard]] std::string log_path(proto::TaskId id) const;

 private:
  enum class StopCause { kNone, kTimeout, kCancel, kDrain };
  // How long after SIGKILL a task that is still not gone is recorded ended anyway.
  static constexpr std::chrono::seconds kKillWait{5};
  // A spawned child and its timers. Stable address: timers' handlers point at it.
  struct Running {
    Running(const boost::asio::any_io_executor& ex, int pidfd)
        : pidfd(ex, pidfd), report(ex), timeout(ex), kill(ex) {}
    boost::asio::posix::stream_descriptor pidfd;
    const std::chrono::steady_clock::time_point spawned_at = std::chrono::steady_clock::now();
    // Until the child has exec'd: the memory it runs on and the pipe it reports through.
    std::unique_ptr<Launch> launch;
    boost::asio::posix::stream_descriptor report;
    boost::asio::steady_timer timeout;  // The task's own timeout.
    // The grace after the stop signal, then SIGKILL; after SIGKILL, kKillWait, then give_up().
    boost::asio::steady_timer kill;
    StopCause stop = StopCause::kNone;
    bool stopped = false;  // The stop signal was sent.
    bool killed = false;   // SIGKILL was sent.
    // The leader exited during the grace while others of its process group live on: it stays
    // an unreaped zombie (holding its pid, our pgid) until they are gone or the grace ends.
    bool lingering = false;
  };

  // engine.cpp
  Group& group_for(const GroupKey& key);
  Group* find_group(const GroupKey& key);
  const Group* find_group(const GroupKey& key) const;
  Group& group_of(const Task& t) { return *groups_by_id_.at(group_ids_.at({t.uid, t.group})); }
  // `persist`: mark the task dirty for the next flush; false when the caller has it written
  // otherwise (a group cancel's queued tasks, see cancelled_queued_).
  void transition(Task& t, TaskEvent event, bool persist = true);
  void mark_dirty(const Task& t);
  // Posts one turn() per burst of events: exits and the starts they allow share a commit.
  void request_turn();
  void turn();
  void start(Task& t);
  void on_exit(proto::TaskId id);
  // Reaps the task's leader and records how the task ended; `spawn_error` if it never exec'd.
  void end_task(proto::TaskId id, const std::optional<Error>& spawn_error);
  // Polls the sessions of lingering tasks and ends those that are empty; SIGKILLs again those
  // already killed (a member may have forked as the first one landed).
  void watch_lingering();
  // kKillWait after SIGKILL the task is still not gone: records it ended, saying what is left.
  void give_up(proto::TaskId id);
  // Records how the task ended, frees its slot and acts on it (fail-fast, cancel, drain).
  void close_task(proto::TaskId id, TaskEvent event);
  [[nodiscard]] TaskEvent end_event(StopCause cause, bool succeeded) const;
  // The child's pre-exec report: once it has exec'd, the memory it ran on is freed.
  void await_report(proto::TaskId id, Running& r);
  void after_end(Task& t, Group& g);
  // One slice of the prune pass that prune() began; posts the next one, or arms the timer.
  void prune_slice();
  void arm_prune_timer();
  void forget(proto::TaskId id);  // A pruned task: out of memory, its log unlinked.
  void notify(const Task& t);
  [[nodiscard]] Result<std::vector<std::string>> spawn_env(const Task& t);
  [[nodiscard]] Result<void> recover_running(Task& t);
  // Kills the process group a task running at a crash left behind, if boot id, pid and start
  // time prove it is the task's.
  void kill_leftover(const Task& t);

  // engine_cancel.cpp
  void cancel_group(Group& g, uid_t by, std::string reason, std::chrono::milliseconds grace,
                    bool force, proto::CancelResult& out);
  void cancel_task(Task& t, uid_t by, std::chrono::milliseconds grace, bool force,
                   proto::CancelResult& out);
  // Sends stop_signal to the task's process group and arms SIGKILL after `grace`.
  void stop(Task& t, StopCause cause, std::chrono::milliseconds grace);
  void kill_now(Task& t);
  void maybe_finish_cancel(Group& g);
  void check_drained();

  // engine_query.cpp
  [[nodiscard]] Result<GroupKey> resolve(const Peer& peer, const proto::GroupRef& ref) const;
  [[nodiscard]] Result<uid_t> resolve_user(const Peer& peer, const std::string& user) const;
  [[nodiscard]] bool visible(const Peer& peer, const Task& t) const {
    return peer.root() || peer.uid == t.uid;
  }
  [[nodiscard]] const std::string& user_name(uid_t uid) const;
  [[nodiscard]] proto::TaskInfo info(const Task& t) const;
  [[nodiscard]] proto::GroupInfo info(const Group& g) const;
  // Commits the group's settings with whatever else is pending, before a request's reply.
  [[nodiscard]] Result<void> save(const Group& g);
  // The `io` reply to a request whose change took effect in memory but could not be committed
  // (it stays dirty and flush() retries it).
  [[nodiscard]] static Error not_saved(const std::string& what, const Error& why);

  boost::asio::any_io_executor ex_;
  Store& store_;
  Config config_;
  std::optional<std::string> config_error_;
  const TimeMs started_at_;
  const std::string boot_id_;  // Stored with each start: see kill_leftover().

  std::map<proto::TaskId, Task> tasks_;
  std::map<GroupKey, GroupId> group_ids_;
  std::unordered_map<GroupId, std::unique_ptr<Group>> groups_by_id_;
  GroupId next_group_id_ = 1;
  Scheduler scheduler_;
  std::unordered_map<proto::TaskId, std::unique_ptr<Running>> running_;
  std::list<Waiter*> waiters_;
  mutable std::unordered_map<uid_t, std::string> user_names_;  // A cache; see user_name().

  std::unordered_set<proto::TaskId> dirty_;  // Changed in memory, not yet in the store.
  // Group cancels' queued tasks, not yet in the store: one statement each, not one per task.
  std::vector<Store::QueuedCancel> cancelled_queued_;
  std::unordered_set<GroupId> dirty_groups_;  // Settings changed, not yet in the store.
  bool flush_failed_ = false;                 // The last flush failed: say when one succeeds.
  bool turn_posted_ = false;
  bool retry_armed_ = false;  // A failed flush is retried by a timer.

  int drain_level_ = 0;  // Signals received: 0 none, 1 drain, 2 stop now, 3 kill now.
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer prune_timer_;
  boost::asio::steady_timer linger_timer_;  // Armed while any task is lingering.
  // Leaders given up on (give_up) that had not exited: reaped if they ever do.
  std::list<boost::asio::posix::stream_descriptor> unreaped_;
  bool linger_armed_ = false;
  std::optional<Store::PruneCutoff> prune_upto_;  // The pass in progress, if any.
  bool prune_posted_ = false;                     // Its next slice is posted.
  std::int64_t pruned_in_pass_ = 0;
  std::function<void()> on_idle_;
  bool stopped_ = false;  // Drained and told run(): no timer may re-arm.
  std::function<void(const proto::StatusResult&)> on_counts_changed_;
  std::pair<std::int64_t, std::size_t> last_counts_{-1, 0};  // (running, queued) last reported.

  // A batch shares one environment: the last one built, as "NAME=value" strings.
  std::int64_t cached_env_id_ = -1;
  std::vector<std::string> cached_env_;
};

}  // namespace tg::daemon
