#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tg::daemon {

// How much of one user-supplied string (an argv[0], a cwd, a path) a log line shows.
inline constexpr std::size_t kLoggedStringBytes = 256;
// How much of a whole message a sink writes: a message holds a few capped strings at most.
inline constexpr std::size_t kLoggedMessageBytes = 4096;

// `s` made safe for one log line (STYLE.md rule 22): what a user or a client sent can neither
// start a line of its own nor reach a terminal as a control sequence. C0 controls and DEL
// become \n, \r, \t or \xHH; C1 controls, U+2028/U+2029 and the bidirectional overrides become
// \uHHHH; a byte that is not part of valid UTF-8 becomes \xHH. Everything else, backslashes
// included, is kept: the result is for reading, not for decoding. A string with nothing to
// escape and within `cap` comes back as it is, so a message built of printable() parts may pass
// through it again, with a larger cap (as the sinks do), unchanged.
// The result is at most `cap` bytes plus a marker "…[+N bytes]" naming how many bytes of `s`
// were left out; an escape or a UTF-8 character is never cut in two.
[[nodiscard]] std::string printable(std::string_view s, std::size_t cap = kLoggedStringBytes);

// True if printable(s, cap) == s: nothing to escape, nothing to cut. Cheap; no allocation.
[[nodiscard]] bool is_printable(std::string_view s, std::size_t cap = kLoggedStringBytes);

}  // namespace tg::daemon
