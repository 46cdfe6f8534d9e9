#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tg::daemon {

// Everything that talks to systemd (sd_notify, socket activation) lives here, so the rest of
// the daemon works the same with or without it.

// The listening socket systemd passed (LISTEN_FDS), or nullopt. Strips LISTEN_* from our
// environment so tasks never inherit them. Logs and returns nullopt for a wrong kind of fd.
[[nodiscard]] std::optional<int> listen_fd_from_systemd();

// sd_notify wrappers: no-ops without NOTIFY_SOCKET.
void notify_ready(std::string_view status);
void notify_status(std::string_view status);
void notify_reloading();
void notify_stopping();
void notify_watchdog();

// Half of WATCHDOG_USEC when systemd expects pings from us (and they are meant for this pid);
// nullopt otherwise. Strips WATCHDOG_* from our environment.
[[nodiscard]] std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace tg::daemon
