// Engine: restart, new tasks like ended ones ("rerun the failed ones"). The old tasks keep
// their history; each new one records the task it copies.
#include <algorithm>
#include <map>

#include <spdlog/spdlog.h>

#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"

namespace tg::daemon {

namespace {

// A new task with the group, owner, command, cwd, environment and options of `old`, its labels
// and retries too; not its submit key, which names the first task only, nor its dependencies
// and begin time, which it has already waited for.
Task copy_of(const Task& old, TimeMs now) {
  Task t;
  t.uid = old.uid;  // Root restarting alice's task queues it for alice: it runs as alice.
  t.gid = old.gid;
  t.group = old.group;
  t.argv = old.argv;
  t.cwd = old.cwd;
  t.env_id = old.env_id;  // The stored body: pruning keeps it while a task uses it.
  t.shell = old.shell;
  t.priority = old.priority;
  t.timeout = old.timeout;
  t.requeue = old.requeue;
  t.max_log_bytes = old.max_log_bytes;
  t.labels = old.labels;
  t.retries = old.retries;
  t.retry_delay = old.retry_delay;
  t.submitted_at = now;
  t.restarted_from = old.id;
  return t;
}

}  // namespace

Result<std::vector<const Task*>> Engine::restart_selection(const Peer& peer,
                                                           const proto::Restart& req) const {
  std::vector<const Task*> out;
  if (!req.group) {
    std::vector<proto::TaskId> ids = req.ids;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (proto::TaskId id : ids) {
      auto it = tasks_.find(id);
      // Another user's task is reported as missing, as by show: not theirs to learn of.
      if (it == tasks_.end() || !visible(peer, it->second)) {
        return Error{Errc::kNotFound, "no task " + std::to_string(id)};
      }
      if (!proto::is_terminal(it->second.state)) {
        return Error{Errc::kInvalidParams, "task " + std::to_string(id) + " is " +
                                               std::string(proto::to_string(it->second.state)) +
                                               ": only ended tasks can be restarted"};
      }
      out.push_back(&it->second);
    }
    return out;
  }
  auto key = resolve(peer, *req.group);
  if (key.has_error()) return key.error();
  if (!find_group(*key)) return Error{Errc::kNotFound, "no group '" + req.group->name + "'"};
  // A task restarted before is skipped: its restart stands for it (named by id, it runs again).
  for (const auto& [id, t] : tasks_) {
    if (t.uid != key->uid || t.group != key->name || restarted_.contains(id)) continue;
    if (std::find(req.states.begin(), req.states.end(), t.state) != req.states.end()) {
      out.push_back(&t);
    }
  }
  return out;
}

Result<proto::RestartResult> Engine::restart(const Peer& peer, const proto::Restart& req) {
  if (draining()) return Error{Errc::kDraining, "the daemon is draining; restarts are refused"};
  if (saving_stopped()) {
    return Error{Errc::kIo, "restarts are refused until the daemon restarts: saving stopped (" +
                                *store_.write_failure() + ")"};
  }
  auto picked = restart_selection(peer, req);
  if (picked.has_error()) return picked.error();
  // All or nothing, like a submit: every group they go back to must take tasks.
  for (const Task* old : *picked) {
    if (const Group* g = find_group({old->uid, old->group}); g && g->cancelling) {
      return Error{Errc::kGroupCancelling, "group '" + old->group +
                                               "' is being cancelled; restart again when it is "
                                               "idle"};
    }
  }
  proto::RestartResult out;
  if (picked->empty()) return out;
  std::vector<Task> made;
  made.reserve(picked->size());
  const TimeMs now = now_ms();
  for (const Task* old : *picked) made.push_back(copy_of(*old, now));
  if (auto r = insert_new(made, {}, peer.uid, "the restarted tasks"); r.has_error()) {
    return r.error();
  }
  for (const Task& t : made) {
    out.ids.push_back(t.id);
    out.restarted_from.push_back(t.restarted_from);
  }
  // Each group's new tasks join it together, in id order (root may restart several users').
  std::map<GroupKey, std::vector<Task>> by_group;
  for (Task& t : made) by_group[{t.uid, t.group}].push_back(std::move(t));
  for (auto& [key, tasks] : by_group) {
    Group& g = group_for(key);
    const proto::TaskId first = tasks.front().id, from = tasks.front().restarted_from;
    const std::size_t n = tasks.size();
    enqueue(g, tasks);
    log_for(g).info("{} task(s) restarted group='{}' uid={} by uid={} first={} from={}", n,
                    key.name, key.uid, peer.uid, first, from);
  }
  request_turn();
  return out;
}

}  // namespace tg::daemon
