#include "common/size.h"

#include <cctype>
#include <charconv>

namespace tg {

namespace {

constexpr char kUnits[] = {'K', 'M', 'G', 'T', 'P'};

}  // namespace

Result<std::int64_t> parse_size(std::string_view text) {
  const auto bad = [&] {
    return Error{Errc::kInvalidParams,
                 "invalid size '" + std::string(text) + "' (use e.g. 512K, 100M, 1G)"};
  };
  std::string_view number = text;
  int shift = 0;
  if (!text.empty() && !std::isdigit(static_cast<unsigned char>(text.back()))) {
    const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(text.back())));
    int i = 0;
    while (i < static_cast<int>(sizeof kUnits) && kUnits[i] != unit) ++i;
    if (i == static_cast<int>(sizeof kUnits)) return bad();
    shift = 10 * (i + 1);
    number.remove_suffix(1);
  }
  // from_chars would take a leading '-'; only digits are a size.
  if (number.empty() || !std::isdigit(static_cast<unsigned char>(number.front()))) return bad();
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return bad();
  if (value > (kMaxSizeBytes >> shift)) return bad();
  return value << shift;
}

std::string format_size(std::int64_t bytes) {
  int unit = -1;
  while (bytes != 0 && unit + 1 < static_cast<int>(sizeof kUnits) && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return std::to_string(bytes) + (unit < 0 ? "" : std::string(1, kUnits[unit]));
}

}  // namespace tg
