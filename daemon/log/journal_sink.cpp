#include "daemon/log/journal_sink.h"

#include <sys/uio.h>
#include <syslog.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

// Without it, sd-journal.h turns each call into one with CODE_FILE= of this file; the fields
// name the log call's place, or none.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "daemon/log/log_fields.h"
#include "daemon/log/printable.h"

namespace tg::daemon {

int journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return LOG_DEBUG;
    case spdlog::level::info:
      return LOG_INFO;
    case spdlog::level::warn:
      return LOG_WARNING;
    case spdlog::level::err:
      return LOG_ERR;
    case spdlog::level::critical:
      return LOG_CRIT;
    case spdlog::level::off:  // Not a message level; spdlog never logs at it.
    case spdlog::level::n_levels:
      return LOG_INFO;
  }
  return LOG_INFO;
}

std::vector<std::string> journal_fields(const spdlog::details::log_msg& msg,
                                        const LogFields* fields, const std::string& identifier) {
  std::vector<std::string> out;
  out.reserve(9);
  // The same net as on stderr: journalctl prints a message with a newline as two lines, and
  // passes escape sequences to the terminal with --all.
  out.push_back("MESSAGE=" +
                printable({msg.payload.data(), msg.payload.size()}, kLoggedMessageBytes));
  out.push_back("PRIORITY=" + std::to_string(journal_priority(msg.level)));
  out.push_back("SYSLOG_IDENTIFIER=" + identifier);
  if (!msg.source.empty()) {
    out.push_back(std::string("CODE_FILE=") + msg.source.filename);
    out.push_back("CODE_LINE=" + std::to_string(msg.source.line));
    if (msg.source.funcname) out.push_back(std::string("CODE_FUNC=") + msg.source.funcname);
  }
  if (fields) {
    if (fields->task_id) out.push_back("TASKGROUPD_TASK_ID=" + std::to_string(*fields->task_id));
    if (!fields->group.empty()) out.push_back("TASKGROUPD_GROUP=" + printable(fields->group));
    if (fields->uid) out.push_back("TASKGROUPD_UID=" + std::to_string(*fields->uid));
  }
  return out;
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  const std::vector<std::string> fields =
      journal_fields(msg, LogFieldsScope::current(), identifier_);
  std::vector<iovec> iov;
  iov.reserve(fields.size());
  for (const std::string& f : fields) iov.push_back({const_cast<char*>(f.data()), f.size()});
  if (::sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
    // journald is gone or refused it: keep the line rather than throw from a log call.
    std::fprintf(stderr, "%.*s\n", static_cast<int>(msg.payload.size()), msg.payload.data());
  }
}

}  // namespace tg::daemon
