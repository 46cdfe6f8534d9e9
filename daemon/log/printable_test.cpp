#include "daemon/log/printable.h"

#include <string>

#include <doctest/doctest.h>

namespace tg::daemon {

TEST_CASE("printable: plain text, UTF-8 and backslashes are kept as they are") {
  CHECK(printable("") == "");
  CHECK(printable("/home/alice/src") == "/home/alice/src");
  CHECK(printable("naïve — 日本語 🎉") == "naïve — 日本語 🎉");
  CHECK(printable(R"(C:\dir\n)") == R"(C:\dir\n)");
  CHECK(is_printable("/usr/bin/make -j4"));
}

TEST_CASE("printable: a newline cannot start a line of its own") {
  const std::string forged = "x\n2026-12-07T00:00:00.000 critical forged";
  CHECK(printable(forged) == "x\\n2026-12-07T00:00:00.000 critical forged");
  CHECK(printable("a\r\tb") == "a\\r\\tb");
  CHECK_FALSE(is_printable(forged));
}

TEST_CASE("printable: C0 controls, DEL, C1 controls and invisible reorderings are escaped") {
  CHECK(printable("\x1b[31mred\x1b]0;title\x07") == "\\x1b[31mred\\x1b]0;title\\x07");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("\x7f") == "\\x7f");
  CHECK(printable("\u0085next line \u009b") == "\\u0085next line \\u009b");
  CHECK(printable("\u2028\u2029") == "\\u2028\\u2029");
  CHECK(printable("abc\u202Efdp.exe") == "abc\\u202efdp.exe");  // Right-to-left override.
  CHECK(printable("\u2066x\u2069") == "\\u2066x\\u2069");
}

TEST_CASE("printable: bytes that are not UTF-8 are escaped one by one") {
  CHECK(printable("\xff\xfe") == "\\xff\\xfe");
  CHECK(printable("\xc3") == "\\xc3");                             // Truncated sequence.
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");                    // Overlong '/'.
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");           // A surrogate.
  CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // Past U+10FFFF.
  CHECK(printable("ok\xe2\x82") == "ok\\xe2\\x82");
}

TEST_CASE("printable: a long string is cut at the cap with a marker of what was left out") {
  const std::string huge(900'000, 'a');
  const std::string got = printable(huge);
  CHECK(got == std::string(256, 'a') + "…[+899744 bytes]");
  CHECK(printable("abcdef", 4) == "abcd…[+2 bytes]");
  CHECK(printable("abcd", 4) == "abcd");
  CHECK_FALSE(is_printable("abcde", 4));
  SUBCASE("an escape is never cut in two") {
    CHECK(printable("abc\n", 4) == "abc…[+1 bytes]");
    CHECK(printable("ab\x1b", 4) == "ab…[+1 bytes]");
  }
  SUBCASE("nor is a UTF-8 character") {
    CHECK(printable("ab日本", 4) == "ab…[+6 bytes]");
    CHECK(printable("ab日本", 5) == "ab日…[+3 bytes]");
  }
}

TEST_CASE("printable: its output passes through again unchanged under a larger cap") {
  const std::string once = printable("\x1b[2J" + std::string(1000, 'x') + "\n\xff");
  CHECK(is_printable(once, kLoggedMessageBytes));
  CHECK(printable(once, kLoggedMessageBytes) == once);
  CHECK(printable("cannot execute '" + once + "': File name too long", kLoggedMessageBytes) ==
        "cannot execute '" + once + "': File name too long");
}

}  // namespace tg::daemon
