#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"

namespace tg {

// Parses "250ms", "30s", "5m", "1h" or a bare number of seconds ("1.5" = 1500ms).
// Negative, empty, unknown units and values over 100 days are errors.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// The shortest exact form: 250ms, 30s, 5m, 1h; mixed values fall back to ms ("1500ms").
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);

// A human approximation for tables: "850ms", "12.3s", "4m05s", "2h10m".
[[nodiscard]] std::string format_elapsed(std::chrono::milliseconds d);

}  // namespace tg
