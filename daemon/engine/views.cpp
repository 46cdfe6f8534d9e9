// Engine: tasks and groups as the protocol shows them.
#include "daemon/engine/engine.h"

namespace tg::daemon {

std::string Engine::user_name(uid_t uid) const {
  // Through the cache: listing 100 000 tasks must not ask the name service 100 000 times.
  return users_.name_of(uid).value_or(std::to_string(uid));
}

proto::TaskInfo Engine::info(const Task& t) const {
  proto::TaskInfo i;
  i.id = t.id;
  i.group = t.group;
  i.uid = t.uid;
  i.user = user_name(t.uid);
  i.state = t.state;
  i.argv = t.argv;
  i.cwd = t.cwd;
  i.shell = t.shell;
  i.priority = t.priority;
  i.timeout_ms = t.timeout.count();
  i.requeue = t.requeue;
  i.max_log_bytes = t.max_log_bytes;
  if (t.pid != 0) i.pid = t.pid;
  i.exit_code = t.exit_code;
  i.signal = t.signal;
  if (!t.reason.empty()) i.reason = t.reason;
  i.submitted_at = format_rfc3339(t.submitted_at);
  i.started_at = format_rfc3339(t.started_at);
  i.ended_at = format_rfc3339(t.ended_at);
  i.log_path = log_path(t.id);
  i.after = t.after;
  i.after_any = t.after_any;
  i.begin_at = format_rfc3339(t.begin_at);
  i.retries = t.retries;
  i.retry_delay_ms = t.retry_delay.count();
  i.attempt = t.attempt;
  for (const Attempt& a : t.attempts) {
    proto::AttemptInfo& ai = i.attempts.emplace_back();
    ai.attempt = a.n;
    ai.state = a.state;
    ai.exit_code = a.exit_code;
    ai.signal = a.signal;
    if (!a.reason.empty()) ai.reason = a.reason;
    ai.started_at = format_rfc3339(a.started_at);
    ai.ended_at = format_rfc3339(a.ended_at);
  }
  if (t.state == TaskState::kQueued) {
    auto [reason, on] = pending(t);
    i.pending_reason = std::move(reason);
    i.pending_on = std::move(on);
  }
  if (t.labels) i.labels = *t.labels;
  if (!t.submit_key.empty()) i.key = t.submit_key;
  if (t.restarted_from != 0) i.restarted_from = t.restarted_from;
  i.cpu_user_ms = t.cpu_user_ms;
  i.cpu_system_ms = t.cpu_system_ms;
  i.memory_peak_bytes = t.memory_peak_bytes;
  return i;
}

proto::GroupInfo Engine::info(const Group& g) const {
  proto::GroupInfo i;
  i.name = g.key.name;
  i.uid = g.key.uid;
  i.user = user_name(g.key.uid);
  i.limit = g.limit;
  i.fail_fast = g.fail_fast;
  i.paused = g.paused;
  i.cancelling = g.cancelling.has_value();
  i.counts = g.counts;
  i.last_cancel = g.last_cancel;
  i.first_success = g.first_success;
  if (!g.on_done.empty()) i.on_done = g.on_done;
  return i;
}

}  // namespace tg::daemon
