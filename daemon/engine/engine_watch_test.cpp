// The watch behind tgctl top: what a frame holds, for whom, and which changes wake it.
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

proto::GroupSet group_named(const std::string& name) {
  proto::GroupSet g;
  g.group = proto::GroupRef{name, std::nullopt};
  return g;
}

// A watch as `peer` sees it, registered with the engine for the rig's life.
struct Watching {
  Watching(EngineRig& rig, const Peer& peer, std::optional<std::string> user = std::nullopt)
      : rig(rig), w(rig.ioc.get_executor()) {
    REQUIRE_FALSE(rig.engine->prepare_watch(peer, proto::Watch{std::move(user)}, w).has_error());
    rig.engine->watch(w);
  }
  ~Watching() { rig.engine->unwatch(w); }
  proto::WatchFrame frame() const { return rig.engine->watch_frame(w); }
  // Whether a wake came since the last call.
  bool woken() {
    const bool was = w.pending();
    if (was) {  // Consume it: next() returns at once on a pending wake.
      auto f = boost::asio::co_spawn(rig.ioc, w.next(), boost::asio::use_future);
      rig.settle();
      f.get();
    }
    return was;
  }
  EngineRig& rig;
  Waiter w;
};

}  // namespace

TEST_CASE("watch_frame: the daemon's counts, running tasks and the last ended ones") {
  EngineRig rig(rig_config(2));
  const auto ids = rig.submit("build", 3);
  Watching watch(rig, kRoot);
  rig.exec.finish(ids[0], exit_code(3));
  rig.settle();
  const proto::WatchFrame f = watch.frame();
  CHECK(f.daemon.max_running == 2);
  CHECK(f.daemon.running == 2);
  CHECK(f.daemon.queued == 0);
  CHECK_FALSE(f.daemon.draining);
  REQUIRE(f.groups.size() == 1);
  CHECK(f.groups[0].name == "build");
  CHECK(f.groups[0].counts.failed == 1);
  CHECK(f.groups[0].counts.running == 2);
  REQUIRE(f.running.size() == 2);
  CHECK(f.running_total == 2);
  CHECK(f.running[0].id == ids[1]);
  CHECK(f.running[0].command == "task 1");
  CHECK(f.running[0].started_at.has_value());
  CHECK_FALSE(f.running[0].cpu_ms.has_value());  // No cgroups yet.
  REQUIRE(f.ended.size() == 1);
  CHECK(f.ended[0].id == ids[0]);
  CHECK(f.ended[0].state == TaskState::kFailed);
  CHECK(f.ended[0].exit_code == 3);
}

TEST_CASE("watch_frame: ended tasks come newest first, at most kWatchMaxEnded") {
  EngineRig rig(rig_config(100));
  const auto ids = rig.submit("g", static_cast<int>(proto::kWatchMaxEnded) + 3);
  for (proto::TaskId id : ids) {
    rig.exec.finish(id, exit_code(0));
    rig.settle();
  }
  Watching watch(rig, kRoot);
  const proto::WatchFrame f = watch.frame();
  REQUIRE(f.ended.size() == proto::kWatchMaxEnded);
  CHECK(f.ended.front().id == ids.back());
  CHECK(f.ended.back().id == ids[ids.size() - proto::kWatchMaxEnded]);
}

TEST_CASE("watch_frame: a user sees only their own groups and tasks, root everyone's") {
  EngineRig rig(rig_config(4));
  rig.submit("roots", 1);
  const auto alices = rig.submit("alices", 1, {}, kAlice);
  rig.exec.finish(alices[0], exit_code(0));
  rig.settle();

  Watching alice(rig, kAlice);
  const proto::WatchFrame a = alice.frame();
  REQUIRE(a.groups.size() == 1);
  CHECK(a.groups[0].name == "alices");
  CHECK(a.running.empty());
  REQUIRE(a.ended.size() == 1);
  CHECK(a.daemon.running == 1);  // The daemon's counts are everyone's.

  Watching root(rig, kRoot);
  CHECK(root.frame().groups.size() == 2);
  Watching root_as_alice(rig, kRoot, "alice");
  CHECK(root_as_alice.frame().groups.size() == 1);

  Waiter w(rig.ioc.get_executor());
  auto refused = rig.engine->prepare_watch(kAlice, proto::Watch{"root"}, w);
  REQUIRE(refused.has_error());
  CHECK(refused.error().code == Errc::kPermissionDenied);
}

TEST_CASE("watch: changes to what it shows wake it, another user's do not") {
  EngineRig rig(rig_config(4));
  Watching alice(rig, kAlice);
  Watching root(rig, kRoot);

  SUBCASE("a submit and a task's end") {
    const auto ids = rig.submit("g", 1);
    CHECK(root.woken());
    CHECK_FALSE(alice.woken());
    rig.submit("a", 1, {}, kAlice);
    CHECK(alice.woken());
    CHECK(root.woken());
    rig.exec.finish(ids[0], exit_code(0));
    rig.settle();
    CHECK(root.woken());
    CHECK_FALSE(alice.woken());
  }
  SUBCASE("pause, resume and group settings") {
    REQUIRE_FALSE(rig.engine->set_paused(kAlice, {"a", std::nullopt}, true).has_error());
    CHECK(alice.woken());
    REQUIRE_FALSE(rig.engine->set_paused(kAlice, {"a", std::nullopt}, false).has_error());
    CHECK(alice.woken());
    REQUIRE_FALSE(rig.engine->group_set(kRoot, group_named("r")).has_error());
    CHECK(root.woken());
    CHECK_FALSE(alice.woken());
  }
  SUBCASE("the drain") {
    rig.signal_drain();
    CHECK(alice.woken());
    CHECK(alice.frame().daemon.draining);
  }
}

TEST_CASE("watch_frame: at most kWatchMaxGroups groups, busy and paused ones first") {
  EngineRig rig(rig_config(4));
  for (std::size_t i = 0; i < proto::kWatchMaxGroups + 5; ++i) {
    REQUIRE_FALSE(
        rig.engine->group_set(kRoot, group_named("idle" + std::to_string(i))).has_error());
  }
  rig.submit("zz-busy", 1);
  REQUIRE_FALSE(rig.engine->set_paused(kRoot, {"zz-paused", std::nullopt}, true).has_error());
  Watching watch(rig, kRoot);
  const proto::WatchFrame f = watch.frame();
  CHECK(f.groups.size() == proto::kWatchMaxGroups);
  CHECK(f.groups_total == static_cast<std::int64_t>(proto::kWatchMaxGroups + 7));
  CHECK(f.groups[0].name == "zz-busy");
  CHECK(f.groups[1].name == "zz-paused");
  CHECK(f.groups[1].paused);
}

}  // namespace tg::daemon::testing
