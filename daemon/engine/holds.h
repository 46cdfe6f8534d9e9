#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/protocol.h"
#include "common/time_format.h"
#include "daemon/model/group.h"

namespace tg::daemon {

using proto::TaskId;

// Queued tasks that may not start yet: they wait for dependencies to end, or for their begin
// time. Pure bookkeeping like the Scheduler, which sees a task only once it is released from
// here: no I/O, no clock (the caller passes `now`). Every operation costs O(log n) per task or
// dependency it touches, so a 10 000-task chain or fan-in schedules in linear time.
// Owned by the Engine; used only on the event loop's thread.
class Holds {
 public:
  struct Dependency {
    TaskId id = 0;
    bool any = false;  // Ending in any way is enough; otherwise it must succeed.
  };
  // Holds `id` until each of `going` (its dependencies that have not ended) has ended, and
  // until `begin_at`. The caller enqueues it itself when there is nothing to wait for.
  void hold(TaskId id, GroupId group, std::span<const Dependency> going, TimeMs begin_at);

  // What the end of a dependency means for the tasks held on it.
  struct Outcome {
    std::vector<TaskId> released;  // Nothing left to wait for: they may be enqueued.
    std::vector<TaskId> doomed;    // Needed it to succeed: still held, for the caller to end.
  };
  // `dep` has ended (`succeeded` or not); forgets every hold on it.
  Outcome ended(TaskId dep, bool succeeded, TimeMs now);
  // The held tasks whose begin time has come and that wait for nothing else, released.
  std::vector<TaskId> due(TimeMs now);
  // The earliest begin time of a held task; nullopt if none waits for one.
  [[nodiscard]] std::optional<TimeMs> next_begin() const;

  // Takes a held task out (it was cancelled); false if it was not held.
  bool remove(TaskId id);
  // Takes every held task of a group out and returns them, in increasing order.
  std::vector<TaskId> clear(GroupId group);

  [[nodiscard]] bool held(TaskId id) const { return held_.contains(id); }
  [[nodiscard]] bool has_dependents(TaskId id) const { return dependents_.contains(id); }
  [[nodiscard]] std::size_t size() const { return held_.size(); }

 private:
  struct Held {
    GroupId group = 0;
    std::size_t going = 0;  // Dependencies not ended yet.
    TimeMs begin_at = 0;    // 0 once passed (or never set).
  };
  // Takes `id` out of every index but dependents_ (whose stale entries ended() skips).
  void erase(TaskId id, const Held& h);

  std::unordered_map<TaskId, Held> held_;
  // For each dependency still going, who waits for it (and whether any ending will do).
  std::unordered_map<TaskId, std::vector<std::pair<TaskId, bool>>> dependents_;
  std::set<std::pair<TimeMs, TaskId>> by_begin_;
  std::unordered_map<GroupId, std::set<TaskId>> by_group_;
};

}  // namespace tg::daemon
