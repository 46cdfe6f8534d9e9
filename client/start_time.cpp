#include "client/start_time.h"

#include <time.h>

#include <charconv>
#include <string>

namespace tg::client {

namespace {

// Reads exactly `digits` decimal digits at `pos`.
bool read_int(std::string_view s, std::size_t& pos, std::size_t digits, int& out) {
  if (pos + digits > s.size()) return false;
  auto [end, ec] = std::from_chars(s.data() + pos, s.data() + pos + digits, out);
  if (ec != std::errc() || end != s.data() + pos + digits) return false;
  pos += digits;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

// "HH:MM" or "HH:MM:SS" from `pos`; seconds are optional.
bool read_clock(std::string_view s, std::size_t& pos, int& h, int& m, int& sec) {
  sec = 0;
  if (!read_int(s, pos, 2, h) || !expect(s, pos, ':') || !read_int(s, pos, 2, m)) return false;
  if (pos < s.size() && s[pos] == ':' && !(++pos, read_int(s, pos, 2, sec))) return false;
  return h <= 23 && m <= 59 && sec <= 60;
}

std::optional<TimeMs> next_local(int h, int m, int sec, TimeMs now) {
  const time_t now_s = static_cast<time_t>(now / 1000);
  struct tm local {};
  if (::localtime_r(&now_s, &local) == nullptr) return std::nullopt;
  for (int day = 0; day < 2; ++day) {
    struct tm want = local;
    want.tm_mday += day;
    want.tm_hour = h;
    want.tm_min = m;
    want.tm_sec = sec;
    want.tm_isdst = -1;  // Whatever is in force on that day.
    const time_t t = ::mktime(&want);
    if (t == static_cast<time_t>(-1)) return std::nullopt;
    if (TimeMs{t} * 1000 > now) return TimeMs{t} * 1000;
  }
  return std::nullopt;
}

std::optional<TimeMs> rfc3339(std::string_view s) {
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0, h = 0, m = 0, sec = 0;
  if (!read_int(s, pos, 4, year) || !expect(s, pos, '-') || !read_int(s, pos, 2, month) ||
      !expect(s, pos, '-') || !read_int(s, pos, 2, day)) {
    return std::nullopt;
  }
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) return std::nullopt;
  ++pos;
  if (!read_clock(s, pos, h, m, sec)) return std::nullopt;
  int ms = 0;
  if (pos < s.size() && s[pos] == '.') {  // A fraction: milliseconds kept, the rest dropped.
    ++pos;
    int scale = 100;
    const std::size_t first = pos;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, scale /= 10) {
      ms += (s[pos] - '0') * scale;
    }
    if (pos == first) return std::nullopt;
  }
  int offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos++] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!read_int(s, pos, 2, oh) || !expect(s, pos, ':') || !read_int(s, pos, 2, om)) {
      return std::nullopt;
    }
    offset_min = sign * (oh * 60 + om);
  } else {
    return std::nullopt;  // RFC 3339 requires the offset.
  }
  if (pos != s.size() || month < 1 || month > 12 || day < 1 || day > 31) return std::nullopt;
  struct tm utc {};
  utc.tm_year = year - 1900;
  utc.tm_mon = month - 1;
  utc.tm_mday = day;
  utc.tm_hour = h;
  utc.tm_min = m;
  utc.tm_sec = sec;
  const time_t t = ::timegm(&utc);
  if (utc.tm_mday != day) return std::nullopt;  // timegm normalised a 31 February.
  return (TimeMs{t} - TimeMs{offset_min} * 60) * 1000 + ms;
}

}  // namespace

Result<TimeMs> parse_start_time(std::string_view text, TimeMs now) {
  std::size_t pos = 0;
  int h = 0, m = 0, sec = 0;
  if (read_clock(text, pos, h, m, sec) && pos == text.size()) {
    if (auto t = next_local(h, m, sec, now)) return *t;
  } else if (auto t = rfc3339(text)) {
    return *t;
  }
  return Error{Errc::kInvalidParams,
               "'" + std::string(text) +
                   "' is not a time: give HH:MM (the next such local time) or RFC 3339 "
                   "(2026-12-24T18:00:00+01:00, or ...Z for UTC)"};
}

}  // namespace tg::client
