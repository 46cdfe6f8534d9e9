#include "daemon/log/printable.h"

#include <algorithm>
#include <cstdio>

namespace tg::daemon {

namespace {

// One unit of the input (a byte, or a UTF-8 character) and what a log line shows of it.
struct Unit {
  std::size_t in = 1;   // Input bytes.
  std::size_t out = 1;  // Output bytes: `in` if copied, else strlen(text).
  bool copy = true;
  char text[8] = {};
};

// The length of the well-formed UTF-8 character at the start of `s` (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF) and its code point; 0 if there is none.
std::size_t utf8_char(std::string_view s, char32_t& cp) {
  const auto c = static_cast<unsigned char>(s[0]);
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // Allowed range of the second byte.
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[k]);
    if (k == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  return len;
}

// Characters that are valid but act on the display: C1 controls (U+0085 is a line break to
// some), the Unicode line and paragraph separators, and the bidirectional overrides and isolates
// that make text read in another order than it is written ("Trojan Source").
bool hidden_effect(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

Unit unit_at(std::string_view s) {
  Unit u;
  const auto c = static_cast<unsigned char>(s[0]);
  if (c >= 0x20 && c < 0x7f) return u;
  u.copy = false;
  if (c == '\n' || c == '\r' || c == '\t') {
    u.text[0] = '\\';
    u.text[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
    u.out = 2;
    return u;
  }
  char32_t cp = 0;
  const std::size_t len = c < 0x80 ? 0 : utf8_char(s, cp);
  if (len == 0) {  // A C0 control, DEL, or a byte that is not UTF-8.
    u.out = static_cast<std::size_t>(std::snprintf(u.text, sizeof u.text, "\\x%02x", c));
    return u;
  }
  u.in = len;
  if (!hidden_effect(cp)) {
    u.copy = true;
    u.out = len;
    return u;
  }
  u.out = static_cast<std::size_t>(
      std::snprintf(u.text, sizeof u.text, "\\u%04x", static_cast<unsigned>(cp)));
  return u;
}

}  // namespace

bool is_printable(std::string_view s, std::size_t cap) {
  if (s.size() > cap) return false;
  for (std::size_t i = 0; i < s.size();) {
    const Unit u = unit_at(s.substr(i));
    if (!u.copy) return false;
    i += u.in;
  }
  return true;
}

std::string printable(std::string_view s, std::size_t cap) {
  if (is_printable(s, cap)) return std::string(s);
  std::string out;
  out.reserve(std::min(s.size(), cap) + 24);
  std::size_t i = 0;
  while (i < s.size()) {
    const Unit u = unit_at(s.substr(i));
    if (out.size() + u.out > cap) break;
    if (u.copy) {
      out.append(s.substr(i, u.in));
    } else {
      out.append(u.text, u.out);
    }
    i += u.in;
  }
  if (i < s.size()) out += "…[+" + std::to_string(s.size() - i) + " bytes]";
  return out;
}

}  // namespace tg::daemon
