#include "client/held_signals.h"

#include <signal.h>

#include <doctest/doctest.h>

namespace tg::client {

namespace {

bool blocked(int sig) {
  sigset_t mask;
  sigemptyset(&mask);
  (void)::sigprocmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, sig) == 1;
}

}  // namespace

TEST_CASE(
    "HeldSignals: a TERM that comes while held is taken, not acted on, then the mask is back") {
  // doctest handles SIGTERM (its crash report); what matters is the default here.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  struct sigaction before {};
  REQUIRE(::sigaction(SIGTERM, &dfl, &before) == 0);
  REQUIRE_FALSE(blocked(SIGTERM));
  {
    HeldSignals held;
    CHECK(blocked(SIGTERM));
    CHECK_FALSE(blocked(SIGSEGV));
    CHECK_FALSE(held.take_pending());
    REQUIRE(::raise(SIGTERM) == 0);  // Pending, not delivered: we are still here.
    CHECK(held.take_pending());
    CHECK_FALSE(held.take_pending());
  }
  CHECK_FALSE(blocked(SIGTERM));
  REQUIRE(::sigaction(SIGTERM, &before, nullptr) == 0);
}

TEST_CASE("HeldSignals: a signal that is not left at its default action is not held") {
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  struct sigaction before {};
  REQUIRE(::sigaction(SIGUSR1, &ign, &before) == 0);
  {
    HeldSignals held;
    CHECK_FALSE(blocked(SIGUSR1));
    REQUIRE(::raise(SIGUSR1) == 0);  // Ignored: gone, not taken for a stop.
    CHECK_FALSE(held.take_pending());
  }
  REQUIRE(::sigaction(SIGUSR1, &before, nullptr) == 0);
}

}  // namespace tg::client
