#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>

#include "daemon/sys/timer.h"

namespace tg::daemon {

// Time that passes only when a test says so: timers fire inside advance(), in the order of
// their deadlines, so an engine test of a 10 s grace takes microseconds and never races.
class VirtualClock final : public Clock {
 public:
  VirtualClock() = default;
  ~VirtualClock() override;
  VirtualClock(const VirtualClock&) = delete;
  VirtualClock& operator=(const VirtualClock&) = delete;

  [[nodiscard]] std::unique_ptr<Timer> make_timer() override;
  // Moves time forward by `d`, firing every timer that comes due on the way (also those armed
  // by a firing one, if they come due within `d`).
  void advance(std::chrono::milliseconds d);
  [[nodiscard]] std::chrono::milliseconds now() const { return now_; }
  [[nodiscard]] std::size_t armed() const { return armed_.size(); }  // Timers waiting to fire.

  class VirtualTimer;

 private:
  friend class VirtualTimer;
  struct Due {
    std::chrono::milliseconds at;
    std::uint64_t seq;  // Equal deadlines fire in the order they were armed.
    VirtualTimer* timer;
    auto operator<=>(const Due&) const = default;
  };
  std::chrono::milliseconds now_{0};
  std::uint64_t next_seq_ = 0;
  std::set<Due> armed_;
};

}  // namespace tg::daemon
