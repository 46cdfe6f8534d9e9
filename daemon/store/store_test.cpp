#include "daemon/store/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "common/codec.h"
#include "daemon/store/store_fixtures_test.h"

namespace tg::daemon {

using namespace store_testing;

TEST_CASE("Store: opening an empty database migrates it to kSchemaVersion") {
  SUBCASE(":memory: opens with no tasks and no groups") {
    Store store = open_memory();
    CHECK(load(store).empty());
    auto groups = store.load_groups();
    REQUIRE(groups.has_value());
    CHECK(groups->empty());
  }
  SUBCASE("the schema version is recorded, and reopening keeps it and the data") {
    SharedMemoryDb shared;
    CHECK(shared.user_version() == 0);
    {
      auto store = Store::open(shared.name(), {false});
      REQUIRE(store.has_value());
      CHECK(shared.user_version() == Store::kSchemaVersion);
      auto tasks = make_tasks(2);
      REQUIRE(store->insert(tasks, Envs{}).has_value());
    }
    auto again = Store::open(shared.name(), {});
    REQUIRE(again.has_value());
    CHECK(shared.user_version() == Store::kSchemaVersion);
    CHECK(ids_of(load(*again)) == std::vector<TaskId>{1, 2});
  }
}

TEST_CASE("Store: a database with a newer schema is refused and left untouched") {
  SharedMemoryDb shared;
  shared.exec("CREATE TABLE future (x); PRAGMA user_version = " +
              std::to_string(Store::kSchemaVersion + 1));
  auto store = Store::open(shared.name(), {});
  REQUIRE(store.has_error());
  CHECK(store.error().code == Errc::kIo);
  CHECK(store.error().message.find("newer") != std::string::npos);
  CHECK(shared.user_version() == Store::kSchemaVersion + 1);
}

TEST_CASE("Store: insert assigns increasing ids and stores every field") {
  Store store = open_memory();
  std::vector<Task> first = make_tasks(3);
  first[1].argv = {"sh", "-c", "echo 'héllo wörld' \"$X\"", ""};
  first[1].cwd = "/src/with space";
  first[1].shell = true;
  first[1].priority = -1000;
  first[1].timeout = std::chrono::milliseconds(8'640'000'000);
  first[1].requeue = true;
  first[1].max_log_bytes = std::int64_t{1} << 50;
  first[1].uid = 4'000'000'000U;  // uid_t is unsigned: above INT32_MAX must survive.
  first[1].gid = 4'000'000'001U;
  first[1].group = std::string(64, 'g');
  REQUIRE(store.insert(first, Envs{}).has_value());
  CHECK(ids_of(first) == std::vector<TaskId>{1, 2, 3});

  std::vector<Task> second = make_tasks(2, "other");
  REQUIRE(store.insert(second, Envs{}).has_value());
  CHECK(ids_of(second) == std::vector<TaskId>{4, 5});

  const auto loaded = load(store);
  REQUIRE(loaded.size() == 5);
  CHECK(ids_of(loaded) == std::vector<TaskId>{1, 2, 3, 4, 5});
  const Task& t = loaded[1];
  CHECK(t.uid == 4'000'000'000U);
  CHECK(t.gid == 4'000'000'001U);
  CHECK(t.group == std::string(64, 'g'));
  CHECK(t.argv == first[1].argv);
  CHECK(t.cwd == "/src/with space");
  CHECK(t.env_id == 0);
  CHECK(t.shell);
  CHECK(t.priority == -1000);
  CHECK(t.timeout == std::chrono::milliseconds(8'640'000'000));
  CHECK(t.requeue);
  CHECK(t.max_log_bytes == std::int64_t{1} << 50);
  CHECK(loaded[0].max_log_bytes == 0);
  CHECK(t.state == TaskState::kQueued);
  CHECK(t.pid == 0);
  CHECK_FALSE(t.exit_code.has_value());
  CHECK_FALSE(t.signal.has_value());
  CHECK(t.reason.empty());
  CHECK(t.submitted_at == 1'700'000'000'000);
  CHECK(t.started_at == 0);
  CHECK(t.ended_at == 0);
  CHECK(loaded[0].cwd == "/");
  CHECK(loaded[3].group == "other");
}

TEST_CASE("Store: ids are never reused, even after the newest tasks are pruned") {
  Store store = open_memory();
  std::vector<Task> tasks = make_tasks(3);
  REQUIRE(store.insert(tasks, Envs{}).has_value());
  for (Task& t : tasks) finish(t, 1000);
  Updates updates = {&tasks[0], &tasks[1], &tasks[2]};
  REQUIRE(store.update(updates).has_value());

  auto pruned = store.prune(2000, 1000);
  REQUIRE(pruned.has_value());
  CHECK(sorted(*pruned) == std::vector<TaskId>{1, 2, 3});
  CHECK(load(store).empty());

  std::vector<Task> more = make_tasks(2);
  REQUIRE(store.insert(more, Envs{}).has_value());
  CHECK(ids_of(more) == std::vector<TaskId>{4, 5});
}

TEST_CASE("Store: one environment body shared by a batch is stored once") {
  Store store = open_memory();
  const proto::Env env = {{"PATH", "/usr/bin"}, {"LANG", "C.UTF-8"}, {"EMPTY", ""}};
  const std::string body = env_body(env);

  SUBCASE("the same pointer for every task") {
    std::vector<Task> tasks = make_tasks(4);
    REQUIRE(store.insert(tasks, Envs(4, &body)).has_value());
    CHECK(tasks[0].env_id != 0);
    for (const Task& t : tasks) CHECK(t.env_id == tasks[0].env_id);
    auto loaded = store.load_env(tasks[0].env_id);
    REQUIRE(loaded.has_value());
    CHECK(*loaded == env);
    for (const Task& t : load(store)) CHECK(t.env_id == tasks[0].env_id);
  }
  SUBCASE("equal bodies in different strings and different submits share one row") {
    const std::string copy = body;
    std::vector<Task> a = make_tasks(2);
    REQUIRE(store.insert(a, Envs{&body, &copy}).has_value());
    CHECK(a[0].env_id == a[1].env_id);
    std::vector<Task> b = make_tasks(1);
    REQUIRE(store.insert(b, Envs{&copy}).has_value());
    CHECK(b[0].env_id == a[0].env_id);
  }
  SUBCASE("different bodies get different ids, nullptr gets the default (0)") {
    const std::string other = env_body({{"X", "1"}});
    std::vector<Task> tasks = make_tasks(5);
    REQUIRE(store.insert(tasks, Envs{&body, nullptr, &other, &body}).has_value());
    CHECK(tasks[0].env_id != 0);
    CHECK(tasks[1].env_id == 0);
    CHECK(tasks[2].env_id != 0);
    CHECK(tasks[2].env_id != tasks[0].env_id);
    CHECK(tasks[3].env_id == tasks[0].env_id);
    CHECK(tasks[4].env_id == 0);  // Past the end of envs: the default environment.
    auto x = store.load_env(tasks[2].env_id);
    REQUIRE(x.has_value());
    CHECK(*x == proto::Env{{"X", "1"}});
  }
  SUBCASE("an unknown env id is an error, not an empty environment") {
    auto missing = store.load_env(12345);
    REQUIRE(missing.has_error());
    CHECK(missing.error().code == Errc::kIo);
    CHECK(store.load_env(0).has_error());  // 0 means "the default", never a row.
  }
}

TEST_CASE("Store: update persists state, pid, exit, signal, reason and times") {
  Store store = open_memory();
  std::vector<Task> tasks = make_tasks(3);
  REQUIRE(store.insert(tasks, Envs{}).has_value());

  tasks[0].state = TaskState::kRunning;
  tasks[0].pid = 4242;
  tasks[0].pid_start = 0xFFFF'FFFF'FFFFULL;
  tasks[0].started_at = 1'700'000'000'500;

  tasks[1].state = TaskState::kCancelled;
  tasks[1].pid = 77;
  tasks[1].signal = 15;
  tasks[1].reason = "cancelled: group 'g' cancelled by uid 1000";
  tasks[1].started_at = 1'700'000'000'100;
  tasks[1].ended_at = 1'700'000'009'999;

  tasks[2].state = TaskState::kFailed;
  tasks[2].exit_code = 3;
  tasks[2].ended_at = 1'700'000'001'000;
  // Fields that update does not own must not change.
  tasks[2].argv = {"changed"};
  tasks[2].priority = 999;

  REQUIRE(store.update(Updates{&tasks[0], &tasks[1], &tasks[2]}).has_value());
  const auto loaded = load(store);
  REQUIRE(loaded.size() == 3);

  CHECK(loaded[0].state == TaskState::kRunning);
  CHECK(loaded[0].pid == 4242);
  CHECK(loaded[0].pid_start == 0xFFFF'FFFF'FFFFULL);
  CHECK(loaded[0].started_at == 1'700'000'000'500);
  CHECK(loaded[0].ended_at == 0);
  CHECK_FALSE(loaded[0].exit_code.has_value());

  CHECK(loaded[1].state == TaskState::kCancelled);
  CHECK(loaded[1].signal == 15);
  CHECK_FALSE(loaded[1].exit_code.has_value());
  CHECK(loaded[1].reason == "cancelled: group 'g' cancelled by uid 1000");
  CHECK(loaded[1].started_at == 1'700'000'000'100);
  CHECK(loaded[1].ended_at == 1'700'000'009'999);

  CHECK(loaded[2].state == TaskState::kFailed);
  CHECK(loaded[2].exit_code == 3);
  CHECK_FALSE(loaded[2].signal.has_value());
  CHECK(loaded[2].argv == std::vector<std::string>{"task", "2"});
  CHECK(loaded[2].priority == 0);

  SUBCASE("exit code 0 is stored as 0, not as null") {
    tasks[0].state = TaskState::kSucceeded;
    tasks[0].exit_code = 0;
    tasks[0].ended_at = 1'700'000'002'000;
    REQUIRE(store.update(Updates{&tasks[0]}).has_value());
    CHECK(load(store)[0].exit_code == 0);
  }
  SUBCASE("an empty update is a no-op") { CHECK(store.update(Updates{}).has_value()); }
  SUBCASE("an unsynced update is committed just the same") {
    tasks[0].state = TaskState::kLost;
    REQUIRE(store.update(Updates{&tasks[0]}, /*sync=*/false).has_value());
    CHECK(load(store)[0].state == TaskState::kLost);
    tasks[0].state = TaskState::kInterrupted;  // And a synced one after it.
    REQUIRE(store.update(Updates{&tasks[0]}).has_value());
    CHECK(load(store)[0].state == TaskState::kInterrupted);
  }
  SUBCASE("every state reads back") {
    for (TaskState s :
         {TaskState::kQueued, TaskState::kRunning, TaskState::kSucceeded, TaskState::kFailed,
          TaskState::kTimedOut, TaskState::kCancelled, TaskState::kInterrupted, TaskState::kLost}) {
      tasks[0].state = s;
      REQUIRE(store.update(Updates{&tasks[0]}).has_value());
      CHECK(load(store)[0].state == s);
    }
  }
}

TEST_CASE("Store: insert writes its pending updates in the same transaction") {
  Store store = open_memory();
  std::vector<Task> old = make_tasks(1);
  REQUIRE(store.insert(old, Envs{}).has_value());
  old[0].state = TaskState::kRunning;
  old[0].pid = 99;

  std::vector<Task> fresh = make_tasks(1);
  REQUIRE(store.insert(fresh, Envs{}, Updates{&old[0]}).has_value());
  const auto loaded = load(store);
  REQUIRE(loaded.size() == 2);
  CHECK(loaded[0].state == TaskState::kRunning);
  CHECK(loaded[0].pid == 99);
  CHECK(loaded[1].id == fresh[0].id);
}

TEST_CASE("Store: a failed write changes nothing and assigns no ids") {
  SharedMemoryDb shared;
  auto opened = Store::open(shared.name(), {});
  REQUIRE(opened.has_value());
  Store& store = *opened;
  std::vector<Task> before = make_tasks(2);
  REQUIRE(store.insert(before, Envs{}).has_value());
  // Refuses any task whose argv is ["boom"], and any update whose reason is "boom".
  shared.exec(R"sql(
      CREATE TRIGGER refuse_insert BEFORE INSERT ON tasks WHEN NEW.argv = '["boom"]'
      BEGIN SELECT RAISE(ABORT, 'boom'); END;
      CREATE TRIGGER refuse_update BEFORE UPDATE ON tasks WHEN NEW.reason = 'boom'
      BEGIN SELECT RAISE(ABORT, 'boom'); END;
  )sql");

  SUBCASE("insert: the tasks before the failing one are rolled back") {
    const std::string body = env_body({{"ONLY", "here"}});
    std::vector<Task> batch = make_tasks(3);
    batch[2].argv = {"boom"};
    before[0].state = TaskState::kRunning;  // A pending update goes too.
    auto r = store.insert(batch, Envs{&body, &body, &body}, Updates{&before[0]});
    REQUIRE(r.has_error());
    CHECK(r.error().code == Errc::kIo);
    for (const Task& t : batch) {
      CHECK(t.id == 0);
      CHECK(t.env_id == 0);
    }
    const auto loaded = load(store);
    CHECK(ids_of(loaded) == std::vector<TaskId>{1, 2});
    CHECK(loaded[0].state == TaskState::kQueued);

    // The store stays usable, and the failed ids were not handed out.
    std::vector<Task> next = make_tasks(1);
    REQUIRE(store.insert(next, Envs{}).has_value());
    CHECK(next[0].id == 3);
  }
  SUBCASE("update: all or nothing") {
    before[0].state = TaskState::kRunning;
    before[1].reason = "boom";
    REQUIRE(store.update(Updates{&before[0], &before[1]}).has_error());
    CHECK(load(store)[0].state == TaskState::kQueued);
  }
}

TEST_CASE(
    "Store: group settings written by update() and read by load_groups round-trip settings and the "
    "last cancel") {
  Store store = open_memory();
  GroupRow plain{1000, "nightly", 4, true, false, std::nullopt, true, "echo done"};
  proto::CancelRecord record;
  record.by_uid = 0;
  record.reason = "cancelled: group 'ci' cancelled by uid 0";
  record.at = "2024-02-29T12:00:00.000Z";
  record.ended_at = "2024-02-29T12:00:10.500Z";
  record.cancelled_queued = 17;
  record.signalled = 3;
  record.killed = 1;
  GroupRow cancelled{1000, "ci", 0, false, true, record, false, ""};
  GroupRow same_name_other_user{1001, "nightly", 0, false, false, std::nullopt, false, ""};
  for (const GroupRow* g : {&plain, &cancelled, &same_name_other_user}) {
    REQUIRE(store.update({}, {}, std::span(g, 1), true).has_value());
  }

  auto loaded = store.load_groups();
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->size() == 3);
  const auto find = [&](uid_t uid, const std::string& name) -> const GroupRow& {
    const auto it = std::find_if(loaded->begin(), loaded->end(),
                                 [&](const GroupRow& g) { return g.uid == uid && g.name == name; });
    REQUIRE(it != loaded->end());
    return *it;
  };
  const GroupRow& n = find(1000, "nightly");
  CHECK(n.limit == 4);
  CHECK(n.fail_fast);
  CHECK(n.first_success);
  CHECK(n.on_done == "echo done");
  CHECK_FALSE(find(1001, "nightly").first_success);
  CHECK(find(1001, "nightly").on_done.empty());
  CHECK_FALSE(n.paused);
  CHECK_FALSE(n.last_cancel.has_value());

  const GroupRow& c = find(1000, "ci");
  CHECK(c.paused);
  REQUIRE(c.last_cancel.has_value());
  CHECK(c.last_cancel->by_uid == 0);
  CHECK(c.last_cancel->reason == record.reason);
  CHECK(c.last_cancel->at == record.at);
  CHECK(c.last_cancel->ended_at == record.ended_at);
  CHECK(c.last_cancel->cancelled_queued == 17);
  CHECK(c.last_cancel->signalled == 3);
  CHECK(c.last_cancel->killed == 1);

  CHECK(find(1001, "nightly").limit == 0);

  SUBCASE("saving again updates in place, and can clear the last cancel") {
    cancelled.limit = 9;
    cancelled.paused = false;
    cancelled.last_cancel.reset();
    REQUIRE(store.update({}, {}, std::span(&cancelled, 1), true).has_value());
    loaded = store.load_groups();
    REQUIRE(loaded.has_value());
    CHECK(loaded->size() == 3);
    const GroupRow& again = find(1000, "ci");
    CHECK(again.limit == 9);
    CHECK_FALSE(again.paused);
    CHECK_FALSE(again.last_cancel.has_value());
  }
}

TEST_CASE("Store: set_durable switches fsync on and off from the next transaction") {
  Store store = open_memory();  // Durable by default.
  std::vector<Task> tasks = make_tasks(3);
  REQUIRE(store.insert(tasks, Envs{}).has_value());
  CHECK(store.synchronous().value() == 2);  // FULL: an acknowledged submit is on disk.

  store.set_durable(false);
  tasks[0].state = TaskState::kRunning;
  REQUIRE(store.update(Updates{&tasks[0]}).has_value());
  CHECK(store.synchronous().value() == 1);  // NORMAL, even for a synced update.

  store.set_durable(true);
  tasks[1].state = TaskState::kRunning;
  REQUIRE(store.update(Updates{&tasks[1]}).has_value());
  CHECK(store.synchronous().value() == 2);
}

TEST_CASE("Store: a version 1 database migrates, its running tasks with no boot id") {
  SharedMemoryDb shared;
  std::vector<Task> tasks = make_tasks(2);
  {
    auto store = Store::open(shared.name(), {});
    REQUIRE(store.has_value());
    REQUIRE(store->insert(tasks, Envs{}).has_value());
    tasks[0].state = TaskState::kRunning;
    tasks[0].pid = 4242;
    tasks[0].pid_start = 987654;
    tasks[0].started_at = 1000;
    REQUIRE(store->update(Updates{&tasks[0]}).has_value());
  }
  // Back to schema 1, as an older taskgroupd left it: the newest columns go first.
  shared.exec(
      "ALTER TABLE tasks DROP COLUMN cpu_user_ms; ALTER TABLE tasks DROP COLUMN cpu_system_ms; "
      "ALTER TABLE tasks DROP COLUMN memory_peak_bytes");
  shared.exec(
      "DROP INDEX tasks_by_key; ALTER TABLE tasks DROP COLUMN labels; "
      "ALTER TABLE tasks DROP COLUMN submit_key; ALTER TABLE tasks DROP COLUMN restarted_from");
  shared.exec(
      "DROP INDEX tasks_by_env; ALTER TABLE tasks DROP COLUMN boot_id; "
      "ALTER TABLE tasks DROP COLUMN max_log_bytes; DROP TABLE commits; "
      "DROP TRIGGER attempts_go_with_their_task; DROP TABLE attempts; "
      "ALTER TABLE tasks DROP COLUMN after_ok; ALTER TABLE tasks DROP COLUMN after_any; "
      "ALTER TABLE tasks DROP COLUMN begin_at_ms; ALTER TABLE tasks DROP COLUMN retries; "
      "ALTER TABLE tasks DROP COLUMN retry_delay_ms; ALTER TABLE tasks DROP COLUMN attempt; "
      "ALTER TABLE groups DROP COLUMN first_success; ALTER TABLE groups DROP COLUMN on_done; "
      "PRAGMA user_version = 1");

  auto store = Store::open(shared.name(), {});
  REQUIRE(store.has_value());
  CHECK(shared.user_version() == Store::kSchemaVersion);
  auto loaded = load(*store);
  REQUIRE(loaded.size() == 2);
  CHECK(loaded[0].state == TaskState::kRunning);
  CHECK(loaded[0].pid == 4242);
  CHECK(loaded[0].pid_start == 987654);
  CHECK(loaded[0].boot_id.empty());                // Unknown: recovery will not kill by it.
  CHECK(loaded[0].max_log_bytes == 0);             // The daemon's max_log_size, as before.
  CHECK_FALSE(loaded[0].cpu_user_ms.has_value());  // Not accounted by an older taskgroupd.
  CHECK_FALSE(loaded[0].memory_peak_bytes.has_value());

  // And from now on the boot id is stored with the pid.
  loaded[1].state = TaskState::kRunning;
  loaded[1].pid = 4343;
  loaded[1].pid_start = 5;
  loaded[1].boot_id = "0c9e2a5e-1111-2222-3333-444455556666";
  REQUIRE(store->update(Updates{&loaded[1]}).has_value());
  CHECK(load(*store)[1].boot_id == loaded[1].boot_id);

  // And what a task used, once it has ended (null where not accounted).
  loaded[1].cpu_user_ms = 1200;
  loaded[1].cpu_system_ms = 30;
  REQUIRE(store->update(Updates{&loaded[1]}).has_value());
  const Task again = load(*store)[1];
  CHECK(again.cpu_user_ms == 1200);
  CHECK(again.cpu_system_ms == 30);
  CHECK_FALSE(again.memory_peak_bytes.has_value());
}

}  // namespace tg::daemon
