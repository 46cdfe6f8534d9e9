#pragma once

#include <iosfwd>
#include <variant>

#include "client/command.h"

namespace tg::client {

// Parses tgctl's command line (DESIGN.md, tgctl). Returns what to do, or the exit code to leave
// with: 0 after printing --help or --version to `out`, 2 after printing one "tgctl: ..." line
// for a usage error to `err`. Never exits the process itself.
[[nodiscard]] std::variant<Invocation, int> parse_args(int argc, const char* const* argv,
                                                       std::ostream& out, std::ostream& err);

}  // namespace tg::client
