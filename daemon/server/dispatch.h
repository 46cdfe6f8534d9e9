#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/protocol.h"
#include "daemon/engine/engine.h"
#include "daemon/log/rate_limit.h"
#include "daemon/model/peer.h"

namespace tg::daemon {

// A request that is answered later, by the session, after waiting for events.
struct PendingWait {
  nlohmann::json id;
  proto::Wait request;
};
struct PendingLogs {
  nlohmann::json id;
  proto::Logs request;
};
// A list without after_id: every match in one reply, which the session sends a page at a time.
struct PendingList {
  nlohmann::json id;
  proto::List request;
};
// A watch (tgctl top): frames until the client hangs up or the daemon stops.
struct PendingWatch {
  nlohmann::json id;
  proto::Watch request;
};
using Pending = std::variant<PendingWait, PendingLogs, PendingList, PendingWatch>;

// What one request line produced: a reply to write (empty for a notification), or a long
// request for the session to serve.
struct Dispatched {
  std::string reply;
  std::optional<Pending> pending;
};

// What a request may ask of the daemon itself (run.cpp), beyond the engine.
struct DaemonControl {
  // Re-reads the config file and applies it; the same path SIGHUP takes.
  std::function<proto::ReloadResult()> reload;
  // Begins a re-exec of the daemon's binary; the same path SIGUSR2 takes.
  std::function<Result<proto::ReexecResult>()> reexec;
};

// Request line -> reply. Plain and synchronous, so it is tested without Asio. Never throws:
// every bad line gets an error reply. A bad line is logged (at debug, escaped) through
// `bad_requests` if given, else not at all.
[[nodiscard]] Dispatched dispatch(Engine& engine, const DaemonControl& control, const Peer& peer,
                                  std::string_view line, LogRateLimit* bad_requests = nullptr);

// Reads up to `max_bytes` of a log file from `offset`; an empty string at its end.
[[nodiscard]] Result<std::string> read_log(const std::string& path, std::int64_t offset,
                                           std::size_t max_bytes);

}  // namespace tg::daemon
