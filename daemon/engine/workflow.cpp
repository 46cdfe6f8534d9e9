// Engine: what a queued task waits for before the scheduler may pick it (its dependencies and
// its begin time, kept in Holds), what a dependency's end does to the tasks waiting for it,
// retries, and why a queued task waits (usage.md "Workflows").
#include <algorithm>
#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>

#include "common/duration.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"

namespace tg::daemon {

namespace {

// How a dependency's end is named in its dependents' reasons: "dependency 4 failed".
std::string ending(TaskState s) {
  switch (s) {
    case TaskState::kFailed:
      return "failed";
    case TaskState::kTimedOut:
      return "timed out";
    case TaskState::kCancelled:
      return "was cancelled";
    case TaskState::kInterrupted:
      return "was interrupted";
    case TaskState::kLost:
      return "was lost";
    default:
      return std::string(proto::to_string(s));
  }
}

}  // namespace

Result<void> Engine::resolve_workflow(const Peer& peer, const proto::Submit& req,
                                      std::vector<Task>& tasks) const {
  // The dependencies a spec names, checked once per distinct list: a batch shares its defaults.
  const auto check = [&](const std::vector<proto::TaskId>& ids) -> Result<void> {
    for (proto::TaskId id : ids) {
      if (id > store_.highest_id()) {
        return Error{Errc::kInvalidParams,
                     "task " + std::to_string(id) +
                         " does not exist yet: a task can only wait for tasks submitted before "
                         "it, so dependencies never form a cycle"};
      }
      auto it = tasks_.find(id);
      if (it == tasks_.end() || !visible(peer, it->second)) {
        return Error{Errc::kNotFound, "no task " + std::to_string(id) + " to wait for"};
      }
    }
    return {};
  };
  std::optional<std::vector<proto::TaskId>> group_run;
  const auto after_group = [&](const std::string& name) -> Result<std::vector<proto::TaskId>> {
    if (group_run) return *group_run;
    const Group* g = find_group({peer.uid, name});
    if (!g) return Error{Errc::kNotFound, "no group '" + name + "' to wait for"};
    // The tasks it holds now: its current run (or its last one, if it is idle), as `tgctl wait
    // GROUP` sees it. Ids from run_start on, in order, are a range of the task table.
    std::vector<proto::TaskId> ids;
    for (auto it = tasks_.lower_bound(g->run_start); it != tasks_.end(); ++it) {
      if (it->second.uid == g->key.uid && it->second.group == g->key.name) ids.push_back(it->first);
    }
    group_run = std::move(ids);
    return *group_run;
  };
  const proto::TaskSpec& d = req.defaults;
  if (auto r = check(d.after); r.has_error()) return r.error();
  if (auto r = check(d.after_any); r.has_error()) return r.error();
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const proto::TaskSpec& spec = req.tasks[i];
    Task& t = tasks[i];
    if (!spec.after.empty()) {
      if (auto r = check(spec.after); r.has_error()) return r.error();
    }
    if (!spec.after_any.empty()) {
      if (auto r = check(spec.after_any); r.has_error()) return r.error();
    }
    t.after = spec.after.empty() ? d.after : spec.after;
    t.after_any = spec.after_any.empty() ? d.after_any : spec.after_any;
    if (const auto& name = spec.after_group ? spec.after_group : d.after_group) {
      auto ids = after_group(*name);
      if (ids.has_error()) return ids.error();
      t.after.insert(t.after.end(), ids->begin(), ids->end());
    }
    for (auto* list : {&t.after, &t.after_any}) {
      std::sort(list->begin(), list->end());
      list->erase(std::unique(list->begin(), list->end()), list->end());
    }
  }
  return {};
}

void Engine::admit(Task& t, Group& g) {
  std::vector<Holds::Dependency> going;
  const Task* doomed_by = nullptr;
  const auto look = [&](proto::TaskId id, bool any) {
    auto it = tasks_.find(id);
    // Pruned before it could be waited for: only its end is known, not how.
    if (it == tasks_.end()) {
      if (!any && !doomed_by) doomed_by = &t;
      return;
    }
    const Task& dep = it->second;
    if (!proto::is_terminal(dep.state)) {
      going.push_back({id, any});
    } else if (!any && dep.state != TaskState::kSucceeded && !doomed_by) {
      doomed_by = &dep;
    }
  };
  for (proto::TaskId id : t.after) look(id, false);
  for (proto::TaskId id : t.after_any) look(id, true);
  if (doomed_by) {
    t.reason = doomed_by == &t ? "cancelled: a dependency was pruned before this task started"
                               : "cancelled: dependency " + std::to_string(doomed_by->id) + " " +
                                     ending(doomed_by->state);
    transition(t, TaskEvent::kCancel);
    log_for(t).info("task {} {}", t.id, t.reason);
    return after_end(t, g);
  }
  const TimeMs now = now_ms();
  if (going.empty() && t.begin_at <= now) {
    scheduler_.enqueue(g.id, t.id, t.priority);
    return;
  }
  holds_.hold(t.id, g.id, going, t.begin_at > now ? t.begin_at : 0);
  if (t.begin_at > now) arm_begin_timer(now);
}

void Engine::release(proto::TaskId id) {
  const Task& t = tasks_.at(id);
  scheduler_.enqueue(group_of(t).id, id, t.priority);
  request_turn();
}

void Engine::settle_dependents(const Task& ended) {
  if (!holds_.has_dependents(ended.id)) return;
  // A worklist, not recursion: the failure at the head of a 10 000-task chain ends all of it.
  std::vector<proto::TaskId> work{ended.id};
  while (!work.empty()) {
    const Task& e = tasks_.at(work.back());
    work.pop_back();
    const Holds::Outcome out = holds_.ended(e.id, e.state == TaskState::kSucceeded, now_ms());
    for (proto::TaskId id : out.released) release(id);
    for (proto::TaskId id : out.doomed) {
      Task& d = tasks_.at(id);
      holds_.remove(id);
      d.reason = "cancelled: dependency " + std::to_string(e.id) + " " + ending(e.state);
      transition(d, TaskEvent::kCancel);
      log_for(d).info("task {} {}", d.id, d.reason);
      Group& g = group_of(d);
      maybe_finish_cancel(g);
      maybe_run_hook(g);  // Its run may have ended with this cancel.
      if (holds_.has_dependents(id)) work.push_back(id);
    }
  }
}

void Engine::arm_begin_timer(TimeMs now) {
  const auto next = holds_.next_begin();
  if (!next || stopped_ || handed_over_) return;
  if (begin_timer_->armed() && begin_timer_at_ <= *next) return;
  begin_timer_at_ = *next;
  begin_timer_->arm(std::chrono::milliseconds(std::max<TimeMs>(0, *next - now)), [this] {
    // Its time has come by the timer's clock, whatever the wall clock says (it may lag).
    const TimeMs due = std::max(now_ms(), begin_timer_at_);
    for (proto::TaskId id : holds_.due(due)) release(id);
    arm_begin_timer(due);
  });
}

bool Engine::retry(Task& t, TaskEvent event) {
  if (event != TaskEvent::kExitFailure && event != TaskEvent::kExitAfterTimeout) return false;
  Group& g = group_of(t);
  if (t.attempt > t.retries || g.cancelling || draining() || saving_stopped()) return false;
  Attempt a;
  a.n = t.attempt;
  a.state = event == TaskEvent::kExitAfterTimeout ? TaskState::kTimedOut : TaskState::kFailed;
  a.exit_code = t.exit_code;
  a.signal = t.signal;
  a.reason = t.reason;
  a.started_at = t.started_at;
  a.ended_at = now_ms();
  std::error_code ec;  // No log (it failed to start): the next attempt's output starts at 0.
  const auto size = std::filesystem::file_size(log_path(t.id), ec);
  a.log_end = ec ? 0 : static_cast<std::int64_t>(size);
  t.attempts.push_back(std::move(a));
  ++t.attempt;
  t.pid = 0;
  t.pid_start = 0;
  t.boot_id.clear();
  t.exit_code.reset();
  t.signal.reset();
  t.reason.clear();
  t.started_at = 0;
  t.begin_at = t.retry_delay.count() > 0 ? now_ms() + t.retry_delay.count() : 0;
  transition(t, TaskEvent::kRetry);
  log_for(t).info("task {} {}: attempt {} of {} in {}", t.id,
                  proto::to_string(t.attempts.back().state), t.attempt, t.retries + 1,
                  format_duration(t.retry_delay));
  scheduler_.finished(g.id);
  admit(t, g);
  request_turn();
  return true;
}

std::pair<std::string, std::vector<proto::TaskId>> Engine::pending(const Task& t) const {
  if (holds_.held(t.id)) {
    std::vector<proto::TaskId> on;
    for (const auto* list : {&t.after, &t.after_any}) {
      for (proto::TaskId id : *list) {
        auto it = tasks_.find(id);
        if (it != tasks_.end() && !proto::is_terminal(it->second.state)) on.push_back(id);
      }
    }
    if (!on.empty()) return {"dependency", std::move(on)};
    return {"begin_time", {}};
  }
  const Group& g = *groups_by_id_.at(group_ids_.at({t.uid, t.group}));
  if (g.paused) return {"paused", {}};
  if (draining() || saving_stopped()) return {"draining", {}};
  if (g.limit > 0 && scheduler_.running_in(g.id) >= g.limit) return {"group_limit", {}};
  if (scheduler_.running() >= scheduler_.max_running()) return {"global_limit", {}};
  return {"priority", {}};
}

}  // namespace tg::daemon
