#include "support/peer_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <doctest/doctest.h>

namespace tg::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

PeerClient::PeerClient(Fd fd) : fd_(std::move(fd)) {
  REQUIRE(fd_.valid());
  const int flags = ::fcntl(fd_.get(), F_GETFL);
  REQUIRE_MESSAGE((flags >= 0 && ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK) == 0),
                  "fcntl: " << last_error());
}

bool PeerClient::send_raw(std::string_view bytes, milliseconds timeout) {
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

void PeerClient::send_line(std::string_view line) {
  std::string framed(line);
  framed += '\n';
  REQUIRE_MESSAGE(send_raw(framed), "the daemon hung up while we sent: " << line.substr(0, 200));
}

void PeerClient::shutdown_write() {
  REQUIRE_MESSAGE(::shutdown(fd_.get(), SHUT_WR) == 0, "shutdown: " << last_error());
}

std::optional<std::string> PeerClient::read_line(milliseconds timeout) {
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
    REQUIRE_MESSAGE(::poll(&p, 1, remaining_ms(deadline)) != 0,
                    "no reply line within " << timeout.count() << " ms (have so far: '"
                                            << buf_.substr(0, 300) << "')");
  }
}

nlohmann::json PeerClient::read_json(milliseconds timeout) {
  const auto line = read_line(timeout);
  REQUIRE_MESSAGE(line.has_value(), "the daemon closed the connection instead of replying");
  auto j = nlohmann::json::parse(*line, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), "reply is not JSON: " << line->substr(0, 300));
  return j;
}

nlohmann::json PeerClient::call(std::string_view method, const nlohmann::json& params, int id) {
  nlohmann::json req = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) req["params"] = params;
  send_line(req.dump());
  return read_json();
}

bool PeerClient::closed_by_peer(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    char chunk[65536];
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n > 0) continue;  // Whatever it said before hanging up.
    if (n == 0 || errno == ECONNRESET) return true;
    REQUIRE_MESSAGE((errno == EAGAIN || errno == EINTR), "recv: " << last_error());
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) == 0) return false;
  }
}

}  // namespace tg::test
