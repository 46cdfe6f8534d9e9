#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/protocol.h"

namespace tg::daemon {

// Watches the logs of running tasks for growth past their caps (docs/design.md "Log caps").
// The task writes its log itself; the daemon never sees the bytes, and this adds no cost to a
// write and no wakeup while nothing is written:
// - A quiet log has a one-shot inotify watch (IN_MODIFY | IN_ONESHOT). Its first write queues
//   one event and removes the watch, so the writes after it do not reach inotify at all.
// - A log that grew since its last check is polled instead: its size is read again after a
//   delay (next_check_delay()), and once it stops growing it gets its one-shot watch back.
// A task writing without pause therefore costs one stat() per delay, at most 100 ms, sooner
// as its log nears its cap; while over it, every 10 ms. Where inotify is unavailable (no
// instance, no watch left: fs.inotify.max_user_watches) a log is polled every 100 ms instead.
//
// Its inotify instance exists only while some log is watched. Owned by LocalExecutor; used on
// the loop's thread only. It reports through `over_cap` and
// stops nothing itself.
class LogWatch {
 public:
  // A check found the task's log at `size` bytes: over its cap, and larger than at the last
  // report. Called from the loop, never from inside add() or remove().
  using OverCap = std::function<void(proto::TaskId id, std::int64_t size)>;

  LogWatch(boost::asio::any_io_executor ex, OverCap over_cap);
  ~LogWatch();
  LogWatch(const LogWatch&) = delete;
  LogWatch& operator=(const LogWatch&) = delete;

  // Watches the log at `path` (it exists: the task has exec'd) against `cap` bytes; a cap of 0
  // watches nothing.
  void add(proto::TaskId id, std::string path, std::int64_t cap);
  // The task has ended (or is abandoned): its log is no longer watched.
  void remove(proto::TaskId id);
  // The daemon has drained: nothing of ours may keep the loop alive.
  void shutdown();

  [[nodiscard]] std::size_t watched() const { return logs_.size(); }

  // How long until a growing log is checked again: the time it would take, at the rate it grew
  // by `grown` bytes in `over`, to reach `cap` from `size`, between kMinDelay and kMaxDelay
  // (kMinDelay once it is over the cap: the engine bounds what a stopped task writes).
  static constexpr std::chrono::milliseconds kMinDelay{10};
  static constexpr std::chrono::milliseconds kMaxDelay{100};
  [[nodiscard]] static std::chrono::milliseconds next_check_delay(std::int64_t cap,
                                                                  std::int64_t size,
                                                                  std::int64_t grown,
                                                                  std::chrono::nanoseconds over);

 private:
  using Clock = std::chrono::steady_clock;
  struct Log {
    std::string path;
    std::int64_t cap = 0;
    int wd = -1;  // Its armed one-shot watch, or -1.
    std::int64_t size = 0;
    Clock::time_point checked_at;
    std::int64_t reported = 0;             // The size last reported over the cap.
    std::optional<Clock::time_point> due;  // Polled: its next check, in due_.
  };

  // Reads the size; reports it if over the cap; then polls a growing log or arms a quiet one.
  // `woken_by_write`: a write has just begun (its event, or the exec), so how long the growth
  // took is not known; a growing log is then checked again after kMinDelay.
  void check(proto::TaskId id, bool woken_by_write);
  // Gives a quiet log its one-shot watch, then reads its size once more: a write between the
  // last check and the watch would otherwise go unseen. False if it grew meanwhile.
  bool arm(proto::TaskId id, Log& log);
  void poll_at(proto::TaskId id, Log& log, Clock::time_point at);
  void forget_watch(Log& log);
  bool open_inotify();
  void await_events();
  void on_events();
  void arm_timer();
  void on_timer();

  OverCap over_cap_;
  std::unordered_map<proto::TaskId, Log> logs_;
  std::unordered_map<int, proto::TaskId> wds_;  // Armed watches.
  std::set<std::pair<Clock::time_point, proto::TaskId>> due_;
  boost::asio::posix::stream_descriptor inotify_;  // Opened at the first add().
  bool watches_exhausted_logged_ = false;          // Said once: logs are polled instead.
  boost::asio::steady_timer timer_;                // Armed for due_'s first entry, if any.
  std::optional<Clock::time_point> timer_at_;
  bool stopped_ = false;
};

}  // namespace tg::daemon
