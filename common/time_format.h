#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tg {

// Milliseconds since the Unix epoch, the unit of every timestamp we store; 0 means "not reached".
using TimeMs = std::int64_t;

[[nodiscard]] TimeMs now_ms();

// "2026-11-22T01:23:38.123Z"; nullopt for 0.
[[nodiscard]] std::optional<std::string> format_rfc3339(TimeMs t);

// Parses what format_rfc3339 writes (UTC, "Z", optional fraction); nullopt if malformed.
[[nodiscard]] std::optional<TimeMs> parse_rfc3339(std::string_view text);

}  // namespace tg
