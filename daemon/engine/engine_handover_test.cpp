// The engine's side of a re-exec (docs/design.md "Re-exec"): held starts, the quiet moment a
// handover waits for, and the next program's adoption of the running tasks.
#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

using Ids = std::vector<proto::TaskId>;

TEST_CASE(
    "Engine re-exec: starts are held, the handover waits for a stop in progress, and only the "
    "running tasks are handed over") {
  EngineRig rig(rig_config(2));
  rig.submit("g", 2);
  rig.engine->hold_starts(true);
  const auto queued = rig.submit("g", 1).front();
  rig.cancel_group("g", 5s);  // Both running tasks get the stop signal; the fake ignores none.
  CHECK(rig.exec.started == Ids{1, 2});
  CHECK(rig.state(queued) == TaskState::kCancelled);

  rig.exec.ignores_stop = {4};  // The next task: its stop takes the whole grace.
  const auto a = rig.submit("h", 1).front();
  const auto b = rig.submit("h", 1).front();
  CHECK(rig.state(a) == TaskState::kQueued);  // Held.
  rig.engine->hold_starts(false);
  rig.settle();
  CHECK(rig.state(a) == TaskState::kRunning);
  CHECK(rig.state(b) == TaskState::kRunning);
  CHECK(rig.engine->ready_to_hand_over());

  REQUIRE(a == 4);
  proto::Cancel cancel;
  cancel.ids = {a};
  cancel.grace_ms = 1000;
  REQUIRE_FALSE(rig.engine->cancel(kRoot, cancel).has_error());
  rig.settle();
  CHECK_FALSE(rig.engine->ready_to_hand_over());  // Its grace lives in memory only.
  rig.advance(1000ms);                            // SIGKILL ends it.
  CHECK(rig.state(a) == TaskState::kCancelled);
  CHECK(rig.engine->ready_to_hand_over());

  REQUIRE_FALSE(rig.engine->flush().has_error());
  CHECK(rig.engine->hand_over() == Ids{b});
  CHECK(rig.exec.handed_over);
  CHECK(rig.engine->handed_over());
}

TEST_CASE(
    "Engine after a re-exec: adopted tasks run on with their timeout and slot; one that "
    "cannot be adopted is lost; queued ones start in the free slots") {
  auto store = EngineRig::open_store();
  Ids handed;
  {
    EngineRig before(rig_config(3), store.get());
    before.submit("g", 1, with_timeout(10'000));  // 1
    before.submit("g", 1);                        // 2
    before.submit("g", 1);                        // 3: will not be adoptable
    before.engine->hold_starts(true);
    before.submit("g", 1);  // 4: queued
    REQUIRE(before.engine->ready_to_hand_over());
    REQUIRE_FALSE(before.engine->flush().has_error());
    handed = before.engine->hand_over();
    REQUIRE(handed == Ids{1, 2, 3});
  }
  EngineRig after(rig_config(3), store.get(), {1, 2, 3}, {1, 2});
  REQUIRE(after.exec.adopted.size() == 2);
  CHECK(after.exec.adopted[0].first == 1);
  CHECK(after.exec.adopted[0].second.pid == 10'001);
  CHECK(after.state(1) == TaskState::kRunning);
  CHECK(after.state(2) == TaskState::kRunning);
  CHECK(after.state(3) == TaskState::kLost);
  // Two slots of three are taken by adopted tasks: the queued one takes the third.
  CHECK(after.exec.started == Ids{4});
  CHECK(after.engine->status().running == 3);

  after.exec.finish(2, exit_code(7));
  after.settle();
  CHECK(after.state(2) == TaskState::kFailed);
  CHECK(after.task(2).exit_code == 7);

  // The timeout, counted from the start (moments ago in wall time), fires in about 10 s.
  after.advance(9'000ms);
  CHECK(after.state(1) == TaskState::kRunning);
  after.advance(1'000ms);
  CHECK(after.state(1) == TaskState::kTimedOut);
}

}  // namespace tg::daemon::testing
