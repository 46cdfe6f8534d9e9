// The engine's decisions about a task's log cap (max_log_size, submit --max-log), with
// FakeExecutor and virtual time: which cap a task gets, and how it is stopped at the cap.
#include <signal.h>

#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

using Signals = std::vector<int>;

constexpr std::int64_t kMiB = 1 << 20;

proto::TaskSpec with_max_log(std::int64_t bytes) {
  proto::TaskSpec s;
  s.max_log_bytes = bytes;
  return s;
}

Config with_max_log_size(std::int64_t bytes) {
  Config c = rig_config();
  c.max_log_size = bytes;
  return c;
}

// The cap the executor was given for the task.
std::int64_t cap_of(EngineRig& rig, proto::TaskId id) {
  REQUIRE(rig.exec.is_running(id));
  return rig.exec.running.at(id).spec.max_log_bytes;
}

}  // namespace

TEST_CASE("Engine: a task's log cap is the smaller of its --max-log and max_log_size") {
  SUBCASE("max_log_size alone") {
    EngineRig rig(with_max_log_size(kMiB << 10));
    CHECK(cap_of(rig, rig.submit_one("g")) == kMiB << 10);
  }
  SUBCASE("a smaller --max-log wins") {
    EngineRig rig(with_max_log_size(kMiB << 10));
    CHECK(cap_of(rig, rig.submit_one("g", with_max_log(kMiB))) == kMiB);
  }
  SUBCASE("a larger --max-log cannot raise the daemon's cap") {
    EngineRig rig(with_max_log_size(kMiB));
    CHECK(cap_of(rig, rig.submit_one("g", with_max_log(kMiB << 10))) == kMiB);
  }
  SUBCASE("max_log_size 0 is no cap: --max-log alone, or none") {
    EngineRig rig(with_max_log_size(0));
    CHECK(cap_of(rig, rig.submit_one("g", with_max_log(5 * kMiB))) == 5 * kMiB);
    CHECK(cap_of(rig, rig.submit_one("g")) == 0);
  }
}

TEST_CASE("Engine: a task whose log passes its cap is stopped and ends failed, 'log exceeded'") {
  EngineRig rig;
  const auto id = rig.submit_one("g", with_max_log(kMiB));
  rig.exec.log_grows(id, kMiB);  // At the cap, not past it.
  rig.settle();
  CHECK(rig.exec.signals_of(id).empty());
  rig.exec.log_grows(id, kMiB + 4096);
  rig.settle();
  CHECK(rig.exec.signals_of(id) == Signals{SIGTERM});
  CHECK(rig.state(id) == TaskState::kFailed);
  CHECK(rig.reason(id) == "log exceeded 1M");
  CHECK(rig.task(id).signal == SIGTERM);
  CHECK(rig.exec.started.size() == 1);
}

TEST_CASE(
    "Engine: a task stopped for its log keeps the grace unless it writes another "
    "kLogStopSlack, then gets SIGKILL at once") {
  EngineRig rig;
  rig.exec.ignores_stop = {1};
  const auto id = rig.submit_one("g", with_max_log(kMiB));
  rig.exec.log_grows(id, 2 * kMiB);  // Found over the cap by this much.
  rig.settle();
  CHECK(rig.exec.signals_of(id) == Signals{SIGTERM});

  SUBCASE("a cleanup's few lines: the grace, then SIGKILL as for any stop") {
    rig.exec.log_grows(id, 2 * kMiB + Engine::kLogStopSlack);
    rig.advance(9'999ms);
    CHECK(rig.exec.signals_of(id) == Signals{SIGTERM});
    rig.advance(1ms);
    CHECK(rig.exec.signals_of(id) == Signals{SIGTERM, SIGKILL});
  }
  SUBCASE("writing on past the slack: SIGKILL without waiting for the grace") {
    rig.exec.log_grows(id, 2 * kMiB + Engine::kLogStopSlack + 1);
    rig.settle();
    CHECK(rig.exec.signals_of(id) == Signals{SIGTERM, SIGKILL});
    rig.exec.log_grows(id, 4 * kMiB + Engine::kLogStopSlack);  // Already killed: no more.
    CHECK(rig.exec.signals_of(id) == Signals{SIGTERM, SIGKILL});
  }
  CHECK(rig.state(id) == TaskState::kFailed);
  CHECK(rig.reason(id) == "log exceeded 1M");
  CHECK(rig.task(id).signal == SIGKILL);
}

TEST_CASE("Engine: a cancel during a log stop ends the task cancelled, and the reverse too") {
  EngineRig rig;
  rig.exec.ignores_stop = {1, 2};
  const auto first = rig.submit_one("first", with_max_log(kMiB));
  const auto second = rig.submit_one("second", with_max_log(kMiB));

  rig.exec.log_grows(first, 2 * kMiB);
  rig.settle();
  rig.cancel_group("first", 5s);  // Already stopping: no new signal, no new grace.
  CHECK(rig.exec.signals_of(first) == Signals{SIGTERM});

  rig.cancel_group("second", 5s);
  rig.exec.log_grows(second, 2 * kMiB);  // The cancel's stop stands.
  rig.settle();
  CHECK(rig.exec.signals_of(second) == Signals{SIGTERM});
  rig.exec.log_grows(second, 3 * kMiB + 1);  // But the log's bound holds during its grace too.
  rig.settle();
  CHECK(rig.exec.signals_of(second) == Signals{SIGTERM, SIGKILL});
  CHECK(rig.state(second) == TaskState::kCancelled);

  rig.advance(10s);
  CHECK(rig.state(first) == TaskState::kCancelled);
  CHECK(rig.reason(first) == "cancelled: group 'first' cancelled by uid 0");
  CHECK(rig.reason(second) == "cancelled: group 'second' cancelled by uid 0");
}

TEST_CASE(
    "Engine: a reload's max_log_size applies to tasks started after it, not to running ones") {
  EngineRig rig(with_max_log_size(kMiB << 10));
  const auto before = rig.submit_one("g");
  rig.engine->apply_config(with_max_log_size(kMiB));
  rig.settle();
  const auto after = rig.submit_one("g");
  CHECK(cap_of(rig, before) == kMiB << 10);
  CHECK(cap_of(rig, after) == kMiB);
  rig.exec.log_grows(before, 2 * kMiB);
  rig.settle();
  CHECK(rig.exec.signals_of(before).empty());
  CHECK(rig.state(before) == TaskState::kRunning);
}

TEST_CASE("Engine: a log-limit failure makes a fail-fast group cancel the rest") {
  EngineRig rig;
  proto::GroupSet set;
  set.group = {"ff", std::nullopt};
  set.fail_fast = true;
  REQUIRE_FALSE(rig.engine->group_set(kRoot, set).has_error());
  const auto ids = rig.submit("ff", 2, with_max_log(kMiB));
  rig.exec.log_grows(ids[0], 2 * kMiB);
  rig.settle();
  CHECK(rig.state(ids[0]) == TaskState::kFailed);
  CHECK(rig.state(ids[1]) == TaskState::kCancelled);
}

}  // namespace tg::daemon::testing
