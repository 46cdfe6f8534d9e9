#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "common/error.h"
#include "common/protocol.h"
#include "daemon/engine/holds.h"
#include "daemon/engine/scheduler.h"
#include "daemon/engine/waiter.h"
#include "daemon/exec/executor.h"
#include "daemon/exec/users.h"
#include "daemon/model/config.h"
#include "daemon/model/group.h"
#include "daemon/model/peer.h"
#include "daemon/model/task.h"
#include "daemon/model/task_state.h"
#include "daemon/store/store.h"
#include "daemon/sys/timer.h"

namespace tg::daemon {

// A listing is a walk over the tasks in id order that can stop after any task and go on later
// from its id, whatever was submitted or pruned meanwhile. A page is bounded in tasks, in bytes
// and in tasks looked at, so that no reply and no turn of the loop grows with the store: 100 000
// tasks in one reply cost 600 MB and 1.8 s of the loop (docs/performance.md F10).
inline constexpr std::size_t kListPageTasks = 250;
inline constexpr std::size_t kListPageBytes = 256 << 10;
inline constexpr std::size_t kListPageVisits = 20'000;
struct ListBounds {
  std::size_t max_tasks = kListPageTasks;
  std::size_t max_bytes = kListPageBytes;    // Estimated JSON; a page has at least one task.
  std::size_t max_visits = kListPageVisits;  // Tasks looked at, matching or not.
};
struct ListWalk {
  // The request's filters, resolved for its peer.
  std::optional<GroupKey> group;
  std::optional<uid_t> owner;
  std::vector<TaskState> states;  // Any of these; empty: all.
  proto::TaskId after_id = 0;     // The next page starts after this id...
  proto::TaskId last_id = std::numeric_limits<proto::TaskId>::max();  // ...the walk ends here.
  bool done = false;                                                  // Nothing is left to look at.
  proto::Labels labels;                                               // Every one must match.
  TimeMs submitted_since = 0;                                         // Submitted at or after this.
};

// The daemon's decisions: tasks, groups, the scheduler, stops and their timers, the drain and
// recovery. It runs nothing itself: an Executor starts and stops tasks and reports back
// (ExecutorEvents), a UserDirectory names users, a Clock arms timers; so every decision here
// can be tested with FakeExecutor in virtual time. Owned by run(); used only on the event
// loop's thread (no locks).
//
// The order of a change depends on who waits for it (STYLE.md rule 18 is the first case):
// - A request that changes state (submit, cancel, pause, group set) commits before it replies:
//   validate -> next_state -> memory -> store -> reply. A client that saw "ok" finds the change
//   after a crash; if the commit fails, memory stays ahead and flush() retries it (the reply
//   says so), because what it started (signals sent, tasks cancelled) cannot be taken back.
// - Starts, exits and the cancels they cause act first and are written in one transaction per
//   burst (turn(), posted once per burst): memory -> act -> store. Nobody has been told
//   yet, and acting first is the only order that works: a child's pid exists only after its
//   start. But a started task runs its command only once that transaction is committed
//   (Executor::release_started() after every successful write), so a crash never runs a task
//   twice: it either never ran or is on disk as started.
class Engine final : private ExecutorEvents {
 public:
  Engine(boost::asio::any_io_executor ex, Store& store, Executor& executor, UserDirectory& users,
         Clock& clock, Config config);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // Rebuilds memory from the store: queued tasks queue again in order; tasks that were running
  // when the daemon died become lost (or queued again with requeue) and the executor kills
  // what they left when it can prove it is theirs. Then starts what may start.
  // `adopt`: tasks the previous program of this pid handed over at a re-exec; each one the
  // executor can adopt() keeps running (its timeout counted from its start), not lost.
  [[nodiscard]] Result<void> recover(const std::unordered_set<proto::TaskId>& adopt = {});

  // --- Requests (requests.cpp, submit.cpp, cancel.cpp). Each checks that the peer may act on
  // what it names.
  [[nodiscard]] Result<proto::SubmitResult> submit(const Peer& peer, const proto::Submit& req);
  [[nodiscard]] Result<proto::ShowResult> show(const Peer& peer, const proto::Show& req) const;
  [[nodiscard]] Result<proto::CancelResult> cancel(const Peer& peer, const proto::Cancel& req);
  // tgctl kill (kill.cpp): the signal to the running tasks selected; their state is unchanged.
  [[nodiscard]] Result<proto::KillResult> kill(const Peer& peer, const proto::Kill& req);
  [[nodiscard]] Result<proto::GroupsResult> groups(const Peer& peer,
                                                   const proto::Groups& req) const;
  [[nodiscard]] Result<proto::GroupInfo> group_set(const Peer& peer, const proto::GroupSet& req);
  [[nodiscard]] Result<proto::GroupInfo> set_paused(const Peer& peer, const proto::GroupRef& ref,
                                                    bool paused);
  [[nodiscard]] proto::StatusResult status() const;
  // restart.cpp: new tasks like ended ones, committed before the reply like a submit.
  [[nodiscard]] Result<proto::RestartResult> restart(const Peer& peer, const proto::Restart& req);

  // --- Listing (list.cpp): see ListWalk.
  // Resolves the filters, and starts after req.after_id (0 if unset). With a limit, it starts
  // at the oldest of the newest `limit` matches and ends at the newest task there is now.
  [[nodiscard]] Result<ListWalk> begin_list(const Peer& peer, const proto::List& req) const;
  // The walk's next page, oldest first; moves walk.after_id past every task it looked at.
  [[nodiscard]] std::vector<proto::TaskInfo> list_page(ListWalk& walk,
                                                       const ListBounds& bounds = {}) const;
  // A paged list request: the first page after req.after_id and where the next one starts.
  // A continuation sends that as after_id, without the limit (which the first page applied).
  [[nodiscard]] Result<proto::ListResult> list(const Peer& peer, const proto::List& req,
                                               const ListBounds& bounds = {}) const;

  // --- Long requests: the session parks a Waiter and asks again after each wake.
  // Resolves a wait's selection into the waiter; an error if the peer may not see it.
  [[nodiscard]] Result<void> prepare_wait(const Peer& peer, const proto::Wait& req, Waiter& w);
  // Progress of a prepared wait; done when counts.done() == counts.total().
  [[nodiscard]] proto::WaitResult wait_progress(const Waiter& w, TimeMs started_at) const;
  // The log file of a task the peer may see, and whether the task has ended.
  struct LogSource {
    std::string path;
    bool ended = false;
    // One attempt's part of the log: [begin, end); end unset while the attempt may still write.
    std::int64_t begin = 0;
    std::optional<std::int64_t> end;
  };
  // `attempt`: only that attempt's part (an error if the task has no such attempt yet).
  [[nodiscard]] Result<LogSource> log_source(const Peer& peer, proto::TaskId id,
                                             std::optional<std::int64_t> attempt = {}) const;
  void watch(Waiter& w);
  void unwatch(Waiter& w);
  // watch.cpp (tgctl top): a watch's scope into the waiter (w.watch, w.owner); an error if the
  // peer may not see it. Then the frame to send after each wake, bounded by proto::kWatchMax*.
  [[nodiscard]] Result<void> prepare_watch(const Peer& peer, const proto::Watch& req, Waiter& w);
  [[nodiscard]] proto::WatchFrame watch_frame(const Waiter& w) const;

  // --- Lifecycle (run.cpp).
  // SIGHUP / reload: new limits and timeouts apply at once; paths are kept.
  void apply_config(const Config& config);
  const Config& config() const { return config_; }
  // The socket clients really reach (systemd's when socket-activated); given to tasks.
  void set_socket_path(std::string path);
  // Called after a turn that changed the running or queued counts (systemd STATUS=).
  void on_counts_changed(std::function<void(const proto::StatusResult&)> f) {
    on_counts_changed_ = std::move(f);
  }
  void set_config_error(std::optional<std::string> error) { config_error_ = std::move(error); }
  // The store refuses writes since an fsync failed (Store::write_failure()): the engine starts
  // nothing more, refuses changes, lets running tasks run, and calls `exit` once none is left
  // (unless a drain ends the daemon first), so that a new process recovers from the disk.
  void on_saving_stopped(std::function<void()> exit) { on_saving_stopped_ = std::move(exit); }
  [[nodiscard]] bool saving_stopped() const { return store_.write_failure().has_value(); }
  // First SIGTERM/SIGINT: refuse submits, start nothing, give running tasks drain_timeout.
  // Second: stop them now. Third: SIGKILL them now. `on_idle` runs once nothing is running.
  void drain(std::function<void()> on_idle);
  [[nodiscard]] bool draining() const { return drain_level_ > 0; }
  // Wakes every waiter with an error; called just before the loop is shut down. After
  // hand_over(), the error says to ask again (Errc::kRestarting).
  void abort_waiters();

  // --- Re-exec (run.cpp, sys/handover.h).
  // While held, nothing starts: so that the executor settles for a re-exec.
  void hold_starts(bool held);
  // Nothing is being stopped and the executor is settled: every running task is fully
  // described by the store, and can be handed over once flush() has written it.
  [[nodiscard]] bool ready_to_hand_over() const;
  // Stops every timer and the executor's watching, refuses every change from now on
  // (handed_over()), and returns the running tasks: the loop may stop, nothing is lost.
  std::vector<proto::TaskId> hand_over();
  [[nodiscard]] bool handed_over() const { return handed_over_; }
  // Writes what is pending (tasks and groups) in one transaction; `sync` to fsync it
  // (acknowledged changes, and the last call before the store closes). On failure it logs,
  // everything stays dirty and a timer retries it every second (until the drain is over).
  [[nodiscard]] Result<void> flush(bool sync = true);
  // Drops finished tasks past `retention` or beyond `retention_count`, with their logs: finds
  // the cutoff once, then deletes a small bounded slice per turn of the loop; then again after
  // an hour (or after a reload that changes the retention settings).
  void prune();

  [[nodiscard]] std::string log_path(proto::TaskId id) const;

  // How long after SIGKILL a task that is still not gone is recorded ended anyway.
  static constexpr std::chrono::seconds kKillWait{5};
  // What a task stopped at its log cap may still write during its grace (a cleanup's messages)
  // beyond the size it was stopped at; more, and it gets SIGKILL without waiting for the grace.
  static constexpr std::int64_t kLogStopSlack = 1 << 20;

 private:
  enum class StopCause { kNone, kTimeout, kCancel, kDrain, kLogLimit };
  // What the engine keeps about a started task until it has ended.
  struct Run {
    std::unique_ptr<Timer> timeout;  // The task's own timeout.
    // The grace after the stop signal, then SIGKILL; after SIGKILL, kKillWait, then give_up().
    // Made by kill_timer() at the first stop: most tasks are never stopped.
    std::unique_ptr<Timer> kill;
    StopCause stop = StopCause::kNone;
    bool stopped = false;                      // The stop signal was sent.
    bool killed = false;                       // SIGKILL was sent.
    std::optional<std::string> start_failure;  // It never got to run its command: why.
    std::int64_t log_cap = 0;                  // As given to the executor at its start.
    std::optional<std::int64_t> log_over;      // Its log size at the first on_log_limit.
  };

  // ExecutorEvents (events.cpp).
  void on_started(proto::TaskId id, const RunHandle& run) override;
  void on_start_failed(proto::TaskId id, const std::string& why) override;
  void on_exited(proto::TaskId id, const ExitStatus& status) override;
  void on_tree_gone(proto::TaskId id, const ResourceUsage& usage) override;
  void on_log_limit(proto::TaskId id, std::int64_t size) override;
  void on_hook_done(HookId id, const HookOutcome& outcome) override;  // hooks.cpp
  // kKillWait after SIGKILL the task is still not gone: records it ended, saying what is left.
  void give_up(proto::TaskId id);
  // Records how the task ended, frees its slot and acts on it (fail-fast, cancel, drain).
  void close_task(proto::TaskId id, TaskEvent event);
  [[nodiscard]] static TaskEvent end_event(StopCause cause, bool succeeded);

  // submit.cpp: committed tasks join their group and the scheduler; returns their ids.
  std::vector<proto::TaskId> enqueue(Group& g, std::vector<Task>& tasks);
  // Commits new tasks (ids and env_ids set on them) with what else is pending, before a
  // request's reply; `what` names them in errors ("the tasks").
  [[nodiscard]] Result<void> insert_new(std::vector<Task>& tasks,
                                        std::span<const std::string* const> envs, uid_t by,
                                        const std::string& what);
  // A kept task's submit key and restart origin, in the maps that find them; and out again.
  void index_task(const Task& t);
  void unindex_task(const Task& t);

  // restart.cpp: the ended tasks a restart names, oldest first; an error if one may not be.
  [[nodiscard]] Result<std::vector<const Task*>> restart_selection(const Peer& peer,
                                                                   const proto::Restart& req) const;

  // workflow.cpp
  // Checks the dependencies a submit names (they exist, the peer may see them, they are older)
  // and sets them on the tasks, with --after-group's resolved to ids.
  [[nodiscard]] Result<void> resolve_workflow(const Peer& peer, const proto::Submit& req,
                                              std::vector<Task>& tasks) const;
  // A queued task goes to the scheduler, or waits in holds_ for its dependencies and begin
  // time; a dependency that already ended the wrong way cancels it at once.
  void admit(Task& t, Group& g);
  void release(proto::TaskId id);  // Out of holds_, into the scheduler.
  // A task has ended: what that means for the tasks waiting for it, transitively.
  void settle_dependents(const Task& ended);
  void arm_begin_timer(TimeMs now);  // For the earliest begin time in holds_.
  // A failed or timed-out attempt with retries left is recorded and queued again: true.
  bool retry(Task& t, TaskEvent event);
  // Why a queued task has not started, and the dependencies it waits for.
  [[nodiscard]] std::pair<std::string, std::vector<proto::TaskId>> pending(const Task& t) const;
  // Where the task's current attempt begins in its log (0 for the first).
  [[nodiscard]] static std::int64_t log_start(const Task& t) {
    return t.attempts.empty() ? 0 : t.attempts.back().log_end;
  }

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
  // The cap on the task's log: the smaller of its own and max_log_size, 0 meaning none.
  [[nodiscard]] std::int64_t log_cap(const Task& t) const;
  // The submitted environment of a task, loaded once per batch (env_id); nullptr for none.
  [[nodiscard]] Result<const proto::Env*> environment_of(const Task& t);
  void after_end(Task& t, Group& g);
  void notify(const Task& t);
  // Wakes the watches that see `uid`'s tasks and groups (all watches when unset).
  void notify_watches(std::optional<uid_t> uid);
  // watch.cpp: a task that has just ended, into the lists of the last ones a watch shows.
  void note_ended(const Task& t);
  [[nodiscard]] proto::WatchTask watch_task(const Task& t) const;

  // persist.cpp
  // One slice of the prune pass that prune() began; posts the next one, or arms the timer.
  void prune_slice();
  void arm_prune_timer();
  void forget(proto::TaskId id);  // A pruned task: out of memory, its log unlinked.
  // Commits the group's settings with whatever else is pending, before a request's reply.
  [[nodiscard]] Result<void> save(const Group& g);
  // The reply to a request whose change took effect in memory but could not be committed: `io`
  // (it stays dirty and flush() retries it), or, once saving has stopped, why it never will be.
  [[nodiscard]] Error not_saved(const std::string& what, const Error& why) const;
  // Saving has just stopped: says so once, and exits when nothing runs (check_drained()).
  void note_saving_stopped();

  // recover.cpp
  void recover_running(Task& t);
  // A task handed over by a re-exec that the executor adopted: running again in memory.
  void readopt(Task& t, Group& g);
  // Arms the task's timeout to fire `after` from now (0: at once).
  void arm_timeout(proto::TaskId id, std::chrono::milliseconds after);

  // cancel.cpp
  void cancel_group(Group& g, uid_t by, std::string reason, std::chrono::milliseconds grace,
                    bool force, proto::CancelResult& out);
  void cancel_task(Task& t, uid_t by, std::chrono::milliseconds grace, bool force,
                   proto::CancelResult& out);
  // Sends stop_signal to every process of the task and arms SIGKILL after `grace`.
  void stop(Task& t, StopCause cause, std::chrono::milliseconds grace);
  void kill_now(Task& t);
  [[nodiscard]] Timer& kill_timer(Run& r);  // Made at the first stop of the task.
  void maybe_finish_cancel(Group& g);

  // hooks.cpp: the on-done hook of a group whose run has ended (docs/usage.md). Each hook
  // gets SIGTERM kill_grace after its start (or at the drain), SIGKILL kill_grace later, and
  // kKillWait after that the engine stops waiting for it.
  struct HookRun {
    GroupKey group;
    std::unique_ptr<Timer> timer;  // The next step of its bound.
    bool termed = false;           // SIGTERM was sent.
    bool killed = false;           // SIGKILL was sent.
  };
  // Runs the group's hook if it has one and its current run, which ran a task, has ended.
  void maybe_run_hook(Group& g);
  void stop_hook(HookId id);  // SIGTERM now, SIGKILL after kill_grace.
  void kill_hook(HookId id);  // SIGKILL now, stop waiting after kKillWait.
  // The drain: every hook gets SIGTERM (`kill`: SIGKILL) now.
  void stop_hooks(bool kill);

  // drain.cpp
  void stop_all(StopCause cause, const std::string& reason);
  void check_drained();

  // access.cpp: who may see and act on what.
  [[nodiscard]] Result<GroupKey> resolve(const Peer& peer, const proto::GroupRef& ref) const;
  [[nodiscard]] Result<uid_t> resolve_user(const Peer& peer, const std::string& user) const;
  [[nodiscard]] bool visible(const Peer& peer, const Task& t) const {
    return peer.root() || peer.uid == t.uid;
  }

  // views.cpp: tasks and groups as the protocol shows them.
  [[nodiscard]] std::string user_name(uid_t uid) const;
  [[nodiscard]] proto::TaskInfo info(const Task& t) const;
  [[nodiscard]] proto::GroupInfo info(const Group& g) const;

  boost::asio::any_io_executor ex_;
  Store& store_;
  Executor& executor_;
  UserDirectory& users_;
  Clock& clock_;
  Config config_;
  std::optional<std::string> config_error_;
  const TimeMs started_at_;

  std::map<proto::TaskId, Task> tasks_;
  std::map<GroupKey, GroupId> group_ids_;
  std::unordered_map<GroupId, std::unique_ptr<Group>> groups_by_id_;
  GroupId next_group_id_ = 1;
  Scheduler scheduler_;
  Holds holds_;  // Queued tasks the scheduler may not see yet.
  std::unique_ptr<Timer> begin_timer_;
  TimeMs begin_timer_at_ = 0;  // What begin_timer_ is armed for, while armed.
  std::unordered_map<proto::TaskId, Run> running_;
  std::list<Waiter*> waiters_;
  // The last proto::kWatchMaxEnded tasks to end since the start, newest last: of everyone, and
  // per user (a watch shows only its user's). Pruned ids are skipped when a frame is built.
  std::deque<proto::TaskId> ended_;
  std::map<uid_t, std::deque<proto::TaskId>> ended_by_uid_;
  std::map<HookId, HookRun> hooks_;  // Hooks started and not yet ended (or given up).
  HookId next_hook_id_ = 1;

  std::unordered_set<proto::TaskId> dirty_;  // Changed in memory, not yet in the store.
  // Group cancels' queued tasks, not yet in the store: one statement each, not one per task.
  std::vector<Store::QueuedCancel> cancelled_queued_;
  std::unordered_set<GroupId> dirty_groups_;  // Settings changed, not yet in the store.
  bool flush_failed_ = false;                 // The last flush failed: say when one succeeds.
  bool turn_posted_ = false;
  std::unique_ptr<Timer> retry_timer_;  // Retries a failed flush.

  int drain_level_ = 0;  // Signals received: 0 none, 1 drain, 2 stop now, 3 kill now.
  std::unique_ptr<Timer> drain_timer_;
  std::unique_ptr<Timer> prune_timer_;
  std::optional<Store::PruneCutoff> prune_upto_;  // The pass in progress, if any.
  bool prune_posted_ = false;                     // Its next slice is posted.
  std::int64_t pruned_in_pass_ = 0;
  std::function<void()> on_idle_;
  bool stopped_ = false;      // Drained and told run(): no timer may re-arm.
  bool starts_held_ = false;  // hold_starts().
  bool handed_over_ = false;  // hand_over() ran: this program is about to be replaced.
  std::function<void(const proto::StatusResult&)> on_counts_changed_;
  std::function<void()> on_saving_stopped_;
  bool saving_stop_noted_ = false;
  std::pair<std::int64_t, std::size_t> last_counts_{-1, 0};  // (running, queued) last reported.

  // A batch shares one environment: the last one loaded.
  std::int64_t cached_env_id_ = 0;
  proto::Env cached_env_;

  // Submit keys of the kept tasks, per user: a submit with a known key queues nothing.
  std::map<std::pair<uid_t, std::string>, proto::TaskId> submit_keys_;
  // Kept tasks that a kept task was restarted from: a group's restart skips them.
  std::unordered_set<proto::TaskId> restarted_;
};

}  // namespace tg::daemon
