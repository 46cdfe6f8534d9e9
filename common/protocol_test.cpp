#include "common/protocol.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace tg::proto {

namespace {

const std::vector<TaskState>& all_states() {
  static const std::vector<TaskState> kAll = {
      TaskState::kInvalid,   TaskState::kQueued,      TaskState::kRunning,
      TaskState::kSucceeded, TaskState::kFailed,      TaskState::kTimedOut,
      TaskState::kCancelled, TaskState::kInterrupted, TaskState::kLost};
  return kAll;
}

}  // namespace

TEST_CASE("to_string and task_state_from_string: every state has a name that reads back") {
  const std::vector<std::string> names = {"invalid",   "queued",      "running",
                                          "succeeded", "failed",      "timed_out",
                                          "cancelled", "interrupted", "lost"};
  for (std::size_t i = 0; i < all_states().size(); ++i) {
    const TaskState s = all_states()[i];
    CAPTURE(names[i]);
    CHECK(to_string(s) == names[i]);
    if (s == TaskState::kInvalid) continue;
    CHECK(task_state_from_string(names[i]) == s);
    // The JSON mapping agrees with to_string.
    CHECK(nlohmann::json(s) == names[i]);
    CHECK(nlohmann::json(names[i]).get<TaskState>() == s);
  }
}

TEST_CASE("task_state_from_string: unknown names, case variants and 'invalid' give kInvalid") {
  for (std::string_view s : {"", "invalid", "Queued", "RUNNING", "timed-out", "timedout", " lost",
                             "cancelled\n", "done"}) {
    CAPTURE(s);
    CHECK(task_state_from_string(s) == TaskState::kInvalid);
  }
  CHECK(nlohmann::json("bogus").get<TaskState>() == TaskState::kInvalid);
  CHECK(nlohmann::json(TaskState::kInvalid).is_null());
}

TEST_CASE("is_terminal: only the six end states are terminal") {
  for (TaskState s : all_states()) {
    CAPTURE(to_string(s));
    const bool expected =
        s != TaskState::kInvalid && s != TaskState::kQueued && s != TaskState::kRunning;
    CHECK(is_terminal(s) == expected);
  }
}

TEST_CASE("is_valid_group_name: 1-64 characters of A-Z a-z 0-9 _ . -") {
  SUBCASE("valid") {
    for (std::string_view name : {"default", "a", "A", "0", "nightly-build_2.x", "...", "-", "_",
                                  "ALL.CAPS-and_lower.123"}) {
      CAPTURE(name);
      CHECK(is_valid_group_name(name));
    }
    CHECK(is_valid_group_name(std::string(64, 'z')));
  }
  SUBCASE("invalid") {
    for (std::string_view name : {"", "a b", "a/b", "/", "a\\b", "é", "grüppe", "tab\t", "a\n",
                                  "semi;colon", "star*", "q?", "at@", "plus+", "colon:"}) {
      CAPTURE(name);
      CHECK_FALSE(is_valid_group_name(name));
    }
    CHECK_FALSE(is_valid_group_name(std::string(65, 'z')));
    CHECK_FALSE(is_valid_group_name(std::string("a\0b", 3)));
  }
}

TEST_CASE("StateCounts: add, total and done") {
  StateCounts c;
  CHECK(c.total() == 0);
  CHECK(c.done() == 0);

  for (TaskState s : all_states()) c.add(s);
  CHECK(c.queued == 1);
  CHECK(c.running == 1);
  CHECK(c.succeeded == 1);
  CHECK(c.failed == 1);
  CHECK(c.timed_out == 1);
  CHECK(c.cancelled == 1);
  CHECK(c.interrupted == 1);
  CHECK(c.lost == 1);
  CHECK(c.total() == 8);  // kInvalid is not counted.
  CHECK(c.done() == 6);

  SUBCASE("add with a count, and negative counts for a transition") {
    c.add(TaskState::kQueued, 10);
    CHECK(c.queued == 11);
    c.add(TaskState::kQueued, -1);
    c.add(TaskState::kRunning, +1);
    CHECK(c.queued == 10);
    CHECK(c.running == 2);
    CHECK(c.total() == 18);
    CHECK(c.done() == 6);
    c.add(TaskState::kInvalid, 100);
    CHECK(c.total() == 18);
  }
  SUBCASE("JSON uses the state names as keys") {
    const nlohmann::json j = c;
    for (TaskState s : all_states()) {
      if (s == TaskState::kInvalid) continue;
      CHECK(j.at(std::string(to_string(s))) == 1);
    }
    CHECK(j.size() == 8);
  }
}

TEST_CASE("TaskInfo JSON: unreached times and absent pid are null, not missing") {
  TaskInfo t;
  t.id = 5;
  t.state = TaskState::kQueued;
  t.submitted_at = "2024-02-29T00:00:00.000Z";
  const nlohmann::json j = t;
  CHECK(j["state"] == "queued");
  CHECK(j["submitted_at"] == "2024-02-29T00:00:00.000Z");
  REQUIRE(j.contains("started_at"));
  CHECK(j["started_at"].is_null());
  REQUIRE(j.contains("pid"));
  CHECK(j["pid"].is_null());
  CHECK(j["exit_code"].is_null());
  const TaskInfo back = j.get<TaskInfo>();
  CHECK(back.id == 5);
  CHECK(back.submitted_at == t.submitted_at);
  CHECK_FALSE(back.started_at.has_value());
  CHECK_FALSE(back.pid.has_value());
}

}  // namespace tg::proto
