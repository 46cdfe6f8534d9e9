#pragma once

#include "daemon/config.h"

namespace tg::daemon {

// Runs the daemon until it has drained: opens the store, recovers, listens (its own socket or
// systemd's), serves, and handles SIGTERM/SIGINT (drain, then escalate) and SIGHUP (reload).
// Returns 0 after a clean drain, 1 after logging why it could not start.
[[nodiscard]] int run(const Flags& flags, const Environment& env, const Config& config);

}  // namespace tg::daemon
