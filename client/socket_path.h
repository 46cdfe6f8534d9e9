#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/protocol.h"

namespace tg::client {

inline constexpr const char* kSystemSocket = "/run/taskgroupd/control.sock";

// Whether a socket file exists at a path; a parameter so discovery can be tested without files.
using PathExists = std::function<bool(const std::string& path)>;

// The socket tgctl talks to (DESIGN.md, tgctl): `--socket`, else $TASKGROUPD_SOCKET, else the
// user daemon's $XDG_RUNTIME_DIR/taskgroupd/control.sock if it exists, else the system socket.
// Empty values count as unset. `env` is the client's environment, read once by main().
[[nodiscard]] std::string discover_socket(const std::optional<std::string>& flag,
                                          const proto::Env& env, const PathExists& exists);

// The real PathExists: true if something is at `path` (a socket, normally).
[[nodiscard]] bool path_exists(const std::string& path);

// The environment as a map, from a NULL-terminated "NAME=value" array such as `environ`.
// Entries without '=' are skipped; for a repeated name the first one wins, as with getenv.
[[nodiscard]] proto::Env environment_from(const char* const* envp);

}  // namespace tg::client
