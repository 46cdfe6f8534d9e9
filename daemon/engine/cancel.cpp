// Engine: cancel, fail-fast, timeouts' stop and the drain (DESIGN.md "Cancel", "Signals").
#include <signal.h>

#include <spdlog/spdlog.h>

#include "common/duration.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"
#include "daemon/exec/local/task_session.h"

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
  if (g.cancelling) {
    // A second cancel does not restart the grace; --force kills now.
    if (force) {
      for (auto& [id, r] : running_) {
        Task& t = tasks_.at(id);
        if (t.uid == g.key.uid && t.group == g.key.name && !r->killed) {
          kill_now(t);
          ++out.killed;
        }
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
  const std::vector<proto::TaskId> queued = scheduler_.clear(g.id);
  if (!queued.empty()) {
    const TimeMs at = now_ms();
    for (proto::TaskId id : queued) {
      Task& t = tasks_.at(id);
      t.reason = reason;
      transition(t, TaskEvent::kCancel, /*persist=*/false);
      t.ended_at = at;
    }
    cancelled_queued_.push_back({g.key.uid, g.key.name, queued.front(), queued.back(), reason, at});
    g.cancelling->cancelled_queued = static_cast<std::int64_t>(queued.size());
    request_turn();
  }
  for (auto& [id, r] : running_) {
    Task& t = tasks_.at(id);
    if (t.uid != g.key.uid || t.group != g.key.name) continue;
    if (r->stop == StopCause::kCancel && !force) continue;  // Cancelled by id already.
    t.reason = reason;
    if (force) {
      r->stop = StopCause::kCancel;
      kill_now(t);
    } else if (!r->stopped) {
      stop(t, StopCause::kCancel, grace);
    } else {
      r->stop = StopCause::kCancel;  // Already stopping (timeout): it ends as cancelled.
    }
    ++g.cancelling->signalled;
  }
  out.cancelled_queued = g.cancelling->cancelled_queued;
  out.signalled = g.cancelling->signalled;
  out.killed = g.cancelling->killed;
  maybe_finish_cancel(g);
}

void Engine::cancel_task(Task& t, uid_t by, std::chrono::milliseconds grace, bool force,
                         proto::CancelResult& out) {
  out.ids.push_back(t.id);
  const std::string reason = "cancelled: task cancelled by uid " + std::to_string(by);
  if (!proto::is_terminal(t.state)) log_for(t).info("task {} cancel by uid={}", t.id, by);
  if (t.state == TaskState::kQueued) {
    Group& g = group_of(t);
    scheduler_.remove(g.id, t.id, t.priority);
    t.reason = reason;
    transition(t, TaskEvent::kCancel);
    ++out.cancelled_queued;
    after_end(t, g);
  } else if (t.state == TaskState::kRunning) {
    auto& r = *running_.at(t.id);
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
  auto& r = *running_.at(t.id);
  if (r.stopped) return;  // The first stop keeps its cause and its grace.
  r.stop = cause;
  r.stopped = true;
  log_for(t).info("task {} stopping with signal {} grace={}", t.id, config_.stop_signal,
                  format_duration(grace));
  (void)signal_sessions({t.pid}, config_.stop_signal);  // Already gone: its exit is on the way.
  const proto::TaskId id = t.id;
  r.kill.expires_after(grace);
  r.kill.async_wait([this, id](boost::system::error_code ec) {
    if (ec) return;
    kill_now(tasks_.at(id));
  });
}

void Engine::kill_now(Task& t) {
  auto it = running_.find(t.id);
  if (it == running_.end() || it->second->killed) return;
  it->second->killed = true;
  it->second->stopped = true;
  log_for(t).info("task {} killed with SIGKILL", t.id);
  (void)signal_sessions({t.pid}, SIGKILL);  // Its whole session: every process group in it.
  Group& g = group_of(t);
  if (g.cancelling) ++g.cancelling->killed;
  // The grace's end is final: SIGKILL cannot be caught, but a process in uninterruptible sleep
  // (a hung NFS mount, a broken device) takes it only when it wakes. The task is recorded ended
  // a bounded time later whatever is left, so a cancel, a drain and a slot never wait forever.
  const proto::TaskId id = t.id;
  it->second->kill.expires_after(kKillWait);  // Replaces the grace's wait, if any.
  it->second->kill.async_wait([this, id](boost::system::error_code ec) {
    if (!ec) give_up(id);
  });
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

void Engine::drain(std::function<void()> on_idle) {
  ++drain_level_;
  if (drain_level_ == 1) {
    on_idle_ = std::move(on_idle);
    spdlog::info("draining: {} running get {} to finish; {} queued stay queued", running_.size(),
                 format_duration(config_.drain_timeout), scheduler_.queued());
    drain_timer_.expires_after(config_.drain_timeout);
    drain_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      spdlog::info("drain timeout: stopping {} running task(s)", running_.size());
      for (auto& [id, r] : running_) {
        Task& t = tasks_.at(id);
        if (!r->stopped) {
          t.reason = "interrupted: daemon drain timeout";
          stop(t, StopCause::kDrain, config_.kill_grace);
        }
      }
    });
  } else if (drain_level_ == 2) {
    spdlog::info("second signal: stopping {} running task(s) now", running_.size());
    drain_timer_.cancel();
    for (auto& [id, r] : running_) {
      Task& t = tasks_.at(id);
      if (!r->stopped) {
        t.reason = "interrupted: daemon stopped (second signal)";
        stop(t, StopCause::kDrain, config_.kill_grace);
      }
    }
  } else {
    spdlog::info("third signal: killing {} running task(s) now", running_.size());
    drain_timer_.cancel();
    for (auto& [id, r] : running_) {
      Task& t = tasks_.at(id);
      if (r->stop == StopCause::kNone) {
        r->stop = StopCause::kDrain;
        t.reason = "interrupted: daemon killed (third signal)";
      }
      kill_now(t);
    }
  }
  check_drained();
}

void Engine::check_drained() {
  if (drain_level_ == 0 || !running_.empty() || !on_idle_) return;
  drain_timer_.cancel();
  stopped_ = true;
  for (auto& fd : unreaped_) fd.cancel();  // Nothing may keep the loop alive once drained.
  prune_timer_.cancel();  // Nothing may keep the loop alive once we are drained.
  (void)flush();          // A failure is logged; run() tries once more and says so.
  auto done = std::exchange(on_idle_, nullptr);
  asio::post(ex_, std::move(done));
}

}  // namespace tg::daemon
