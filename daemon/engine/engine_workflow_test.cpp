// The engine's workflow decisions (dependencies, begin times, retries, pending reasons), with
// FakeExecutor and virtual time.
#include <algorithm>

#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

using Ids = std::vector<proto::TaskId>;

proto::TaskSpec after(Ids ids) {
  proto::TaskSpec s;
  s.after = std::move(ids);
  return s;
}
proto::TaskSpec after_any(Ids ids) {
  proto::TaskSpec s;
  s.after_any = std::move(ids);
  return s;
}
proto::TaskSpec delayed(std::int64_t ms) {
  proto::TaskSpec s;
  s.delay_ms = ms;
  return s;
}
proto::TaskSpec retried(std::int64_t retries, std::int64_t delay_ms = 0) {
  proto::TaskSpec s;
  s.retries = retries;
  s.retry_delay_ms = delay_ms;
  return s;
}

bool started(const EngineRig& rig, proto::TaskId id) {
  return std::find(rig.exec.started.begin(), rig.exec.started.end(), id) != rig.exec.started.end();
}

Result<proto::SubmitResult> try_submit(EngineRig& rig, proto::TaskSpec spec,
                                       const Peer& peer = kRoot) {
  proto::Submit req;
  req.group = "g";
  req.tasks.push_back(argv_spec({"x"}));
  req.defaults = std::move(spec);
  return rig.engine->submit(peer, req);
}

}  // namespace

TEST_CASE("Engine: a chain A -> B -> C starts each only after the one before succeeded") {
  EngineRig rig(rig_config(4));
  const auto a = rig.submit_one("g");
  const auto b = rig.submit_one("g", after({a}));
  const auto c = rig.submit_one("g", after({b}));
  CHECK(rig.exec.started == Ids{a});
  const auto info = rig.task(b);
  CHECK(info.pending_reason == "dependency");
  CHECK(info.pending_on == Ids{a});
  CHECK(info.after == Ids{a});

  rig.exec.finish(a, exit_code(0));
  rig.settle();
  CHECK(rig.exec.started == Ids{a, b});
  CHECK(rig.task(c).pending_on == Ids{b});
  rig.exec.finish(b, exit_code(0));
  rig.settle();
  CHECK(rig.exec.started == Ids{a, b, c});
  rig.exec.finish(c, exit_code(0));
  rig.settle();
  CHECK(rig.state(c) == TaskState::kSucceeded);
}

TEST_CASE("Engine: when A fails, B and C end cancelled in one step, naming A and B") {
  EngineRig rig(rig_config(4));
  const auto a = rig.submit_one("g");
  const auto b = rig.submit_one("g", after({a}));
  const auto c = rig.submit_one("other", after({b}));
  rig.exec.finish(a, exit_code(3));
  rig.settle();
  CHECK(rig.state(b) == TaskState::kCancelled);
  CHECK(rig.reason(b) == "cancelled: dependency 1 failed");
  CHECK(rig.state(c) == TaskState::kCancelled);
  CHECK(rig.reason(c) == "cancelled: dependency 2 was cancelled");
  CHECK(rig.exec.started == Ids{a});
  CHECK(rig.group("other").counts.cancelled == 1);

  SUBCASE("a task submitted after its dependency failed is cancelled at once") {
    const auto d = rig.submit_one("g", after({a}));
    CHECK(rig.state(d) == TaskState::kCancelled);
    CHECK(rig.reason(d) == "cancelled: dependency 1 failed");
  }
  SUBCASE("--after-any starts after a failure") {
    const auto d = rig.submit_one("g", after_any({a}));
    CHECK(started(rig, d));
  }
}

TEST_CASE("Engine: after_any waits for the end, whatever it is; a timeout names itself") {
  EngineRig rig(rig_config(4));
  const auto a = rig.submit_one("g", with_timeout(1000));
  const auto b = rig.submit_one("g", after_any({a}));
  const auto c = rig.submit_one("g", after({a}));
  CHECK_FALSE(started(rig, b));
  rig.advance(1000ms);  // TERM; the fake dies of it.
  CHECK(rig.state(a) == TaskState::kTimedOut);
  CHECK(started(rig, b));
  CHECK(rig.reason(c) == "cancelled: dependency 1 timed out");
}

TEST_CASE("Engine: dependencies that cannot be waited for are refused, nothing queued") {
  EngineRig rig;
  const auto a = rig.submit_one("g");
  SUBCASE("unknown (pruned, say)") {
    auto r = try_submit(rig, after({0}));
    REQUIRE(r.has_error());
    CHECK(r.error().code == Errc::kNotFound);
    CHECK(r.error().message == "no task 0 to wait for");
  }
  SUBCASE("a task of its own future: a cycle") {
    auto r = try_submit(rig, after({a + 5}));
    REQUIRE(r.has_error());
    CHECK(r.error().code == Errc::kInvalidParams);
    CHECK(r.error().message.find("cycle") != std::string::npos);
  }
  SUBCASE("another user's task") {
    auto r = try_submit(rig, after_any({a}), kAlice);
    REQUIRE(r.has_error());
    CHECK(r.error().code == Errc::kNotFound);
    CHECK(r.error().message == "no task 1 to wait for");
  }
  SUBCASE("an unknown group") {
    proto::TaskSpec s;
    s.after_group = "nope";
    auto r = try_submit(rig, s);
    REQUIRE(r.has_error());
    CHECK(r.error().message == "no group 'nope' to wait for");
  }
  CHECK(rig.group("g").counts.total() == 1);  // Nothing was queued.
}

TEST_CASE("Engine: --after-group fans in: the dependent starts once, after the whole group") {
  EngineRig rig(rig_config(8));
  const auto fan = rig.submit("fan", 200);
  proto::TaskSpec s;
  s.after_group = "fan";
  const auto sink = rig.submit_one("sink", s);
  CHECK(rig.task(sink).after.size() == 200);
  for (const auto id : fan) {
    CHECK_FALSE(started(rig, sink));
    REQUIRE(rig.exec.is_running(id));  // In order, eight at a time.
    rig.exec.finish(id, exit_code(0));
    rig.settle();
  }
  CHECK(std::count(rig.exec.started.begin(), rig.exec.started.end(), sink) == 1);
  CHECK(rig.exec.started.back() == sink);
}

TEST_CASE("Engine: a begin time holds the task until then, by one timer") {
  EngineRig rig;
  const auto later = rig.submit_one("g", delayed(60'000));
  const auto sooner = rig.submit_one("g", delayed(30'000));
  const auto info = rig.task(later);
  CHECK(info.pending_reason == "begin_time");
  CHECK(info.begin_at.has_value());
  // The timer counts from the submit by the wall clock, a few milliseconds ago by now.
  rig.advance(29'900ms);
  CHECK(rig.exec.started.empty());
  rig.advance(100ms);
  CHECK(rig.exec.started == Ids{sooner});
  rig.advance(30'000ms);
  CHECK(rig.exec.started == Ids{sooner, later});

  SUBCASE("a cancel applies to a task waiting for its time like to any queued one") {
    const auto id = rig.submit_one("h", delayed(60'000));
    rig.cancel_group("h");
    CHECK(rig.state(id) == TaskState::kCancelled);
    rig.advance(60'000ms);
    CHECK_FALSE(started(rig, id));
  }
}

TEST_CASE("Engine: held tasks wait on across a restart") {
  auto store = EngineRig::open_store();
  proto::TaskId a = 0, b = 0, c = 0;
  {
    EngineRig rig(rig_config(4), store.get());
    a = rig.submit_one("g");
    b = rig.submit_one("g", after({a}));
    c = rig.submit_one("g", delayed(60'000));
  }
  EngineRig rig(rig_config(4), store.get());  // `a` was running: lost, so `b` is cancelled.
  CHECK(rig.state(a) == TaskState::kLost);
  CHECK(rig.reason(b) == "cancelled: dependency 1 was lost");
  CHECK(rig.task(c).pending_reason == "begin_time");
  rig.advance(60'000ms);
  CHECK(started(rig, c));
}

TEST_CASE("Engine: retries run a failing task again and record each attempt") {
  EngineRig rig;
  const auto id = rig.submit_one("g", retried(2, 10'000));
  rig.exec.finish(id, exit_code(1));
  rig.settle();
  auto info = rig.task(id);
  CHECK(info.state == TaskState::kQueued);
  CHECK(info.pending_reason == "begin_time");
  CHECK(info.attempt == 2);
  REQUIRE(info.attempts.size() == 1);
  CHECK(info.attempts[0].state == TaskState::kFailed);
  CHECK(info.attempts[0].exit_code == 1);
  rig.advance(10'000ms);
  CHECK(rig.exec.started == Ids{id, id});

  SUBCASE("failing twice then succeeding ends succeeded at attempt 3") {
    rig.exec.finish(id, exit_code(2));
    rig.advance(10'000ms);
    rig.exec.finish(id, exit_code(0));
    rig.settle();
    info = rig.task(id);
    CHECK(info.state == TaskState::kSucceeded);
    CHECK(info.attempt == 3);
    REQUIRE(info.attempts.size() == 2);
    CHECK(info.attempts[1].exit_code == 2);
  }
  SUBCASE("once they are used up, the failure is final") {
    rig.exec.finish(id, exit_code(2));
    rig.advance(10'000ms);
    rig.exec.finish(id, exit_code(3));
    rig.settle();
    CHECK(rig.state(id) == TaskState::kFailed);
    CHECK(rig.task(id).attempt == 3);
    CHECK(rig.exec.started.size() == 3);
  }
  SUBCASE("a cancel during the retry delay ends it cancelled, never run again") {
    rig.exec.finish(id, exit_code(2));
    rig.settle();
    rig.cancel_group("g");
    CHECK(rig.state(id) == TaskState::kCancelled);
    rig.advance(10'000ms);
    CHECK(rig.exec.started.size() == 2);
  }
  SUBCASE("attempts survive a restart") {
    rig.exec.finish(id, exit_code(0));
    rig.settle();
    EngineRig again(rig_config(), &rig.store);
    CHECK(again.task(id).attempts.size() == 1);
    CHECK(again.task(id).attempt == 2);
  }
}

TEST_CASE("Engine: a cancelled task is never retried") {
  EngineRig rig;
  const auto id = rig.submit_one("g", retried(3));
  rig.cancel_group("g");
  CHECK(rig.state(id) == TaskState::kCancelled);
  CHECK(rig.exec.started.size() == 1);
}

TEST_CASE("Engine: pending_reason says why a queued task waits") {
  EngineRig rig(rig_config(1));
  rig.submit_one("busy");
  const auto waiting = rig.submit_one("other");
  CHECK(rig.task(waiting).pending_reason == "global_limit");
  proto::GroupSet set;
  set.group = {"paused", std::nullopt};
  REQUIRE_FALSE(rig.engine->set_paused(kRoot, set.group, true).has_error());
  const auto paused = rig.submit_one("paused");
  CHECK(rig.task(paused).pending_reason == "paused");
  CHECK_FALSE(rig.task(1).pending_reason.has_value());  // Running: none.
}

}  // namespace tg::daemon::testing
