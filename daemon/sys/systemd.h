#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/unique_fd.h"

namespace tg::daemon {

// Everything that talks to systemd (sd_notify, socket activation) lives here, so the rest of
// the daemon works the same with or without it.

// The listening socket systemd passed (LISTEN_FDS), or nullopt. Strips LISTEN_* from our
// environment so tasks never inherit them. Logs and returns nullopt for a wrong kind of fd.
[[nodiscard]] std::optional<int> listen_fd_from_systemd();

// True if `fd` is a listening Unix stream socket (sd_is_socket_unix).
[[nodiscard]] bool is_listening_unix_socket(int fd);

// systemd's notification socket (NOTIFY_SOCKET, given by main()), written without ever
// blocking. sd_notify() blocks while the manager's queue is full (net.unix.max_dgram_qlen, 10
// by default): a busy or stuck manager, or a test that reads late, would stall our event loop
// and with it every client. A message that does not fit is dropped; the next one carries the
// current state, and the watchdog pings come every half interval. No-op with an empty path.
class Notifier {
 public:
  explicit Notifier(const std::string& path);

  void ready(std::string_view status);  // READY=1 and STATUS=.
  void status(std::string_view status);
  void reloading();  // RELOADING=1 with MONOTONIC_USEC=, as Type=notify-reload wants.
  void stopping();
  void watchdog();

 private:
  void send(const std::string& message);

  UniqueFd fd_;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
};

// Half of WATCHDOG_USEC when systemd expects pings from us (and they are meant for this pid);
// nullopt otherwise. Strips WATCHDOG_* from our environment.
[[nodiscard]] std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace tg::daemon
