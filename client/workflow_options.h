#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/completions.h"
#include "common/protocol.h"
#include "common/time_format.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace tg::client {

// The options of `tgctl submit` that make workflows (usage.md "Workflows"): --after,
// --after-any, --after-group, --at, --delay, --retries, --retry-delay. Bound to the submit
// subcommand by add_to(), which records in `kinds` the options that name tasks and groups;
// after parsing, apply() puts what was given into the request.
class WorkflowOptions {
 public:
  void add_to(CLI::App& submit, ValueKinds& kinds);
  // Throws CLI::ValidationError for a start time that is not one (so tgctl exits 2).
  void apply(proto::TaskSpec& spec, TimeMs now) const;

 private:
  std::vector<proto::TaskId> after_;
  std::vector<proto::TaskId> after_any_;
  std::string after_group_;
  std::string at_;
  std::string delay_;
  std::int64_t retries_ = 0;
  std::string retry_delay_;
  CLI::Option* after_group_option_ = nullptr;
  CLI::Option* at_option_ = nullptr;
  CLI::Option* delay_option_ = nullptr;
  CLI::Option* retries_option_ = nullptr;
  CLI::Option* retry_delay_option_ = nullptr;
};

}  // namespace tg::client
