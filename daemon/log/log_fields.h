#pragma once

#include <sys/types.h>

#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/protocol.h"

namespace tg::daemon {

struct Task;
struct Group;

// What a log message is about, for the journal: JournalSink writes these as TASKGROUPD_TASK_ID=,
// TASKGROUPD_GROUP= and TASKGROUPD_UID= (docs/systemd.md), so `journalctl -u taskgroupd
// TASKGROUPD_GROUP=nightly` finds a group's story. Absent members are not written. stderr
// output ignores them: the text of a message already names its task and group.
struct LogFields {
  std::optional<proto::TaskId> task_id;
  std::string_view group;    // Empty: none. A view: the fields live only for one log call.
  std::optional<uid_t> uid;  // The task's submitter, which is the group's owner.
};

[[nodiscard]] LogFields log_fields(const Task& t);
[[nodiscard]] LogFields log_fields(const Group& g);

// Makes `fields` the fields of every message logged on this thread while it lives; nests (the
// innermost wins) and restores the outer fields when it ends. The channel from a log call to the
// sink: spdlog's log_msg has no room for them. thread_local, though the daemon logs from its one
// thread only; outside a scope there are no fields.
class LogFieldsScope {
 public:
  explicit LogFieldsScope(const LogFields& fields);
  ~LogFieldsScope();
  LogFieldsScope(const LogFieldsScope&) = delete;
  LogFieldsScope& operator=(const LogFieldsScope&) = delete;

  // The fields of the message being logged now, or nullptr.
  [[nodiscard]] static const LogFields* current();

 private:
  const LogFields* const outer_;
};

// A format string with the place it was written: a log call through log_for() reaches the
// journal with CODE_FILE=, CODE_LINE= and CODE_FUNC=. Checked at compile time like spdlog's own.
// The builtins rather than std::source_location: clang 14 (the fuzzer's compiler) cannot use
// libstdc++ 12's.
template <class... Args>
struct FormatAt {
  template <class S>
  consteval FormatAt(const S& s, const char* file = __builtin_FILE(), int line = __builtin_LINE(),
                     const char* function = __builtin_FUNCTION())
      : fmt(s), where{file, line, function} {}
  spdlog::format_string_t<Args...> fmt;
  spdlog::source_loc where;
};

// The default logger, for one message about a task or a group:
//   log_for(t).info("task {} running pid={} group='{}'", t.id, t.pid, t.group);
// The same text as spdlog::info(); the journal gets the fields of `t` beside it.
class FieldLogger {
 public:
  explicit FieldLogger(LogFields fields) : fields_(fields) {}

  template <class... Args>
  void log(spdlog::level::level_enum level, FormatAt<std::type_identity_t<Args>...> fmt,
           Args&&... args) const {
    spdlog::logger* logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    const LogFieldsScope scope(fields_);
    logger->log(fmt.where, level, fmt.fmt, std::forward<Args>(args)...);
  }
  template <class... Args>
  void debug(FormatAt<std::type_identity_t<Args>...> fmt, Args&&... args) const {
    log(spdlog::level::debug, fmt, std::forward<Args>(args)...);
  }
  template <class... Args>
  void info(FormatAt<std::type_identity_t<Args>...> fmt, Args&&... args) const {
    log(spdlog::level::info, fmt, std::forward<Args>(args)...);
  }
  template <class... Args>
  void warn(FormatAt<std::type_identity_t<Args>...> fmt, Args&&... args) const {
    log(spdlog::level::warn, fmt, std::forward<Args>(args)...);
  }
  template <class... Args>
  void error(FormatAt<std::type_identity_t<Args>...> fmt, Args&&... args) const {
    log(spdlog::level::err, fmt, std::forward<Args>(args)...);
  }
  template <class... Args>
  void critical(FormatAt<std::type_identity_t<Args>...> fmt, Args&&... args) const {
    log(spdlog::level::critical, fmt, std::forward<Args>(args)...);
  }

 private:
  const LogFields fields_;
};

// Use in one full expression only: the fields view the task's or group's strings.
[[nodiscard]] inline FieldLogger log_for(const Task& t) { return FieldLogger(log_fields(t)); }
[[nodiscard]] inline FieldLogger log_for(const Group& g) { return FieldLogger(log_fields(g)); }

}  // namespace tg::daemon
