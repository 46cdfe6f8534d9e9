#pragma once

// A protocol-level client on a socket that is already connected, e.g. by connect_as() with
// another user's credentials. RawClient (raw_client.h) is one that connects as the test process.

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "support/process.h"

namespace tg::test {

// Owns one non-blocking connected socket. Every read is bounded by a timeout; a reply that
// does not come in time fails the test. Not thread-safe; owned by one test.
class PeerClient {
 public:
  explicit PeerClient(Fd fd);  // REQUIREs a valid fd; makes it non-blocking.

  // Sends the bytes as they are (no newline added); false if the daemon hung up (EPIPE,
  // ECONNRESET) before taking all of them.
  bool send_raw(std::string_view bytes, milliseconds timeout = milliseconds(5'000));
  void send_line(std::string_view line);  // line + '\n'; REQUIREs it to be taken.
  void shutdown_write();                  // shutdown(SHUT_WR): the daemon reads EOF.

  // The next '\n'-terminated line (without it); nullopt if the daemon closed the connection
  // first. Fails the test if neither happens within `timeout`.
  [[nodiscard]] std::optional<std::string> read_line(milliseconds timeout = milliseconds(5'000));
  // read_line(), REQUIREd to be present and to parse as JSON.
  [[nodiscard]] nlohmann::json read_json(milliseconds timeout = milliseconds(5'000));
  // One request {"jsonrpc":"2.0","id":id,"method":method[,"params":params]}, one reply.
  [[nodiscard]] nlohmann::json call(std::string_view method, const nlohmann::json& params = nullptr,
                                    int id = 1);
  // True if the daemon has closed its end (EOF or reset) within `timeout`, reading and
  // dropping anything it sent first.
  [[nodiscard]] bool closed_by_peer(milliseconds timeout);

  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  Fd fd_;
  std::string buf_;  // Bytes read past the last line returned.
};

}  // namespace tg::test
