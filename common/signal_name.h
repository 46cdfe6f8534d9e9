#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tg {

// A signal as users write it: a name with or without "SIG" ("USR1", "SIGUSR1"), or its number
// ("10"). nullopt for anything else, and for numbers outside 1..64 (signal 0 sends nothing).
[[nodiscard]] std::optional<int> signal_from_text(std::string_view text);

// The name without "SIG" ("USR1"), or the number as text for a signal without a name.
[[nodiscard]] std::string signal_text(int sig);

}  // namespace tg
