#pragma once

#include "daemon/log/rate_limit.h"

namespace tg::daemon {

// The log lines that anyone who can connect may trigger, each kind rate-limited on its own
// (STYLE.md rule 22): a flood of refused connections or bad requests adds a few lines and a
// count of those suppressed, not one line each. Owned by the Server, shared by its sessions;
// event-loop thread only.
struct OutsiderLogs {
  LogRateLimit refused{"refused connections"};
  LogRateLimit accept_failed{"failed accepts"};
  LogRateLimit oversized{"oversized requests"};
  LogRateLimit bad_requests{"bad requests"};
  LogRateLimit refused_follows{"refused logs -f"};
};

}  // namespace tg::daemon
