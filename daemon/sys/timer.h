#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>

namespace tg::daemon {

// A one-shot timer. The engine arms its timeouts, graces and retries through this interface so
// that its decisions can be tested in virtual time (exec/fake/virtual_clock.h); the daemon uses
// AsioClock's. Used on the event loop's thread only.
class Timer {
 public:
  virtual ~Timer() = default;
  // Calls `fire` once, `delay` from now, unless cancel() or another arm() comes first: each
  // replaces what was armed, and a replaced or cancelled `fire` never runs (even if it was
  // already due). Destroying the timer cancels it.
  virtual void arm(std::chrono::milliseconds delay, std::function<void()> fire) = 0;
  virtual void cancel() = 0;
  [[nodiscard]] virtual bool armed() const = 0;
};

// Makes timers: the engine's source of time.
class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual std::unique_ptr<Timer> make_timer() = 0;
};

// Timers on an Asio executor (steady_timer).
class AsioClock final : public Clock {
 public:
  explicit AsioClock(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  [[nodiscard]] std::unique_ptr<Timer> make_timer() override;

 private:
  boost::asio::any_io_executor ex_;
};

}  // namespace tg::daemon
