#include "client/cli_values.h"

#include <charconv>
#include <cstdint>
#include <string>
#include <system_error>

#include "common/duration.h"
#include "common/protocol.h"
#include "common/signal_name.h"
#include "common/size.h"

namespace tg::client {

const CLI::Validator kGroupName(
    [](const std::string& s) -> std::string {
      return proto::is_valid_group_name(s) ? ""
                                           : "group names are 1-64 characters of A-Z a-z 0-9 _ . -";
    },
    "");

const CLI::Validator kDuration(
    [](const std::string& s) -> std::string {
      auto d = parse_duration(s);
      return d.has_error() ? d.error().message : "";
    },
    "");

const CLI::Validator kSize(
    [](const std::string& s) -> std::string {
      auto n = parse_size(s);
      return n.has_error() ? n.error().message : "";
    },
    "");

const CLI::Validator kState(
    [](const std::string& s) -> std::string {
      if (proto::task_state_from_string(s) != proto::TaskState::kInvalid) return "";
      return "unknown state '" + s +
             "' (queued, running, succeeded, failed, timed_out, cancelled, interrupted, lost)";
    },
    "");

const CLI::Validator kSignal(
    [](const std::string& s) -> std::string {
      if (signal_from_text(s)) return "";
      return "unknown signal '" + s +
             "' (a name such as USR1, SIGUSR1, HUP, STOP, CONT, or a number 1-64)";
    },
    "");

const CLI::Validator kEndedState(
    [](const std::string& s) -> std::string {
      const auto st = proto::task_state_from_string(s);
      if (st != proto::TaskState::kInvalid && proto::is_terminal(st)) return "";
      return "'" + s +
             "' is not the state of an ended task (succeeded, failed, timed_out, cancelled, "
             "interrupted, lost)";
    },
    "");

// The values the completion scripts offer for --state (only ended ones for restart) and --signal.
std::vector<std::string> state_words(bool ended_only) {
  std::vector<std::string> out;
  for (auto s = proto::TaskState::kQueued; s <= proto::TaskState::kLost;
       s = static_cast<proto::TaskState>(static_cast<int>(s) + 1)) {
    if (!ended_only || proto::is_terminal(s)) out.emplace_back(proto::to_string(s));
  }
  return out;
}
std::vector<std::string> signal_words() {
  std::vector<std::string> out;
  for (int sig = 1; sig < 32; ++sig) out.push_back(signal_text(sig));  // The named ones.
  return out;
}

// KEY=VALUE, as the daemon takes labels.
const CLI::Validator kLabel(
    [](const std::string& s) -> std::string {
      const std::size_t eq = s.find('=');
      if (eq == std::string::npos || !proto::is_valid_label_key(s.substr(0, eq))) {
        return "labels are KEY=VALUE, KEY 1-64 characters of A-Z a-z 0-9 _ . -";
      }
      if (s.size() - eq - 1 > proto::kMaxLabelValueBytes) {
        return "label values are at most " + std::to_string(proto::kMaxLabelValueBytes) + " bytes";
      }
      return "";
    },
    "");

const CLI::Validator kSubmitKey(
    [](const std::string& s) -> std::string {
      if (!s.empty() && s.size() <= proto::kMaxSubmitKeyBytes) return "";
      return "a key is 1-" + std::to_string(proto::kMaxSubmitKeyBytes) + " bytes (this one has " +
             std::to_string(s.size()) + ")";
    },
    "");

// Task ids and --limit N.
const CLI::Validator kPositive(
    [](const std::string& s) -> std::string {
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec == std::errc() && end == s.data() + s.size() && n > 0) return "";
      return "'" + s + "' is not a positive integer";
    },
    "");

}  // namespace tg::client
