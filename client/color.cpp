#include "client/color.h"

namespace tg::client {

bool use_color(bool is_tty, std::string_view no_color) { return is_tty && no_color.empty(); }

std::string_view state_sgr(proto::TaskState state) {
  switch (state) {
    case proto::TaskState::kSucceeded:
      return kSgrGreen;
    case proto::TaskState::kFailed:
    case proto::TaskState::kTimedOut:
    case proto::TaskState::kLost:
      return kSgrRed;
    case proto::TaskState::kRunning:
      return kSgrCyan;
    case proto::TaskState::kCancelled:
    case proto::TaskState::kInterrupted:
      return kSgrYellow;
    case proto::TaskState::kInvalid:
    case proto::TaskState::kQueued:
      return "";
  }
  return "";
}

std::string paint(std::string_view text, std::string_view sgr, bool on) {
  if (!on || sgr.empty() || text.empty()) return std::string(text);
  std::string out = "\x1b[";
  out += sgr;
  out += 'm';
  out += text;
  out += "\x1b[0m";
  return out;
}

std::string state_word(proto::TaskState state, bool on) {
  return paint(proto::to_string(state), state_sgr(state), on);
}

}  // namespace tg::client
