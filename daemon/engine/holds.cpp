#include "daemon/engine/holds.h"

#include <algorithm>

namespace tg::daemon {

void Holds::hold(TaskId id, GroupId group, std::span<const Dependency> going, TimeMs begin_at) {
  held_[id] = Held{group, going.size(), begin_at};
  for (const Dependency& d : going) dependents_[d.id].emplace_back(id, d.any);
  if (begin_at > 0) by_begin_.emplace(begin_at, id);
  by_group_[group].insert(id);
}

void Holds::erase(TaskId id, const Held& h) {
  if (h.begin_at > 0) by_begin_.erase({h.begin_at, id});
  if (auto g = by_group_.find(h.group); g != by_group_.end()) {
    g->second.erase(id);
    if (g->second.empty()) by_group_.erase(g);
  }
  held_.erase(id);
}

Holds::Outcome Holds::ended(TaskId dep, bool succeeded, TimeMs now) {
  Outcome out;
  auto node = dependents_.extract(dep);
  if (node.empty()) return out;
  for (const auto& [id, any] : node.mapped()) {
    auto it = held_.find(id);
    if (it == held_.end()) continue;  // Cancelled, or doomed by another dependency.
    Held& h = it->second;
    if (!succeeded && !any) {
      out.doomed.push_back(id);
      continue;
    }
    if (--h.going == 0 && h.begin_at <= now) {
      out.released.push_back(id);
      erase(id, h);
    }
  }
  return out;
}

std::vector<TaskId> Holds::due(TimeMs now) {
  std::vector<TaskId> out;
  while (!by_begin_.empty() && by_begin_.begin()->first <= now) {
    const TaskId id = by_begin_.begin()->second;
    by_begin_.erase(by_begin_.begin());
    Held& h = held_.at(id);
    h.begin_at = 0;
    if (h.going == 0) {
      out.push_back(id);
      erase(id, h);
    }
  }
  return out;
}

std::optional<TimeMs> Holds::next_begin() const {
  if (by_begin_.empty()) return std::nullopt;
  return by_begin_.begin()->first;
}

bool Holds::remove(TaskId id) {
  auto it = held_.find(id);
  if (it == held_.end()) return false;
  erase(id, it->second);
  return true;
}

std::vector<TaskId> Holds::clear(GroupId group) {
  auto g = by_group_.find(group);
  if (g == by_group_.end()) return {};
  const std::vector<TaskId> ids(g->second.begin(), g->second.end());
  for (TaskId id : ids) erase(id, held_.at(id));
  return ids;
}

}  // namespace tg::daemon
