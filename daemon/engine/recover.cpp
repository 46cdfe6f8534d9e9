// Engine: rebuilding memory from the store at start (DESIGN.md "Crash").
#include <signal.h>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "daemon/exec/local/child.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"
#include "daemon/exec/local/sys_compat.h"
#include "daemon/exec/local/task_session.h"

namespace tg::daemon {

void Engine::kill_leftover(const Task& t) {
  if (t.pid <= 0 || t.pid_start == 0) return;
  // Start times count from boot: after a reboot another process may have the same pid and
  // start time. Only the same boot proves anything (a store from before boot ids: no proof).
  if (t.boot_id.empty() || t.boot_id != boot_id_) {
    log_for(t).info("task {}: pid {} is from another or an unknown boot; not killing it", t.id,
                    t.pid);
    return;
  }
  // Hold the process first: the checks and the signals below then concern that process, even
  // if it dies and its pid is reused meanwhile.
  UniqueFd pidfd(::pidfd_open(t.pid, 0));
  if (!pidfd.valid()) return;                            // ESRCH: it is gone.
  if (process_start_time(t.pid) != t.pid_start) return;  // The pid is someone else's now.
  if (::pidfd_send_signal(pidfd.get(), 0, nullptr, 0) != 0) return;  // Died since it was held.
  log_for(t).warn("task {}: killing leftover session {}", t.id, t.pid);
  // Its leader lives (just checked), so no other session can have its pid as id.
  (void)signal_sessions({t.pid}, SIGKILL);
  (void)::pidfd_send_signal(pidfd.get(), SIGKILL, nullptr, 0);  // In case it left its session.
}

Result<void> Engine::recover_running(Task& t) {
  kill_leftover(t);
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
  return {};
}

Result<void> Engine::recover() {
  auto rows = store_.load_groups();
  if (rows.has_error()) return rows.error();
  for (const GroupRow& row : *rows) {
    Group& g = group_for({row.uid, row.name});
    g.limit = row.limit;
    g.fail_fast = row.fail_fast;
    g.paused = row.paused;
    g.last_cancel = row.last_cancel;
    scheduler_.set_group_limit(g.id, g.limit);
    scheduler_.set_paused(g.id, g.paused);
  }
  auto loaded = store_.load_tasks();
  if (loaded.has_error()) return loaded.error();
  std::map<GroupId, TimeMs> last_end;  // Per group, for finding where its current run began.
  std::int64_t lost = 0, requeued = 0, queued = 0;
  for (Task& loaded_task : *loaded) {
    const proto::TaskId id = loaded_task.id;
    Task& t = tasks_.emplace(id, std::move(loaded_task)).first->second;
    Group& g = group_for({t.uid, t.group});
    // A run starts with a task submitted when every earlier one of its group had ended.
    if (!g.busy() && t.submitted_at >= last_end[g.id]) {
      g.run_start = t.id;
      g.run_counts = {};
    }
    g.counts.add(t.state);
    g.run_counts.add(t.state);
    last_end[g.id] = std::max(last_end[g.id], t.ended_at);
    if (t.state == TaskState::kRunning) {
      if (auto r = recover_running(t); r.has_error()) return r.error();
      if (t.state == TaskState::kQueued) {
        ++requeued;
      } else {
        ++lost;
      }
    }
    if (t.state == TaskState::kQueued) {
      scheduler_.enqueue(g.id, t.id, t.priority);
      ++queued;
    }
  }
  // A cancel interrupted by a crash: its queued tasks are already cancelled in the store, and
  // its running ones are lost now, so the group is idle again.
  if (auto r = flush(); r.has_error()) {
    return Error{Errc::kIo, "could not record the tasks found lost: " + r.error().message};
  }
  spdlog::info("recovered {} task(s): {} queued, {} lost, {} queued again", tasks_.size(), queued,
               lost, requeued);
  request_turn();
  prune();
  return {};
}

}  // namespace tg::daemon
