#include "daemon/engine/scheduler.h"

#include <vector>

#include <doctest/doctest.h>

namespace tg::daemon {

namespace {

using Started = std::vector<std::pair<GroupId, TaskId>>;

// Everything next() lets start right now, in order.
Started start_all(Scheduler& s) {
  Started out;
  while (auto n = s.next()) out.push_back(*n);
  return out;
}

std::vector<TaskId> ids_of(const Started& started) {
  std::vector<TaskId> out;
  for (const auto& [g, id] : started) out.push_back(id);
  return out;
}

}  // namespace

TEST_CASE("Scheduler: the global limit is reached and never exceeded") {
  Scheduler s(3);
  for (TaskId id = 1; id <= 10; ++id) s.enqueue(id % 2 == 0 ? 1 : 2, id, 0);
  CHECK(s.queued() == 10);

  CHECK(start_all(s).size() == 3);
  CHECK(s.running() == 3);
  CHECK(s.queued() == 7);
  CHECK_FALSE(s.next().has_value());

  // Each end frees exactly one slot.
  for (int round = 0; round < 7; ++round) {
    s.finished(s.running_in(1) > 0 ? 1 : 2);
    const auto more = start_all(s);
    CHECK(more.size() == 1);
    CHECK(s.running() == 3);
  }
  CHECK(s.queued() == 0);
  CHECK_FALSE(s.next().has_value());
}

TEST_CASE("Scheduler: a group limit caps that group while the global limit has room") {
  Scheduler s(10);
  s.set_group_limit(1, 2);
  for (TaskId id = 1; id <= 5; ++id) s.enqueue(1, id, 0);
  for (TaskId id = 6; id <= 8; ++id) s.enqueue(2, id, 0);

  const auto started = start_all(s);
  CHECK(started.size() == 5);  // 2 of group 1, all 3 of group 2.
  CHECK(s.running_in(1) == 2);
  CHECK(s.running_in(2) == 3);
  CHECK(s.queued_in(1) == 3);

  s.finished(1);
  const auto next = start_all(s);
  REQUIRE(next.size() == 1);
  CHECK(next[0] == std::pair<GroupId, TaskId>{1, 3});
  CHECK(s.running_in(1) == 2);
}

TEST_CASE("Scheduler: group limit 0 means only the global limit applies") {
  Scheduler s(4);
  s.set_group_limit(1, 0);
  for (TaskId id = 1; id <= 6; ++id) s.enqueue(1, id, 0);
  CHECK(start_all(s).size() == 4);
  CHECK(s.running_in(1) == 4);

  SUBCASE("setting a limit and clearing it again") {
    s.set_group_limit(1, 1);
    s.finished(1);
    CHECK_FALSE(s.next().has_value());  // 3 running, limit 1.
    s.set_group_limit(1, 0);
    CHECK(start_all(s).size() == 1);
    CHECK(s.running_in(1) == 4);
  }
}

TEST_CASE("Scheduler: higher priority starts first, then lower id") {
  Scheduler s(1);
  s.enqueue(1, 1, 0);
  s.enqueue(2, 2, 5);
  s.enqueue(1, 3, 5);
  s.enqueue(3, 4, -3);
  s.enqueue(2, 5, 0);
  s.enqueue(3, 6, 1000);
  s.enqueue(1, 7, -1000);

  std::vector<TaskId> order;
  while (auto n = s.next()) {
    order.push_back(n->second);
    s.finished(n->first);
  }
  CHECK(order == std::vector<TaskId>{6, 2, 3, 1, 5, 4, 7});
}

TEST_CASE("Scheduler: within a group at equal priority the order is strictly FIFO") {
  Scheduler s(1);
  SUBCASE("enqueued in id order") {
    for (TaskId id = 1; id <= 50; ++id) s.enqueue(7, id, 3);
  }
  SUBCASE("enqueued out of order (restart recovery)") {
    for (TaskId id = 50; id >= 1; --id) s.enqueue(7, id, 3);
  }
  std::vector<TaskId> order;
  while (auto n = s.next()) {
    order.push_back(n->second);
    s.finished(7);
  }
  REQUIRE(order.size() == 50);
  for (std::size_t i = 0; i < order.size(); ++i) CHECK(order[i] == static_cast<TaskId>(i + 1));
}

TEST_CASE("Scheduler: enqueuing the same task twice counts it once") {
  Scheduler s(5);
  s.enqueue(1, 1, 0);
  s.enqueue(1, 1, 0);
  CHECK(s.queued() == 1);
  CHECK(s.queued_in(1) == 1);
  CHECK(start_all(s).size() == 1);
}

TEST_CASE("Scheduler: a paused group starts nothing while others run, and resume restores it") {
  Scheduler s(4);
  for (TaskId id = 1; id <= 4; ++id) s.enqueue(1, id, 100);  // Would win on priority.
  for (TaskId id = 5; id <= 6; ++id) s.enqueue(2, id, 0);
  s.set_paused(1, true);

  CHECK(ids_of(start_all(s)) == std::vector<TaskId>{5, 6});
  CHECK(s.running_in(1) == 0);
  CHECK(s.queued_in(1) == 4);

  SUBCASE("pausing keeps queued tasks and does not stop running ones") {
    s.set_paused(2, true);
    CHECK(s.running_in(2) == 2);
    s.finished(2);
    CHECK_FALSE(s.next().has_value());
  }
  SUBCASE("resume starts the paused group's tasks in order") {
    s.set_paused(1, false);
    CHECK(ids_of(start_all(s)) == std::vector<TaskId>{1, 2});
    CHECK(s.running() == 4);
  }
  SUBCASE("a task enqueued into a paused group waits too") {
    s.enqueue(1, 9, 1000);
    s.finished(2);
    CHECK_FALSE(s.next().has_value());
    s.set_paused(1, false);
    const auto n = s.next();
    REQUIRE(n.has_value());
    CHECK(n->second == 9);
  }
}

TEST_CASE("Scheduler: raising the global limit lets next() return more at once") {
  Scheduler s(2);
  for (TaskId id = 1; id <= 10; ++id) s.enqueue(1, id, 0);
  CHECK(start_all(s).size() == 2);
  s.set_max_running(6);
  CHECK(s.max_running() == 6);
  CHECK(ids_of(start_all(s)) == std::vector<TaskId>{3, 4, 5, 6});
  CHECK(s.running() == 6);
}

TEST_CASE("Scheduler: lowering the global limit un-starts nothing and defers starts") {
  Scheduler s(5);
  for (TaskId id = 1; id <= 10; ++id) s.enqueue(1, id, 0);
  CHECK(start_all(s).size() == 5);
  s.set_max_running(2);
  CHECK(s.running() == 5);  // Nothing is stopped.
  CHECK(s.queued() == 5);
  CHECK_FALSE(s.next().has_value());

  s.finished(1);
  s.finished(1);
  s.finished(1);
  CHECK_FALSE(s.next().has_value());  // 2 running: at the new limit.
  s.finished(1);
  CHECK(ids_of(start_all(s)) == std::vector<TaskId>{6});
  CHECK(s.running() == 2);
}

TEST_CASE("Scheduler: raising and lowering a group limit") {
  Scheduler s(100);
  s.set_group_limit(1, 1);
  for (TaskId id = 1; id <= 10; ++id) s.enqueue(1, id, 0);
  CHECK(start_all(s).size() == 1);

  SUBCASE("raising starts more at once") {
    s.set_group_limit(1, 4);
    CHECK(ids_of(start_all(s)) == std::vector<TaskId>{2, 3, 4});
    CHECK(s.running_in(1) == 4);
  }
  SUBCASE("lowering keeps the running ones and defers") {
    s.set_group_limit(1, 4);
    CHECK(start_all(s).size() == 3);
    s.set_group_limit(1, 2);
    CHECK(s.running_in(1) == 4);
    CHECK_FALSE(s.next().has_value());
    s.finished(1);
    s.finished(1);
    CHECK_FALSE(s.next().has_value());
    s.finished(1);
    CHECK(ids_of(start_all(s)) == std::vector<TaskId>{5});
    CHECK(s.running_in(1) == 2);
  }
}

TEST_CASE("Scheduler: remove() takes out one queued task") {
  Scheduler s(1);
  s.enqueue(1, 1, 0);
  s.enqueue(1, 2, 0);
  s.enqueue(1, 3, 9);

  CHECK(s.remove(1, 3, 9));
  CHECK(s.queued() == 2);
  CHECK(s.queued_in(1) == 2);

  SUBCASE("unknown task, wrong priority or wrong group: false, nothing changes") {
    CHECK_FALSE(s.remove(1, 3, 9));
    CHECK_FALSE(s.remove(1, 2, 5));
    CHECK_FALSE(s.remove(2, 2, 0));
    CHECK(s.queued() == 2);
  }
  SUBCASE("the removed head is never started") {
    CHECK(s.remove(1, 1, 0));
    CHECK(ids_of(start_all(s)) == std::vector<TaskId>{2});
    CHECK(s.queued() == 0);
  }
  SUBCASE("a removed task is never started even when it was the group's best") {
    CHECK(ids_of(start_all(s)) == std::vector<TaskId>{1});
  }
}

TEST_CASE("Scheduler: clear() drops every queued task of one group only") {
  Scheduler s(2);
  for (TaskId id = 1; id <= 5; ++id) s.enqueue(1, id, 0);
  for (TaskId id = 6; id <= 8; ++id) s.enqueue(2, id, 0);
  CHECK(start_all(s).size() == 2);  // 1 and 2, both of group 1.

  CHECK(s.clear(1) == std::vector<TaskId>{3, 4, 5});
  CHECK(s.queued() == 3);
  CHECK(s.queued_in(1) == 0);
  CHECK(s.running_in(1) == 2);  // Running tasks are the caller's to stop.
  CHECK(s.clear(1).empty());
  CHECK(s.clear(42).empty());

  s.finished(1);
  s.finished(1);
  CHECK(ids_of(start_all(s)) == std::vector<TaskId>{6, 7});
}

TEST_CASE("Scheduler: clear() returns the ids in increasing order whatever their priority") {
  Scheduler s(1);
  s.set_paused(1, true);
  s.enqueue(1, 10, 0);
  s.enqueue(1, 11, 5);
  s.enqueue(1, 12, -3);
  s.enqueue(1, 13, 5);
  CHECK(s.clear(1) == std::vector<TaskId>{10, 11, 12, 13});
  CHECK(s.queued() == 0);
}

TEST_CASE("Scheduler: a full group with 100000 queued tasks does not block another group") {
  Scheduler s(10);
  s.set_group_limit(1, 2);
  for (TaskId id = 1; id <= 100'000; ++id) s.enqueue(1, id, 0);
  CHECK(start_all(s).size() == 2);
  CHECK(s.queued_in(1) == 99'998);

  // Group 2's tasks are newer and of lower priority, yet start at once.
  for (TaskId id = 100'001; id <= 100'008; ++id) s.enqueue(2, id, -5);
  const auto started = start_all(s);
  REQUIRE(started.size() == 8);
  for (const auto& [g, id] : started) CHECK(g == 2);
  CHECK(s.running() == 10);

  // Many rounds of group 2 churn while group 1 stays full.
  for (TaskId id = 200'000; id < 210'000; ++id) {
    s.enqueue(2, id, 0);
    s.finished(2);
    const auto n = s.next();
    REQUIRE(n.has_value());
    CHECK(n->first == 2);
  }
  CHECK(s.queued_in(1) == 99'998);

  SUBCASE("the same holds for a paused group") {
    s.set_group_limit(1, 0);
    s.set_paused(1, true);
    s.finished(2);
    s.enqueue(3, 300'000, -1000);
    const auto n = s.next();
    REQUIRE(n.has_value());
    CHECK(*n == std::pair<GroupId, TaskId>{3, 300'000});
  }
}

TEST_CASE("Scheduler: next and finished keep the counts") {
  Scheduler s(2);
  CHECK(s.running() == 0);
  CHECK(s.running_in(1) == 0);
  CHECK(s.queued_in(1) == 0);  // Unknown groups report zero.

  s.enqueue(1, 1, 0);
  s.enqueue(1, 2, 0);
  REQUIRE(start_all(s).size() == 2);
  CHECK(s.running() == 2);
  CHECK(s.running_in(1) == 2);

  s.enqueue(2, 10, 0);
  CHECK_FALSE(s.next().has_value());  // Running tasks hold the slots.

  SUBCASE("running tasks count against the group limit too") {
    s.set_max_running(10);
    s.set_group_limit(1, 2);
    s.enqueue(1, 11, 0);
    CHECK(ids_of(start_all(s)) == std::vector<TaskId>{10});
    s.finished(1);
    CHECK(ids_of(start_all(s)) == std::vector<TaskId>{11});
    CHECK(s.running_in(1) == 2);
    CHECK(s.running() == 3);
  }
  SUBCASE("finishing frees the slot") {
    s.finished(1);
    CHECK(s.running() == 1);
    CHECK(s.running_in(1) == 1);
    CHECK(ids_of(start_all(s)) == std::vector<TaskId>{10});
    CHECK(s.running() == 2);
    CHECK(s.running_in(2) == 1);
    s.finished(2);
    s.finished(1);
    CHECK(s.running() == 0);
    CHECK(s.queued() == 0);
  }
}

}  // namespace tg::daemon
