#include "common/size.h"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

namespace tg {

namespace {

std::int64_t parsed(std::string_view text) {
  CAPTURE(text);
  auto r = parse_size(text);
  if (r.has_error()) FAIL("refused: " << r.error().message);
  return *r;
}

}  // namespace

TEST_CASE("parse_size: bare bytes and the units K, M, G, T, P in powers of 1024") {
  CHECK(parsed("0") == 0);
  CHECK(parsed("4096") == 4096);
  CHECK(parsed("512K") == 512 * 1024);
  CHECK(parsed("1M") == 1 << 20);
  CHECK(parsed("1G") == std::int64_t{1} << 30);
  CHECK(parsed("2T") == std::int64_t{2} << 40);
  CHECK(parsed("1P") == kMaxSizeBytes);
  CHECK(parsed("100m") == std::int64_t{100} << 20);
  CHECK(parsed("0G") == 0);
}

TEST_CASE("parse_size: anything but a whole number with one known unit is refused, clearly") {
  for (std::string_view bad : {"", "banana", "-1", "-1M", "+1M", "1.5G", "1 G", " 1G", "1GB",
                               "1MiB", "M", "1X", "0x10", "1025T", "2P", "99999999999999999999"}) {
    CAPTURE(bad);
    auto r = parse_size(bad);
    REQUIRE(r.has_error());
    CHECK(r.error().code == Errc::kInvalidParams);
    CHECK(r.error().message == "invalid size '" + std::string(bad) + "' (use e.g. 512K, 100M, 1G)");
  }
}

TEST_CASE("format_size: the shortest exact form, which parse_size reads back") {
  CHECK(format_size(0) == "0");
  CHECK(format_size(1000) == "1000");
  CHECK(format_size(1536) == "1536");
  CHECK(format_size(1 << 20) == "1M");
  CHECK(format_size(std::int64_t{3} << 29) == "1536M");
  CHECK(format_size(std::int64_t{1} << 30) == "1G");
  CHECK(format_size(kMaxSizeBytes) == "1P");
  CHECK(format_size(std::int64_t{1} << 60) == "1024P");
  for (std::int64_t n : {std::int64_t{1}, std::int64_t{4096}, std::int64_t{5} << 40}) {
    CHECK(parsed(format_size(n)) == n);
  }
}

}  // namespace tg
