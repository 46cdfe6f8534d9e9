#include "client/start_time.h"

#include <stdlib.h>
#include <time.h>

#include <doctest/doctest.h>

namespace tg::client {

namespace {

// 2026-12-07T12:00:00Z.
constexpr TimeMs kNoon = 1'796'644'800'000;

}  // namespace

TEST_CASE("parse_start_time: RFC 3339 with Z, an offset or a fraction") {
  CHECK(*parse_start_time("2026-12-07T12:00:00Z", 0) == kNoon);
  CHECK(*parse_start_time("2026-12-07t12:00:00z", 0) == kNoon);
  CHECK(*parse_start_time("2026-12-07 13:30:00+01:30", 0) == kNoon);
  CHECK(*parse_start_time("2026-12-07T07:00:00-05:00", 0) == kNoon);
  CHECK(*parse_start_time("2026-12-07T12:00:00.25Z", 0) == kNoon + 250);
  CHECK(*parse_start_time("2026-12-07T12:00Z", 0) == kNoon);  // Seconds are optional.
}

TEST_CASE("parse_start_time: HH:MM is the next such local time") {
  ::setenv("TZ", "UTC", 1);  // This process only: the test runner sets no zone of its own.
  ::tzset();
  CHECK(*parse_start_time("13:00", kNoon) == kNoon + 3'600'000);       // Later today.
  CHECK(*parse_start_time("11:00", kNoon) == kNoon + 23 * 3'600'000);  // Passed: tomorrow.
  CHECK(*parse_start_time("12:00", kNoon) == kNoon + 24 * 3'600'000);  // Now is not "next".
  CHECK(*parse_start_time("12:00:30", kNoon) == kNoon + 30'000);
}

TEST_CASE("parse_start_time: anything else is one clear error") {
  for (const char* bad :
       {"", "tomorrow", "25:00", "12:60", "2026-12-07T12:00:00", "2026-02-31T12:00:00Z",
        "2026-12-07T12:00:00+1", "12:00 ", "2026-13-01T00:00:00Z", "2026-12-07T12:00:00.Z"}) {
    auto r = parse_start_time(bad, kNoon);
    REQUIRE_MESSAGE(r.has_error(), bad);
    CHECK(r.error().message.find("is not a time") != std::string::npos);
  }
}

}  // namespace tg::client
