#include "common/duration.h"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

namespace tg {

namespace {

using std::chrono::milliseconds;

milliseconds parsed(std::string_view text) {
  CAPTURE(text);
  auto r = parse_duration(text);
  if (r.has_error()) FAIL("refused: " << r.error().message);
  return *r;
}

}  // namespace

TEST_CASE("parse_duration: units ms, s, m, h and bare seconds") {
  CHECK(parsed("250ms") == milliseconds(250));
  CHECK(parsed("30s") == milliseconds(30'000));
  CHECK(parsed("5m") == milliseconds(300'000));
  CHECK(parsed("1h") == milliseconds(3'600'000));
  CHECK(parsed("1.5") == milliseconds(1500));
  CHECK(parsed("0") == milliseconds(0));
  CHECK(parsed("0ms") == milliseconds(0));
  CHECK(parsed("10") == milliseconds(10'000));
  CHECK(parsed("0.25s") == milliseconds(250));
  CHECK(parsed("1.5m") == milliseconds(90'000));
  CHECK(parsed("007s") == milliseconds(7000));
}

TEST_CASE("parse_duration: fractions round to the nearest millisecond") {
  CHECK(parsed("0.0004") == milliseconds(0));
  CHECK(parsed("0.0006") == milliseconds(1));
  CHECK(parsed("1.5ms") == milliseconds(2));
}

TEST_CASE("parse_duration: up to 100 days is accepted, more is refused") {
  CHECK(parsed("2400h") == milliseconds(8'640'000'000));
  CHECK(parsed("8640000") == milliseconds(8'640'000'000));
  CHECK(parse_duration("2401h").has_error());
  CHECK(parse_duration("99999999999999999999999").has_error());
  CHECK(parse_duration("1" + std::string(400, '0')).has_error());  // Overflows a double.
}

TEST_CASE("parse_duration: malformed text is refused with kInvalidParams naming the text") {
  for (std::string_view bad :
       {"",    "-1s", "-1", "1d",  "abc", "1.2.3", ".5",    "5.",   "s",   "ms",  " 5s",
        "5s ", "5 s", "5S", "1e3", "+5",  "5sec",  "1h30m", "0x10", "inf", "nan", "."}) {
    CAPTURE(bad);
    auto r = parse_duration(bad);
    REQUIRE(r.has_error());
    CHECK(r.error().code == Errc::kInvalidParams);
    CHECK(r.error().message.find("'" + std::string(bad) + "'") != std::string::npos);
  }
}

TEST_CASE("format_duration: the shortest exact form") {
  CHECK(format_duration(milliseconds(250)) == "250ms");
  CHECK(format_duration(milliseconds(30'000)) == "30s");
  CHECK(format_duration(milliseconds(300'000)) == "5m");
  CHECK(format_duration(milliseconds(3'600'000)) == "1h");
  CHECK(format_duration(milliseconds(7'200'000)) == "2h");
  CHECK(format_duration(milliseconds(0)) == "0s");
  CHECK(format_duration(milliseconds(1500)) == "1500ms");
  CHECK(format_duration(milliseconds(90'000)) == "90s");
  CHECK(format_duration(milliseconds(5'400'000)) == "90m");
  CHECK(format_duration(milliseconds(1)) == "1ms");
}

TEST_CASE("format_duration and parse_duration round-trip") {
  for (long long ms : {0LL, 1LL, 999LL, 1000LL, 1500LL, 60'000LL, 61'000LL, 3'600'000LL,
                       3'660'000LL, 8'640'000'000LL}) {
    CAPTURE(ms);
    CHECK(parsed(format_duration(milliseconds(ms))) == milliseconds(ms));
  }
}

TEST_CASE("format_elapsed: a human approximation per magnitude") {
  CHECK(format_elapsed(milliseconds(0)) == "0ms");
  CHECK(format_elapsed(milliseconds(850)) == "850ms");
  CHECK(format_elapsed(milliseconds(999)) == "999ms");
  CHECK(format_elapsed(milliseconds(1000)) == "1.0s");
  CHECK(format_elapsed(milliseconds(12'345)) == "12.3s");
  CHECK(format_elapsed(milliseconds(60'000)) == "1m00s");
  CHECK(format_elapsed(milliseconds(245'000)) == "4m05s");
  CHECK(format_elapsed(milliseconds(3'599'999)) == "59m59s");
  CHECK(format_elapsed(milliseconds(3'600'000)) == "1h00m");
  CHECK(format_elapsed(milliseconds(7'800'000)) == "2h10m");
  CHECK(format_elapsed(milliseconds(360'000'000)) == "100h00m");
  CHECK(format_elapsed(milliseconds(-5)) == "0ms");  // Clock steps never show negative times.
}

TEST_CASE("format_elapsed: just under a minute never shows as 60.0s") {
  CHECK(format_elapsed(milliseconds(59'900)) == "59.9s");
  CHECK(format_elapsed(milliseconds(59'999)) == "59.9s");
  CHECK(format_elapsed(milliseconds(59'950)) == "59.9s");
}

}  // namespace tg
