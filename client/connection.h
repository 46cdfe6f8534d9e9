#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/line_buffer.h"
#include "common/error.h"
#include "common/protocol.h"
#include "common/unique_fd.h"

namespace tg::client {

// Called for each notification ("wait.progress", "logs.data") that arrives before the reply.
using NotificationHandler =
    std::function<void(std::string_view method, const nlohmann::json& params)>;

// Called about once a second while a call waits with nothing from the daemon (to tick a clock).
using IdleHandler = std::function<void()>;

// A blocking JSON-RPC connection to taskgroupd over its Unix socket, used by one thread for the
// life of one tgctl command. Every failure to reach the daemon or to hear its reply (refused,
// reset, closed early, unframeable) is Errc::kUnavailable; errors the daemon sends back keep the
// Errc of their error.data.kind.
class Connection {
 public:
  static constexpr std::size_t kMaxReplyBytes = std::size_t{64} << 20;

  [[nodiscard]] static Result<Connection> connect(const std::string& path);

  static constexpr std::chrono::milliseconds kIdleTick{1000};

  // Sends one request and blocks until its reply; notifications go to `on_notification` (or are
  // dropped if it is null). Returns the reply's result body. A daemon that answers
  // Errc::kRestarting is re-executing: the request is sent again, on a new connection, until
  // the next program answers it (for up to kRestartWait), except a `logs -f`, whose caller
  // knows the offset to go on from.
  [[nodiscard]] Result<nlohmann::json> call(const proto::Request& request,
                                            const NotificationHandler* on_notification = nullptr,
                                            const IdleHandler* on_idle = nullptr);

  // From now on, a call still waiting for its reply at `deadline` gives up: it fails with
  // Errc::kUnavailable and deadline_passed() is true. nullopt: no deadline (the default).
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline) {
    deadline_ = deadline;
  }
  [[nodiscard]] bool deadline_passed() const { return deadline_passed_; }

  // For a stream read by the caller's own poll() loop (tgctl top): send() writes a request and
  // returns at once; when fd() is readable, receive() reads once and returns the lines that are
  // complete. The daemon closing the connection is Errc::kUnavailable.
  [[nodiscard]] Result<void> send(const proto::Request& request);
  [[nodiscard]] Result<std::vector<std::string>> receive();
  [[nodiscard]] int fd() const { return fd_.get(); }
  // Another connection to the same socket, this one kept.
  [[nodiscard]] Result<Connection> another() const { return connect(path_); }

  // A new connection to the same socket in place of this one.
  [[nodiscard]] Result<void> reconnect();
  // Blocks until the daemon closes this connection (whatever it still sends is dropped).
  void wait_closed();

  static constexpr std::chrono::seconds kRestartWait{30};

 private:
  Connection(UniqueFd fd, std::string path)
      : fd_(std::move(fd)), path_(std::move(path)), lines_(kMaxReplyBytes) {}

  [[nodiscard]] Result<nlohmann::json> call_once(const proto::Request& request,
                                                 const NotificationHandler* on_notification,
                                                 const IdleHandler* on_idle);
  [[nodiscard]] Result<void> send_all(std::string_view bytes);
  [[nodiscard]] Result<std::string> read_line(std::size_t sent_bytes, const IdleHandler* on_idle);

  UniqueFd fd_;
  std::string path_;  // For messages.
  LineBuffer lines_;
  std::int64_t next_id_ = 1;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  bool deadline_passed_ = false;
};

}  // namespace tg::client
