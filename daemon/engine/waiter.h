#pragma once

#include <sys/types.h>

#include <optional>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/protocol.h"
#include "daemon/model/group.h"

namespace tg::daemon {

// A session parked on a long request (wait, logs -f), woken by the Engine when something it
// cares about happens: a task of its selection changed state, or its log file grew. The session
// owns it (in its coroutine frame) and registers it with Engine::watch() for as long as it waits.
class Waiter {
 public:
  explicit Waiter(const boost::asio::any_io_executor& ex) : timer_(ex) {}

  // What wakes it: tasks of a group, a set of task ids, or one task's log; or, for a watch
  // (tgctl top), any change to the tasks and groups of `owner` (unset: of everyone).
  std::optional<GroupId> group;
  std::vector<proto::TaskId> ids;  // Sorted.
  proto::TaskId log_task = 0;
  bool watch = false;
  std::optional<uid_t> owner;

  // Called by the Engine; never lost even if the session is not awaiting at that moment.
  void wake() {
    pending_ = true;
    timer_.cancel();
  }
  // Called by the Engine at shutdown: the session answers with an error and ends. With
  // `restarting` (a re-exec), an error that tells the client to ask the next program again.
  void abort(bool restarting = false) {
    aborted_ = true;
    restarting_ = restarting;
    wake();
  }
  [[nodiscard]] bool aborted() const { return aborted_; }
  // A wake has come that next() has not returned for yet.
  [[nodiscard]] bool pending() const { return pending_; }
  [[nodiscard]] bool restarting() const { return restarting_; }

  // Returns after the next wake() (at once if one came since the last call), or when the
  // wait is cancelled; callers re-check their condition either way.
  boost::asio::awaitable<void> next();

 private:
  boost::asio::steady_timer timer_;
  bool pending_ = false;
  bool aborted_ = false;
  bool restarting_ = false;
};

}  // namespace tg::daemon
