// The Store's pruning of finished tasks: by age and count, in bounded slices.
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "common/codec.h"
#include "daemon/store/store.h"
#include "daemon/store/store_fixtures_test.h"

namespace tg::daemon {

using namespace store_testing;

TEST_CASE("Store: prune removes finished tasks by age and by count, never unfinished ones") {
  Store store = open_memory();
  const std::string body = env_body({{"K", "v"}});
  std::vector<Task> tasks = make_tasks(6);
  REQUIRE(
      store.insert(tasks, Envs{&body, nullptr, nullptr, nullptr, nullptr, nullptr}).has_value());
  // 1, 2, 3 ended at 100, 300, 200; 4 is running; 5 and 6 are queued.
  finish(tasks[0], 100);
  finish(tasks[1], 300);
  finish(tasks[2], 200);
  tasks[3].state = TaskState::kRunning;
  tasks[3].started_at = 50;
  REQUIRE(store.update(Updates{&tasks[0], &tasks[1], &tasks[2], &tasks[3]}).has_value());

  SUBCASE("by age: what ended before the cutoff") {
    auto pruned = store.prune(250, 1000);
    REQUIRE(pruned.has_value());
    CHECK(sorted(*pruned) == std::vector<TaskId>{1, 3});
    CHECK(ids_of(load(store)) == std::vector<TaskId>{2, 4, 5, 6});
  }
  SUBCASE("the cutoff is exclusive") {
    auto pruned = store.prune(200, 1000);
    REQUIRE(pruned.has_value());
    CHECK(*pruned == std::vector<TaskId>{1});
  }
  SUBCASE("by count: keeps the most recently ended") {
    auto pruned = store.prune(0, 1);
    REQUIRE(pruned.has_value());
    CHECK(sorted(*pruned) == std::vector<TaskId>{1, 3});
    CHECK(ids_of(load(store)) == std::vector<TaskId>{2, 4, 5, 6});
  }
  SUBCASE("keep 0 removes every finished task and nothing else") {
    auto pruned = store.prune(0, 0);
    REQUIRE(pruned.has_value());
    CHECK(sorted(*pruned) == std::vector<TaskId>{1, 2, 3});
    const auto left = load(store);
    CHECK(ids_of(left) == std::vector<TaskId>{4, 5, 6});
    for (const Task& t : left) CHECK_FALSE(proto::is_terminal(t.state));
  }
  SUBCASE("nothing to prune returns no ids") {
    auto pruned = store.prune(50, 1000);
    REQUIRE(pruned.has_value());
    CHECK(pruned->empty());
    CHECK(load(store).size() == 6);
  }
  SUBCASE("max_rows spreads a big prune over several calls, the oldest ended first") {
    auto first = store.prune(0, 0, 2);
    REQUIRE(first.has_value());
    CHECK(sorted(*first) == std::vector<TaskId>{1, 3});
    auto second = store.prune(0, 0, 2);
    REQUIRE(second.has_value());
    CHECK(*second == std::vector<TaskId>{2});
    auto third = store.prune(0, 0, 2);
    REQUIRE(third.has_value());
    CHECK(third->empty());
    CHECK(ids_of(load(store)) == std::vector<TaskId>{4, 5, 6});
  }
  SUBCASE("max_rows 0 deletes nothing") {
    auto pruned = store.prune(1000, 0, 0);
    REQUIRE(pruned.has_value());
    CHECK(pruned->empty());
    CHECK(load(store).size() == 6);
  }
  SUBCASE("an environment goes when its last task does") {
    const std::int64_t env_id = tasks[0].env_id;
    REQUIRE(env_id != 0);
    REQUIRE(store.prune(150, 1000).has_value());
    CHECK(store.load_env(env_id).has_error());
  }
  SUBCASE("an environment still in use stays") {
    std::vector<Task> queued = make_tasks(1);
    REQUIRE(store.insert(queued, Envs{&body}).has_value());
    CHECK(queued[0].env_id == tasks[0].env_id);
    REQUIRE(store.prune(150, 1000).has_value());
    auto env = store.load_env(queued[0].env_id);
    REQUIRE(env.has_value());
    CHECK(*env == proto::Env{{"K", "v"}});
  }
}

TEST_CASE("Store: a prune pass keeps its cutoff while slices go, and newer tasks stay") {
  Store store = open_memory();
  std::vector<Task> tasks = make_tasks(10);
  REQUIRE(store.insert(tasks, Envs{}).has_value());
  Updates ended;
  for (int i = 0; i < 10; ++i) {
    finish(tasks[i], 1000 + 10 * (i % 5));  // Ends tie in pairs: ids break the tie.
    ended.push_back(&tasks[i]);
  }
  REQUIRE(store.update(ended).has_value());
  // Keep 3: the newest are 10 (1040), 5 (1040) and 9 (1030); 4 (1030) is the first to go.
  auto upto = store.prune_cutoff(0, 3);
  REQUIRE(upto.has_value());
  CHECK(upto->ended_at == 1030);
  CHECK(upto->id == 4);
  // Oldest end first (the ids of a slice come back in no particular order).
  std::vector<std::vector<TaskId>> slices;
  for (;;) {
    auto slice = store.prune_slice(*upto, 3);
    REQUIRE(slice.has_value());
    slices.push_back(sorted(*slice));
    if (slice->size() < 3) break;
  }
  CHECK(slices == std::vector<std::vector<TaskId>>{{1, 2, 6}, {3, 7, 8}, {4}});
  CHECK(ids_of(load(store)) == std::vector<TaskId>{5, 9, 10});
}

TEST_CASE("Store: the cost of a prune slice does not grow with the number of finished tasks") {
  // The retention_count cutoff used to be re-found by each slice, walking every finished
  // task; 250 ms a slice at 600 000 of them. A slice now starts where the index does.
  const auto slice_steps = [](int finished) {
    Store store = open_memory();
    std::vector<Task> tasks = make_tasks(finished);
    REQUIRE(store.insert(tasks, Envs{}).has_value());
    Updates ended;
    for (int i = 0; i < finished; ++i) {
      finish(tasks[i], 1000 + i);
      ended.push_back(&tasks[i]);
    }
    REQUIRE(store.update(ended).has_value());
    auto upto = store.prune_cutoff(0, 100);
    REQUIRE(upto.has_value());
    auto first = store.prune_slice(*upto, 50);
    REQUIRE(first.has_value());
    REQUIRE(first->size() == 50);
    auto second = store.prune_slice(*upto, 50);  // After a slice, as a pass goes on.
    REQUIRE(second.has_value());
    REQUIRE(second->size() == 50);
    return store.last_prune_steps();
  };
  const std::int64_t small = slice_steps(1'000);
  const std::int64_t big = slice_steps(20'000);
  CAPTURE(small);
  CAPTURE(big);
  CHECK(small > 0);
  CHECK(big < 2 * small);
}

}  // namespace tg::daemon
