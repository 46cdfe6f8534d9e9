// The engine's cancel decisions, with FakeExecutor and virtual time (no processes, no sleeps).
#include <signal.h>

#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

using Signals = std::vector<int>;

}  // namespace

TEST_CASE(
    "Engine: queued tasks of a cancelled group never start; running ones get TERM, the "
    "grace, then SIGKILL") {
  EngineRig rig(rig_config(2));
  rig.exec.ignores_stop = {1, 2};
  const auto ids = rig.submit("g", 4);
  REQUIRE(rig.exec.started == std::vector<proto::TaskId>{1, 2});

  const auto out = rig.cancel_group("g", 10s);
  CHECK(out.cancelled_queued == 2);
  CHECK(out.signalled == 2);
  CHECK(out.killed == 0);
  CHECK(rig.state(3) == TaskState::kCancelled);
  CHECK(rig.state(4) == TaskState::kCancelled);
  CHECK(rig.exec.signals_of(1) == Signals{SIGTERM});
  CHECK(rig.group("g").cancelling);

  rig.advance(9'999ms);  // Not a millisecond early.
  CHECK(rig.exec.signals_of(1) == Signals{SIGTERM});
  CHECK(rig.state(1) == TaskState::kRunning);
  rig.advance(1ms);
  CHECK(rig.exec.signals_of(1) == Signals{SIGTERM, SIGKILL});
  CHECK(rig.exec.signals_of(2) == Signals{SIGTERM, SIGKILL});
  for (auto id : ids) CHECK(rig.state(id) == TaskState::kCancelled);
  CHECK(rig.reason(1) == "cancelled: group 'g' cancelled by uid 0");
  CHECK(rig.task(1).signal == SIGKILL);
  // The queued ones never started, not even after slots came free.
  CHECK(rig.exec.started == std::vector<proto::TaskId>{1, 2});
  const auto g = rig.group("g");
  CHECK_FALSE(g.cancelling);
  REQUIRE(g.last_cancel);
  CHECK(g.last_cancel->cancelled_queued == 2);
  CHECK(g.last_cancel->signalled == 2);
  CHECK(g.last_cancel->killed == 2);
}

TEST_CASE("Engine: a task that dies of TERM ends the cancel at once, without waiting the grace") {
  EngineRig rig;
  const auto id = rig.submit_one("g");
  rig.cancel_group("g", 10s);
  CHECK(rig.state(id) == TaskState::kCancelled);
  CHECK(rig.task(id).signal == SIGTERM);
  CHECK_FALSE(rig.group("g").cancelling);
  CHECK(rig.group("g").last_cancel->killed == 0);
  CHECK(rig.clock.armed() == 1);  // Only the hourly prune: no grace left waiting.
}

TEST_CASE("Engine: a second cancel keeps the first reason and grace; --force kills now") {
  EngineRig rig;
  rig.exec.ignores_stop = {1};
  const auto id = rig.submit_one("g");
  rig.cancel_group("g", 10s);
  rig.advance(6s);
  SUBCASE("without force: nothing changes, the grace runs out at 10 s") {
    const auto again = rig.cancel_group("g", 1s);
    CHECK(again.signalled == 0);
    rig.advance(3'999ms);
    CHECK(rig.state(id) == TaskState::kRunning);
    rig.advance(1ms);
    CHECK(rig.state(id) == TaskState::kCancelled);
  }
  SUBCASE("with force: SIGKILL now") {
    const auto forced = rig.cancel_group("g", std::nullopt, true);
    CHECK(forced.killed == 1);
    CHECK(rig.state(id) == TaskState::kCancelled);
    CHECK(rig.exec.signals_of(id) == Signals{SIGTERM, SIGKILL});
  }
  CHECK(rig.reason(id) == "cancelled: group 'g' cancelled by uid 0");
}

TEST_CASE("Engine: submits to a cancelling group are refused until its last task has ended") {
  EngineRig rig;
  rig.exec.ignores_stop = {1};
  rig.submit_one("g");
  rig.cancel_group("g", 2s);
  proto::Submit req;
  req.group = "g";
  req.tasks = {argv_spec({"x"})};
  auto refused = rig.engine->submit(kRoot, req);
  REQUIRE(refused.has_error());
  CHECK(refused.error().code == Errc::kGroupCancelling);
  rig.advance(2s);
  CHECK_FALSE(rig.engine->submit(kRoot, req).has_error());
}

TEST_CASE("Engine: a fail-fast group cancels the rest when one fails, naming the failed task") {
  EngineRig rig(rig_config(3));
  proto::GroupSet set;
  set.group = {"ff", std::nullopt};
  set.fail_fast = true;
  REQUIRE_FALSE(rig.engine->group_set(kRoot, set).has_error());
  const auto ids = rig.submit("ff", 4);
  REQUIRE(rig.exec.started.size() == 3);
  rig.exec.finish(ids[1], exit_code(3));
  rig.settle();
  CHECK(rig.state(ids[1]) == TaskState::kFailed);
  CHECK(rig.task(ids[1]).exit_code == 3);
  for (auto id : {ids[0], ids[2], ids[3]}) {
    CAPTURE(id);
    CHECK(rig.state(id) == TaskState::kCancelled);
    CHECK(rig.reason(id) == "cancelled: fail-fast after task 2 failed");
  }
  CHECK(rig.exec.started.size() == 3);  // The queued one never started.
  CHECK(rig.exec.signals_of(ids[0]) == Signals{SIGTERM});
}

TEST_CASE("Engine: cancel by id stops a running task and cancels a queued one; the group goes on") {
  EngineRig rig(rig_config(1));
  const auto ids = rig.submit("g", 3);
  proto::Cancel req;
  req.ids = {ids[0], ids[1]};
  auto out = rig.engine->cancel(kRoot, req);
  REQUIRE_FALSE(out.has_error());
  rig.settle();
  CHECK(out->signalled == 1);
  CHECK(out->cancelled_queued == 1);
  CHECK(rig.state(ids[0]) == TaskState::kCancelled);
  CHECK(rig.state(ids[1]) == TaskState::kCancelled);
  CHECK(rig.reason(ids[1]) == "cancelled: task cancelled by uid 0");
  CHECK(rig.state(ids[2]) == TaskState::kRunning);  // The next one took the slot.
}

TEST_CASE(
    "Engine: a task with nothing left but an unkillable process is recorded ended "
    "kKillWait after SIGKILL, saying so, and frees its slot") {
  EngineRig rig(rig_config(1));
  rig.exec.ignores_stop = {1};
  rig.exec.unkillable = {1};
  const auto ids = rig.submit("g", 2);
  rig.cancel_group("g", 1s);
  rig.advance(1s);
  CHECK(rig.exec.signals_of(1) == Signals{SIGTERM, SIGKILL});
  CHECK(rig.state(1) == TaskState::kRunning);
  rig.advance(Engine::kKillWait - 1ms);
  CHECK(rig.state(1) == TaskState::kRunning);
  rig.advance(1ms);
  CHECK(rig.state(1) == TaskState::kCancelled);
  CHECK(rig.reason(1) ==
        "cancelled: group 'g' cancelled by uid 0; pid 10001 still alive 5s after SIGKILL, left "
        "behind");
  CHECK(rig.exec.abandoned == std::vector<proto::TaskId>{1});
  CHECK_FALSE(rig.group("g").cancelling);
  CHECK(rig.state(ids[1]) == TaskState::kCancelled);  // Queued: cancelled, never started.
}

TEST_CASE("Engine: a task whose main process exits during the grace ends when its tree is gone") {
  EngineRig rig;
  rig.exec.ignores_stop = {1};
  const auto id = rig.submit_one("g");
  rig.cancel_group("g", 10s);
  rig.exec.leader_exits(id, killed_by(SIGTERM));
  rig.settle();
  CHECK(rig.state(id) == TaskState::kRunning);  // Its children still clean up.
  rig.advance(2s);
  rig.exec.finish(id, {});
  rig.settle();
  CHECK(rig.state(id) == TaskState::kCancelled);
  CHECK(rig.task(id).signal == SIGTERM);  // The main process's own end.
  CHECK(rig.group("g").last_cancel->killed == 0);
}

}  // namespace tg::daemon::testing
