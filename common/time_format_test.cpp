#include "common/time_format.h"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

namespace tg {

TEST_CASE("format_rfc3339: UTC with milliseconds and Z") {
  CHECK(format_rfc3339(1) == "1970-01-01T00:00:00.001Z");
  CHECK(format_rfc3339(1'000) == "1970-01-01T00:00:01.000Z");
  CHECK(format_rfc3339(1'700'000'000'123) == "2023-11-14T22:13:20.123Z");
  CHECK(format_rfc3339(951'782'400'000) == "2000-02-29T00:00:00.000Z");  // Leap year (÷400).
  CHECK(format_rfc3339(1'709'164'799'999) == "2024-02-28T23:59:59.999Z");
  CHECK(format_rfc3339(1'709'164'800'000) == "2024-02-29T00:00:00.000Z");  // Leap day.
  CHECK(format_rfc3339(1'709'251'200'000) == "2024-03-01T00:00:00.000Z");
  CHECK(format_rfc3339(4'107'542'400'000) == "2100-03-01T00:00:00.000Z");  // 2100 is not leap.
}

TEST_CASE("format_rfc3339: 0 means not reached and gives nullopt") {
  CHECK_FALSE(format_rfc3339(0).has_value());
}

TEST_CASE("parse_rfc3339: round-trips what format_rfc3339 writes") {
  for (TimeMs t : {TimeMs{1}, TimeMs{999}, TimeMs{86'399'999}, TimeMs{951'782'400'000},
                   TimeMs{1'709'164'800'000}, TimeMs{1'709'251'199'999}, TimeMs{1'700'000'000'123},
                   TimeMs{4'102'444'799'999}, TimeMs{4'107'542'400'000}}) {
    CAPTURE(t);
    const auto text = format_rfc3339(t);
    REQUIRE(text.has_value());
    CHECK(parse_rfc3339(*text) == t);
  }
}

TEST_CASE("parse_rfc3339: the fraction is optional and read to milliseconds") {
  CHECK(parse_rfc3339("2024-02-29T12:00:00Z") == 1'709'208'000'000);
  CHECK(parse_rfc3339("2024-02-29T12:00:00.5Z") == 1'709'208'000'500);
  CHECK(parse_rfc3339("2024-02-29T12:00:00.05Z") == 1'709'208'000'050);
  CHECK(parse_rfc3339("2024-02-29T12:00:00.123456789Z") == 1'709'208'000'123);  // Truncated.
  CHECK(parse_rfc3339("1970-01-01T00:00:00.000Z") == 0);
}

TEST_CASE("parse_rfc3339: malformed text gives nullopt") {
  for (std::string_view bad :
       {"", "garbage", "2024-02-29", "2024-02-29T12:00:00", "2024-02-29T12:00:00+01:00",
        "2024-02-29 12:00:00Z", "2024-02-29T12:00:00.Z", "2024-02-29T12:00:00.123",
        "2024-02-29T12:00:00Zjunk", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
        "2024-00-10T00:00:00Z", "2024-04-31T00:00:00Z", "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z", "2024-01-01T00:00:61Z", "2024-01-01T00:00:00.12aZ",
        "2024-01-01t00:00:00z"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_rfc3339(bad).has_value());
  }
}

TEST_CASE("now_ms: a plausible current time that formats") {
  const TimeMs now = now_ms();
  CHECK(now > 1'700'000'000'000);  // After 2023-11.
  const auto text = format_rfc3339(now);
  REQUIRE(text.has_value());
  CHECK(parse_rfc3339(*text) == now);
}

}  // namespace tg
