#pragma once

// Whether the running doctest test case (this run of its body, for one subcase path) has failed
// so far. Fixtures use it in their destructors to keep evidence (temp dirs, daemon logs) of a
// failure and to tidy up after a success. Fed by a doctest listener in test_status.cpp.

namespace tg::test {

[[nodiscard]] bool current_test_failed();

}  // namespace tg::test
