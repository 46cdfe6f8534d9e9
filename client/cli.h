#pragma once

#include <functional>
#include <iosfwd>
#include <variant>

#include "client/command.h"
#include "client/completions.h"

namespace tg::client {

// Parses tgctl's command line (DESIGN.md, tgctl). Returns what to do, or the exit code to leave
// with: 0 after printing --help or --version to `out`, 2 after printing one "tgctl: ..." line
// for a usage error to `err`. Never exits the process itself.
[[nodiscard]] std::variant<Invocation, int> parse_args(int argc, const char* const* argv,
                                                       std::ostream& out, std::ostream& err);

// Calls `use` with the command line parse_args() parses (its CLI11 definition) and what the
// options naming groups, tasks and files take: for completion scripts, and tests that check them.
void visit_cli(const std::function<void(const CLI::App&, const ValueKinds&)>& use);

}  // namespace tg::client
