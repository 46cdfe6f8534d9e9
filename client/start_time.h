#pragma once

#include <string_view>

#include "common/error.h"
#include "common/time_format.h"

namespace tg::client {

// `submit --at TIME`: an RFC 3339 time ("2026-12-24T18:00:00+01:00", "...Z", seconds and a
// fraction optional, 'T' or a space between date and time), or "HH:MM" ("HH:MM:SS"): the next
// such local time after `now` (today, or tomorrow if it has passed). Errors name the forms.
[[nodiscard]] Result<TimeMs> parse_start_time(std::string_view text, TimeMs now);

}  // namespace tg::client
