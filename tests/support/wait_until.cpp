#include "support/wait_until.h"

#include <thread>

#include <doctest/doctest.h>

namespace tg::test {

void wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      FAIL("timed out after " << timeout.count() << " ms waiting for: " << what);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace tg::test
