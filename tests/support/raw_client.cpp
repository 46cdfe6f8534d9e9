#include "support/raw_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include <doctest/doctest.h>

namespace tg::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

RawClient::RawClient(const std::string& socket_path)
    : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {
  REQUIRE_MESSAGE(fd_.valid(), "socket: " << last_error());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(socket_path.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  // A Unix socket connect completes at once (or fails) even when non-blocking: the listener
  // is already there, so there is nothing to retry.
  REQUIRE_MESSAGE(::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0,
                  "connect " << socket_path << ": " << last_error());
}

bool RawClient::send_raw(std::string_view bytes, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EPIPE || errno == ECONNRESET) return false;
    REQUIRE_MESSAGE((errno == EAGAIN || errno == EINTR), "send: " << last_error());
    pollfd p{fd_.get(), POLLOUT, 0};
    REQUIRE_MESSAGE(::poll(&p, 1, remaining_ms(deadline)) != 0,
                    "the daemon took none of " << bytes.size() << " more bytes for "
                                               << timeout.count() << " ms");
  }
  return true;
}

void RawClient::send_line(std::string_view line) {
  std::string framed(line);
  framed += '\n';
  REQUIRE_MESSAGE(send_raw(framed), "the daemon hung up while we sent: " << line);
}

std::optional<std::string> RawClient::read_line(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    char chunk[65536];
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || errno == ECONNRESET) return std::nullopt;  // Closed by the daemon.
    REQUIRE_MESSAGE((errno == EAGAIN || errno == EINTR), "recv: " << last_error());
    pollfd p{fd_.get(), POLLIN, 0};
    REQUIRE_MESSAGE(
        ::poll(&p, 1, remaining_ms(deadline)) != 0,
        "no reply line within " << timeout.count() << " ms (have so far: '" << buf_ << "')");
  }
}

nlohmann::json RawClient::read_json(milliseconds timeout) {
  const auto line = read_line(timeout);
  REQUIRE_MESSAGE(line.has_value(), "the daemon closed the connection instead of replying");
  auto j = nlohmann::json::parse(*line, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), "reply is not JSON: " << *line);
  return j;
}

nlohmann::json RawClient::call(std::string_view method, const nlohmann::json& params, int id) {
  nlohmann::json req = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) req["params"] = params;
  send_line(req.dump());
  return read_json();
}

}  // namespace tg::test
