#include "daemon/server/listener.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "daemon/sys/state_dir.h"
#include "daemon/sys/systemd.h"

namespace tg::daemon {

namespace {

namespace fs = std::filesystem;
using Protocol = boost::asio::local::stream_protocol;

sockaddr_un address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);  // Length checked by load_config.
  return addr;
}

// True if a daemon accepts connections on `path`.
bool someone_listens(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  const sockaddr_un addr = address(path);
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}

Error sys_error(const std::string& what) {
  return Error{Errc::kIo, what + ": " + std::strerror(errno)};
}

// Only a socket that nobody answers on is ever removed: a regular file, a symlink, a directory
// or a FIFO at the path is refused and left as it is (a mistyped --socket must not delete a
// file). lstat: a symlink is judged itself, never what it points to.
Result<void> remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return sys_error("cannot inspect '" + path + "'");
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Error{Errc::kIo, "'" + path + "' exists and is not a socket; refusing to replace it"};
  }
  if (someone_listens(path)) {
    return Error{Errc::kBusy, "another taskgroupd is already listening on '" + path + "'"};
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return sys_error("cannot remove stale socket '" + path + "'");
  }
  spdlog::info("replaced stale socket '{}'", path);
  return {};
}

}  // namespace

Result<Listener> adopt_listener(boost::asio::io_context& ioc, int fd, std::string path,
                                std::string owned_path) {
  // Close-on-exec again: it is ours now, until the next re-exec hands it on.
  if (fd < 0 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || !is_listening_unix_socket(fd)) {
    if (fd >= 0) ::close(fd);
    return Error{Errc::kInternal, "the handed-over fd " + std::to_string(fd) +
                                      " is not a listening Unix stream socket"};
  }
  spdlog::info("listening on the handed-over socket (fd {}) '{}'", fd, path);
  return Listener{Protocol::acceptor(ioc, Protocol(), fd), std::move(owned_path), std::move(path)};
}

Result<Listener> open_listener(boost::asio::io_context& ioc, const Config& config) {
  if (auto fd = listen_fd_from_systemd()) {
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    std::string path;
    if (::getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        len > offsetof(sockaddr_un, sun_path) && addr.sun_path[0] != '\0') {
      path.assign(addr.sun_path, ::strnlen(addr.sun_path, sizeof addr.sun_path));
    }
    spdlog::info("listening on the socket systemd passed (fd {}) '{}'", *fd, path);
    return Listener{Protocol::acceptor(ioc, Protocol(), *fd), "", path};
  }
  const std::string& path = config.socket;
  const bool root = ::geteuid() == 0;
  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return Error{Errc::kIo, "cannot create '" + dir.string() + "': " + ec.message()};
    (void)::chmod(dir.c_str(), root ? 0755 : 0700);  // Best effort; the socket mode protects.
  } else if (!dir.empty()) {
    // Someone who may write the directory may replace our socket with theirs and read what
    // clients send. A sticky one (/tmp) is fine: others cannot remove or rename our socket.
    if (auto r = check_dir_is_ours(dir, "socket directory", /*sticky_ok=*/true); r.has_error()) {
      return r.error();
    }
  }
  if (auto r = remove_stale_socket(path); r.has_error()) return r.error();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sys_error("socket");
  const sockaddr_un addr = address(path);
  // Created with no permissions for anyone else, then opened up as far as intended: there is
  // never a moment where the socket is connectable by others.
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (bound != 0) return sys_error("cannot bind '" + path + "'");
  if (root) {
    if (const struct group* g = ::getgrnam("taskgroupd")) {
      if (::chown(path.c_str(), 0, g->gr_gid) != 0 || ::chmod(path.c_str(), 0660) != 0) {
        return sys_error("cannot give '" + path + "' to group taskgroupd");
      }
    }
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) return sys_error("listen on '" + path + "'");
  spdlog::info("listening on '{}'", path);
  return Listener{Protocol::acceptor(ioc, Protocol(), fd.release()), path, path};
}

}  // namespace tg::daemon
