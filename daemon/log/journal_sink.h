#pragma once

#include <string>
#include <utility>
#include <vector>

#include <spdlog/common.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

namespace tg::daemon {

struct LogFields;

// The syslog priority (journal PRIORITY=) of a spdlog level: trace and debug are 7 (debug),
// info 6, warn 4, err 3, critical 2.
[[nodiscard]] int journal_priority(spdlog::level::level_enum level);

// The journal fields ("NAME=value") of one message: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
// CODE_FILE/CODE_LINE/CODE_FUNC when the message has a source location, and
// TASKGROUPD_TASK_ID, TASKGROUPD_GROUP, TASKGROUPD_UID for those of `fields` (may be null) that
// are set. MESSAGE and TASKGROUPD_GROUP are passed through printable(): one line each, capped.
[[nodiscard]] std::vector<std::string> journal_fields(const spdlog::details::log_msg& msg,
                                                      const LogFields* fields,
                                                      const std::string& identifier);

// A spdlog sink that sends each message to journald with sd_journal_sendv, with the fields of
// the LogFieldsScope it was logged in. Used by init_logging() when stderr is the journal.
// Single-threaded (null_mutex), like the daemon. If journald refuses a message, the message goes
// to stderr (the journal's stream, usually) instead of being lost.
class JournalSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit JournalSink(std::string identifier) : identifier_(std::move(identifier)) {}

 private:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

  // Constant after construction.
  const std::string identifier_;
};

}  // namespace tg::daemon
