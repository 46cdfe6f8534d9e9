#include "daemon/engine/waiter.h"

#include "daemon/sys/asio_util.h"

namespace tg::daemon {

boost::asio::awaitable<void> Waiter::next() {
  // One wait, not a loop: a cancelled wait (the session is ending, or lost an || race) must
  // return. Callers re-check what they wait for, so an early return costs one look.
  if (!pending_) {
    timer_.expires_at(boost::asio::steady_timer::time_point::max());
    (void)co_await timer_.async_wait(kNoThrow);
  }
  pending_ = false;
}

}  // namespace tg::daemon
