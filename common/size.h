#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace tg {

// The largest size parse_size() accepts: 1P (2^50 bytes).
inline constexpr std::int64_t kMaxSizeBytes = std::int64_t{1} << 50;

// Parses a size in bytes: a whole number, optionally followed by K, M, G, T or P (powers of
// 1024, as systemd and Slurm read them; lowercase too): "512K", "100M", "1G", "4096".
// Negative numbers, fractions, other units, and values over kMaxSizeBytes are errors.
[[nodiscard]] Result<std::int64_t> parse_size(std::string_view text);

// The shortest exact form: 1048576 -> "1M", 1536 -> "1536" (bare bytes when no unit divides).
[[nodiscard]] std::string format_size(std::int64_t bytes);

}  // namespace tg
