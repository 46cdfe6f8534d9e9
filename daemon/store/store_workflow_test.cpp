// The Store's part of issue 13: labels, submit keys and restart origins kept with the task row,
// and the migration that adds them (schema 6).
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "daemon/store/store.h"
#include "daemon/store/store_fixtures_test.h"

namespace tg::daemon {

using namespace store_testing;

TEST_CASE("Store: labels, the submit key and the restart origin are stored with the task") {
  Store store = open_memory();
  auto shared = std::make_shared<const proto::Labels>(proto::Labels{{"env", "prod"}});
  std::vector<Task> tasks = make_tasks(4);
  tasks[0].labels = shared;
  tasks[1].labels = shared;  // A batch's tasks share one map.
  tasks[2].labels = std::make_shared<const proto::Labels>(proto::Labels{{"a", "1"}, {"b", ""}});
  tasks[0].submit_key = "deploy-42";
  tasks[3].restarted_from = 1;
  REQUIRE(store.insert(tasks, Envs{}).has_value());

  const auto loaded = load(store);
  REQUIRE(loaded.size() == 4);
  REQUIRE(loaded[0].labels);
  CHECK(*loaded[0].labels == proto::Labels{{"env", "prod"}});
  CHECK(loaded[0].labels == loaded[1].labels);  // Shared again after the load.
  CHECK(*loaded[2].labels == proto::Labels{{"a", "1"}, {"b", ""}});
  CHECK_FALSE(loaded[3].labels);
  CHECK(loaded[0].submit_key == "deploy-42");
  CHECK(loaded[1].submit_key.empty());
  CHECK(loaded[3].restarted_from == 1);
  CHECK(loaded[0].restarted_from == 0);
}

TEST_CASE("Store: a restart's task keeps the environment of the task it copies") {
  Store store = open_memory();
  const std::string body = env_body({{"A", "1"}});
  std::vector<Task> first = make_tasks(1);
  REQUIRE(store.insert(first, Envs{&body}).has_value());
  REQUIRE(first[0].env_id > 0);
  std::vector<Task> copy = make_tasks(1);
  copy[0].env_id = first[0].env_id;  // No body given: the stored one.
  copy[0].restarted_from = first[0].id;
  REQUIRE(store.insert(copy, Envs{}).has_value());
  CHECK(copy[0].env_id == first[0].env_id);
  CHECK(load(store)[1].env_id == first[0].env_id);
  CHECK(store.load_env(copy[0].env_id).value() == proto::Env{{"A", "1"}});
}

TEST_CASE("Store: a submit key is unique per user among the kept tasks") {
  Store store = open_memory();
  std::vector<Task> one = make_tasks(1);
  one[0].submit_key = "k";
  REQUIRE(store.insert(one, Envs{}).has_value());
  std::vector<Task> other_user = make_tasks(1);
  other_user[0].uid = 1001;
  other_user[0].submit_key = "k";
  CHECK(store.insert(other_user, Envs{}).has_value());
  std::vector<Task> again = make_tasks(1);
  again[0].submit_key = "k";
  CHECK(store.insert(again, Envs{}).has_error());  // The engine never asks; the index says no.
  CHECK(load(store).size() == 2);
}

TEST_CASE("Store: a version 5 database migrates: no labels, key, origin, dependencies or retries") {
  SharedMemoryDb shared;
  std::vector<Task> tasks = make_tasks(2);
  {
    auto store = Store::open(shared.name(), {});
    REQUIRE(store.has_value());
    REQUIRE(store->insert(tasks, Envs{}).has_value());
  }
  shared.exec(
      "ALTER TABLE tasks DROP COLUMN cpu_user_ms; ALTER TABLE tasks DROP COLUMN cpu_system_ms; "
      "ALTER TABLE tasks DROP COLUMN memory_peak_bytes; "
      "DROP INDEX tasks_by_key; ALTER TABLE tasks DROP COLUMN labels; "
      "ALTER TABLE tasks DROP COLUMN submit_key; ALTER TABLE tasks DROP COLUMN restarted_from; "
      "DROP TRIGGER attempts_go_with_their_task; DROP TABLE attempts; "
      "ALTER TABLE tasks DROP COLUMN after_ok; ALTER TABLE tasks DROP COLUMN after_any; "
      "ALTER TABLE tasks DROP COLUMN begin_at_ms; ALTER TABLE tasks DROP COLUMN retries; "
      "ALTER TABLE tasks DROP COLUMN retry_delay_ms; ALTER TABLE tasks DROP COLUMN attempt; "
      "ALTER TABLE groups DROP COLUMN first_success; ALTER TABLE groups DROP COLUMN on_done; "
      "PRAGMA user_version = 5");
  auto store = Store::open(shared.name(), {});
  REQUIRE(store.has_value());
  CHECK(shared.user_version() == Store::kSchemaVersion);
  const auto loaded = load(*store);
  REQUIRE(loaded.size() == 2);
  CHECK_FALSE(loaded[0].labels);
  CHECK(loaded[0].submit_key.empty());
  CHECK(loaded[0].restarted_from == 0);
  CHECK(loaded[0].after.empty());
  CHECK(loaded[0].retries == 0);
  CHECK(loaded[0].attempt == 1);
  CHECK(loaded[1].argv == tasks[1].argv);
}

}  // namespace tg::daemon
