#include "daemon/exec/fake/virtual_clock.h"

#include <functional>
#include <optional>
#include <utility>

namespace tg::daemon {

class VirtualClock::VirtualTimer final : public Timer {
 public:
  explicit VirtualTimer(VirtualClock& clock) : clock_(clock) {}
  ~VirtualTimer() override { cancel(); }

  void arm(std::chrono::milliseconds delay, std::function<void()> fire) override {
    cancel();
    due_ = Due{clock_.now_ + delay, clock_.next_seq_++, this};
    clock_.armed_.insert(*due_);
    fire_ = std::move(fire);
  }
  void cancel() override {
    if (due_) clock_.armed_.erase(*due_);
    due_.reset();
    fire_ = nullptr;
  }
  [[nodiscard]] bool armed() const override { return due_.has_value(); }

  // Called by the clock when the deadline has come: disarmed first, so `fire` may re-arm.
  void fire() {
    due_.reset();
    auto f = std::exchange(fire_, nullptr);
    if (f) f();
  }

 private:
  VirtualClock& clock_;
  std::optional<Due> due_;
  std::function<void()> fire_;
};

VirtualClock::~VirtualClock() = default;

std::unique_ptr<Timer> VirtualClock::make_timer() { return std::make_unique<VirtualTimer>(*this); }

void VirtualClock::advance(std::chrono::milliseconds d) {
  const auto until = now_ + d;
  while (!armed_.empty() && armed_.begin()->at <= until) {
    const Due due = *armed_.begin();
    armed_.erase(armed_.begin());
    now_ = due.at;
    due.timer->fire();
  }
  now_ = until;
}

}  // namespace tg::daemon
