#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace tg {

// What went wrong, as both sides of the socket understand it. The JSON-RPC codes are fixed by
// the spec; the others travel as code -32000 with a stable string in error.data.kind.
enum class Errc {
  kParse,             // -32700: the line is not JSON.
  kInvalidRequest,    // -32600: JSON, but not a JSON-RPC 2.0 request.
  kMethodNotFound,    // -32601
  kInvalidParams,     // -32602: wrong, missing or unknown params.
  kInternal,          // -32603: a bug or an unexpected system error.
  kNotFound,          // No such task or group (or not yours to see).
  kGroupCancelling,   // The group is being cancelled; submits are refused until it is idle.
  kDraining,          // The daemon is draining; submits are refused.
  kPermissionDenied,  // The peer may not do this.
  kTooLarge,          // A frame or a batch is over its limit.
  kBusy,              // Too many connections, or a resource is exhausted for now.
  kIo,                // The store or the file system failed (disk full, read-only).
  // The store may or may not have kept the change: its fsync failed after the commit was
  // written. Only a restart tells (docs/protocol.md); the daemon saves nothing more meanwhile.
  kOutcomeUnknown,
  kUnavailable,  // Client side: the daemon cannot be reached.
  // The daemon is re-executing itself (tgctl reexec): the same request, sent again to the new
  // program in a moment, is answered (tgctl wait and logs -f do so themselves).
  kRestarting,
};

struct Error {
  Errc code = Errc::kInternal;
  std::string message;
};

template <class T = void>
using Result = boost::system::result<T, Error>;

// The JSON-RPC error code of an Errc.
[[nodiscard]] int rpc_code(Errc code);
// The stable string of error.data.kind ("not_found", ...).
[[nodiscard]] std::string_view kind_name(Errc code);
// The inverse of kind_name; kInternal for an unknown string.
[[nodiscard]] Errc errc_from_kind(std::string_view kind);
// An Errc from a JSON-RPC code and an optional kind string.
[[nodiscard]] Errc errc_from_rpc(int code, std::string_view kind);

// Thrown by Result::value() on an error; use value() in tests only.
class ErrorException : public std::runtime_error {
 public:
  explicit ErrorException(Error e) : std::runtime_error(e.message), error_(std::move(e)) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

// Found by boost::system::result through ADL.
[[noreturn]] inline void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw ErrorException(e);
}

}  // namespace tg
