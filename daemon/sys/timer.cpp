#include "daemon/sys/timer.h"

#include <boost/asio/steady_timer.hpp>

namespace tg::daemon {

namespace asio = boost::asio;

namespace {

class AsioTimer final : public Timer {
 public:
  explicit AsioTimer(const asio::any_io_executor& ex)
      : timer_(ex), generation_(std::make_shared<std::uint64_t>(0)) {}
  ~AsioTimer() override { cancel(); }

  void arm(std::chrono::milliseconds delay, std::function<void()> fire) override {
    const std::uint64_t mine = ++*generation_;
    armed_ = true;
    timer_.expires_after(delay);
    // A handler may already be queued with success when cancel() or a new arm() comes (or the
    // timer is destroyed): it checks that it is still the armed one through a weak token.
    std::weak_ptr<std::uint64_t> token = generation_;
    timer_.async_wait([this, token, mine, fire = std::move(fire)](boost::system::error_code ec) {
      const auto gen = token.lock();
      if (ec || !gen || *gen != mine) return;
      armed_ = false;
      fire();
    });
  }

  void cancel() override {
    ++*generation_;
    armed_ = false;
    timer_.cancel();
  }

  [[nodiscard]] bool armed() const override { return armed_; }

 private:
  asio::steady_timer timer_;
  std::shared_ptr<std::uint64_t> generation_;  // The other owners are weak, in handlers.
  bool armed_ = false;
};

}  // namespace

std::unique_ptr<Timer> AsioClock::make_timer() { return std::make_unique<AsioTimer>(ex_); }

}  // namespace tg::daemon
