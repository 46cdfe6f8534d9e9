#include "daemon/systemd.h"

#include <sys/socket.h>
#include <time.h>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

namespace tg::daemon {

std::optional<int> listen_fd_from_systemd() {
  const int n = sd_listen_fds(1);  // 1: unset LISTEN_*, so children never see them.
  if (n <= 0) return std::nullopt;
  if (n > 1) spdlog::warn("systemd passed {} sockets; using the first", n);
  if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, nullptr, 0) <= 0) {
    spdlog::error("the socket systemd passed is not a listening Unix stream socket; ignoring it");
    return std::nullopt;
  }
  return SD_LISTEN_FDS_START;
}

void notify_ready(std::string_view status) {
  (void)sd_notifyf(0, "READY=1\nSTATUS=%.*s", static_cast<int>(status.size()), status.data());
}

void notify_status(std::string_view status) {
  (void)sd_notifyf(0, "STATUS=%.*s", static_cast<int>(status.size()), status.data());
}

void notify_reloading() {
  struct timespec ts {};
  (void)::clock_gettime(CLOCK_MONOTONIC, &ts);
  const unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL +
                                  static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  (void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

void notify_stopping() { (void)sd_notify(0, "STOPPING=1"); }

void notify_watchdog() { (void)sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(1, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace tg::daemon
