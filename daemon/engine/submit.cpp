// Engine: submit, the one request that adds tasks.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/codec.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"

namespace tg::daemon {

namespace {

// A submit's tasks, built from the request, with the environment body each one is stored with
// (nullptr: none). The bodies are distinct: most batches share one.
struct NewTasks {
  std::vector<Task> tasks;
  std::vector<std::string> env_bodies;
  std::vector<const std::string*> env_of;  // Into env_bodies, one per task.
};

// The labels of a task: the batch's, with the task's own over them. Tasks without labels of
// their own share the batch's map.
std::shared_ptr<const proto::Labels> labels_of(const proto::TaskSpec& spec,
                                               const std::shared_ptr<const proto::Labels>& batch) {
  if (!spec.labels || spec.labels->empty()) return batch;
  auto merged = std::make_shared<proto::Labels>(batch ? *batch : proto::Labels{});
  for (const auto& [k, v] : *spec.labels) (*merged)[k] = v;
  return merged;
}

NewTasks build_tasks(const Peer& peer, const proto::Submit& req, TimeMs now) {
  NewTasks out;
  out.tasks.reserve(req.tasks.size());
  out.env_bodies.reserve(req.tasks.size() == 1 ? 1 : 2);
  if (req.defaults.env) out.env_bodies.push_back(proto::dump_json(*req.defaults.env));
  const proto::TaskSpec& d = req.defaults;
  std::shared_ptr<const proto::Labels> batch_labels;
  if (d.labels && !d.labels->empty()) batch_labels = std::make_shared<proto::Labels>(*d.labels);
  for (const auto& spec : req.tasks) {
    Task t;
    t.uid = peer.uid;
    t.gid = peer.gid;
    t.group = req.group;
    t.argv = spec.argv;
    t.cwd = spec.cwd.value_or(d.cwd.value_or("/"));
    t.shell = spec.shell.value_or(d.shell.value_or(false));
    t.priority = spec.priority.value_or(d.priority.value_or(0));
    t.timeout = std::chrono::milliseconds(spec.timeout_ms.value_or(d.timeout_ms.value_or(0)));
    t.requeue = spec.requeue.value_or(d.requeue.value_or(false));
    t.max_log_bytes = spec.max_log_bytes.value_or(d.max_log_bytes.value_or(0));
    t.submitted_at = now;
    // Not before the later of --at and --delay; a time in the past means now.
    const auto& at = spec.begin_at ? spec.begin_at : d.begin_at;
    const auto delay = spec.delay_ms ? spec.delay_ms : d.delay_ms;
    if (at) t.begin_at = parse_rfc3339(*at).value_or(0);  // The decoder checked it.
    if (delay && *delay > 0) t.begin_at = std::max(t.begin_at, now + *delay);
    if (t.begin_at <= now) t.begin_at = 0;
    t.retries = static_cast<int>(spec.retries.value_or(d.retries.value_or(0)));
    t.retry_delay =
        std::chrono::milliseconds(spec.retry_delay_ms.value_or(d.retry_delay_ms.value_or(0)));
    t.labels = labels_of(spec, batch_labels);
    if (req.key) t.submit_key = *req.key;  // A single task: the codec refuses a batch's key.
    if (spec.env) out.env_bodies.push_back(proto::dump_json(*spec.env));
    out.tasks.push_back(std::move(t));
  }
  // Point every task at its body only now that env_bodies no longer reallocates (pointers
  // taken while it grew would dangle).
  out.env_of.assign(req.tasks.size(), nullptr);
  for (std::size_t i = 0, next = d.env ? 1 : 0; i < req.tasks.size(); ++i) {
    if (req.tasks[i].env) {
      out.env_of[i] = &out.env_bodies[next++];
    } else if (d.env) {
      out.env_of[i] = &out.env_bodies.front();
    }
  }
  return out;
}

}  // namespace

Result<proto::SubmitResult> Engine::submit(const Peer& peer, const proto::Submit& req) {
  if (req.key) {
    if (req.tasks.size() != 1) return Error{Errc::kInvalidParams, "a batch cannot carry a key"};
    // A retry of a submit that was done: its task, whatever else this request says, and even
    // while draining (nothing is queued).
    if (auto it = submit_keys_.find({peer.uid, *req.key}); it != submit_keys_.end()) {
      log_for(tasks_.at(it->second))
          .info("submit by uid={} with the key of task {}: nothing queued", peer.uid, it->second);
      return proto::SubmitResult{{it->second}};
    }
  }
  if (draining()) return Error{Errc::kDraining, "the daemon is draining; submits are refused"};
  const GroupKey key{peer.uid, req.group};
  if (const Group* g = find_group(key); g && g->cancelling) {
    return Error{Errc::kGroupCancelling,
                 "group '" + req.group + "' is being cancelled; submit again when it is idle"};
  }
  if (saving_stopped()) {
    return Error{Errc::kIo, "submits are refused until the daemon restarts: saving stopped (" +
                                *store_.write_failure() + ")"};
  }
  NewTasks made = build_tasks(peer, req, now_ms());
  if (auto r = resolve_workflow(peer, req, made.tasks); r.has_error()) return r.error();
  if (auto r = insert_new(made.tasks, made.env_of, peer.uid, "the tasks"); r.has_error()) {
    return r.error();
  }
  Group& g = group_for(key);
  proto::SubmitResult result;
  result.ids = enqueue(g, made.tasks);
  log_for(g).info("{} task(s) submitted group='{}' uid={} first={}", result.ids.size(), req.group,
                  peer.uid, result.ids.front());
  request_turn();
  return result;
}

Result<void> Engine::insert_new(std::vector<Task>& tasks, std::span<const std::string* const> envs,
                                uid_t by, const std::string& what) {
  std::vector<const Task*> pending;
  for (proto::TaskId id : dirty_) pending.push_back(&tasks_.at(id));
  // Commit before replying: a client that saw the ids must find them after a crash.
  if (auto r = store_.insert(tasks, envs, pending); r.has_error()) {
    spdlog::error("saving {} new task(s) by uid={} failed: {}", tasks.size(), by,
                  r.error().message);
    if (r.error().code == Errc::kOutcomeUnknown) {
      note_saving_stopped();
      return Error{Errc::kOutcomeUnknown,
                   what + " may or may not have been saved (" + r.error().message +
                       "): the daemon restarts once its running tasks have ended, and then "
                       "`tgctl list` shows whether they are there; they do not run before"};
    }
    return Error{r.error().code, "could not save " + what + ": " + r.error().message};
  }
  dirty_.clear();
  executor_.release_started();  // The starts among them are saved with the new tasks.
  return {};
}

void Engine::index_task(const Task& t) {
  if (!t.submit_key.empty()) submit_keys_.emplace(std::pair{t.uid, t.submit_key}, t.id);
  if (t.restarted_from != 0) restarted_.insert(t.restarted_from);
}

void Engine::unindex_task(const Task& t) {
  if (!t.submit_key.empty()) submit_keys_.erase({t.uid, t.submit_key});
  restarted_.erase(t.id);
}

std::vector<proto::TaskId> Engine::enqueue(Group& g, std::vector<Task>& tasks) {
  if (!g.busy()) {  // A new run of the group begins: `tgctl wait GROUP` judges this one.
    g.run_start = tasks.front().id;
    g.run_counts = {};
    g.run_ran = false;
  }
  g.owner_gid = tasks.front().gid;
  std::vector<proto::TaskId> ids;
  ids.reserve(tasks.size());
  for (Task& t : tasks) {
    ids.push_back(t.id);
    g.counts.add(TaskState::kQueued);
    g.run_counts.add(TaskState::kQueued);
    log_for(t).debug("task {} queued group='{}' uid={}", t.id, t.group, t.uid);
    index_task(t);
    const proto::TaskId id = t.id;
    admit(tasks_.emplace(id, std::move(t)).first->second, g);
  }
  for (Waiter* w : waiters_) {
    if (w->group && *w->group == g.id) w->wake();
  }
  notify_watches(g.key.uid);
  return ids;
}

}  // namespace tg::daemon
