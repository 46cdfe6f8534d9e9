#include "client/connection.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>
#include <variant>

#include "common/codec.h"

namespace tg::client {

namespace {

constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr std::chrono::milliseconds kMaxPoll{60'000};  // One poll() while a deadline is far.

Error unavailable(std::string message) { return Error{Errc::kUnavailable, std::move(message)}; }

}  // namespace

Result<Connection> Connection::connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return unavailable("cannot connect to taskgroupd at '" + path +
                       "': not a valid socket path (empty, or over " +
                       std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  }
  path.copy(addr.sun_path, path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return unavailable(std::string("cannot create a socket: ") + ::strerror(errno));
  }
  int rc = 0;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    std::string message = "cannot connect to taskgroupd at '" + path + "': " + ::strerror(err);
    if (err == ENOENT || err == ECONNREFUSED) message += " (is taskgroupd running?)";
    return unavailable(std::move(message));
  }
  return Connection(std::move(fd), path);
}

Result<nlohmann::json> Connection::call(const proto::Request& request,
                                        const NotificationHandler* on_notification,
                                        const IdleHandler* on_idle) {
  const auto* logs = std::get_if<proto::Logs>(&request);
  const bool resend = !(logs && logs->follow);
  std::optional<std::chrono::steady_clock::time_point> deadline;  // From the first `restarting`.
  for (;;) {
    auto r = call_once(request, on_notification, on_idle);
    if (!resend || !r.has_error() || r.error().code != Errc::kRestarting) return r;
    const auto now = std::chrono::steady_clock::now();
    if (!deadline) deadline = now + kRestartWait;
    if (now > *deadline) return r;
    // The program that answered is about to be replaced; the socket stays, and what connects
    // meanwhile waits for the next program. Briefly, so as not to ask the old one again.
    ::poll(nullptr, 0, 50);
    if (auto c = reconnect(); c.has_error()) return c.error();
  }
}

Result<void> Connection::reconnect() {
  auto fresh = connect(path_);
  if (fresh.has_error()) return fresh.error();
  fd_ = std::move(fresh->fd_);
  lines_.clear();  // What the old connection still had buffered was not for this one.
  return {};
}

void Connection::wait_closed() {
  char chunk[kReadChunkBytes];
  for (;;) {
    const ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
    if (n == 0 || (n < 0 && errno != EINTR)) return;
  }
}

Result<nlohmann::json> Connection::call_once(const proto::Request& request,
                                             const NotificationHandler* on_notification,
                                             const IdleHandler* on_idle) {
  const std::int64_t id = next_id_++;
  const std::string line = proto::encode_request(id, request);
  if (auto sent = send_all(line); sent.has_error()) {
    // A daemon that refuses a connection (busy, another uid) answers at once and hangs up;
    // our send then fails, but its one line is still waiting to be read: that is the answer.
    auto refusal = read_line(0, nullptr);
    if (refusal.has_value()) {
      proto::IncomingReply reply = proto::decode_reply(*refusal);
      if (reply.method.empty() && reply.result.has_error()) return reply.result.error();
    }
    return sent.error();
  }
  for (;;) {
    auto got = read_line(line.size(), on_idle);
    if (got.has_error()) return got.error();
    proto::IncomingReply reply = proto::decode_reply(*got);
    if (!reply.method.empty()) {
      if (on_notification) (*on_notification)(reply.method, reply.params);
      continue;
    }
    // A null id is the daemon's answer to a request it could not read (or a line we could not
    // parse, which decode_reply turns into an error): either way, the answer to ours.
    if (reply.id == id || reply.id.is_null()) return std::move(reply.result);
    // Replies are in order and we send one request at a time, so another id is stale: skip it.
  }
}

Result<void> Connection::send(const proto::Request& request) {
  return send_all(proto::encode_request(next_id_++, request));
}

Result<std::vector<std::string>> Connection::receive() {
  char chunk[kReadChunkBytes];
  ssize_t n = 0;
  do {
    n = ::read(fd_.get(), chunk, sizeof chunk);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return unavailable("lost the connection to taskgroupd at '" + path_ +
                       "': " + ::strerror(errno));
  }
  if (n == 0) return unavailable("taskgroupd closed the connection");
  lines_.append(std::string_view(chunk, static_cast<std::size_t>(n)));
  std::vector<std::string> out;
  while (auto line = lines_.next_line()) out.push_back(std::move(*line));
  if (lines_.overflowed()) {
    return unavailable("a message from taskgroupd is over " + std::to_string(kMaxReplyBytes >> 20) +
                       " MiB; giving up");
  }
  return out;
}

Result<void> Connection::send_all(std::string_view bytes) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a daemon that went away is an error to report, not a SIGPIPE to die of.
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return unavailable("cannot send to taskgroupd at '" + path_ + "': " + ::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::string> Connection::read_line(std::size_t sent_bytes, const IdleHandler* on_idle) {
  char chunk[kReadChunkBytes];
  for (;;) {
    if (auto line = lines_.next_line()) return std::move(*line);
    if (lines_.overflowed()) {
      return unavailable("reply from taskgroupd is over " + std::to_string(kMaxReplyBytes >> 20) +
                         " MiB; giving up");
    }
    if (on_idle || deadline_) {
      auto wait = on_idle ? kIdleTick : kMaxPoll;
      if (deadline_) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            *deadline_ - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          deadline_passed_ = true;
          return unavailable("no reply from taskgroupd before the deadline");
        }
        wait = std::min(wait, left);
      }
      pollfd p{fd_.get(), POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(wait.count()));
      if (ready == 0) {
        if (on_idle) (*on_idle)();
        continue;
      }
      if (ready < 0 && errno == EINTR) continue;
      // Readable, hung up or failed: read() below tells which.
    }
    const ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return unavailable("lost the connection to taskgroupd at '" + path_ +
                         "': " + ::strerror(errno));
    }
    if (n == 0) {
      std::string message = "taskgroupd closed the connection before replying";
      // The daemon drops connections whose request it cannot frame (DESIGN.md, Protocol).
      if (sent_bytes > proto::kDefaultMaxFrameBytes) {
        message += " (the request was " + std::to_string(sent_bytes) +
                   " bytes; the daemon may refuse messages over max_message_bytes)";
      }
      return unavailable(std::move(message));
    }
    lines_.append(std::string_view(chunk, static_cast<std::size_t>(n)));
  }
}

}  // namespace tg::client
