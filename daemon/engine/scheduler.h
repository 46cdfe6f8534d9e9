#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/protocol.h"
#include "daemon/model/group.h"

namespace tg::daemon {

using proto::TaskId;

// Decides which queued task starts next. Pure bookkeeping: no I/O, no clock, no Asio.
// A task may start when the global limit and its group's limit have room and its group is not
// paused; among those, higher priority first, then lower id (FIFO). Every operation is
// O(log n): groups that could start a task are kept ordered by their best queued task, so a
// full or paused group with 100 000 queued tasks costs nothing per start elsewhere.
// Owned by the Engine; used only on the event loop's thread.
class Scheduler {
 public:
  explicit Scheduler(std::int64_t max_running) : max_running_(max_running) {}

  // Raising a limit makes next() return more; lowering never stops anything, it only defers.
  void set_max_running(std::int64_t n) { max_running_ = n; }
  void set_group_limit(GroupId g, std::int64_t limit);  // 0 = only the global limit.
  void set_paused(GroupId g, bool paused);

  void enqueue(GroupId g, TaskId id, int priority);
  // Removes a queued task (cancel); false if it was not queued here.
  bool remove(GroupId g, TaskId id, int priority);
  // Removes every queued task of a group and returns their ids, in increasing order.
  std::vector<TaskId> clear(GroupId g);

  // The next task allowed to start, counted as running from now on; nullopt if none may.
  [[nodiscard]] std::optional<std::pair<GroupId, TaskId>> next();
  // A running task of the group has ended: frees its slots.
  void finished(GroupId g);
  // A task that runs without next() having picked it (adopted after a re-exec): takes its
  // slots, even beyond a limit lowered meanwhile, as a running task keeps running.
  void add_running(GroupId g);

  [[nodiscard]] std::int64_t running() const { return running_; }
  [[nodiscard]] std::int64_t max_running() const { return max_running_; }
  [[nodiscard]] std::size_t queued() const { return queued_; }
  // Per-group observers: the engine keeps its own counts per group (Group::counts); these let
  // the scheduler's tests check its bookkeeping.
  [[nodiscard]] std::int64_t running_in(GroupId g) const;
  [[nodiscard]] std::size_t queued_in(GroupId g) const;

 private:
  // Higher priority first, then FIFO: (-priority, id) sorts ascending in start order.
  using Key = std::pair<int, TaskId>;
  struct GroupQueue {
    std::set<Key> queue;
    std::int64_t running = 0;
    std::int64_t limit = 0;
    bool paused = false;
    std::optional<Key> ready_key;  // Its entry in ready_, if it has one.
  };
  GroupQueue& group(GroupId g) { return groups_[g]; }
  // Puts the group in ready_ (or takes it out) after anything that may change its eligibility.
  void refresh(GroupId g, GroupQueue& q);

  std::unordered_map<GroupId, GroupQueue> groups_;
  std::set<std::pair<Key, GroupId>> ready_;  // Unpaused groups with room and a queued task.
  std::int64_t max_running_;
  std::int64_t running_ = 0;
  std::size_t queued_ = 0;
};

}  // namespace tg::daemon
