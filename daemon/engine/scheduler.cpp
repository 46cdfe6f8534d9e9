#include "daemon/engine/scheduler.h"

#include <algorithm>
#include <cassert>

namespace tg::daemon {

void Scheduler::refresh(GroupId g, GroupQueue& q) {
  if (q.ready_key) {
    ready_.erase({*q.ready_key, g});
    q.ready_key.reset();
  }
  const bool room = q.limit == 0 || q.running < q.limit;
  if (!q.paused && room && !q.queue.empty()) {
    q.ready_key = *q.queue.begin();
    ready_.insert({*q.ready_key, g});
  }
}

void Scheduler::set_group_limit(GroupId g, std::int64_t limit) {
  auto& q = group(g);
  q.limit = limit;
  refresh(g, q);
}

void Scheduler::set_paused(GroupId g, bool paused) {
  auto& q = group(g);
  q.paused = paused;
  refresh(g, q);
}

void Scheduler::enqueue(GroupId g, TaskId id, int priority) {
  auto& q = group(g);
  if (q.queue.insert({-priority, id}).second) ++queued_;
  // Only a new head can change the group's place in ready_.
  if (*q.queue.begin() == Key{-priority, id} || !q.ready_key) refresh(g, q);
}

bool Scheduler::remove(GroupId g, TaskId id, int priority) {
  auto& q = group(g);
  if (q.queue.erase({-priority, id}) == 0) return false;
  --queued_;
  refresh(g, q);
  return true;
}

std::vector<TaskId> Scheduler::clear(GroupId g) {
  auto& q = group(g);
  std::vector<TaskId> ids;
  ids.reserve(q.queue.size());
  for (const Key& k : q.queue) ids.push_back(k.second);
  std::sort(ids.begin(), ids.end());  // The queue is in start order (priority first).
  queued_ -= ids.size();
  q.queue.clear();
  refresh(g, q);
  return ids;
}

std::optional<std::pair<GroupId, TaskId>> Scheduler::next() {
  if (running_ >= max_running_ || ready_.empty()) return std::nullopt;
  const auto [key, g] = *ready_.begin();
  auto& q = group(g);
  assert(!q.queue.empty() && *q.queue.begin() == key);
  q.queue.erase(q.queue.begin());
  --queued_;
  ++q.running;
  ++running_;
  refresh(g, q);
  return std::pair{g, key.second};
}

void Scheduler::finished(GroupId g) {
  auto& q = group(g);
  assert(q.running > 0 && running_ > 0);
  --q.running;
  --running_;
  refresh(g, q);
}

void Scheduler::add_running(GroupId g) {
  auto& q = group(g);
  ++q.running;
  ++running_;
  refresh(g, q);
}

std::int64_t Scheduler::running_in(GroupId g) const {
  auto it = groups_.find(g);
  return it == groups_.end() ? 0 : it->second.running;
}

std::size_t Scheduler::queued_in(GroupId g) const {
  auto it = groups_.find(g);
  return it == groups_.end() ? 0 : it->second.queue.size();
}

}  // namespace tg::daemon
