#pragma once

// Waiting for events in tests: always bounded, never a fixed sleep used as synchronisation.

#include <chrono>
#include <functional>
#include <string>

namespace tg::test {

// Polls the cheap `done` every few milliseconds until it returns true; fails the test with
// `what` (what we waited for) if it does not within `timeout`.
void wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                const std::string& what);

}  // namespace tg::test
