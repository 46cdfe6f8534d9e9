#pragma once

// ANSI colours for tgctl's tables and top: only on a terminal, and never with NO_COLOR set and
// non-empty (no-color.org). Colour codes count no width (display_width skips them), so tables
// stay aligned with or without them.

#include <string>
#include <string_view>

#include "common/protocol.h"

namespace tg::client {

// The rule: `is_tty` for the stream written to; `no_color` is NO_COLOR's value ("" if unset).
[[nodiscard]] bool use_color(bool is_tty, std::string_view no_color);

// SGR parameters ("32" green) for a state's word: succeeded green; failed, timed_out and lost
// red; running cyan; cancelled and interrupted yellow; queued none ("").
[[nodiscard]] std::string_view state_sgr(proto::TaskState state);

inline constexpr std::string_view kSgrGreen = "32";
inline constexpr std::string_view kSgrRed = "31";
inline constexpr std::string_view kSgrYellow = "33";
inline constexpr std::string_view kSgrCyan = "36";
inline constexpr std::string_view kSgrDim = "2";
inline constexpr std::string_view kSgrBold = "1";
inline constexpr std::string_view kSgrReverse = "7";

// `text` between "\x1b[<sgr>m" and "\x1b[0m" when `on` and sgr is not empty; else as is.
[[nodiscard]] std::string paint(std::string_view text, std::string_view sgr, bool on);
// A state's word, painted with state_sgr when `on`.
[[nodiscard]] std::string state_word(proto::TaskState state, bool on);

}  // namespace tg::client
