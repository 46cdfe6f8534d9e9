#include "daemon/sys/systemd.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

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

bool is_listening_unix_socket(int fd) {
  return sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) > 0;
}

namespace {

// A STATUS= value is one line: a newline in it (a config error can quote the file) would start
// an assignment of its own, such as a forged READY=1 or MAINPID=.
std::string one_line(std::string_view status) {
  std::string line(status);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

}  // namespace

Notifier::Notifier(const std::string& path) {
  // "@name" is an abstract socket (a leading NUL); anything else a path.
  if (path.empty() || path.size() >= sizeof addr_.sun_path) return;
  if (path[0] != '/' && path[0] != '@') return;
  addr_.sun_family = AF_UNIX;
  std::memcpy(addr_.sun_path, path.data(), path.size());
  if (path[0] == '@') addr_.sun_path[0] = '\0';
  addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                     (path[0] == '@' ? 0 : 1));
  fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd_.valid()) spdlog::warn("cannot notify systemd: socket: {}", ::strerror(errno));
}

void Notifier::send(const std::string& message) {
  if (!fd_.valid()) return;
  // EAGAIN: the manager's queue is full; ECONNREFUSED: nobody listens. Dropped either way.
  (void)::sendto(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
}

void Notifier::ready(std::string_view status) { send("READY=1\nSTATUS=" + one_line(status)); }

void Notifier::status(std::string_view status) { send("STATUS=" + one_line(status)); }

void Notifier::reloading() {
  struct timespec ts {};
  (void)::clock_gettime(CLOCK_MONOTONIC, &ts);
  const unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL +
                                  static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void Notifier::stopping() { send("STOPPING=1"); }

void Notifier::watchdog() { send("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(1, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace tg::daemon
