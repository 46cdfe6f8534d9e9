#pragma once

// The engine in a test rig (for *_test.cpp only): a real Engine on an in-memory Store, with
// FakeExecutor for processes, VirtualClock for time and a fixed user table. No process, no
// socket, no sleep: settle() runs what the engine posted, advance() moves virtual time.

#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include "daemon/engine/engine.h"
#include "daemon/exec/fake/fake_executor.h"
#include "daemon/exec/fake/virtual_clock.h"
#include "daemon/exec/users.h"
#include "daemon/store/store.h"

namespace tg::daemon::testing {

using namespace std::chrono_literals;

inline const Peer kRoot{0, 0, 1};
inline const Peer kAlice{1000, 1000, 2};

// Task specs and exits without designated initializers (-Wmissing-field-initializers).
inline proto::TaskSpec argv_spec(std::vector<std::string> argv) {
  proto::TaskSpec s;
  s.argv = std::move(argv);
  return s;
}
inline proto::TaskSpec with_priority(int p) {
  proto::TaskSpec s;
  s.priority = p;
  return s;
}
inline proto::TaskSpec with_timeout(std::int64_t ms) {
  proto::TaskSpec s;
  s.timeout_ms = ms;
  return s;
}
inline proto::TaskSpec with_requeue() {
  proto::TaskSpec s;
  s.requeue = true;
  return s;
}
inline ExitStatus exit_code(int code) { return ExitStatus{code, std::nullopt}; }
inline ExitStatus killed_by(int sig) { return ExitStatus{std::nullopt, sig}; }

inline Config rig_config(std::int64_t max_running = 2) {
  Config c;
  c.state_dir = "/nonexistent/taskgroupd-engine-test";  // Only names log paths.
  c.socket = "/nonexistent/taskgroupd-engine-test.sock";
  c.max_running = max_running;
  c.kill_grace = 10s;
  c.drain_timeout = 30s;
  c.stop_signal = SIGTERM;
  return c;
}

inline CachedUsers::Source fake_users() {
  return {[](uid_t uid, gid_t) -> std::optional<Account> {
            if (uid == 0) return Account{0, "root", "/root", {0}};
            if (uid == 1000) return Account{1000, "alice", "/home/alice", {1000}};
            return std::nullopt;
          },
          [](const std::string& name) -> std::optional<uid_t> {
            if (name == "root") return 0;
            if (name == "alice") return 1000;
            return std::nullopt;
          }};
}

class EngineRig {
 public:
  // `handed_over`: the rig starts as the program after a re-exec, given these running tasks,
  // of which the executor can adopt those in `adoptable`.
  explicit EngineRig(Config config = rig_config(), Store* shared_store = nullptr,
                     const std::unordered_set<proto::TaskId>& handed_over = {},
                     const std::set<proto::TaskId>& adoptable = {})
      : store_(shared_store ? nullptr : open_store()),
        store(shared_store ? *shared_store : *store_),
        engine(std::make_unique<Engine>(ioc.get_executor(), store, exec, users, clock, config)) {
    exec.adoptable = adoptable;
    REQUIRE_FALSE(engine->recover(handed_over).has_error());
    settle();
  }
  ~EngineRig() {
    engine.reset();  // Before the io_context: handlers it posted point at it.
  }

  static std::unique_ptr<Store> open_store() {
    auto s = Store::open(":memory:", {.durable = false});
    REQUIRE_FALSE(s.has_error());
    return std::make_unique<Store>(std::move(*s));
  }

  // Runs everything the engine has posted (its turns: starts and commits).
  void settle() {
    ioc.restart();
    ioc.poll();
  }
  // Moves virtual time forward, firing the timers that come due, then settles.
  void advance(std::chrono::milliseconds d) {
    clock.advance(d);
    settle();
  }

  // Submits `n` tasks to `group` as `peer`; REQUIREs success. Settles: what may start, starts.
  std::vector<proto::TaskId> submit(const std::string& group, int n = 1,
                                    proto::TaskSpec defaults = {}, const Peer& peer = kRoot) {
    proto::Submit req;
    req.group = group;
    req.defaults = std::move(defaults);
    for (int i = 0; i < n; ++i) req.tasks.push_back(argv_spec({"task", std::to_string(i)}));
    auto r = engine->submit(peer, req);
    REQUIRE_MESSAGE(!r.has_error(), r.error().message);
    settle();
    return r->ids;
  }
  proto::TaskId submit_one(const std::string& group, proto::TaskSpec spec = {}) {
    return submit(group, 1, std::move(spec)).front();
  }

  proto::CancelResult cancel_group(const std::string& group,
                                   std::optional<std::chrono::milliseconds> grace = std::nullopt,
                                   bool force = false) {
    proto::Cancel req;
    req.group = proto::GroupRef{group, std::nullopt};
    if (grace) req.grace_ms = grace->count();
    req.force = force;
    auto r = engine->cancel(kRoot, req);
    REQUIRE_MESSAGE(!r.has_error(), r.error().message);
    settle();
    return *r;
  }

  proto::TaskInfo task(proto::TaskId id) {
    auto r = engine->show(kRoot, {id});
    REQUIRE_MESSAGE(!r.has_error(), r.error().message);
    return r->task;
  }
  TaskState state(proto::TaskId id) { return task(id).state; }
  std::string reason(proto::TaskId id) { return task(id).reason.value_or(""); }

  proto::GroupInfo group(const std::string& name) {
    auto r = engine->groups(kRoot, {});
    REQUIRE(!r.has_error());
    for (const auto& g : r->groups) {
      if (g.name == name) return g;
    }
    FAIL("no group " << name);
    return {};
  }

  // Drains as SIGTERM does; `idle` becomes true once the engine says it is done.
  void signal_drain() {
    engine->drain([this] { idle = true; });
    settle();
  }

  boost::asio::io_context ioc{1};
  VirtualClock clock;
  FakeExecutor exec;
  CachedUsers users{fake_users()};

 private:
  std::unique_ptr<Store> store_;

 public:
  Store& store;
  std::unique_ptr<Engine> engine;
  bool idle = false;
};

}  // namespace tg::daemon::testing
