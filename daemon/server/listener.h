#pragma once

#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "common/error.h"
#include "daemon/model/config.h"

namespace tg::daemon {

// The control socket: systemd's (socket activation), or our own bound at config.socket.
struct Listener {
  boost::asio::local::stream_protocol::acceptor acceptor;
  std::string owned_path;  // Non-empty if we created the file and must remove it at exit.
  std::string path;        // Where clients connect; empty for an abstract or unnamed socket.
};

// Uses a socket passed by systemd if there is one. Otherwise binds config.socket: a stale file
// is replaced, a live daemon on it is an error; the file is 0600, or 0660 with group
// `taskgroupd` when running as root and that group exists. Its directory is created 0755
// (root) or 0700.
[[nodiscard]] Result<Listener> open_listener(boost::asio::io_context& ioc, const Config& config);

// The socket a re-exec handed over (sys/handover.h): already bound and listening, with what
// connected meanwhile waiting in its backlog. Closes `fd` on error.
[[nodiscard]] Result<Listener> adopt_listener(boost::asio::io_context& ioc, int fd,
                                              std::string path, std::string owned_path);

}  // namespace tg::daemon
