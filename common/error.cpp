#include "common/error.h"

namespace tg {

int rpc_code(Errc code) {
  switch (code) {
    case Errc::kParse:
      return -32700;
    case Errc::kInvalidRequest:
      return -32600;
    case Errc::kMethodNotFound:
      return -32601;
    case Errc::kInvalidParams:
      return -32602;
    case Errc::kInternal:
      return -32603;
    case Errc::kNotFound:
    case Errc::kGroupCancelling:
    case Errc::kDraining:
    case Errc::kPermissionDenied:
    case Errc::kTooLarge:
    case Errc::kBusy:
    case Errc::kIo:
    case Errc::kOutcomeUnknown:
    case Errc::kUnavailable:
    case Errc::kRestarting:
      return -32000;
  }
  return -32603;
}

std::string_view kind_name(Errc code) {
  switch (code) {
    case Errc::kParse:
      return "parse_error";
    case Errc::kInvalidRequest:
      return "invalid_request";
    case Errc::kMethodNotFound:
      return "method_not_found";
    case Errc::kInvalidParams:
      return "invalid_params";
    case Errc::kInternal:
      return "internal";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kGroupCancelling:
      return "group_cancelling";
    case Errc::kDraining:
      return "draining";
    case Errc::kPermissionDenied:
      return "permission_denied";
    case Errc::kTooLarge:
      return "too_large";
    case Errc::kBusy:
      return "busy";
    case Errc::kIo:
      return "io";
    case Errc::kOutcomeUnknown:
      return "outcome_unknown";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kRestarting:
      return "restarting";
  }
  return "internal";
}

Errc errc_from_kind(std::string_view kind) {
  for (Errc c : {Errc::kParse, Errc::kInvalidRequest, Errc::kMethodNotFound, Errc::kInvalidParams,
                 Errc::kNotFound, Errc::kGroupCancelling, Errc::kDraining, Errc::kPermissionDenied,
                 Errc::kTooLarge, Errc::kBusy, Errc::kIo, Errc::kOutcomeUnknown, Errc::kUnavailable,
                 Errc::kRestarting}) {
    if (kind_name(c) == kind) return c;
  }
  return Errc::kInternal;
}

Errc errc_from_rpc(int code, std::string_view kind) {
  switch (code) {
    case -32700:
      return Errc::kParse;
    case -32600:
      return Errc::kInvalidRequest;
    case -32601:
      return Errc::kMethodNotFound;
    case -32602:
      return Errc::kInvalidParams;
    default:
      return errc_from_kind(kind);
  }
}

}  // namespace tg
