#include "daemon/log/rate_limit.h"

#include <algorithm>

namespace tg::daemon {

std::optional<std::uint64_t> LogRateLimit::admit(Clock::time_point now) {
  if (!refilled_) refilled_ = now;
  if (now > *refilled_ && tokens_ < burst_) {
    const auto earned = (now - *refilled_) / every_;
    if (earned > 0) {
      tokens_ = static_cast<int>(std::min<std::int64_t>(burst_, tokens_ + earned));
      *refilled_ += earned * every_;
    }
  }
  if (tokens_ == burst_) refilled_ = now;  // A full bucket earns nothing by waiting.
  if (tokens_ == 0) {
    ++suppressed_;
    return std::nullopt;
  }
  --tokens_;
  return std::exchange(suppressed_, 0);
}

}  // namespace tg::daemon
