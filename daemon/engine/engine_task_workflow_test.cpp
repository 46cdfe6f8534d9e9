// Issue 13's labels, list filters, submit keys and restarts, decided by the engine with
// FakeExecutor and virtual time.
#include <signal.h>

#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

using Ids = std::vector<proto::TaskId>;
using proto::Labels;

proto::Submit keyed(const std::string& key, const std::string& group = "g") {
  proto::Submit req;
  req.group = group;
  req.tasks = {argv_spec({"make", "all"})};
  req.key = key;
  return req;
}

proto::SubmitResult submit_ok(EngineRig& rig, const proto::Submit& req, const Peer& peer = kRoot) {
  auto r = rig.engine->submit(peer, req);
  REQUIRE_MESSAGE(!r.has_error(), r.error().message);
  rig.settle();
  return *r;
}

proto::TaskSpec with_labels(Labels labels) {
  proto::TaskSpec s;
  s.labels = std::move(labels);
  return s;
}

// Every page of a listing, joined: the ids that match.
Ids listed(EngineRig& rig, proto::List req, const Peer& peer = kRoot, std::size_t page = 1000) {
  ListBounds b;
  b.max_tasks = page;
  b.max_visits = page;
  Ids out;
  req.after_id = 0;
  for (int guard = 0; guard < 10'000; ++guard) {
    auto r = rig.engine->list(peer, req, b);
    REQUIRE_MESSAGE(!r.has_error(), r.error().message);
    for (const auto& t : r->tasks) out.push_back(t.id);
    if (!r->next_after_id) return out;
    req.after_id = r->next_after_id;
    req.limit.reset();
  }
  FAIL("the cursor never ended");
  return out;
}

proto::Restart restart_group(const std::string& group, std::vector<TaskState> states) {
  proto::Restart req;
  req.group = proto::GroupRef{group, std::nullopt};
  req.states = std::move(states);
  return req;
}

proto::Restart restart_ids(Ids ids) {
  proto::Restart req;
  req.ids = std::move(ids);
  return req;
}

proto::RestartResult restart_ok(EngineRig& rig, const proto::Restart& req,
                                const Peer& peer = kRoot) {
  auto r = rig.engine->restart(peer, req);
  REQUIRE_MESSAGE(!r.has_error(), r.error().message);
  rig.settle();
  return *r;
}

Error restart_refused(EngineRig& rig, const proto::Restart& req, const Peer& peer = kRoot) {
  auto r = rig.engine->restart(peer, req);
  REQUIRE(r.has_error());
  return r.error();
}

const std::vector<TaskState> kFailedStates = {TaskState::kFailed, TaskState::kTimedOut,
                                              TaskState::kInterrupted, TaskState::kLost};

}  // namespace

// ------------------------------------------------------------------ submit keys

TEST_CASE("Engine::submit: a second submit with the same key queues nothing, per user") {
  EngineRig rig;
  const proto::TaskId first = submit_ok(rig, keyed("k"), kAlice).ids.at(0);
  CHECK(rig.task(first).key == "k");
  CHECK(submit_ok(rig, keyed("k", "other-group"), kAlice).ids == Ids{first});
  CHECK(listed(rig, {}).size() == 1);  // Nothing was queued by the repeat.

  SUBCASE("another user's key of the same name is theirs") {
    const proto::TaskId roots = submit_ok(rig, keyed("k"), kRoot).ids.at(0);
    CHECK(roots != first);
    CHECK(submit_ok(rig, keyed("k"), kRoot).ids == Ids{roots});
    CHECK(submit_ok(rig, keyed("k"), kAlice).ids == Ids{first});
  }
  SUBCASE("another key, or none, queues a task") {
    CHECK(submit_ok(rig, keyed("k2"), kAlice).ids.at(0) != first);
    proto::Submit plain = keyed("x");
    plain.key.reset();
    CHECK(submit_ok(rig, plain, kAlice).ids.at(0) != first);
    CHECK(listed(rig, {}).size() == 3);
  }
  SUBCASE("the answer holds while the first task runs, after it ended, and while draining") {
    rig.exec.finish(first, exit_code(1));
    rig.settle();
    CHECK(rig.state(first) == TaskState::kFailed);
    CHECK(submit_ok(rig, keyed("k"), kAlice).ids == Ids{first});
    rig.signal_drain();
    CHECK(submit_ok(rig, keyed("k"), kAlice).ids == Ids{first});
    CHECK(rig.engine->submit(kAlice, keyed("new")).error().code == Errc::kDraining);
  }
  SUBCASE("once the first task is pruned, the key queues a new task") {
    rig.exec.finish(first, exit_code(0));
    rig.settle();
    Config config = rig_config();
    config.retention_count = 0;
    rig.engine->apply_config(config);
    rig.settle();
    REQUIRE(listed(rig, {}).empty());
    const proto::TaskId again = submit_ok(rig, keyed("k"), kAlice).ids.at(0);
    CHECK(again > first);
    CHECK(submit_ok(rig, keyed("k"), kAlice).ids == Ids{again});
  }
}

TEST_CASE(
    "Engine::submit: keys survive a restart of the daemon, and a restart does not copy them") {
  auto store = EngineRig::open_store();
  proto::TaskId first = 0;
  {
    EngineRig before(rig_config(), store.get());
    first = submit_ok(before, keyed("nightly"), kAlice).ids.at(0);
  }
  EngineRig after(rig_config(), store.get());
  CHECK(submit_ok(after, keyed("nightly"), kAlice).ids == Ids{first});
  REQUIRE(after.state(first) == TaskState::kLost);  // It was running at the crash.
  const proto::TaskId copy = restart_ok(after, restart_ids({first})).ids.at(0);
  CHECK_FALSE(after.task(copy).key.has_value());
  CHECK(submit_ok(after, keyed("nightly"), kAlice).ids == Ids{first});
}

// ------------------------------------------------------------------ labels and filters

TEST_CASE("Engine: labels are kept with the task: a batch's, merged with a task's own") {
  auto store = EngineRig::open_store();
  {
    EngineRig rig(rig_config(), store.get());
    proto::Submit req;
    req.group = "g";
    req.defaults.labels = Labels{{"env", "prod"}, {"team", "ml"}};
    req.tasks = {argv_spec({"a"}), argv_spec({"b"})};
    req.tasks[1].labels = Labels{{"env", "dev"}, {"run", "7"}};
    req.tasks.push_back(argv_spec({"c"}));
    submit_ok(rig, req);
    rig.submit("g", 1);
    CHECK(rig.task(1).labels == Labels{{"env", "prod"}, {"team", "ml"}});
    CHECK(rig.task(2).labels == Labels{{"env", "dev"}, {"run", "7"}, {"team", "ml"}});
    CHECK(rig.task(4).labels.empty());
  }
  EngineRig after(rig_config(), store.get());  // And read back from the store.
  CHECK(after.task(1).labels == Labels{{"env", "prod"}, {"team", "ml"}});
  CHECK(after.task(2).labels == Labels{{"env", "dev"}, {"run", "7"}, {"team", "ml"}});
  CHECK(after.task(3).labels == Labels{{"env", "prod"}, {"team", "ml"}});
  CHECK(after.task(4).labels.empty());
}

TEST_CASE("Engine::list: labels, several states and since filter every page of the walk") {
  EngineRig rig(rig_config(100));
  for (int i = 0; i < 10; ++i) {
    rig.submit("g", 1,
               with_labels({{"env", i % 2 == 0 ? "prod" : "dev"}, {"n", std::to_string(i)}}));
  }
  rig.submit("g", 2);  // 11, 12: no labels.
  rig.exec.finish(1, exit_code(0));
  rig.exec.finish(2, exit_code(1));
  rig.exec.finish(3, exit_code(2));
  rig.exec.finish(4, killed_by(SIGKILL));
  rig.settle();

  proto::List req;
  req.labels = Labels{{"env", "prod"}};
  CHECK(listed(rig, req) == Ids{1, 3, 5, 7, 9});
  CHECK(listed(rig, req, kRoot, 2) == Ids{1, 3, 5, 7, 9});  // Across short pages.
  req.labels = Labels{{"env", "prod"}, {"n", "4"}};         // All must match.
  CHECK(listed(rig, req) == Ids{5});
  req.labels = Labels{{"env", "nope"}};
  CHECK(listed(rig, req).empty());

  proto::List states;
  states.states = {TaskState::kFailed, TaskState::kSucceeded};
  CHECK(listed(rig, states) == Ids{1, 2, 3, 4});
  states.labels = Labels{{"env", "dev"}};
  CHECK(listed(rig, states) == Ids{2, 4});
  states.limit = 1;  // The newest match.
  CHECK(listed(rig, states) == Ids{4});

  proto::List since;
  since.since_ms = 3'600'000;
  CHECK(listed(rig, since).size() == 12);
}

TEST_CASE("Engine::list: since keeps the tasks submitted within the window") {
  auto store = EngineRig::open_store();
  {
    // Two tasks submitted two hours ago, as the store remembers them.
    std::vector<Task> old(2);
    for (Task& t : old) {
      t.group = "g";
      t.argv = {"old"};
      t.state = TaskState::kSucceeded;
      t.submitted_at = now_ms() - 2 * 3'600'000;
      t.ended_at = now_ms() - 3'600'000;
    }
    REQUIRE_FALSE(store->insert(old, {}).has_error());
  }
  EngineRig rig(rig_config(), store.get());
  rig.submit("g", 2);  // 3, 4: now.
  proto::List req;
  req.since_ms = 3'600'000;
  CHECK(listed(rig, req) == Ids{3, 4});
  req.since_ms = 3 * 3'600'000;
  CHECK(listed(rig, req) == Ids{1, 2, 3, 4});
}

// ------------------------------------------------------------------ restart

TEST_CASE("Engine::restart: a group's failed tasks queue again as new tasks, copied") {
  EngineRig rig(rig_config(10));
  proto::TaskSpec spec = with_labels({{"env", "prod"}});
  spec.priority = 3;
  spec.timeout_ms = 5000;
  spec.requeue = true;
  spec.max_log_bytes = 1 << 20;
  spec.cwd = "/srv";
  spec.env = proto::Env{{"A", "1"}};
  spec.shell = true;
  rig.submit("g", 5, spec);
  rig.exec.finish(1, exit_code(0));
  rig.exec.finish(2, exit_code(1));
  rig.exec.finish(3, killed_by(SIGKILL));
  rig.exec.finish(4, exit_code(0));
  rig.settle();
  REQUIRE(rig.engine->cancel(kRoot, {std::nullopt, {5}, 0, true}).has_value());
  rig.settle();
  REQUIRE(rig.state(5) == TaskState::kCancelled);

  const auto r = restart_ok(rig, restart_group("g", kFailedStates));
  CHECK(r.ids == Ids{6, 7});
  CHECK(r.restarted_from == Ids{2, 3});
  for (const proto::TaskId id : r.ids) {
    const proto::TaskInfo t = rig.task(id);
    const proto::TaskInfo old = rig.task(*t.restarted_from);
    CHECK(t.group == "g");
    CHECK(t.argv == old.argv);
    CHECK(t.cwd == "/srv");
    CHECK(t.shell);
    CHECK(t.priority == 3);
    CHECK(t.timeout_ms == 5000);
    CHECK(t.requeue);
    CHECK(t.max_log_bytes == 1 << 20);
    CHECK(t.labels == Labels{{"env", "prod"}});
    CHECK(t.state == TaskState::kRunning);
    REQUIRE(rig.exec.running.contains(id));
    REQUIRE(rig.exec.running.at(id).spec.env != nullptr);
    CHECK(*rig.exec.running.at(id).spec.env == proto::Env{{"A", "1"}});
  }
  // The same environment: the stored body the old ones ran with, not a copy.
  auto rows = rig.store.load_tasks();
  REQUIRE_FALSE(rows.has_error());
  REQUIRE(rows->size() == 7);
  CHECK((*rows)[5].env_id == (*rows)[1].env_id);
  CHECK((*rows)[6].env_id == (*rows)[2].env_id);
  CHECK((*rows)[5].restarted_from == 2);
  CHECK((*rows)[5].submit_key.empty());
  CHECK(rig.state(2) == TaskState::kFailed);  // The old ones keep their history.
  CHECK_FALSE(rig.task(2).restarted_from.has_value());

  SUBCASE("a second group restart skips what was restarted: only new failures") {
    CHECK(restart_ok(rig, restart_group("g", kFailedStates)).ids.empty());
    rig.exec.finish(6, exit_code(1));
    rig.exec.finish(7, exit_code(0));
    rig.settle();
    const auto again = restart_ok(rig, restart_group("g", kFailedStates));
    CHECK(again.ids == Ids{8});
    CHECK(again.restarted_from == Ids{6});
  }
  SUBCASE("cancelled tasks only when asked for") {
    CHECK(restart_ok(rig, restart_group("g", {TaskState::kCancelled})).restarted_from == Ids{5});
  }
  SUBCASE("by id, a task runs again however often it was restarted") {
    CHECK(restart_ok(rig, restart_ids({2, 1, 2})).restarted_from == Ids{1, 2});
  }
}

TEST_CASE("Engine::restart: refused for unknown, hidden and unended tasks, all or nothing") {
  EngineRig rig(rig_config(1));
  rig.exec.ignores_stop.insert(2);  // Keeps a cancel of its group going.
  const proto::TaskId mine = rig.submit("g", 1, {}, kAlice).front();  // 1: running.
  const proto::TaskId queued = rig.submit("g", 1, {}, kAlice).front();
  const proto::TaskId roots = rig.submit("r", 1, {}, kRoot).front();
  rig.exec.finish(mine, exit_code(1));
  rig.settle();  // 2 runs now; 3 is queued.
  REQUIRE(rig.state(queued) == TaskState::kRunning);

  Error e = restart_refused(rig, restart_ids({mine, 99}), kAlice);
  CHECK(e.code == Errc::kNotFound);
  CHECK(e.message == "no task 99");
  e = restart_refused(rig, restart_ids({roots}), kAlice);  // Not alice's to learn of.
  CHECK(e.code == Errc::kNotFound);
  e = restart_refused(rig, restart_ids({mine, queued}), kAlice);
  CHECK(e.code == Errc::kInvalidParams);
  CHECK(e.message == "task 2 is running: only ended tasks can be restarted");
  e = restart_refused(rig, restart_ids({roots}), kRoot);
  CHECK(e.message == "task 3 is queued: only ended tasks can be restarted");
  e = restart_refused(rig, restart_group("nope", kFailedStates), kAlice);
  CHECK(e.code == Errc::kNotFound);
  CHECK(listed(rig, {}).size() == 3);  // Nothing was queued by any of them.

  SUBCASE("root restarts alice's task: it is alice's, in her group") {
    const proto::TaskId copy = restart_ok(rig, restart_ids({mine}), kRoot).ids.at(0);
    CHECK(rig.task(copy).uid == kAlice.uid);
    CHECK(rig.task(copy).group == "g");
    CHECK(rig.exec.running.contains(copy) == false);  // Queued behind the limit.
  }
  SUBCASE("a group being cancelled takes no restart") {
    REQUIRE(rig.engine->cancel(kAlice, {proto::GroupRef{"g", std::nullopt}, {}, {}, false})
                .has_value());
    rig.settle();
    REQUIRE(rig.group("g").cancelling);
    e = restart_refused(rig, restart_ids({mine}), kAlice);
    CHECK(e.code == Errc::kGroupCancelling);
    CHECK(listed(rig, {}).size() == 3);
  }
  SUBCASE("nothing while draining") {
    rig.signal_drain();
    CHECK(restart_refused(rig, restart_ids({mine}), kAlice).code == Errc::kDraining);
  }
}

TEST_CASE("Engine::restart: the origin is stored, and after a daemon restart it is still skipped") {
  auto store = EngineRig::open_store();
  {
    EngineRig before(rig_config(), store.get());
    before.submit("g", 2);
    before.exec.finish(1, exit_code(3));
    before.exec.finish(2, exit_code(4));
    before.settle();
    CHECK(restart_ok(before, restart_ids({1})).ids == Ids{3});
  }
  EngineRig after(rig_config(), store.get());
  CHECK(after.task(3).restarted_from == 1);
  // 1 was restarted (by 3, lost at the crash); 2 and 3 were not.
  const auto r = restart_ok(after, restart_group("g", kFailedStates));
  CHECK(r.restarted_from == Ids{2, 3});
}

}  // namespace tg::daemon::testing
