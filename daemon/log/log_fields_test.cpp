#include "daemon/log/log_fields.h"

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include "daemon/model/group.h"
#include "daemon/model/task.h"

namespace tg::daemon {

namespace {

// What a sink saw of one message, with a copy of the fields it was logged with.
struct Seen {
  std::string text;
  spdlog::source_loc where;
  bool had_fields = false;
  std::optional<proto::TaskId> task_id;
  std::string group;
  std::optional<uid_t> uid;
};

class CaptureSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  std::vector<Seen> seen;

 private:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    Seen s;
    s.text.assign(msg.payload.data(), msg.payload.size());
    s.where = msg.source;
    if (const LogFields* f = LogFieldsScope::current()) {
      s.had_fields = true;
      s.task_id = f->task_id;
      s.group = std::string(f->group);
      s.uid = f->uid;
    }
    seen.push_back(std::move(s));
  }
  void flush_() override {}
};

// Makes a logger with `sink` the default logger for the length of a test.
class DefaultLogger {
 public:
  explicit DefaultLogger(spdlog::sink_ptr sink) : old_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("test", std::move(sink));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
  }
  ~DefaultLogger() { spdlog::set_default_logger(old_); }
  DefaultLogger(const DefaultLogger&) = delete;
  DefaultLogger& operator=(const DefaultLogger&) = delete;

 private:
  std::shared_ptr<spdlog::logger> old_;
};

Task make_task() {
  Task t;
  t.id = 17;
  t.uid = 1000;
  t.group = "nightly";
  return t;
}

}  // namespace

TEST_CASE("log_for: a task's message reaches the sink with its id, group, uid and place") {
  auto sink = std::make_shared<CaptureSink>();
  const DefaultLogger scope(sink);
  const Task t = make_task();
  const int line = __LINE__ + 1;
  log_for(t).info("task {} running pid={} group='{}'", t.id, 4242, t.group);
  REQUIRE(sink->seen.size() == 1);
  const Seen& s = sink->seen[0];
  CHECK(s.text == "task 17 running pid=4242 group='nightly'");
  CHECK(s.had_fields);
  CHECK(s.task_id == std::optional<proto::TaskId>(17));
  CHECK(s.group == "nightly");
  CHECK(s.uid == std::optional<uid_t>(1000));
  CHECK(std::string(s.where.filename).ends_with("daemon/log/log_fields_test.cpp"));
  CHECK(s.where.line == line);
  CHECK(std::string(s.where.funcname).size() > 0);
  CHECK(LogFieldsScope::current() == nullptr);  // Nothing outlives the call.
}

TEST_CASE("log_for: a group's message has its group and owner but no task id") {
  auto sink = std::make_shared<CaptureSink>();
  const DefaultLogger scope(sink);
  Group g;
  g.key = {0, "default"};
  log_for(g).warn("group '{}' uid={} paused", g.key.name, g.key.uid);
  REQUIRE(sink->seen.size() == 1);
  CHECK(sink->seen[0].had_fields);
  CHECK_FALSE(sink->seen[0].task_id.has_value());
  CHECK(sink->seen[0].group == "default");
  CHECK(sink->seen[0].uid == std::optional<uid_t>(0));
}

TEST_CASE(
    "log_for: plain spdlog calls carry no fields, and levels below the logger's are dropped") {
  auto sink = std::make_shared<CaptureSink>();
  const DefaultLogger scope(sink);
  const Task t = make_task();
  spdlog::info("ready");
  log_for(t).debug("task {} queued", t.id);  // The test logger is at info.
  REQUIRE(sink->seen.size() == 1);
  CHECK(sink->seen[0].text == "ready");
  CHECK_FALSE(sink->seen[0].had_fields);
}

TEST_CASE("LogFieldsScope: scopes nest, the innermost wins, and the outer comes back") {
  CHECK(LogFieldsScope::current() == nullptr);
  const LogFields outer{1, "a", 10};
  const LogFields inner{2, "b", 20};
  {
    const LogFieldsScope s1(outer);
    CHECK(LogFieldsScope::current() == &outer);
    {
      const LogFieldsScope s2(inner);
      CHECK(LogFieldsScope::current() == &inner);
    }
    CHECK(LogFieldsScope::current() == &outer);
  }
  CHECK(LogFieldsScope::current() == nullptr);
}

TEST_CASE("log_for: the stderr text is the same as spdlog::info's") {
  std::ostringstream with_fields, plain;
  const Task t = make_task();
  for (auto* out : {&with_fields, &plain}) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(*out);
    sink->set_pattern("%l %v");
    const DefaultLogger scope(sink);
    if (out == &with_fields) {
      log_for(t).info("task {} succeeded exit={}", t.id, 0);
    } else {
      spdlog::info("task {} succeeded exit={}", t.id, 0);
    }
  }
  CHECK(with_fields.str() == "info task 17 succeeded exit=0\n");
  CHECK(with_fields.str() == plain.str());
}

}  // namespace tg::daemon
