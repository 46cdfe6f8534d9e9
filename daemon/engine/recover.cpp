// Engine: rebuilding memory from the store at start (DESIGN.md "Crash").
#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"

namespace tg::daemon {

void Engine::recover_running(Task& t) {
  (void)executor_.reclaim(t.id, RunHandle{t.pid, t.pid_start, t.boot_id});
  if (t.requeue) {
    t.reason.clear();
    t.pid = 0;
    t.pid_start = 0;
    t.boot_id.clear();
    t.started_at = 0;
    transition(t, TaskEvent::kRequeue);
    log_for(t).info("task {} queued again: it was running when the daemon stopped", t.id);
  } else {
    t.reason = "lost: the daemon stopped while it was running";
    transition(t, TaskEvent::kFoundLost);
    log_for(t).warn("task {} lost: it was running when the daemon stopped", t.id);
  }
}

void Engine::readopt(Task& t, Group& g) {
  Run& r = running_[t.id];
  r.log_cap = log_cap(t);  // As adopt() was given it.
  scheduler_.add_running(g.id);
  if (t.timeout.count() > 0) {
    // Counted from its start, as if the daemon had never changed program.
    const auto ran = std::chrono::milliseconds(std::max<TimeMs>(0, now_ms() - t.started_at));
    arm_timeout(t.id, std::max(std::chrono::milliseconds(0), t.timeout - ran));
  }
  log_for(t).info("task {} running on after the re-exec, pid={}", t.id, t.pid);
}

Result<void> Engine::recover(const std::unordered_set<proto::TaskId>& adopt) {
  auto rows = store_.load_groups();
  if (rows.has_error()) return rows.error();
  for (const GroupRow& row : *rows) {
    Group& g = group_for({row.uid, row.name});
    g.limit = row.limit;
    g.fail_fast = row.fail_fast;
    g.paused = row.paused;
    g.last_cancel = row.last_cancel;
    g.first_success = row.first_success;
    g.on_done = row.on_done;
    scheduler_.set_group_limit(g.id, g.limit);
    scheduler_.set_paused(g.id, g.paused);
  }
  auto loaded = store_.load_tasks();
  if (loaded.has_error()) return loaded.error();
  std::map<GroupId, TimeMs> last_end;  // Per group, for finding where its current run began.
  std::int64_t lost = 0, requeued = 0, queued = 0, adopted = 0;
  std::set<GroupId> found_lost;  // Groups whose run may have ended here: their hooks run.
  for (Task& loaded_task : *loaded) {
    const proto::TaskId id = loaded_task.id;
    Task& t = tasks_.emplace(id, std::move(loaded_task)).first->second;
    index_task(t);
    Group& g = group_for({t.uid, t.group});
    // A run starts with a task submitted when every earlier one of its group had ended.
    if (!g.busy() && t.submitted_at >= last_end[g.id]) {
      g.run_start = t.id;
      g.run_counts = {};
      g.run_ran = false;
    }
    if (t.started_at > 0) g.run_ran = true;
    g.owner_gid = t.gid;
    g.counts.add(t.state);
    g.run_counts.add(t.state);
    last_end[g.id] = std::max(last_end[g.id], t.ended_at);
    if (t.state == TaskState::kRunning && adopt.contains(id) &&
        executor_.adopt(id, RunHandle{t.pid, t.pid_start, t.boot_id}, log_path(id), log_cap(t))) {
      readopt(t, g);
      ++adopted;
    } else if (t.state == TaskState::kRunning) {
      recover_running(t);
      if (t.state == TaskState::kQueued) {
        ++requeued;
      } else {
        ++lost;
        found_lost.insert(g.id);
      }
    }
    if (t.state == TaskState::kQueued) {
      admit(t, g);  // Dependencies are older, so already known here.
      ++queued;
    }
  }
  // A cancel interrupted by a crash: its queued tasks are already cancelled in the store, and
  // its running ones are lost now, so the group is idle again.
  if (auto r = flush(); r.has_error()) {
    return Error{Errc::kIo, "could not record the tasks found lost: " + r.error().message};
  }
  spdlog::info("recovered {} task(s): {} queued, {} lost, {} queued again, {} running on",
               tasks_.size(), queued, lost, requeued, adopted);
  // A run that ended with the crash (its last tasks lost) runs its hook now. A run that ended
  // before the crash ran its hook then, or lost it with the crash (docs/usage.md).
  for (GroupId gid : found_lost) maybe_run_hook(*groups_by_id_.at(gid));
  request_turn();
  prune();
  return {};
}

}  // namespace tg::daemon
