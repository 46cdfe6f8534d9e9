#include "daemon/exec/local/local_executor.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "daemon/exec/local/pidfd_wait.h"
#include "daemon/exec/local/sys_compat.h"
#include "daemon/exec/local/task_session.h"
#include "daemon/log/log_fields.h"

namespace tg::daemon {

namespace asio = boost::asio;

namespace {

// A logger whose journal entries carry the task's id (TASKGROUPD_TASK_ID).
FieldLogger task_log(proto::TaskId id) { return FieldLogger(LogFields{id, {}, std::nullopt}); }

ResourceUsage in_ms(const CgroupUsage& u) {
  ResourceUsage r;
  if (u.cpu_user_us) r.cpu_user_ms = *u.cpu_user_us / 1000;
  if (u.cpu_system_us) r.cpu_system_ms = *u.cpu_system_us / 1000;
  r.memory_peak_bytes = u.memory_peak_bytes;
  return r;
}

}  // namespace

// Not checked by UBSan's vptr check, which in the sanitized test build probes memory through a
// pipe the first time it meets a type: in a daemon out of file descriptors (a case the security
// tests provoke, and exactly when a start fails) it reports a false "invalid vptr". The target
// is the engine that bind() named; there is nothing to check.
template <class Event, class... Args>
[[gnu::no_sanitize("vptr")]] void LocalExecutor::report(Event event, Args&&... args) {
  (events_->*event)(std::forward<Args>(args)...);
}

LocalExecutor::LocalExecutor(asio::any_io_executor ex, UserDirectory& users, unsigned task_umask,
                             std::optional<CgroupTree> cgroups)
    : ex_(ex),
      users_(users),
      task_umask_(task_umask),
      boot_id_(current_boot_id()),
      linger_timer_(ex),
      log_watch_(ex,
                 [this](proto::TaskId id, std::int64_t size) {
                   report(&ExecutorEvents::on_log_limit, id, size);
                 }),
      hooks_(ex, users, task_umask,
             [this](HookId id, const HookOutcome& outcome) {
               report(&ExecutorEvents::on_hook_done, id, outcome);
             }),
      cgroups_(std::move(cgroups)),
      cgroup_watch_(ex, [this](proto::TaskId id) { on_cgroup_changed(id); }) {}

LocalExecutor::~LocalExecutor() = default;

Executor::Capabilities LocalExecutor::capabilities() const {
  return {.kills_whole_tree = true,
          .survives_restart = false,
          .isolation = cgroups_ ? "cgroups" : "process groups"};
}

Result<SpawnSpec> LocalExecutor::prepare(const LaunchSpec& spec) {
  SpawnSpec s;
  s.cwd = spec.cwd;
  if (spec.shell) {
    std::string command;
    for (const auto& a : spec.argv) command += (command.empty() ? "" : " ") + a;
    s.argv = {"/bin/sh", "-c", command};
  } else {
    s.argv = spec.argv;
  }
  // Looked up through the cache: a slow name service must not stall the loop on every start.
  const bool switch_user = ::geteuid() == 0 && spec.uid != 0;
  const auto user = users_.account(spec.uid, spec.gid);
  if (switch_user && !user) {
    return Error{Errc::kPermissionDenied,
                 "uid " + std::to_string(spec.uid) + " has no passwd entry"};
  }
  if (switch_user) s.credentials = SpawnSpec::Credentials{spec.uid, spec.gid, user->groups};
  s.env = env_.build(spec, user, socket_);
  // The child creates its log (off the loop, and in parallel: inode allocation is slow on some
  // file systems); its failure to do so, like any before exec, arrives through its report.
  s.log_path = spec.log_path;
  s.log_keep = spec.log_keep;
  s.log_header = spec.log_header;
  s.umask = task_umask_;
  s.no_new_privs = spec.no_new_privs;
  if (!gate_) {  // The first start since the last release: a gate for this burst's children.
    auto gate = StartGate::open();
    if (gate.has_error()) return gate.error();
    gate_.emplace(std::move(*gate));
  }
  s.gate_fd = gate_->wait_fd();
  return s;
}

void LocalExecutor::start(const LaunchSpec& spec) {
  const proto::TaskId id = spec.id;
  auto prepared = prepare(spec);
  if (prepared.has_error())
    return report(&ExecutorEvents::on_start_failed, id, prepared.error().message);
  UniqueFd cgroup_procs;  // The child gets a copy; ours is closed once it exists.
  if (cgroups_) {
    auto fd = cgroups_->create(id);
    if (fd.has_error()) return report(&ExecutorEvents::on_start_failed, id, fd.error().message);
    cgroup_procs = std::move(*fd);
    prepared->cgroup_procs_fd = cgroup_procs.get();
  }
  auto spawned = spawn_child(*prepared);
  cgroup_procs.reset();
  if (spawned.has_error()) {
    if (cgroups_) (void)cgroups_->remove(id);  // Empty: no child entered it.
    return report(&ExecutorEvents::on_start_failed, id, spawned.error().message);
  }

  auto& c = children_[id] = std::make_unique<Child>(ex_, spawned->pidfd.release());
  c->pid = spawned->pid;
  c->in_cgroup = cgroups_.has_value();
  c->spawned_at = std::chrono::steady_clock::now();
  c->log_path = spec.log_path;
  c->max_log_bytes = spec.max_log_bytes;
  leaders_.insert(c->pid);
  c->report.assign(spawned->report.release());
  c->launch = std::move(spawned->launch);
  await_report(id, *c);
  await_exit(id, *c);
  report(&ExecutorEvents::on_started, id, RunHandle{spawned->pid, spawned->start_time, boot_id_});
}

void LocalExecutor::release_started() {
  if (!gate_) return;
  gate_->release();
  gate_.reset();
}

void LocalExecutor::await_report(proto::TaskId id, Child& c) {
  c.report.async_wait(asio::posix::descriptor_base::wait_read,
                      [this, id](boost::system::error_code ec) {
                        auto it = children_.find(id);
                        if (ec || it == children_.end() || !it->second->launch) return;
                        Child& child = *it->second;
                        auto outcome = child.launch->poll(child.report.native_handle());
                        if (!outcome) return await_report(id, child);
                        if (outcome->has_value()) {  // Exec'd: it no longer runs on our memory.
                          child.launch.reset();
                          child.report.close();
                          // Its log exists now, and only the task writes to it.
                          log_watch_.add(id, std::move(child.log_path), child.max_log_bytes);
                        }
                        // A failure: the child exits now; on_exit reports it.
                      });
}

void LocalExecutor::await_exit(proto::TaskId id, Child& c) {
  c.pidfd.async_wait(asio::posix::descriptor_base::wait_read,
                     [this, id](boost::system::error_code ec) {
                       if (!ec) on_exit(id);
                     });
}

void LocalExecutor::on_exit(proto::TaskId id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  Child& c = *it->second;
  if (!has_exited(c.pidfd.native_handle())) return await_exit(id, c);  // Not its exit after all.
  // A child that never got to exec says why in its report, complete now that it has exited.
  std::optional<Error> spawn_error;
  if (c.launch) {
    auto outcome = c.launch->poll(c.report.native_handle());
    if (!outcome) outcome = Result<void>{Error{Errc::kInternal, "the child died before exec"}};
    if (outcome->has_error()) spawn_error = outcome->error();
  }
  // Stopped with a grace, the leader may go first (a shell dies of TERM while the children it
  // ran still clean up): the rest of its session gets the grace it was promised. Peeking leaves
  // the leader a zombie, so its pid (our sid) cannot be reused meanwhile.
  if (!spawn_error && c.stopping && !c.killed && c.in_cgroup) {
    // Peeked, not reaped: its exit is reported now; the cgroup's emptiness ends the task.
    const auto peeked = wait_pidfd(c.pidfd.native_handle(), WNOWAIT);
    if (peeked && cgroups_->populated(id) == true) {
      c.lingering = true;
      task_log(id).info("task {}: pid {} exited; the rest of its cgroup keeps its grace", id,
                        c.pid);
      report(&ExecutorEvents::on_exited, id, exit_status(*peeked));
      cgroup_watch_.add(id, (cgroups_->path(id) / "cgroup.events").string());
      if (cgroups_->populated(id) == true) return;  // Else it emptied before the watch.
    }
  } else if (!spawn_error && c.stopping && !c.killed) {
    const auto peeked = wait_pidfd(c.pidfd.native_handle(), WNOWAIT);
    if (peeked && sessions_with_members({c.pid}).contains(c.pid)) {
      c.lingering = true;
      task_log(id).info("task {}: pid {} exited; the rest of its session keeps its grace", id,
                        c.pid);
      report(&ExecutorEvents::on_exited, id, exit_status(*peeked));
      return watch_lingering();
    }
  }
  finish(id, spawn_error);
}

void LocalExecutor::finish(proto::TaskId id, const std::optional<Error>& spawn_error) {
  Child& c = *children_.at(id);
  log_watch_.remove(id);
  if (c.in_cgroup) {
    // Everything else in its cgroup: whatever the task left running dies with it.
    if (auto r = cgroups_->kill(id); r.has_error())
      task_log(id).warn("task {}: {}", id, r.error().message);
  } else {
    // The leader is a zombie until reaped, so its pid (our sid) cannot be reused yet: kill what
    // is left of its session now, leaving nothing of the task behind.
    (void)kill_session_remains(c.pid, std::chrono::steady_clock::now() - c.spawned_at, leaders_);
  }
  if (!c.reaped) {
    c.reaped = true;
    const auto reaped = wait_pidfd(c.pidfd.native_handle(), 0);
    if (!reaped) task_log(id).error("task {}: waitid failed: {}", id, ::strerror(errno));
    const bool exit_reported = c.lingering;
    c.lingering = true;  // Its exit is reported from here on.
    if (spawn_error) report(&ExecutorEvents::on_start_failed, id, spawn_error->message);
    if (!exit_reported && reaped) report(&ExecutorEvents::on_exited, id, exit_status(*reaped));
  }
  if (c.in_cgroup && cgroups_->populated(id) == true) {
    // Dying of SIGKILL: gone when its cgroup says it is empty (on_cgroup_changed).
    c.stopping = c.killed = true;
    cgroup_watch_.add(id, (cgroups_->path(id) / "cgroup.events").string());
    if (cgroups_->populated(id) == true) return;
  }
  auto node = children_.extract(id);
  leaders_.erase(node.mapped()->pid);
  cgroup_watch_.remove(id);
  ResourceUsage usage;
  if (node.mapped()->in_cgroup) {
    usage = in_ms(cgroups_->usage(id));
    if (auto r = cgroups_->remove(id); r.has_error()) {
      task_log(id).warn("task {}: {}; left in place", id, r.error().message);
    }
  }
  report(&ExecutorEvents::on_tree_gone, id, usage);
}

void LocalExecutor::on_cgroup_changed(proto::TaskId id) {
  auto it = children_.find(id);
  if (it == children_.end()) return cgroup_watch_.remove(id);
  if (cgroups_->populated(id) == true) return;  // Not empty yet: the next change will tell.
  finish(id, std::nullopt);
}

void LocalExecutor::watch_lingering() {
  if (linger_armed_) return;
  linger_armed_ = true;
  linger_timer_.expires_after(std::chrono::milliseconds(50));
  linger_timer_.async_wait([this](boost::system::error_code ec) {
    linger_armed_ = false;
    if (ec) return;
    std::vector<proto::TaskId> ids;
    std::vector<pid_t> sids;
    std::vector<pid_t> killed;
    for (const auto& [id, c] : children_) {
      if (!c->lingering || c->in_cgroup) continue;  // A cgroup's emptiness is watched.
      ids.push_back(id);
      sids.push_back(c->pid);
      if (c->killed) killed.push_back(c->pid);  // A member may have forked as SIGKILL landed.
    }
    if (ids.empty()) return;
    if (!killed.empty()) (void)signal_sessions(killed, SIGKILL);
    const auto alive = sessions_with_members(sids);
    bool waiting = false;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (alive.contains(sids[i])) {
        waiting = true;  // The grace's kill(), then the engine's abandon(), end them at the latest.
      } else {
        finish(ids[i], std::nullopt);
      }
    }
    if (waiting) watch_lingering();
  });
}

void LocalExecutor::signal(proto::TaskId id, int sig) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  it->second->stopping = true;
  send(*it->second, id, sig, /*then_cont=*/true);  // Already gone: its exit is on the way.
}

void LocalExecutor::send(Child& c, proto::TaskId id, int sig, bool then_cont) {
  if (!c.in_cgroup) {
    (void)signal_sessions({c.pid}, sig, then_cont);
    return;
  }
  (void)cgroups_->signal(id, sig, then_cont);
  // Before its exec the child may not have entered its cgroup yet; its handlers are the
  // defaults by the time its blocked signals are delivered.
  if (c.launch && !c.reaped) {
    (void)::pidfd_send_signal(c.pidfd.native_handle(), sig, nullptr, 0);
    if (then_cont && sig != SIGKILL && sig != SIGCONT)
      (void)::pidfd_send_signal(c.pidfd.native_handle(), SIGCONT, nullptr, 0);
  }
}

void LocalExecutor::deliver(proto::TaskId id, int sig) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  send(*it->second, id, sig, /*then_cont=*/false);
}

void LocalExecutor::kill(proto::TaskId id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  Child& c = *it->second;
  c.stopping = true;
  c.killed = true;
  if (!c.in_cgroup) {
    (void)signal_sessions({c.pid}, SIGKILL);  // Its whole session, every group in it.
    return;
  }
  if (auto r = cgroups_->kill(id); r.has_error())
    task_log(id).warn("task {}: {}", id, r.error().message);
  // Also the leader through its pidfd: before its exec it may not be in the cgroup yet.
  if (!c.reaped) (void)::pidfd_send_signal(c.pidfd.native_handle(), SIGKILL, nullptr, 0);
}

Executor::Abandoned LocalExecutor::abandon(proto::TaskId id) {
  auto it = children_.find(id);
  if (it == children_.end()) return {};
  Child& c = *it->second;
  log_watch_.remove(id);
  cgroup_watch_.remove(id);
  Abandoned out;
  if (c.reaped) {  // Its exit is reported; what is left is in its cgroup, which stays.
    out.left_behind = "processes of its cgroup";
    children_.erase(it);
    return out;
  }
  if (c.in_cgroup) (void)cgroups_->kill(id);
  if (wait_pidfd(c.pidfd.native_handle(), WNOHANG | WNOWAIT)) {
    // Only members of its session are left, in uninterruptible sleep: they die when they wake.
    (void)signal_sessions({c.pid}, SIGKILL);
    if (const auto reaped = wait_pidfd(c.pidfd.native_handle(), 0)) {
      out.status = exit_status(*reaped);
    }
    out.left_behind = c.in_cgroup ? "processes of its cgroup" : "processes of its session";
    leaders_.erase(c.pid);
    children_.erase(it);
    return out;
  }
  out.left_behind = "pid " + std::to_string(c.pid);
  leaders_.erase(c.pid);
  // Its exit is not known. Its pidfd moves to unreaped_, which reaps it if it ever exits
  // (until the daemon stops).
  unreaped_.emplace_back(ex_, c.pidfd.release());  // Cancels the exit's wait.
  reap_when_exited(std::prev(unreaped_.end()));
  children_.erase(it);
  return out;
}

void LocalExecutor::reap_when_exited(std::list<asio::posix::stream_descriptor>::iterator where) {
  where->async_wait(asio::posix::descriptor_base::wait_read,
                    [this, where](boost::system::error_code ec) {
                      if (ec) return;  // Cancelled: the daemon is stopping.
                      if (!has_exited(where->native_handle())) return reap_when_exited(where);
                      (void)wait_pidfd(where->native_handle(), 0);
                      unreaped_.erase(where);
                    });
}

void LocalExecutor::reclaim_cgroups(const std::unordered_set<proto::TaskId>& keep) {
  if (!cgroups_) return;
  for (proto::TaskId id : cgroups_->tasks()) {
    if (keep.contains(id)) continue;
    auto r = cgroups_->kill_and_remove(id, kReclaimWait);
    if (r.has_error()) {
      task_log(id).error("task {}: {}; left in place", id, r.error().message);
    } else if (*r) {
      task_log(id).warn("task {}: killed what an earlier daemon left in its cgroup", id);
    }
  }
}

bool LocalExecutor::reclaim(proto::TaskId id, const RunHandle& run) {
  bool killed = false;
  if (cgroups_) {  // Everything of it, daemonized processes included, whatever its pid says.
    auto r = cgroups_->kill_and_remove(id, kReclaimWait);
    if (r.has_error()) {
      task_log(id).error("task {}: {}; left in place", id, r.error().message);
    } else if (*r) {
      task_log(id).warn("task {}: killed what was left in its cgroup", id);
      killed = true;
    }
  }
  // A task of a daemon that ran without cgroups: its session, if its leader proves to be it.
  return reclaim_session(id, run) || killed;
}

bool LocalExecutor::reclaim_session(proto::TaskId id, const RunHandle& run) {
  if (run.pid <= 0 || run.start_time == 0) return false;
  // Start times count from boot: after a reboot another process may have the same pid and
  // start time. Only the same boot proves anything (a store from before boot ids: no proof).
  if (run.boot_id.empty() || run.boot_id != boot_id_) {
    task_log(id).info("task {}: pid {} is from another or an unknown boot; not killing it", id,
                      run.pid);
    return false;
  }
  // Hold the process first: the checks and the signals below then concern that process, even
  // if it dies and its pid is reused meanwhile.
  UniqueFd pidfd(::pidfd_open(run.pid, 0));
  if (!pidfd.valid()) return false;                                 // ESRCH: it is gone.
  if (process_start_time(run.pid) != run.start_time) return false;  // Someone else's pid now.
  if (::pidfd_send_signal(pidfd.get(), 0, nullptr, 0) != 0) return false;  // Died since.
  task_log(id).warn("task {}: killing leftover session {}", id, run.pid);
  // Its leader lives (just checked), so no other session can have its pid as id.
  (void)signal_sessions({run.pid}, SIGKILL);
  (void)::pidfd_send_signal(pidfd.get(), SIGKILL, nullptr, 0);  // In case it left its session.
  return true;
}

bool LocalExecutor::settled() const {
  if (gate_) return false;  // Started, not yet released.
  for (const auto& [id, c] : children_) {
    if (c->launch || c->lingering) return false;
  }
  return true;
}

void LocalExecutor::hand_over() {
  for (auto& [id, c] : children_) c->pidfd.cancel();  // Their handlers see operation_aborted.
  shutdown();
}

bool LocalExecutor::adopt(proto::TaskId id, const RunHandle& run, const std::string& log_path,
                          std::int64_t max_log_bytes) {
  if (run.pid <= 0 || run.boot_id != boot_id_) return false;
  UniqueFd pidfd(::pidfd_open(run.pid, 0));  // A zombie too: it ended during the exec.
  if (!pidfd.valid() || process_start_time(run.pid) != run.start_time) return false;
  // Only a child of ours can be waited for; waitid says ECHILD for anyone else's.
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd.get()), &info,
               WEXITED | WNOHANG | WNOWAIT) != 0) {
    return false;
  }
  auto& c = children_[id] = std::make_unique<Child>(ex_, pidfd.release());
  c->pid = run.pid;
  c->in_cgroup = cgroups_ && std::filesystem::exists(cgroups_->path(id));
  c->spawned_at = std::chrono::steady_clock::now() - process_age(run.start_time);
  leaders_.insert(c->pid);
  log_watch_.add(id, log_path, max_log_bytes);
  await_exit(id, *c);
  task_log(id).info("task {}: pid {} adopted from the program before the re-exec", id, run.pid);
  return true;
}

void LocalExecutor::shutdown() {
  linger_timer_.cancel();
  log_watch_.shutdown();
  cgroup_watch_.shutdown();
  hooks_.shutdown();
  for (auto& fd : unreaped_) fd.cancel();  // Nothing may keep the loop alive once drained.
}

}  // namespace tg::daemon
