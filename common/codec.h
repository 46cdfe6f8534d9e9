#pragma once

// JSON-RPC 2.0 encoding and decoding for both sides. Nothing here throws: malformed input
// becomes an Error with the JSON-RPC code to answer it with.

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/protocol.h"

namespace tg::proto {

// A request line as the daemon sees it. `id` is null when the line had none or could not be
// parsed; `notification` is true only for a well-formed request without an id (no reply).
struct IncomingRequest {
  nlohmann::json id;
  bool notification = false;
  Result<Request> request;
};

// Strict: unknown methods, unknown params, wrong types, out-of-range numbers, NUL bytes in
// argv/env/cwd and bad group names are errors naming the offending field.
[[nodiscard]] IncomingRequest decode_request(std::string_view line);

// Replies and notifications: compact JSON plus '\n'. Invalid UTF-8 is replaced, never thrown.
[[nodiscard]] std::string encode_result(const nlohmann::json& id, const nlohmann::json& result);
[[nodiscard]] std::string encode_error(const nlohmann::json& id, const Error& error);
[[nodiscard]] std::string encode_notification(std::string_view method,
                                              const nlohmann::json& params);
// A result too large to build at once, whose body is one array `key`: send `head`, then the
// elements as compact JSON separated by ',', then `tail` (which ends the line).
struct ResultFrame {
  std::string head;
  std::string tail;
};
[[nodiscard]] ResultFrame encode_result_frame(const nlohmann::json& id, std::string_view key);

// Client side.
[[nodiscard]] std::string encode_request(std::int64_t id, const Request& request);

// A line as the client sees it: a notification (method + params) or a reply to `id`.
struct IncomingReply {
  nlohmann::json id;
  std::string method;  // Non-empty for a notification.
  nlohmann::json params;
  Result<nlohmann::json> result;
};
[[nodiscard]] IncomingReply decode_reply(std::string_view line);

// Dumps without ever throwing (invalid UTF-8 becomes U+FFFD).
[[nodiscard]] std::string dump_json(const nlohmann::json& j);

// Decodes a result body into its struct; an Error (kInternal) if it does not fit.
template <class T>
[[nodiscard]] Result<T> decode_result(const nlohmann::json& j) {
  try {
    return j.get<T>();
  } catch (const nlohmann::json::exception& e) {
    return Error{Errc::kInternal, std::string("unexpected reply from daemon: ") + e.what()};
  }
}

}  // namespace tg::proto
