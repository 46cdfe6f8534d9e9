// Engine: cancel, fail-fast and the stop of a task: the stop signal, the grace, SIGKILL
// (DESIGN.md "Cancel").
#include <signal.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/duration.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"

namespace tg::daemon {

namespace asio = boost::asio;

Result<proto::CancelResult> Engine::cancel(const Peer& peer, const proto::Cancel& req) {
  const auto grace = req.grace_ms ? std::chrono::milliseconds(*req.grace_ms) : config_.kill_grace;
  proto::CancelResult out;
  if (req.group) {
    auto key = resolve(peer, *req.group);
    if (key.has_error()) return key.error();
    Group* g = find_group(*key);
    if (!g) return Error{Errc::kNotFound, "no group '" + req.group->name + "'"};
    out.group = g->key.name;
    cancel_group(
        *g, peer.uid,
        "cancelled: group '" + g->key.name + "' cancelled by uid " + std::to_string(peer.uid),
        grace, req.force, out);
  } else {
    // All or nothing: check every id before touching any.
    for (proto::TaskId id : req.ids) {
      auto it = tasks_.find(id);
      if (it == tasks_.end() || !visible(peer, it->second)) {
        return Error{Errc::kNotFound, "no task " + std::to_string(id)};
      }
    }
    for (proto::TaskId id : req.ids) cancel_task(tasks_.at(id), peer.uid, grace, req.force, out);
  }
  // The queued ones are cancelled "in one persisted step": commit before answering. If that
  // fails, the cancel has still happened (signals are sent): say so, and that it is retried.
  if (auto r = flush(); r.has_error()) return not_saved("the cancel", r.error());
  return out;
}

void Engine::cancel_group(Group& g, uid_t by, std::string reason, std::chrono::milliseconds grace,
                          bool force, proto::CancelResult& out) {
  // The group's running tasks, collected first: an executor may report a task's end from
  // inside stop() or kill_now(), which changes running_ (and may end this cancel).
  std::vector<proto::TaskId> mine;
  for (const auto& [id, r] : running_) {
    const Task& t = tasks_.at(id);
    if (t.uid == g.key.uid && t.group == g.key.name) mine.push_back(id);
  }
  if (g.cancelling) {
    // A second cancel does not restart the grace; --force kills now.
    if (force) {
      for (proto::TaskId id : mine) {
        if (!running_.contains(id) || running_.at(id).killed) continue;
        ++out.killed;
        kill_now(tasks_.at(id));
      }
    }
    return;
  }
  if (!g.busy()) return;  // Cancelling an idle group succeeds and does nothing.
  log_for(g).info("group '{}' uid={} cancel by uid={}: {} queued, {} running", g.key.name,
                  g.key.uid, by, g.counts.queued, g.counts.running);
  g.cancelling = GroupCancel{by, reason, now_ms(), 0, 0, 0};
  // Tasks waiting for a slot are cancelled too, never started: the scheduler holds exactly
  // the group's queued ones. They reach the store as one statement in the next flush (ours,
  // before the reply), not as one UPDATE each.
  std::vector<proto::TaskId> queued = scheduler_.clear(g.id);
  if (const std::vector<proto::TaskId> held = holds_.clear(g.id); !held.empty()) {
    const auto mid = static_cast<std::ptrdiff_t>(queued.size());
    queued.insert(queued.end(), held.begin(), held.end());
    std::inplace_merge(queued.begin(), queued.begin() + mid, queued.end());
  }
  if (!queued.empty()) {
    const TimeMs at = now_ms();
    for (proto::TaskId id : queued) {
      Task& t = tasks_.at(id);
      t.reason = reason;
      transition(t, TaskEvent::kCancel, /*persist=*/false);
      t.ended_at = at;
    }
    // Their dependents elsewhere learn it now (each a transition of its own).
    for (proto::TaskId id : queued) settle_dependents(tasks_.at(id));
    cancelled_queued_.push_back({g.key.uid, g.key.name, queued.front(), queued.back(), reason, at});
    g.cancelling->cancelled_queued = static_cast<std::int64_t>(queued.size());
    request_turn();
  }
  // Decide for every task, and count, before acting on any.
  std::vector<proto::TaskId> to_stop, to_kill;
  for (proto::TaskId id : mine) {
    Run& r = running_.at(id);
    if (r.stop == StopCause::kCancel && !force) continue;  // Cancelled by id already.
    tasks_.at(id).reason = reason;
    if (force) {
      r.stop = StopCause::kCancel;
      to_kill.push_back(id);
    } else if (!r.stopped) {
      to_stop.push_back(id);
    } else {
      r.stop = StopCause::kCancel;  // Already stopping (timeout): it ends as cancelled.
    }
    ++g.cancelling->signalled;
  }
  out.cancelled_queued = g.cancelling->cancelled_queued;
  out.signalled = g.cancelling->signalled;
  out.killed = static_cast<std::int64_t>(to_kill.size()) + g.cancelling->killed;
  for (proto::TaskId id : to_kill) {
    if (running_.contains(id)) kill_now(tasks_.at(id));
  }
  for (proto::TaskId id : to_stop) {
    if (running_.contains(id)) stop(tasks_.at(id), StopCause::kCancel, grace);
  }
  maybe_finish_cancel(g);
  maybe_run_hook(g);  // A run that ends here (only queued tasks were left) runs its hook too.
}

void Engine::cancel_task(Task& t, uid_t by, std::chrono::milliseconds grace, bool force,
                         proto::CancelResult& out) {
  out.ids.push_back(t.id);
  const std::string reason = "cancelled: task cancelled by uid " + std::to_string(by);
  if (!proto::is_terminal(t.state)) log_for(t).info("task {} cancel by uid={}", t.id, by);
  if (t.state == TaskState::kQueued) {
    Group& g = group_of(t);
    if (!holds_.remove(t.id)) scheduler_.remove(g.id, t.id, t.priority);
    t.reason = reason;
    transition(t, TaskEvent::kCancel);
    ++out.cancelled_queued;
    after_end(t, g);
  } else if (t.state == TaskState::kRunning) {
    Run& r = running_.at(t.id);
    if (r.stop == StopCause::kCancel) {
      // Already being cancelled (its group, or an earlier cancel): the first reason and grace
      // stand; only --force changes anything.
      if (force && !r.killed) {
        kill_now(t);
        ++out.killed;
      }
      return;
    }
    t.reason = reason;
    if (force) {
      r.stop = StopCause::kCancel;
      kill_now(t);
      ++out.killed;
    } else if (!r.stopped) {
      stop(t, StopCause::kCancel, grace);
    } else {
      r.stop = StopCause::kCancel;  // Already stopping (timeout): it ends as cancelled.
    }
    ++out.signalled;
  }
}

void Engine::stop(Task& t, StopCause cause, std::chrono::milliseconds grace) {
  Run& r = running_.at(t.id);
  if (r.stopped) return;  // The first stop keeps its cause and its grace.
  r.stop = cause;
  r.stopped = true;
  log_for(t).info("task {} stopping with signal {} grace={}", t.id, config_.stop_signal,
                  format_duration(grace));
  const proto::TaskId id = t.id;
  kill_timer(r).arm(grace, [this, id] { kill_now(tasks_.at(id)); });
  executor_.signal(id, config_.stop_signal);  // Already gone: its end is on the way.
}

Timer& Engine::kill_timer(Run& r) {
  if (!r.kill) r.kill = clock_.make_timer();  // Only tasks that are stopped need one.
  return *r.kill;
}

void Engine::kill_now(Task& t) {
  auto it = running_.find(t.id);
  if (it == running_.end() || it->second.killed) return;
  Run& r = it->second;
  r.killed = true;
  r.stopped = true;
  log_for(t).info("task {} killed with SIGKILL", t.id);
  Group& g = group_of(t);
  if (g.cancelling) ++g.cancelling->killed;
  // The grace's end is final: SIGKILL cannot be caught, but a process in uninterruptible sleep
  // (a hung NFS mount, a broken device) takes it only when it wakes. The task is recorded ended
  // a bounded time later whatever is left, so a cancel, a drain and a slot never wait forever.
  const proto::TaskId id = t.id;
  kill_timer(r).arm(kKillWait, [this, id] { give_up(id); });  // Replaces the grace, if armed.
  executor_.kill(id);                                         // Every process of the task.
}

void Engine::maybe_finish_cancel(Group& g) {
  if (!g.cancelling || g.busy()) return;
  const GroupCancel& c = *g.cancelling;
  proto::CancelRecord record;
  record.by_uid = c.by_uid;
  record.reason = c.reason;
  record.at = format_rfc3339(c.at);
  record.ended_at = format_rfc3339(now_ms());
  record.cancelled_queued = c.cancelled_queued;
  record.signalled = c.signalled;
  record.killed = c.killed;
  g.last_cancel = record;
  g.cancelling.reset();
  log_for(g).info("group '{}' uid={} cancel done: {} queued cancelled, {} signalled, {} killed",
                  g.key.name, g.key.uid, record.cancelled_queued, record.signalled, record.killed);
  dirty_groups_.insert(g.id);  // With the burst's commit (or the cancel's, if it ends there).
  request_turn();
}

}  // namespace tg::daemon
