#include "client/workflow_options.h"

#include <CLI/CLI.hpp>

#include "client/start_time.h"
#include "common/duration.h"

namespace tg::client {

namespace {

const CLI::Validator kDurationText(
    [](const std::string& s) -> std::string {
      auto d = parse_duration(s);
      return d.has_error() ? d.error().message : "";
    },
    "");

std::int64_t ms(const std::string& text) { return (*parse_duration(text)).count(); }

}  // namespace

void WorkflowOptions::add_to(CLI::App& submit, ValueKinds& kinds) {
  const auto positive = CLI::PositiveNumber.description("");
  kinds.insert_or_assign(
      submit.add_option("--after", after_, "start only after these tasks have succeeded")
          ->delimiter(',')
          ->check(positive)
          ->type_name("ID[,ID...]"),
      ValueKind::kTask);
  kinds.insert_or_assign(
      submit.add_option("--after-any", after_any_, "start only after these tasks have ended")
          ->delimiter(',')
          ->check(positive)
          ->type_name("ID[,ID...]"),
      ValueKind::kTask);
  after_group_option_ =
      submit
          .add_option("--after-group", after_group_,
                      "start only after every task this group holds now has succeeded")
          ->type_name("GROUP");
  kinds.insert_or_assign(after_group_option_, ValueKind::kGroup);
  at_option_ = submit
                   .add_option("--at", at_,
                               "do not start before TIME: HH:MM (the next such local time) or "
                               "RFC 3339 (2026-12-24T18:00:00+01:00)")
                   ->type_name("TIME");
  delay_option_ = submit.add_option("--delay", delay_, "do not start before this long from now")
                      ->check(kDurationText)
                      ->type_name("DURATION");
  retries_option_ = submit
                        .add_option("--retries", retries_,
                                    "run it again, at most N more times, if it fails or times out")
                        ->check(CLI::Range(std::int64_t{0}, proto::kMaxRetries).description(""))
                        ->type_name("N");
  retry_delay_option_ =
      submit.add_option("--retry-delay", retry_delay_, "wait this long before each retry")
          ->check(kDurationText)
          ->type_name("DURATION");
}

void WorkflowOptions::apply(proto::TaskSpec& spec, TimeMs now) const {
  spec.after = after_;
  spec.after_any = after_any_;
  if (after_group_option_->count() > 0) {
    if (!proto::is_valid_group_name(after_group_)) {
      throw CLI::ValidationError("--after-group",
                                 "group names are 1-64 characters of A-Z a-z 0-9 _ . -");
    }
    spec.after_group = after_group_;
  }
  if (at_option_->count() > 0) {
    auto at = parse_start_time(at_, now);
    if (at.has_error()) throw CLI::ValidationError("--at", at.error().message);
    spec.begin_at = format_rfc3339(*at);
  }
  if (delay_option_->count() > 0) spec.delay_ms = ms(delay_);
  if (retries_option_->count() > 0) spec.retries = retries_;
  if (retry_delay_option_->count() > 0) spec.retry_delay_ms = ms(retry_delay_);
}

}  // namespace tg::client
