#pragma once

#include <sys/types.h>

#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/error.h"
#include "daemon/engine/waiter.h"

namespace tg::daemon {

// The daemon's one inotify instance, shared by every `logs -f` follower: it wakes a follower's
// Waiter when the log it follows is written. Followers of one file share one watch, removed
// when the last of them goes. inotify instances count against the daemon's uid (root's 128 by
// default, shared with every other root process), so one per follower would let one user's
// followers exhaust them; this holds one for the daemon's lifetime.
//
// Also caps the follows of one uid (kMaxFollowsPerUid), bounding the watches one user can
// make the daemon hold. Owned by run() next to the Engine and outlives every session; used only
// on the event loop's thread. It waits on its fd only while some watch exists, so it never
// keeps the loop alive at shutdown.
class LogWatcher {
 public:
  static constexpr int kMaxFollowsPerUid = 64;

  // Opens the inotify instance; if that fails it logs why and tries again at the next add().
  explicit LogWatcher(const boost::asio::any_io_executor& ex);
  LogWatcher(const LogWatcher&) = delete;
  LogWatcher& operator=(const LogWatcher&) = delete;
  ~LogWatcher();

  // Counts a follow of `uid`; kBusy if it already has kMaxFollowsPerUid. Each successful call
  // is paired with end_follow().
  [[nodiscard]] Result<void> begin_follow(uid_t uid);
  void end_follow(uid_t uid);

  // Wakes `w` whenever the file at `path` is modified, until remove(w) or until the file is
  // deleted. A no-op if `w` is already watching. kNotFound if the file does not exist yet: `w`
  // is woken once when it appears (a task's child creates its log after its start is
  // reported), then add() again. kBusy if the kernel refuses (no inotify instance, or out of
  // watches).
  [[nodiscard]] Result<void> add(const std::string& path, Waiter& w);
  // Stops waking `w`; removes the watch if `w` was its last waiter. Safe if `w` is not watching.
  void remove(Waiter& w);
  // True while `w` has a live watch (false after its file was deleted).
  [[nodiscard]] bool watching(const Waiter& w) const { return wd_of_.contains(&w); }

 private:
  [[nodiscard]] bool open();
  void arm();
  void on_readable(const boost::system::error_code& ec);
  void forget(int wd);
  // Wakes `w` once a file named like `path` appears in its directory; false if it exists
  // already (or cannot be watched for: then the task's end still wakes `w`).
  bool await_creation(const std::string& path, Waiter& w);
  void drop_creation(const Waiter& w);

  boost::asio::posix::stream_descriptor fd_;
  std::unordered_map<int, std::vector<Waiter*>> waiters_of_;  // By watch descriptor.
  std::unordered_map<const Waiter*, int> wd_of_;
  // Followers waiting for their log to be created, by the watch on its directory, with the
  // file name each waits for.
  std::unordered_map<int, std::vector<std::pair<Waiter*, std::string>>> creating_;
  std::unordered_map<const Waiter*, int> creating_wd_of_;
  std::unordered_map<uid_t, int> follows_;
  bool armed_ = false;  // An async_wait is pending (or its handler is queued).
};

}  // namespace tg::daemon
