#include "common/signal_name.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace tg {

std::optional<int> signal_from_text(std::string_view text) {
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
    int n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;  // Overflow.
    return n > 0 && n < NSIG ? std::optional(n) : std::nullopt;
  }
  std::string_view name = text;
  if (name.starts_with("SIG")) name.remove_prefix(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (const char* abbrev = ::sigabbrev_np(sig); abbrev && name == abbrev) return sig;
  }
  return std::nullopt;
}

std::string signal_text(int sig) {
  const char* abbrev = sig > 0 && sig < NSIG ? ::sigabbrev_np(sig) : nullptr;
  return abbrev ? std::string(abbrev) : std::to_string(sig);
}

}  // namespace tg
