#include "daemon/engine/engine.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/codec.h"
#include "common/duration.h"
#include "daemon/exec/local/child.h"
#include "daemon/log/log_fields.h"
#include "daemon/exec/local/sys_compat.h"
#include "daemon/exec/local/task_session.h"

namespace tg::daemon {

namespace asio = boost::asio;

Engine::Engine(asio::any_io_executor ex, Store& store, Config config)
    : ex_(ex),
      store_(store),
      config_(std::move(config)),
      started_at_(now_ms()),
      boot_id_(current_boot_id()),
      scheduler_(config_.max_running),
      drain_timer_(ex),
      prune_timer_(ex),
      linger_timer_(ex) {}

Engine::~Engine() {
  for (Waiter* w : waiters_) w->abort();
}

std::string Engine::log_path(proto::TaskId id) const {
  return (config_.state_dir / "logs" / (std::to_string(id) + ".log")).string();
}

Group* Engine::find_group(const GroupKey& key) {
  auto it = group_ids_.find(key);
  return it == group_ids_.end() ? nullptr : groups_by_id_.at(it->second).get();
}

const Group* Engine::find_group(const GroupKey& key) const {
  auto it = group_ids_.find(key);
  return it == group_ids_.end() ? nullptr : groups_by_id_.at(it->second).get();
}

Group& Engine::group_for(const GroupKey& key) {
  if (Group* g = find_group(key)) return *g;
  auto g = std::make_unique<Group>();
  g->id = next_group_id_++;
  g->key = key;
  Group& ref = *g;
  group_ids_.emplace(key, g->id);
  groups_by_id_.emplace(g->id, std::move(g));
  return ref;
}

void Engine::transition(Task& t, TaskEvent event, bool persist) {
  auto next = next_state(t.state, event);
  // The callers only send events their own bookkeeping allows: a refusal is a bug.
  assert(next.has_value());
  if (next.has_error()) {
    spdlog::critical("task {}: {}", t.id, next.error().message);
    return;
  }
  Group& g = group_of(t);
  g.counts.add(t.state, -1);
  g.counts.add(*next, +1);
  if (t.id >= g.run_start) {
    g.run_counts.add(t.state, -1);
    g.run_counts.add(*next, +1);
  }
  t.state = *next;
  if (proto::is_terminal(t.state)) t.ended_at = now_ms();
  if (persist) mark_dirty(t);
  notify(t);
}

void Engine::mark_dirty(const Task& t) {
  dirty_.insert(t.id);
  request_turn();
}

void Engine::request_turn() {
  if (turn_posted_) return;
  turn_posted_ = true;
  asio::post(ex_, [this] { turn(); });
}

void Engine::turn() {
  turn_posted_ = false;
  if (!draining()) {  // While draining, queued tasks wait for the next start.
    while (auto next = scheduler_.next()) start(tasks_.at(next->second));
  }
  // Starts and exits of this burst in one commit; a started child is on disk as running
  // before the loop does anything else.
  (void)flush(false);  // A failure is logged and retried by flush().
  const std::pair<std::int64_t, std::size_t> counts{scheduler_.running(), scheduler_.queued()};
  if (on_counts_changed_ && counts != last_counts_) {
    last_counts_ = counts;
    on_counts_changed_(status());
  }
}

Result<void> Engine::flush(bool sync) {
  if (dirty_.empty() && cancelled_queued_.empty() && dirty_groups_.empty()) return {};
  std::vector<const Task*> changed;
  changed.reserve(dirty_.size());
  for (proto::TaskId id : dirty_) {
    if (auto it = tasks_.find(id); it != tasks_.end()) changed.push_back(&it->second);
  }
  std::vector<GroupRow> groups;
  for (GroupId gid : dirty_groups_) {
    const Group& g = *groups_by_id_.at(gid);
    groups.push_back({g.key.uid, g.key.name, g.limit, g.fail_fast, g.paused, g.last_cancel});
  }
  if (auto r = store_.update(changed, cancelled_queued_, groups, sync); r.has_error()) {
    // Memory stays ahead; everything still dirty is retried in a second.
    spdlog::error("saving {} task and {} group change(s) failed: {}; will retry", changed.size(),
                  groups.size(), r.error().message);
    flush_failed_ = true;
    if (!retry_armed_ && !stopped_) {  // After the drain, run() makes the last attempt.
      retry_armed_ = true;
      auto retry = std::make_shared<asio::steady_timer>(ex_, std::chrono::seconds(1));
      retry->async_wait([this, retry](boost::system::error_code) {
        retry_armed_ = false;
        (void)flush();  // Logs, and arms the next retry, if it fails again.
      });
    }
    return r.error();
  }
  if (std::exchange(flush_failed_, false)) {
    spdlog::info("saved {} task and {} group change(s) after the earlier failure", changed.size(),
                 groups.size());
  }
  dirty_.clear();
  cancelled_queued_.clear();
  dirty_groups_.clear();
  return {};
}

Error Engine::not_saved(const std::string& what, const Error& why) {
  return Error{Errc::kIo,
               what + " took effect but is not yet saved: " + why.message + "; will retry"};
}

void Engine::prune() {
  // Finding the cutoff walks retention_count index entries: once per pass, not per slice.
  auto upto = store_.prune_cutoff(now_ms() - config_.retention.count(), config_.retention_count);
  if (upto.has_error()) {
    spdlog::error("pruning finished tasks failed: {}", upto.error().message);
    return arm_prune_timer();
  }
  prune_upto_ = *upto;  // A pass still in progress goes on to the new cutoff.
  if (!prune_posted_) prune_slice();
}

void Engine::prune_slice() {
  // Rows, and log unlinks, per turn of the loop: a millisecond or so between requests.
  constexpr std::int64_t kSlice = 256;
  prune_posted_ = false;
  if (stopped_ || !prune_upto_) return;
  auto pruned = store_.prune_slice(*prune_upto_, kSlice);
  if (pruned.has_error()) {
    spdlog::error("pruning finished tasks failed: {}", pruned.error().message);
    prune_upto_.reset();
    return arm_prune_timer();
  }
  for (proto::TaskId id : *pruned) forget(id);
  pruned_in_pass_ += static_cast<std::int64_t>(pruned->size());
  spdlog::debug("prune slice: {} task(s), {} sqlite steps", pruned->size(),
                store_.last_prune_steps());
  if (static_cast<std::int64_t>(pruned->size()) == kSlice) {
    prune_posted_ = true;
    asio::post(ex_, [this] { prune_slice(); });  // More to do: yield to requests first.
    return;
  }
  if (pruned_in_pass_ > 0) spdlog::info("pruned {} finished task(s)", pruned_in_pass_);
  pruned_in_pass_ = 0;
  prune_upto_.reset();
  arm_prune_timer();
}

void Engine::arm_prune_timer() {
  if (stopped_) return;
  prune_timer_.expires_after(std::chrono::hours(1));  // Cancels the wait already armed.
  prune_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopped_) prune();  // A handler queued before cancel() still runs.
  });
}

void Engine::forget(proto::TaskId id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  Group& g = group_of(it->second);
  g.counts.add(it->second.state, -1);
  if (id >= g.run_start) g.run_counts.add(it->second.state, -1);
  (void)::unlink(log_path(id).c_str());  // Already gone is fine.
  tasks_.erase(it);
}

void Engine::notify(const Task& t) {
  if (waiters_.empty()) return;
  const GroupId gid = group_ids_.at({t.uid, t.group});
  for (Waiter* w : waiters_) {
    if ((w->group && *w->group == gid) || w->log_task == t.id ||
        std::binary_search(w->ids.begin(), w->ids.end(), t.id)) {
      w->wake();
    }
  }
}

void Engine::watch(Waiter& w) { waiters_.push_back(&w); }

void Engine::unwatch(Waiter& w) { waiters_.remove(&w); }

void Engine::abort_waiters() {
  for (Waiter* w : waiters_) w->abort();
}

Result<proto::SubmitResult> Engine::submit(const Peer& peer, const proto::Submit& req) {
  if (draining()) return Error{Errc::kDraining, "the daemon is draining; submits are refused"};
  const GroupKey key{peer.uid, req.group};
  if (const Group* g = find_group(key); g && g->cancelling) {
    return Error{Errc::kGroupCancelling,
                 "group '" + req.group + "' is being cancelled; submit again when it is idle"};
  }
  const TimeMs now = now_ms();
  std::vector<Task> tasks;
  std::vector<std::string> env_bodies;  // Distinct bodies; most batches have one.
  std::vector<const std::string*> env_of;
  tasks.reserve(req.tasks.size());
  env_of.reserve(req.tasks.size());
  env_bodies.reserve(req.tasks.size() == 1 ? 1 : 2);
  if (req.defaults.env) env_bodies.push_back(proto::dump_json(*req.defaults.env));
  for (const auto& spec : req.tasks) {
    Task t;
    t.uid = peer.uid;
    t.gid = peer.gid;
    t.group = req.group;
    t.argv = spec.argv;
    t.cwd = spec.cwd.value_or(req.defaults.cwd.value_or("/"));
    t.shell = spec.shell.value_or(req.defaults.shell.value_or(false));
    t.priority = spec.priority.value_or(req.defaults.priority.value_or(0));
    t.timeout =
        std::chrono::milliseconds(spec.timeout_ms.value_or(req.defaults.timeout_ms.value_or(0)));
    t.requeue = spec.requeue.value_or(req.defaults.requeue.value_or(false));
    t.submitted_at = now;
    if (spec.env) {
      env_bodies.push_back(proto::dump_json(*spec.env));
      env_of.push_back(nullptr);  // Fixed up below, once env_bodies stops growing.
    } else {
      env_of.push_back(nullptr);
    }
    tasks.push_back(std::move(t));
  }
  // Point every task at its body only now that env_bodies no longer reallocates (pointers
  // taken while it grew would dangle).
  for (std::size_t i = 0, next = req.defaults.env ? 1 : 0; i < req.tasks.size(); ++i) {
    if (req.tasks[i].env) {
      env_of[i] = &env_bodies[next++];
    } else if (req.defaults.env) {
      env_of[i] = &env_bodies.front();
    }
  }

  std::vector<const Task*> pending;
  for (proto::TaskId id : dirty_) pending.push_back(&tasks_.at(id));
  // Commit before replying: a client that saw the ids must find them after a crash.
  if (auto r = store_.insert(tasks, env_of, pending); r.has_error()) {
    spdlog::error("submit of {} tasks by uid={} failed: {}", tasks.size(), peer.uid,
                  r.error().message);
    return Error{r.error().code, "could not save the tasks: " + r.error().message};
  }
  dirty_.clear();

  Group& g = group_for(key);
  if (!g.busy()) {
    g.run_start = tasks.front().id;
    g.run_counts = {};
  }
  proto::SubmitResult result;
  result.ids.reserve(tasks.size());
  for (Task& t : tasks) {
    result.ids.push_back(t.id);
    g.counts.add(TaskState::kQueued);
    g.run_counts.add(TaskState::kQueued);
    scheduler_.enqueue(g.id, t.id, t.priority);
    log_for(t).debug("task {} queued group='{}' uid={}", t.id, t.group, t.uid);
    const proto::TaskId id = t.id;
    tasks_.emplace(id, std::move(t));
  }
  log_for(g).info("{} task(s) submitted group='{}' uid={} first={}", result.ids.size(), req.group,
                  peer.uid, result.ids.front());
  for (Waiter* w : waiters_) {
    if (w->group && *w->group == g.id) w->wake();
  }
  request_turn();
  return result;
}

namespace {

// Variables a task must not take from the submitted environment: another service manager's
// (a task must not talk to systemd as if it were us) and the ones we set ourselves.
bool reserved(const std::string& name) {
  return name == "NOTIFY_SOCKET" || name.starts_with("LISTEN_") || name.starts_with("WATCHDOG_") ||
         name.starts_with("TASKGROUPD_");
}

}  // namespace

Result<std::vector<std::string>> Engine::spawn_env(const Task& t) {
  // A batch shares one environment: build its "NAME=value" strings once.
  if (t.env_id == 0 || t.env_id != cached_env_id_) {
    proto::Env env;
    if (t.env_id != 0) {
      auto loaded = store_.load_env(t.env_id);
      if (loaded.has_error()) return loaded.error();
      env = std::move(*loaded);
    } else {
      // No environment sent: a minimal one for the submitter, like a login would give.
      env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
             {"HOME", "/"},
             {"USER", user_name(t.uid)},
             {"LANG", "C.UTF-8"}};
      std::vector<char> buf(16384);
      struct passwd pw {};
      struct passwd* found = nullptr;
      if (::getpwuid_r(t.uid, &pw, buf.data(), buf.size(), &found) == 0 && found) {
        env["HOME"] = pw.pw_dir;
      }
    }
    cached_env_.clear();
    for (const auto& [k, v] : env) {
      if (!reserved(k)) cached_env_.push_back(k + "=" + v);
    }
    cached_env_id_ = t.env_id;
  }
  std::vector<std::string> out;
  out.reserve(cached_env_.size() + 3);
  out = cached_env_;
  out.push_back("TASKGROUPD_SOCKET=" + config_.socket);
  out.push_back("TASKGROUPD_GROUP=" + t.group);
  out.push_back("TASKGROUPD_TASK_ID=" + std::to_string(t.id));
  return out;
}

namespace {

// The submitter's credentials, when the daemon is root and the submitter is not.
Result<std::optional<SpawnSpec::Credentials>> credentials_for(uid_t uid, gid_t gid) {
  if (::geteuid() != 0 || uid == 0) return std::optional<SpawnSpec::Credentials>{};
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    return Error{Errc::kPermissionDenied, "uid " + std::to_string(uid) + " has no passwd entry"};
  }
  std::vector<gid_t> groups(64);
  int n = static_cast<int>(groups.size());
  while (::getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n) + 16);
    n = static_cast<int>(groups.size());
  }
  groups.resize(static_cast<std::size_t>(n));
  return std::optional(SpawnSpec::Credentials{uid, gid, std::move(groups)});
}

}  // namespace

void Engine::start(Task& t) {
  Group& g = group_of(t);
  SpawnSpec spec;
  spec.cwd = t.cwd;
  if (t.shell) {
    std::string command;
    for (const auto& a : t.argv) command += (command.empty() ? "" : " ") + a;
    spec.argv = {"/bin/sh", "-c", command};
  } else {
    spec.argv = t.argv;
  }
  auto fail = [&](const std::string& why) {
    t.reason = "failed to start: " + why;
    log_for(t).warn("task {} failed to start: {}", t.id, why);
    transition(t, TaskEvent::kSpawnFail);
    scheduler_.finished(g.id);
    after_end(t, g);
  };
  auto env = spawn_env(t);
  if (env.has_error()) return fail(env.error().message);
  spec.env = std::move(*env);
  auto creds = credentials_for(t.uid, t.gid);
  if (creds.has_error()) return fail(creds.error().message);
  spec.credentials = *creds;

  // The child creates its log (off the loop, and in parallel: inode allocation is slow on some
  // file systems); its failure to do so, like any before exec, arrives through its report.
  spec.log_path = log_path(t.id);
  spec.umask = config_.task_umask;
  // With nothing else running there is nothing to overlap with the child's exec: let it have
  // the CPU at once rather than queue behind our commit (measured: docs/performance.md, F1).
  spec.wait_for_exec = running_.empty();

  auto spawned = spawn_child(spec);
  if (spawned.has_error()) return fail(spawned.error().message);
  t.pid = spawned->pid;
  t.pid_start = spawned->start_time;
  t.boot_id = boot_id_;
  t.started_at = now_ms();
  transition(t, TaskEvent::kStart);
  log_for(t).info("task {} running pid={} group='{}'", t.id, t.pid, t.group);

  auto& r = running_[t.id] = std::make_unique<Running>(ex_, spawned->pidfd.release());
  r->report.assign(spawned->report.release());
  r->launch = std::move(spawned->launch);
  const proto::TaskId id = t.id;
  await_report(id, *r);
  r->pidfd.async_wait(asio::posix::descriptor_base::wait_read,
                      [this, id](boost::system::error_code ec) {
                        if (!ec) on_exit(id);
                      });
  if (t.timeout.count() > 0) {
    r->timeout.expires_after(t.timeout);
    r->timeout.async_wait([this, id](boost::system::error_code ec) {
      // A handler queued in the same turn as the exit still runs after cancel(): the task may
      // be gone, or already stopping for a cancel, which wins.
      auto it = running_.find(id);
      if (ec || it == running_.end() || it->second->stopped) return;
      Task& task = tasks_.at(id);
      task.reason = "timed_out: exceeded " + format_duration(task.timeout);
      stop(task, StopCause::kTimeout, config_.kill_grace);
    });
  }
}

void Engine::await_report(proto::TaskId id, Running& r) {
  r.report.async_wait(asio::posix::descriptor_base::wait_read,
                      [this, id](boost::system::error_code ec) {
                        auto it = running_.find(id);
                        if (ec || it == running_.end() || !it->second->launch) return;
                        Running& run = *it->second;
                        auto outcome = run.launch->poll(run.report.native_handle());
                        if (!outcome) return await_report(id, run);
                        if (outcome->has_value()) {  // Exec'd: it no longer runs on our memory.
                          run.launch.reset();
                          run.report.close();
                        }
                        // A failure: the child exits now; on_exit records it.
                      });
}

void Engine::on_exit(proto::TaskId id) {
  auto it = running_.find(id);
  if (it == running_.end()) return;
  Running& r = *it->second;
  Task& t = tasks_.at(id);
  // A child that never got to exec says why in its report, complete now that it has exited.
  std::optional<Error> spawn_error;
  if (r.launch) {
    auto outcome = r.launch->poll(r.report.native_handle());
    if (!outcome) outcome = Result<void>{Error{Errc::kInternal, "the child died before exec"}};
    if (outcome->has_error()) spawn_error = outcome->error();
  }
  // Stopped with a grace, the leader may go first (a shell dies of TERM while the children it
  // ran still clean up): the rest of its session gets the grace it was promised. Peeking leaves
  // the leader a zombie, so its pid (our sid and pgid) cannot be reused meanwhile.
  siginfo_t peeked{};
  if (!spawn_error && r.stopped && !r.killed &&
      ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(r.pidfd.native_handle()), &peeked,
               WEXITED | WNOWAIT) == 0 &&
      sessions_with_members({t.pid}).contains(t.pid)) {
    r.lingering = true;
    log_for(t).info("task {}: pid {} exited; the rest of its session keeps its grace", id,
                    t.pid);
    watch_lingering();
    return;
  }
  end_task(id, spawn_error);
}

void Engine::watch_lingering() {
  if (linger_armed_) return;
  linger_armed_ = true;
  linger_timer_.expires_after(std::chrono::milliseconds(50));
  linger_timer_.async_wait([this](boost::system::error_code ec) {
    linger_armed_ = false;
    if (ec) return;
    std::vector<proto::TaskId> ids;
    std::vector<pid_t> sids;
    std::vector<pid_t> killed;
    for (const auto& [id, r] : running_) {
      if (!r->lingering) continue;
      ids.push_back(id);
      sids.push_back(tasks_.at(id).pid);
      if (r->killed) killed.push_back(sids.back());
    }
    if (ids.empty()) return;
    if (!killed.empty()) (void)signal_sessions(killed, SIGKILL);
    const auto alive = sessions_with_members(sids);
    bool waiting = false;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (alive.contains(sids[i])) {
        waiting = true;  // The grace's SIGKILL, then give_up(), end them at the latest.
      } else {
        end_task(ids[i], std::nullopt);
      }
    }
    if (waiting) watch_lingering();
  });
}

void Engine::end_task(proto::TaskId id, const std::optional<Error>& spawn_error) {
  auto it = running_.find(id);
  Running& r = *it->second;
  Task& t = tasks_.at(id);
  // The leader is a zombie until reaped, so its pid (our sid) cannot be reused yet: kill what
  // is left of its session now, leaving nothing of the task behind.
  (void)kill_session_remains(t.pid, std::chrono::steady_clock::now() - r.spawned_at);
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(r.pidfd.native_handle()), &info,
               WEXITED) != 0) {
    log_for(t).error("task {}: waitid failed: {}", id, ::strerror(errno));
  }
  if (info.si_code == CLD_EXITED) {
    t.exit_code = info.si_status;
  } else {
    t.signal = info.si_status;
  }
  if (r.stop == StopCause::kNone && spawn_error) {  // Not the command's exit: ours (127).
    t.exit_code.reset();
    t.signal.reset();
    t.reason = "failed to start: " + spawn_error->message;
    log_for(t).warn("task {} failed to start: {}", t.id, spawn_error->message);
    return close_task(id, TaskEvent::kExitFailure);
  }
  if (r.stop == StopCause::kNone && t.signal) {
    t.reason = std::string("killed by signal ") + std::to_string(*t.signal) + " (SIG" +
               (::sigabbrev_np(*t.signal) ? ::sigabbrev_np(*t.signal) : "?") + ")";
  }
  close_task(id, end_event(r.stop, t.exit_code && *t.exit_code == 0));
}

TaskEvent Engine::end_event(StopCause cause, bool succeeded) const {
  switch (cause) {
    case StopCause::kNone:
      return succeeded ? TaskEvent::kExitSuccess : TaskEvent::kExitFailure;
    case StopCause::kTimeout:
      return TaskEvent::kExitAfterTimeout;
    case StopCause::kCancel:
      return TaskEvent::kExitAfterCancel;
    case StopCause::kDrain:
      return TaskEvent::kExitAfterDrain;
  }
  return TaskEvent::kExitFailure;
}

void Engine::give_up(proto::TaskId id) {
  auto it = running_.find(id);
  if (it == running_.end()) return;
  Running& r = *it->second;
  Task& t = tasks_.at(id);
  const std::string after = format_duration(kKillWait) + " after SIGKILL";
  siginfo_t info{};
  const bool leader_exited =
      ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(r.pidfd.native_handle()), &info,
               WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid != 0;
  if (leader_exited) {
    // Only members of its session are left, in uninterruptible sleep: they die when they wake.
    log_for(t).error("task {}: processes of its session still alive {}; recording it ended", id,
                     after);
    t.reason += "; processes of its session were still alive " + after + " and were left behind";
    return end_task(id, std::nullopt);
  }
  log_for(t).error("task {}: pid {} still alive {}; recording it ended", id, t.pid, after);
  t.reason += "; pid " + std::to_string(t.pid) + " was still alive " + after +
              " and was left behind";
  // Its exit is not known. The pidfd moves to unreaped_, which reaps the leader if it ever
  // exits (until the daemon stops).
  auto& fd = unreaped_.emplace_back(ex_, r.pidfd.release());  // Cancels the exit's wait.
  auto where = std::prev(unreaped_.end());
  fd.async_wait(asio::posix::descriptor_base::wait_read,
                [this, where](boost::system::error_code ec) {
                  if (ec) return;  // Cancelled: the daemon is stopping.
                  siginfo_t ignored{};
                  (void)::waitid(static_cast<idtype_t>(P_PIDFD),
                                 static_cast<id_t>(where->native_handle()), &ignored, WEXITED);
                  unreaped_.erase(where);
                });
  close_task(id, end_event(r.stop, false));
}

void Engine::close_task(proto::TaskId id, TaskEvent event) {
  Task& t = tasks_.at(id);
  running_.erase(id);  // Closes the pidfd and cancels the timers.
  transition(t, event);
  log_for(t).info("task {} {} exit={} signal={}", id, proto::to_string(t.state),
                  t.exit_code ? std::to_string(*t.exit_code) : "-",
                  t.signal ? std::to_string(*t.signal) : "-");
  Group& g = group_of(t);
  scheduler_.finished(g.id);
  after_end(t, g);
  request_turn();
}

void Engine::after_end(Task& t, Group& g) {
  const bool failed = t.state == TaskState::kFailed || t.state == TaskState::kTimedOut;
  if (failed && g.fail_fast && !g.cancelling && !draining()) {
    proto::CancelResult ignored;
    log_for(t).info("task {} {}: fail-fast cancels group '{}'", t.id, proto::to_string(t.state),
                    g.key.name);
    cancel_group(g, t.uid, "cancelled: fail-fast after task " + std::to_string(t.id) + " failed",
                 config_.kill_grace, false, ignored);
  }
  maybe_finish_cancel(g);
  check_drained();
}

}  // namespace tg::daemon
