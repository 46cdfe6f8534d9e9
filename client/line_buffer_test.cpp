#include "client/line_buffer.h"

#include <doctest/doctest.h>

namespace tg::client {

TEST_CASE("LineBuffer: lines split across reads come out whole and in order") {
  LineBuffer b(100);
  b.append("{\"a\":1}\n{\"b\"");
  CHECK(b.next_line() == "{\"a\":1}");
  CHECK_FALSE(b.next_line().has_value());
  b.append(":2}\n\n{\"c\":3}\n");
  CHECK(b.next_line() == "{\"b\":2}");
  CHECK(b.next_line() == "");
  CHECK(b.next_line() == "{\"c\":3}");
  CHECK_FALSE(b.next_line().has_value());
  CHECK_FALSE(b.overflowed());
}

TEST_CASE(
    "LineBuffer: a partial line over the limit overflows, a complete one of the limit does not") {
  LineBuffer b(8);
  b.append("12345678");
  CHECK_FALSE(b.next_line().has_value());
  CHECK_FALSE(b.overflowed());
  b.append("\n");
  CHECK(b.next_line() == "12345678");
  b.append("123456789");
  CHECK_FALSE(b.next_line().has_value());
  CHECK(b.overflowed());
}

}  // namespace tg::client
