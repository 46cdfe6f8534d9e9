// Engine: listing tasks a bounded page at a time.
#include <algorithm>

#include "daemon/engine/engine.h"

namespace tg::daemon {

namespace {

bool has_labels(const Task& t, const proto::Labels& wanted) {
  if (wanted.empty()) return true;
  if (!t.labels) return false;
  for (const auto& [k, v] : wanted) {
    auto it = t.labels->find(k);
    if (it == t.labels->end() || it->second != v) return false;
  }
  return true;
}

bool matches(const ListWalk& w, const Task& t) {
  if (w.group && (t.uid != w.group->uid || t.group != w.group->name)) return false;
  if (w.owner && t.uid != *w.owner) return false;
  if (!w.states.empty() && std::find(w.states.begin(), w.states.end(), t.state) == w.states.end()) {
    return false;
  }
  return t.submitted_at >= w.submitted_since && has_labels(t, w.labels);
}

// What the task's JSON will about take: the fixed fields, and the strings a user chose.
std::size_t approx_json_bytes(const proto::TaskInfo& i) {
  constexpr std::size_t kFixed = 400;  // Keys, numbers, times, booleans.
  std::size_t n = kFixed + i.group.size() + i.user.size() + i.cwd.size() + i.log_path.size();
  if (i.reason) n += i.reason->size();
  for (const auto& [k, v] : i.labels) n += k.size() + v.size() + 6;
  if (i.key) n += i.key->size() + 8;
  for (const auto& a : i.argv) n += a.size() + 3;
  return n;
}

}  // namespace

Result<ListWalk> Engine::begin_list(const Peer& peer, const proto::List& req) const {
  ListWalk w;
  if (req.group) {
    auto k = resolve(peer, *req.group);
    if (k.has_error()) return k.error();
    w.group = *k;
  } else if (req.user) {
    auto u = resolve_user(peer, *req.user);
    if (u.has_error()) return u.error();
    w.owner = *u;
  } else if (!peer.root()) {
    w.owner = peer.uid;
  }
  w.states = req.states;
  w.labels = req.labels;
  // Relative to now at the start of each request: a page a moment later judges its tasks by a
  // window a moment later (each task is judged once, on the page that reaches it).
  if (req.since_ms) w.submitted_since = now_ms() - *req.since_ms;
  w.after_id = req.after_id.value_or(0);
  if (!req.limit) return w;
  // The newest `limit` matches: walk back from the newest task to the limit-th match. This
  // walk only compares (no task is copied): a few nanoseconds a task.
  if (!tasks_.empty()) w.last_id = tasks_.rbegin()->first;
  std::int64_t found = 0;
  for (auto it = tasks_.rbegin(); it != tasks_.rend() && it->first > w.after_id; ++it) {
    if (!matches(w, it->second)) continue;
    if (++found == *req.limit) {
      w.after_id = it->first - 1;
      break;
    }
  }
  return w;
}

std::vector<proto::TaskInfo> Engine::list_page(ListWalk& walk, const ListBounds& bounds) const {
  std::vector<proto::TaskInfo> out;
  std::size_t visits = 0;
  std::size_t bytes = 0;
  auto it = tasks_.upper_bound(walk.after_id);
  for (; it != tasks_.end() && it->first <= walk.last_id; ++it) {
    if (visits == bounds.max_visits || out.size() == bounds.max_tasks ||
        (!out.empty() && bytes >= bounds.max_bytes)) {
      return out;  // Full: the walk goes on after walk.after_id.
    }
    ++visits;
    walk.after_id = it->first;
    if (!matches(walk, it->second)) continue;
    out.push_back(info(it->second));
    bytes += approx_json_bytes(out.back());
  }
  walk.done = true;
  return out;
}

Result<proto::ListResult> Engine::list(const Peer& peer, const proto::List& req,
                                       const ListBounds& bounds) const {
  auto walk = begin_list(peer, req);
  if (walk.has_error()) return walk.error();
  proto::ListResult out;
  out.tasks = list_page(*walk, bounds);
  if (!walk->done) out.next_after_id = walk->after_id;
  return out;
}

}  // namespace tg::daemon
