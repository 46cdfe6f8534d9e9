#include "daemon/log/journal_sink.h"

#include <syslog.h>

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "daemon/log/log_fields.h"

namespace tg::daemon {

namespace {

using Fields = std::vector<std::string>;

spdlog::details::log_msg message(spdlog::level::level_enum level, std::string_view text,
                                 spdlog::source_loc where = {}) {
  return spdlog::details::log_msg(where, "taskgroupd", level, text);
}

}  // namespace

TEST_CASE("journal_priority: spdlog levels map to syslog priorities") {
  CHECK(journal_priority(spdlog::level::trace) == LOG_DEBUG);
  CHECK(journal_priority(spdlog::level::debug) == LOG_DEBUG);
  CHECK(journal_priority(spdlog::level::info) == LOG_INFO);
  CHECK(journal_priority(spdlog::level::warn) == LOG_WARNING);
  CHECK(journal_priority(spdlog::level::err) == LOG_ERR);
  CHECK(journal_priority(spdlog::level::critical) == LOG_CRIT);
  // The numbers journalctl -p filters on.
  CHECK(journal_priority(spdlog::level::warn) == 4);
  CHECK(journal_priority(spdlog::level::critical) == 2);
}

TEST_CASE("journal_fields: a message about nothing in particular has only the basic fields") {
  const Fields got =
      journal_fields(message(spdlog::level::info, "listening on '/run/x.sock'"), nullptr, "tgd");
  CHECK(got == Fields{"MESSAGE=listening on '/run/x.sock'", "PRIORITY=6", "SYSLOG_IDENTIFIER=tgd"});
}

TEST_CASE("journal_fields: a message about a task carries its id, group and uid") {
  const LogFields fields{42, "nightly", 1000};
  SUBCASE("with a source location") {
    const Fields got = journal_fields(
        message(spdlog::level::warn, "task 42 failed to start: no such file",
                spdlog::source_loc{"daemon/engine.cpp", 349, "void Engine::start(Task&)"}),
        &fields, "taskgroupd");
    CHECK(got == Fields{"MESSAGE=task 42 failed to start: no such file", "PRIORITY=4",
                        "SYSLOG_IDENTIFIER=taskgroupd", "CODE_FILE=daemon/engine.cpp",
                        "CODE_LINE=349", "CODE_FUNC=void Engine::start(Task&)",
                        "TASKGROUPD_TASK_ID=42", "TASKGROUPD_GROUP=nightly",
                        "TASKGROUPD_UID=1000"});
  }
  SUBCASE("without one: no CODE_ fields") {
    const Fields got =
        journal_fields(message(spdlog::level::info, "task 42 running"), &fields, "taskgroupd");
    CHECK(got == Fields{"MESSAGE=task 42 running", "PRIORITY=6", "SYSLOG_IDENTIFIER=taskgroupd",
                        "TASKGROUPD_TASK_ID=42", "TASKGROUPD_GROUP=nightly",
                        "TASKGROUPD_UID=1000"});
  }
}

TEST_CASE("journal_fields: a message about a group has no task id; uid 0 is still written") {
  const LogFields fields{std::nullopt, "default", 0};
  const Fields got =
      journal_fields(message(spdlog::level::info, "group 'default' uid=0 paused"), &fields, "t");
  CHECK(got == Fields{"MESSAGE=group 'default' uid=0 paused", "PRIORITY=6", "SYSLOG_IDENTIFIER=t",
                      "TASKGROUPD_GROUP=default", "TASKGROUPD_UID=0"});
}

TEST_CASE("journal_fields: a multi-line message stays one MESSAGE field, escaped and capped") {
  const Fields got = journal_fields(message(spdlog::level::err, "a\nb\x1b[2J"), nullptr, "t");
  REQUIRE(got.size() == 3);
  CHECK(got[0] == "MESSAGE=a\\nb\\x1b[2J");
  CHECK(got[1] == "PRIORITY=3");
  const std::string huge(100'000, 'x');
  const Fields capped = journal_fields(message(spdlog::level::warn, huge), nullptr, "t");
  CHECK(capped[0].size() < 5000);
  CHECK(capped[0].ends_with("bytes]"));
}

TEST_CASE("journal_fields: a group field cannot carry a control character") {
  const LogFields fields{std::nullopt, "bad\ngroup", 0};
  const Fields got = journal_fields(message(spdlog::level::info, "m"), &fields, "t");
  CHECK(got.at(3) == "TASKGROUPD_GROUP=bad\\ngroup");
}

}  // namespace tg::daemon
