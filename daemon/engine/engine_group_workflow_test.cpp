// The engine's workflow decisions of issue 13 items 9-11, with FakeExecutor and virtual time:
// first-success groups, tgctl kill, and the on-done hook.
#include <signal.h>

#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

using Ids = std::vector<proto::TaskId>;
using Signals = std::vector<int>;

proto::GroupInfo set_group(EngineRig& rig, const std::string& name,
                           std::optional<bool> first_success,
                           std::optional<std::string> on_done = std::nullopt,
                           std::optional<bool> fail_fast = std::nullopt,
                           std::optional<std::int64_t> limit = std::nullopt) {
  proto::GroupSet req;
  req.group = proto::GroupRef{name, std::nullopt};
  req.first_success = first_success;
  req.on_done = std::move(on_done);
  req.fail_fast = fail_fast;
  req.limit = limit;
  auto r = rig.engine->group_set(kRoot, req);
  REQUIRE_MESSAGE(!r.has_error(), r.error().message);
  rig.settle();
  return *r;
}

Result<proto::KillResult> kill(EngineRig& rig, const Peer& peer, Ids ids, int sig,
                               std::optional<proto::GroupRef> group = std::nullopt) {
  proto::Kill req;
  req.group = std::move(group);
  req.ids = std::move(ids);
  req.signal = sig;
  auto r = rig.engine->kill(peer, req);
  rig.settle();
  return r;
}

}  // namespace

TEST_CASE("Engine first-success: a success cancels the rest, queued and running, naming it") {
  EngineRig rig(rig_config(8));
  const auto info = set_group(rig, "race", true, std::nullopt, std::nullopt, 3);
  CHECK(info.first_success);
  rig.exec.ignores_stop = {1};  // One loser takes its grace.
  const auto ids = rig.submit("race", 4);
  REQUIRE(rig.exec.started == Ids{1, 2, 3});

  rig.exec.finish(2, exit_code(0));
  rig.settle();
  const std::string goal = "goal reached: task 2 succeeded";
  CHECK(rig.state(2) == TaskState::kSucceeded);
  CHECK(rig.state(3) == TaskState::kCancelled);
  CHECK(rig.reason(3) == goal);
  CHECK(rig.exec.signals_of(3) == Signals{SIGTERM});
  CHECK(rig.state(4) == TaskState::kCancelled);  // Queued: never started.
  CHECK(rig.reason(4) == goal);
  CHECK(rig.state(1) == TaskState::kRunning);  // In its grace.
  rig.advance(10s);
  CHECK(rig.exec.signals_of(1) == Signals{SIGTERM, SIGKILL});
  CHECK(rig.state(1) == TaskState::kCancelled);
  CHECK(rig.reason(1) == goal);
  CHECK(rig.exec.started == Ids{1, 2, 3});
  const auto g = rig.group("race");
  CHECK_FALSE(g.cancelling);
  REQUIRE(g.last_cancel);
  CHECK(g.last_cancel->reason == goal);
  CHECK(g.last_cancel->cancelled_queued == 1);
  CHECK(g.last_cancel->signalled == 2);

  SUBCASE("the next run races again") {
    rig.submit("race", 2);
    rig.exec.finish(6, exit_code(0));
    rig.settle();
    CHECK(rig.state(5) == TaskState::kCancelled);
    CHECK(rig.reason(5) == "goal reached: task 6 succeeded");
  }
}

TEST_CASE("Engine first-success: failures do not end the race, with fail-fast they do") {
  EngineRig rig(rig_config(8));
  SUBCASE("first-success alone: a failure is just a failure") {
    set_group(rig, "race", true);
    rig.submit("race", 3);
    rig.exec.finish(1, exit_code(1));
    rig.settle();
    CHECK(rig.state(2) == TaskState::kRunning);
    CHECK(rig.state(3) == TaskState::kRunning);
    rig.exec.finish(3, exit_code(0));
    rig.settle();
    CHECK(rig.reason(2) == "goal reached: task 3 succeeded");
  }
  SUBCASE("combined with fail-fast: the first failure cancels, as fail-fast does") {
    set_group(rig, "race", true, std::nullopt, true);
    rig.submit("race", 3);
    rig.exec.finish(1, exit_code(1));
    rig.settle();
    CHECK(rig.reason(2) == "cancelled: fail-fast after task 1 failed");
    CHECK(rig.reason(3) == "cancelled: fail-fast after task 1 failed");
  }
  SUBCASE("turned off again: a success cancels nothing") {
    set_group(rig, "race", true);
    CHECK_FALSE(set_group(rig, "race", false).first_success);
    rig.submit("race", 2);
    rig.exec.finish(1, exit_code(0));
    rig.settle();
    CHECK(rig.state(2) == TaskState::kRunning);
  }
}

TEST_CASE("Engine kill: the signal reaches running tasks only, and changes nothing else") {
  EngineRig rig(rig_config(4));
  set_group(rig, "g", std::nullopt, std::nullopt, std::nullopt, 2);
  rig.submit("g", 3);  // 1 and 2 run, 3 waits.
  const auto alices = rig.submit("a", 1, {}, kAlice);

  SUBCASE("by id: running ones get it, the rest are reported skipped") {
    auto r = kill(rig, kRoot, {3, 1, 1}, SIGUSR1);
    REQUIRE_FALSE(r.has_error());
    CHECK(r->ids == Ids{1});
    CHECK(r->skipped == Ids{3});
    CHECK(r->signal == "USR1");
    CHECK(rig.exec.delivered == std::vector<std::pair<proto::TaskId, int>>{{1, SIGUSR1}});
    CHECK(rig.state(1) == TaskState::kRunning);
    CHECK(rig.exec.signals_of(1).empty());  // Not a stop.
    rig.exec.finish(1, exit_code(0));       // Its end is its own.
    rig.settle();
    CHECK(rig.state(1) == TaskState::kSucceeded);
  }
  SUBCASE("by group: its running tasks") {
    auto r = kill(rig, kRoot, {}, SIGSTOP, proto::GroupRef{"g", std::nullopt});
    REQUIRE_FALSE(r.has_error());
    CHECK(r->group == "g");
    CHECK(r->ids == Ids{1, 2});
    CHECK(r->skipped.empty());
    CHECK(rig.exec.delivered ==
          std::vector<std::pair<proto::TaskId, int>>{{1, SIGSTOP}, {2, SIGSTOP}});
    CHECK(rig.state(2) == TaskState::kRunning);
  }
  SUBCASE("another user's tasks are refused, all or nothing; root may act on anyone's") {
    auto refused = kill(rig, kAlice, {alices.front(), 1}, SIGUSR1);
    REQUIRE(refused.has_error());
    CHECK(refused.error().code == Errc::kNotFound);
    CHECK(refused.error().message == "no task 1");
    auto group = kill(rig, kAlice, {}, SIGUSR1, proto::GroupRef{"g", "root"});
    REQUIRE(group.has_error());
    CHECK(group.error().code == Errc::kPermissionDenied);
    CHECK(rig.exec.delivered.empty());
    auto root = kill(rig, kRoot, {alices.front()}, SIGHUP);
    REQUIRE_FALSE(root.has_error());
    CHECK(root->ids == alices);
  }
  SUBCASE("unknown tasks and groups") {
    auto unknown = kill(rig, kRoot, {999}, SIGUSR1);
    REQUIRE(unknown.has_error());
    CHECK(unknown.error().code == Errc::kNotFound);
    auto no_group = kill(rig, kRoot, {}, SIGUSR1, proto::GroupRef{"nope", std::nullopt});
    REQUIRE(no_group.has_error());
    CHECK(no_group.error().code == Errc::kNotFound);
  }
}

TEST_CASE("Engine on-done hook: runs once when a run that ran a task has ended, with counts") {
  EngineRig rig(rig_config(4));
  proto::GroupSet set;  // Root sets alice's group: the hook runs as alice, its owner.
  set.group = proto::GroupRef{"g", "alice"};
  set.on_done = "echo done";
  const auto info = rig.engine->group_set(kRoot, set);
  REQUIRE_FALSE(info.has_error());
  CHECK(info->on_done == "echo done");
  rig.submit("g", 4, {}, kAlice);
  rig.exec.finish(1, exit_code(0));
  rig.exec.finish(2, exit_code(3));
  rig.settle();
  CHECK(rig.exec.hooks_run.empty());  // Two are still running.
  proto::Cancel cancel;
  cancel.ids = {3};
  REQUIRE_FALSE(rig.engine->cancel(kAlice, cancel).has_error());
  rig.settle();
  CHECK(rig.exec.hooks_run.empty());
  rig.exec.finish(4, killed_by(SIGSEGV));
  rig.settle();
  REQUIRE(rig.exec.hooks_run.size() == 1);
  const HookSpec& h = rig.exec.hooks_run.front();
  CHECK(h.command == "echo done");
  CHECK(h.uid == 1000);
  CHECK(h.gid == 1000);
  CHECK(h.group == "g");
  CHECK(h.env.at("TASKGROUPD_GROUP") == "g");
  CHECK(h.env.at("TASKGROUPD_SUCCEEDED") == "1");
  CHECK(h.env.at("TASKGROUPD_FAILED") == "2");
  CHECK(h.env.at("TASKGROUPD_CANCELLED") == "1");
  CHECK(h.output_path == "/nonexistent/taskgroupd-engine-test/logs/hook-1.out");
  rig.exec.finish_hook(h.id, exit_code(0), "fine\n");
  rig.settle();
  CHECK(rig.exec.hook_signals.empty());
  CHECK(rig.clock.armed() == 1);  // Only the hourly prune: its bound is disarmed.

  SUBCASE("the next run runs it again, counting only that run") {
    rig.submit("g", 1, {}, kAlice);
    rig.exec.finish(5, exit_code(0));
    rig.settle();
    REQUIRE(rig.exec.hooks_run.size() == 2);
    CHECK(rig.exec.hooks_run[1].env.at("TASKGROUPD_SUCCEEDED") == "1");
    CHECK(rig.exec.hooks_run[1].env.at("TASKGROUPD_FAILED") == "0");
  }
  SUBCASE("cleared with an empty command: no hook") {
    set.on_done = "";
    const auto cleared = rig.engine->group_set(kRoot, set);
    REQUIRE_FALSE(cleared.has_error());
    CHECK_FALSE(cleared->on_done.has_value());
    rig.submit("g", 1, {}, kAlice);
    rig.exec.finish(5, exit_code(0));
    rig.settle();
    CHECK(rig.exec.hooks_run.size() == 1);
  }
}

TEST_CASE("Engine on-done hook: a run whose tasks never left the queue runs none") {
  EngineRig rig(rig_config(4));
  set_group(rig, "g", std::nullopt, "echo done");
  auto paused = rig.engine->set_paused(kRoot, {"g", std::nullopt}, true);
  REQUIRE_FALSE(paused.has_error());
  rig.submit("g", 2);
  rig.cancel_group("g");
  CHECK(rig.exec.hooks_run.empty());
  SUBCASE("but a run that started one does, also when a cancel ends it") {
    REQUIRE_FALSE(rig.engine->set_paused(kRoot, {"g", std::nullopt}, false).has_error());
    rig.settle();
    rig.submit("g", 1, with_priority(0));
    REQUIRE(rig.exec.is_running(3));
    rig.cancel_group("g");
    REQUIRE(rig.exec.hooks_run.size() == 1);
    CHECK(rig.exec.hooks_run.front().env.at("TASKGROUPD_CANCELLED") == "1");
  }
}

namespace {

// Group g's hook, which ignores SIGTERM, started by the end of g's one-task run.
HookId start_stubborn_hook(EngineRig& rig) {
  set_group(rig, "g", std::nullopt, "sleep 1000");
  rig.exec.hooks_ignore_term = true;
  rig.submit("g", 1);
  rig.exec.finish(1, exit_code(0));
  rig.settle();
  REQUIRE(rig.exec.hooks_run.size() == 1);
  return rig.exec.hooks_run.front().id;
}

}  // namespace

TEST_CASE("Engine on-done hook: bounded by kill_grace, then SIGTERM, then SIGKILL") {
  EngineRig rig(rig_config(4));
  const HookId id = start_stubborn_hook(rig);
  rig.advance(9'999ms);
  CHECK(rig.exec.hook_signals[id].empty());
  rig.advance(1ms);
  CHECK(rig.exec.hook_signals[id] == Signals{SIGTERM});
  rig.advance(10s);
  CHECK(rig.exec.hook_signals[id] == Signals{SIGTERM, SIGKILL});
  CHECK(rig.exec.hooks_running.empty());
}

TEST_CASE("Engine on-done hook: the drain stops a running hook and waits for it") {
  EngineRig rig(rig_config(4));
  const HookId id = start_stubborn_hook(rig);
  rig.signal_drain();
  CHECK(rig.exec.hook_signals[id] == Signals{SIGTERM});
  CHECK_FALSE(rig.idle);  // No task runs, but the hook does.
  rig.advance(10s);
  CHECK(rig.exec.hook_signals[id] == Signals{SIGTERM, SIGKILL});
  CHECK(rig.idle);
}

TEST_CASE("Engine on-done hook: one that cannot start is logged and forgotten") {
  EngineRig rig(rig_config(4));
  set_group(rig, "g", std::nullopt, "echo done");
  rig.exec.refuse_hooks = true;
  rig.submit("g", 1);
  rig.exec.finish(1, exit_code(0));
  rig.settle();
  CHECK(rig.exec.hooks_run.size() == 1);
  rig.signal_drain();
  CHECK(rig.idle);  // Nothing left to wait for.
}

TEST_CASE("Engine: first_success and on_done are saved with the group, and a crash ends a run") {
  auto store = EngineRig::open_store();
  {
    EngineRig before(rig_config(2), store.get());
    set_group(before, "g", true, "echo done");
    before.submit("g", 1);
    REQUIRE(before.exec.is_running(1));
    // The daemon dies here, with the task running.
  }
  {
    EngineRig after(rig_config(2), store.get());
    const auto g = after.group("g");
    CHECK(g.first_success);
    CHECK(g.on_done == "echo done");
    CHECK(after.state(1) == TaskState::kLost);
    // The run ended with the crash: its hook runs once, at the recovery, counting the lost task.
    REQUIRE(after.exec.hooks_run.size() == 1);
    CHECK(after.exec.hooks_run.front().env.at("TASKGROUPD_FAILED") == "1");
  }
  EngineRig again(rig_config(2), store.get());  // Nothing ended at this start: no hook.
  CHECK(again.exec.hooks_run.empty());
}

}  // namespace tg::daemon::testing
