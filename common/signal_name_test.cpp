#include "common/signal_name.h"

#include <signal.h>

#include <doctest/doctest.h>

namespace tg {

TEST_CASE("signal_from_text: names with or without SIG, and numbers, nothing else") {
  CHECK(signal_from_text("USR1") == SIGUSR1);
  CHECK(signal_from_text("SIGUSR1") == SIGUSR1);
  CHECK(signal_from_text("STOP") == SIGSTOP);
  CHECK(signal_from_text("CONT") == SIGCONT);
  CHECK(signal_from_text("HUP") == SIGHUP);
  CHECK(signal_from_text("10") == 10);
  CHECK_FALSE(signal_from_text("0"));
  CHECK_FALSE(signal_from_text("65"));
  CHECK_FALSE(signal_from_text("99999999999999999999"));
  CHECK_FALSE(signal_from_text(""));
  CHECK_FALSE(signal_from_text("SIG"));
  CHECK_FALSE(signal_from_text("usr1"));  // Names are upper case, as kill(1) prints them.
  CHECK_FALSE(signal_from_text("BOGUS"));
  CHECK_FALSE(signal_from_text("-9"));
}

TEST_CASE("signal_text: the name without SIG, or the number") {
  CHECK(signal_text(SIGUSR1) == "USR1");
  CHECK(signal_text(SIGKILL) == "KILL");
  CHECK(signal_text(0) == "0");
}

}  // namespace tg
