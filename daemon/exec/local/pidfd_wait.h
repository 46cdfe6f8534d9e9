#pragma once

#include <signal.h>

#include <optional>

#include "daemon/exec/executor.h"

namespace tg::daemon {

// waitid() on a pidfd; `flags` adds WNOWAIT (peek) or WNOHANG. nullopt: not exited (WNOHANG, or
// a pidfd the loop made non-blocking), or an error.
[[nodiscard]] std::optional<siginfo_t> wait_pidfd(int pidfd, int flags);

// How a reaped or peeked child ended.
[[nodiscard]] ExitStatus exit_status(const siginfo_t& info);

// Whether the process behind `pidfd` has exited (a peek: it stays to be reaped); true as well
// when waitid fails for another reason than a running child, so no caller spins. The loop's
// "pidfd readable" is no proof, so every exit handler asks this first and waits again on
// false. Boost.Asio's epoll reactor hands out a closed descriptor's slot to the next one
// registered even while readiness it collected for the old one is still queued; a handler that
// closes one descriptor and opens a pidfd (a task's end that closes a connection and starts an
// on-done hook) gets the old readiness delivered to the pidfd. Seen: a hook killed as "exited"
// 12 ms after its spawn; local_executor_test.cpp provokes it.
[[nodiscard]] bool has_exited(int pidfd);

}  // namespace tg::daemon
