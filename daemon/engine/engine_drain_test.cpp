// The engine's drain on SIGTERM/SIGINT, in virtual time: the three levels, and the five interrupt
// scenarios of tests/integration/signals_test.cpp modelled without processes.
#include <signal.h>

#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

using Signals = std::vector<int>;

bool refused_as_draining(EngineRig& rig) {
  proto::Submit req;
  req.tasks = {argv_spec({"late"})};
  auto r = rig.engine->submit(kRoot, req);
  return r.has_error() && r.error().code == Errc::kDraining;
}

}  // namespace

TEST_CASE(
    "Engine drain, first signal: submits refused, queued stay queued, running tasks get "
    "drain_timeout, then TERM, the grace, then SIGKILL") {
  EngineRig rig(rig_config(2));
  rig.exec.ignores_stop = {1, 2};
  const auto ids = rig.submit("g", 3);
  rig.signal_drain();
  CHECK(rig.engine->draining());
  CHECK(refused_as_draining(rig));
  rig.advance(29'999ms);
  CHECK(rig.exec.signals_of(1).empty());
  rig.advance(1ms);
  CHECK(rig.exec.signals_of(1) == Signals{SIGTERM});
  rig.advance(10s);
  CHECK(rig.exec.signals_of(1) == Signals{SIGTERM, SIGKILL});
  CHECK(rig.idle);
  CHECK(rig.state(ids[0]) == TaskState::kInterrupted);
  CHECK(rig.reason(ids[0]) == "interrupted: daemon drain timeout");
  CHECK(rig.state(ids[2]) == TaskState::kQueued);  // For the next start.
  CHECK(rig.exec.started.size() == 2);
  CHECK(rig.exec.shut_down);
}

TEST_CASE(
    "Engine drain, slots full: tasks that finish on their own end the drain early, and "
    "the freed slots start nothing") {
  EngineRig rig(rig_config(2));
  const auto ids = rig.submit("g", 4);
  rig.signal_drain();
  rig.exec.finish(ids[0], exit_code(0));
  rig.settle();
  CHECK_FALSE(rig.idle);
  CHECK(rig.exec.started.size() == 2);  // The free slot starts nothing while draining.
  rig.exec.finish(ids[1], exit_code(0));
  rig.settle();
  CHECK(rig.idle);
  CHECK(rig.state(ids[0]) == TaskState::kSucceeded);
  CHECK(rig.state(ids[2]) == TaskState::kQueued);
  CHECK(rig.state(ids[3]) == TaskState::kQueued);
}

TEST_CASE("Engine drain, second signal: running tasks get the stop signal at once") {
  EngineRig rig;
  rig.exec.ignores_stop = {1};
  const auto id = rig.submit_one("g");
  rig.signal_drain();
  rig.signal_drain();
  CHECK(rig.exec.signals_of(id) == Signals{SIGTERM});
  CHECK(rig.reason(id) == "interrupted: daemon stopped (second signal)");
  rig.advance(10s);
  CHECK(rig.state(id) == TaskState::kInterrupted);
  CHECK(rig.idle);
}

TEST_CASE(
    "Engine drain, third signal: SIGKILL at once, and the engine is idle even if a task "
    "cannot be killed") {
  EngineRig rig;
  rig.exec.ignores_stop = {1, 2};
  rig.exec.unkillable = {2};
  rig.submit("g", 2);
  rig.signal_drain();
  rig.signal_drain();
  rig.signal_drain();
  CHECK(rig.exec.signals_of(1) == Signals{SIGTERM, SIGKILL});
  CHECK(rig.state(1) == TaskState::kInterrupted);
  CHECK_FALSE(rig.idle);  // Task 2 is still there...
  rig.advance(Engine::kKillWait);
  CHECK(rig.idle);  // ...and is given up on: the daemon can always be stopped.
  CHECK(rig.state(2) == TaskState::kInterrupted);
}

TEST_CASE("Engine drain, tasks queued and none running: idle at once, nothing started") {
  EngineRig rig;
  proto::Submit req;
  req.group = "held";
  req.tasks = {argv_spec({"a"}), argv_spec({"b"})};
  REQUIRE_FALSE(rig.engine->set_paused(kRoot, {"held", std::nullopt}, true).has_error());
  REQUIRE_FALSE(rig.engine->submit(kRoot, req).has_error());
  rig.settle();
  rig.signal_drain();
  CHECK(rig.idle);
  CHECK(rig.exec.started.empty());
}

TEST_CASE("Engine drain, before any task starts: a signal right after a submit starts nothing") {
  EngineRig rig;
  proto::Submit req;
  req.tasks = {argv_spec({"a"})};
  REQUIRE_FALSE(rig.engine->submit(kRoot, req).has_error());
  rig.engine->drain([&] { rig.idle = true; });  // Before the turn that would start it.
  rig.settle();
  CHECK(rig.exec.started.empty());
  CHECK(rig.idle);
  CHECK(rig.state(1) == TaskState::kQueued);
}

TEST_CASE(
    "Engine drain, during the kill phase: another signal does not restart the grace, a "
    "third one kills at once") {
  EngineRig rig;
  rig.exec.ignores_stop = {1};
  const auto id = rig.submit_one("g");
  rig.signal_drain();
  rig.advance(30s);  // The drain timeout: TERM, and a 10 s grace begins.
  REQUIRE(rig.exec.signals_of(id) == Signals{SIGTERM});
  rig.advance(5s);
  rig.signal_drain();  // Second: already stopping, nothing new.
  CHECK(rig.exec.signals_of(id) == Signals{SIGTERM});
  rig.advance(4'999ms);
  CHECK(rig.state(id) == TaskState::kRunning);
  SUBCASE("the grace runs out on time") {
    rig.advance(1ms);
    CHECK(rig.state(id) == TaskState::kInterrupted);
  }
  SUBCASE("a third signal kills now") {
    rig.signal_drain();
    CHECK(rig.state(id) == TaskState::kInterrupted);
  }
  CHECK(rig.reason(id) == "interrupted: daemon drain timeout");
  CHECK(rig.idle);
}

TEST_CASE("Engine drain, rapid repeated signals: ten in a row kill everything once") {
  EngineRig rig(rig_config(3));
  rig.exec.ignores_stop = {1, 2, 3};
  rig.submit("g", 5);
  for (int i = 0; i < 10; ++i) rig.engine->drain([&] { rig.idle = true; });
  rig.settle();
  CHECK(rig.idle);
  for (proto::TaskId id : {1, 2, 3}) {
    CHECK(rig.exec.signals_of(id) == Signals{SIGTERM, SIGKILL});
    CHECK(rig.state(id) == TaskState::kInterrupted);
  }
  CHECK(rig.state(4) == TaskState::kQueued);
}

}  // namespace tg::daemon::testing
