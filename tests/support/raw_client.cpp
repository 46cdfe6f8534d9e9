#include "support/raw_client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include <doctest/doctest.h>

namespace tg::test {

Fd connect_unix(const std::string& path, bool non_blocking) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0), 0));
  REQUIRE_MESSAGE(fd.valid(), "socket: " << last_error());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  REQUIRE_MESSAGE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0,
                  "connect " << path << ": " << last_error());
  return fd;
}

RawClient::RawClient(const std::string& socket_path)
    : PeerClient(connect_unix(socket_path, true)) {}

}  // namespace tg::test
