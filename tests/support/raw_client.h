#pragma once

// A protocol-level client for tests that need to send what tgctl never would.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "support/process.h"

namespace tg::test {

// One connection to the daemon's socket. Every read is bounded by a timeout; a reply that does
// not come in time fails the test. Not thread-safe; owned by one test.
class RawClient {
 public:
  explicit RawClient(const std::string& socket_path);  // REQUIREs the connect to succeed.

  // Sends raw bytes as they are (no newline added). Returns false if the daemon has hung up
  // (EPIPE, ECONNRESET) before all of it was taken.
  bool send_raw(std::string_view bytes, milliseconds timeout = milliseconds(5'000));
  void send_line(std::string_view line);  // line + '\n'; REQUIREs it to be taken.

  // The next '\n'-terminated line (without it); nullopt if the daemon closed the connection
  // first. Fails the test if neither happens within `timeout`.
  [[nodiscard]] std::optional<std::string> read_line(milliseconds timeout = milliseconds(5'000));
  // read_line(), REQUIREd to be present and to parse as JSON.
  [[nodiscard]] nlohmann::json read_json(milliseconds timeout = milliseconds(5'000));
  // Sends {"jsonrpc":"2.0","id":id,"method":method[,"params":params]} and reads one reply.
  [[nodiscard]] nlohmann::json call(std::string_view method, const nlohmann::json& params = nullptr,
                                    int id = 1);

 private:
  Fd fd_;
  std::string buf_;  // Bytes read past the last line returned.
};

}  // namespace tg::test
