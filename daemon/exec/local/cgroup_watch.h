#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/protocol.h"

namespace tg::daemon {

// Tells when the cgroup.events file of a task's cgroup changes (the kernel modifies it when the
// cgroup's "populated" flips), so that a task being stopped ends the moment its last process
// does, with no /proc scan and no timer. One inotify instance for every watched cgroup, open
// only while some cgroup is watched. Where inotify fails (no instance or no watch left), the
// watched cgroups are reported every kPollInterval instead, said once in the log. Owned by
// LocalExecutor; used on the loop's thread only.
class CgroupWatch {
 public:
  // Something about the task's cgroup may have changed: the callee reads cgroup.events. Called
  // from the loop, never from inside add() or remove().
  using Changed = std::function<void(proto::TaskId id)>;
  static constexpr std::chrono::milliseconds kPollInterval{100};

  CgroupWatch(boost::asio::any_io_executor ex, Changed changed);
  ~CgroupWatch();
  CgroupWatch(const CgroupWatch&) = delete;
  CgroupWatch& operator=(const CgroupWatch&) = delete;

  // Watches `events_path` (a cgroup.events file) for the task. The caller reads the file once
  // after this: a change before the watch existed is not reported.
  void add(proto::TaskId id, const std::string& events_path);
  void remove(proto::TaskId id);
  // The daemon has drained: nothing of ours may keep the loop alive.
  void shutdown();
  [[nodiscard]] bool watching(proto::TaskId id) const { return ids_.contains(id); }

 private:
  bool open_inotify();
  void await_events();
  void on_events();
  void arm_poll();

  Changed changed_;
  std::unordered_map<proto::TaskId, int> ids_;  // -1: polled.
  std::unordered_map<int, proto::TaskId> wds_;
  boost::asio::posix::stream_descriptor inotify_;
  boost::asio::steady_timer poll_;  // Armed while a cgroup is polled.
  bool poll_armed_ = false;
  unsigned generation_ = 0;  // Of inotify_'s fd: a wait for an earlier one is stale.
  bool waiting_ = false;     // A wait on the current fd is pending.
  bool failure_logged_ = false;
  bool stopped_ = false;
};

}  // namespace tg::daemon
