// The engine's other decisions, with FakeExecutor and virtual time: what starts when (limits,
// priorities, pause), timeouts, failed starts, and recovery after a crash.
#include <signal.h>

#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

using Ids = std::vector<proto::TaskId>;
using Signals = std::vector<int>;

void set_limit(EngineRig& rig, const std::string& group, std::int64_t limit) {
  proto::GroupSet set;
  set.group = {group, std::nullopt};
  set.limit = limit;
  REQUIRE_FALSE(rig.engine->group_set(kRoot, set).has_error());
  rig.settle();
}

}  // namespace

TEST_CASE("Engine: the global limit holds; each end starts the next queued task, FIFO") {
  EngineRig rig(rig_config(2));
  const auto ids = rig.submit("g", 5);
  CHECK(rig.exec.started == Ids{1, 2});
  rig.exec.finish(1, exit_code(0));
  rig.settle();
  CHECK(rig.exec.started == Ids{1, 2, 3});
  rig.exec.finish(3, exit_code(1));
  rig.exec.finish(2, exit_code(0));
  rig.settle();
  CHECK(rig.exec.started == Ids{1, 2, 3, 4, 5});
  CHECK(rig.state(1) == TaskState::kSucceeded);
  CHECK(rig.state(3) == TaskState::kFailed);
  CHECK(rig.task(3).exit_code == 1);
}

TEST_CASE("Engine: a group's limit defers its own tasks, not other groups'") {
  EngineRig rig(rig_config(4));
  set_limit(rig, "narrow", 1);
  rig.submit("narrow", 3);
  rig.submit("wide", 3);
  CHECK(rig.exec.started == Ids{1, 4, 5, 6});
  rig.exec.finish(1, exit_code(0));
  rig.settle();
  CHECK(rig.exec.started == Ids{1, 4, 5, 6, 2});
}

TEST_CASE("Engine: higher priority starts first, equal priority in submit order") {
  EngineRig rig(rig_config(1));
  rig.submit("g", 1);  // Takes the only slot.
  rig.submit("g", 2, with_priority(0));
  rig.submit("g", 1, with_priority(5));
  rig.exec.finish(1, exit_code(0));
  rig.settle();
  rig.exec.finish(4, exit_code(0));
  rig.settle();
  rig.exec.finish(2, exit_code(0));
  rig.settle();
  CHECK(rig.exec.started == Ids{1, 4, 2, 3});
}

TEST_CASE("Engine: a paused group starts nothing until it is resumed") {
  EngineRig rig;
  REQUIRE_FALSE(rig.engine->set_paused(kRoot, {"p", std::nullopt}, true).has_error());
  rig.submit("p", 2);
  CHECK(rig.exec.started.empty());
  REQUIRE_FALSE(rig.engine->set_paused(kRoot, {"p", std::nullopt}, false).has_error());
  rig.settle();
  CHECK(rig.exec.started == Ids{1, 2});
}

TEST_CASE(
    "Engine: a task over its timeout gets TERM, then SIGKILL after the grace, and ends "
    "timed_out") {
  EngineRig rig;
  rig.exec.ignores_stop = {1};
  const auto id = rig.submit_one("t", with_timeout(30'000));
  rig.advance(29'999ms);
  CHECK(rig.exec.signals_of(id).empty());
  rig.advance(1ms);
  CHECK(rig.exec.signals_of(id) == Signals{SIGTERM});
  rig.advance(10s);
  CHECK(rig.state(id) == TaskState::kTimedOut);
  CHECK(rig.reason(id) == "timed_out: exceeded 30s");
}

TEST_CASE("Engine: a timeout that comes during a cancel's grace changes nothing") {
  EngineRig rig;
  rig.exec.ignores_stop = {1};
  const auto id = rig.submit_one("t", with_timeout(5'000));
  rig.cancel_group("t", 10s);
  rig.advance(9'999ms);  // Past the timeout: no second TERM, no new grace.
  CHECK(rig.exec.signals_of(id) == Signals{SIGTERM});
  rig.advance(1ms);
  CHECK(rig.state(id) == TaskState::kCancelled);
}

TEST_CASE("Engine: a started task may run its command only once its start is in the store") {
  EngineRig rig(rig_config(2));
  std::vector<std::pair<proto::TaskId, TaskState>> at_release;  // Stored states, per release.
  rig.exec.on_release = [&] {
    auto stored = rig.store.load_tasks();
    REQUIRE_FALSE(stored.has_error());
    for (const Task& t : *stored) {
      if (rig.exec.held.contains(t.id)) at_release.emplace_back(t.id, t.state);
    }
  };
  rig.submit("g", 3);
  CHECK(rig.exec.started == Ids{1, 2});
  CHECK(rig.exec.held.empty());  // Released at the end of the turn that started them.
  rig.exec.finish(1, exit_code(0));
  rig.settle();  // The exit and the next start share one commit, then the release.
  CHECK(rig.exec.held.empty());
  using Stored = std::vector<std::pair<proto::TaskId, TaskState>>;
  CHECK(at_release ==
        Stored{{1, TaskState::kRunning}, {2, TaskState::kRunning}, {3, TaskState::kRunning}});
}

TEST_CASE("Engine: a task that cannot start fails with the reason, and the next one starts") {
  EngineRig rig(rig_config(1));
  rig.exec.refuse = {1};
  rig.submit("g", 2);
  CHECK(rig.state(1) == TaskState::kFailed);
  CHECK(rig.reason(1) == "failed to start: refused by the fake");
  CHECK(rig.exec.started == Ids{2});
}

TEST_CASE("Engine: a task that started but could not run its command fails without an exit code") {
  EngineRig rig;
  const auto id = rig.submit_one("g");
  rig.exec.fail_exec(id, "cannot execute 'nope': No such file or directory");
  rig.settle();
  CHECK(rig.state(id) == TaskState::kFailed);
  CHECK(rig.reason(id) == "failed to start: cannot execute 'nope': No such file or directory");
  CHECK_FALSE(rig.task(id).exit_code.has_value());  // The 127 was ours, not the command's.
}

TEST_CASE("Engine: a command's own exit code 127 is an ordinary failure") {
  EngineRig rig;
  const auto id = rig.submit_one("g");
  rig.exec.finish(id, exit_code(127));
  rig.settle();
  CHECK(rig.state(id) == TaskState::kFailed);
  CHECK(rig.task(id).exit_code == 127);
}

TEST_CASE("Engine: a task killed by a signal on its own fails, naming the signal") {
  EngineRig rig;
  const auto id = rig.submit_one("g");
  rig.exec.finish(id, killed_by(SIGSEGV));
  rig.settle();
  CHECK(rig.state(id) == TaskState::kFailed);
  CHECK(rig.reason(id) == "killed by signal 11 (SIGSEGV)");
}

TEST_CASE(
    "Engine recovery: tasks running at a crash are lost, or queued again with requeue; "
    "queued ones stay queued in order; what they left is reclaimed") {
  auto store = EngineRig::open_store();
  {
    EngineRig before(rig_config(2), store.get());
    before.submit("g", 1);
    before.submit("g", 1, with_requeue());
    before.submit("g", 2);
    REQUIRE(before.exec.started == Ids{1, 2});
    // The daemon dies here: nothing more reaches the store.
  }
  EngineRig after(rig_config(2), store.get());
  CHECK(after.state(1) == TaskState::kLost);
  CHECK(after.reason(1) == "lost: the daemon stopped while it was running");
  REQUIRE(after.exec.reclaimed.size() == 2);
  CHECK(after.exec.reclaimed[0].first == 1);
  CHECK(after.exec.reclaimed[0].second.pid == 10'001);
  CHECK(after.exec.reclaimed[0].second.boot_id == "fake-boot");
  // The requeued task runs again first, then the queued ones in their order.
  CHECK(after.exec.started == Ids{2, 3});
  CHECK(after.state(4) == TaskState::kQueued);
}

TEST_CASE("Engine: users are named through the directory, and unknown ones by their uid") {
  EngineRig rig;
  const auto id = rig.submit("g", 1, {}, kAlice).front();
  CHECK(rig.task(id).user == "alice");
  proto::Submit req;
  req.tasks = {argv_spec({"x"})};
  const auto stranger = rig.engine->submit(Peer{4242, 4242, 3}, req);
  REQUIRE_FALSE(stranger.has_error());
  CHECK(rig.task(stranger->ids.front()).user == "4242");
  const auto lookups = rig.users.lookups();
  for (int i = 0; i < 100; ++i) (void)rig.task(id);
  CHECK(rig.users.lookups() == lookups);  // Cached: no lookup per listed task.
}

TEST_CASE("Engine: what an ended task used is recorded with it, and status names the isolation") {
  EngineRig rig(rig_config(2));
  rig.submit("g", 2);
  CHECK_FALSE(rig.task(1).cpu_user_ms.has_value());  // Running: nothing known yet.
  rig.exec.usage = ResourceUsage{1000, 20, 1 << 20};
  rig.exec.finish(1, exit_code(0));
  rig.exec.usage = {};
  rig.exec.finish(2, exit_code(0));
  rig.settle();
  CHECK(rig.task(1).cpu_user_ms == 1000);
  CHECK(rig.task(1).cpu_system_ms == 20);
  CHECK(rig.task(1).memory_peak_bytes == 1 << 20);
  CHECK_FALSE(rig.task(2).cpu_user_ms.has_value());  // Not accounted: null.
  CHECK(rig.engine->status().isolation == "fake");
}

}  // namespace tg::daemon::testing
