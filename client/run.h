#pragma once

#include <string>

#include "client/command.h"
#include "client/commands.h"
#include "common/error.h"
#include "common/protocol.h"

namespace tg::client {

// kExitUnreachable for a daemon that cannot be reached or dropped us, kExitFailed otherwise.
[[nodiscard]] int exit_code_for(const Error& error);

// stdout, stderr and stdin, with what isatty() and the terminal size say about them.
[[nodiscard]] Io standard_io();

// Connects to `socket` and runs `command`. Errors are printed to io.err as one "tgctl: ..."
// line. Returns the process exit code.
[[nodiscard]] int run(const Command& command, const std::string& socket, const proto::Env& env,
                      Io& io);

}  // namespace tg::client
