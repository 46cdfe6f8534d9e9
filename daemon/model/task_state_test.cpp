#include "daemon/model/task_state.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

namespace tg::daemon {

namespace {

// Every enumerator, in declaration order. The switches below have no default, so -Wswitch
// (an error under TG_WERROR) forces a new state or event to be added here too.
constexpr TaskState kFirstState = TaskState::kInvalid;
constexpr TaskState kLastState = TaskState::kLost;
constexpr TaskEvent kFirstEvent = TaskEvent::kStart;
constexpr TaskEvent kLastEvent = TaskEvent::kRetry;

bool is_last(TaskState s) {
  switch (s) {
    case TaskState::kInvalid:
    case TaskState::kQueued:
    case TaskState::kRunning:
    case TaskState::kSucceeded:
    case TaskState::kFailed:
    case TaskState::kTimedOut:
    case TaskState::kCancelled:
    case TaskState::kInterrupted:
      return false;
    case TaskState::kLost:
      return true;
  }
  return false;
}

bool is_last(TaskEvent e) {
  switch (e) {
    case TaskEvent::kStart:
    case TaskEvent::kSpawnFail:
    case TaskEvent::kCancel:
    case TaskEvent::kExitSuccess:
    case TaskEvent::kExitFailure:
    case TaskEvent::kExitAfterTimeout:
    case TaskEvent::kExitAfterCancel:
    case TaskEvent::kExitAfterDrain:
    case TaskEvent::kFoundLost:
    case TaskEvent::kRequeue:
      return false;
    case TaskEvent::kRetry:
      return true;
  }
  return false;
}

std::vector<TaskState> all_states() {
  std::vector<TaskState> out;
  for (int i = static_cast<int>(kFirstState); i <= static_cast<int>(kLastState); ++i) {
    out.push_back(static_cast<TaskState>(i));
  }
  REQUIRE(is_last(out.back()));
  return out;
}

std::vector<TaskEvent> all_events() {
  std::vector<TaskEvent> out;
  for (int i = static_cast<int>(kFirstEvent); i <= static_cast<int>(kLastEvent); ++i) {
    out.push_back(static_cast<TaskEvent>(i));
  }
  REQUIRE(is_last(out.back()));
  return out;
}

// The whole state machine of DESIGN.md: every pair not listed here must be refused.
const std::map<std::pair<TaskState, TaskEvent>, TaskState>& allowed() {
  static const std::map<std::pair<TaskState, TaskEvent>, TaskState> kAllowed = {
      {{TaskState::kQueued, TaskEvent::kStart}, TaskState::kRunning},
      {{TaskState::kQueued, TaskEvent::kSpawnFail}, TaskState::kFailed},
      {{TaskState::kQueued, TaskEvent::kCancel}, TaskState::kCancelled},
      {{TaskState::kRunning, TaskEvent::kExitSuccess}, TaskState::kSucceeded},
      {{TaskState::kRunning, TaskEvent::kExitFailure}, TaskState::kFailed},
      {{TaskState::kRunning, TaskEvent::kExitAfterTimeout}, TaskState::kTimedOut},
      {{TaskState::kRunning, TaskEvent::kExitAfterCancel}, TaskState::kCancelled},
      {{TaskState::kRunning, TaskEvent::kExitAfterDrain}, TaskState::kInterrupted},
      {{TaskState::kRunning, TaskEvent::kFoundLost}, TaskState::kLost},
      {{TaskState::kRunning, TaskEvent::kRequeue}, TaskState::kQueued},
      {{TaskState::kRunning, TaskEvent::kRetry}, TaskState::kQueued},
  };
  return kAllowed;
}

}  // namespace

TEST_CASE("next_state: every (state, event) pair gives exactly the result of the table") {
  int accepted = 0;
  int refused = 0;
  for (TaskState from : all_states()) {
    for (TaskEvent event : all_events()) {
      CAPTURE(proto::to_string(from));
      CAPTURE(to_string(event));
      const auto r = next_state(from, event);
      const auto it = allowed().find({from, event});
      if (it != allowed().end()) {
        REQUIRE(r.has_value());
        CHECK(*r == it->second);
        ++accepted;
      } else {
        REQUIRE(r.has_error());
        CHECK(r.error().code == Errc::kInternal);
        // The refusal says what was refused, for the log line of a bug.
        CHECK(r.error().message.find(std::string(to_string(event))) != std::string::npos);
        ++refused;
      }
    }
  }
  CHECK(accepted == 11);
  CHECK(accepted + refused == 9 * 11);
}

TEST_CASE("next_state: terminal states and kInvalid refuse every event") {
  for (TaskState from : all_states()) {
    if (!proto::is_terminal(from) && from != TaskState::kInvalid) continue;
    for (TaskEvent event : all_events()) {
      CAPTURE(proto::to_string(from));
      CAPTURE(to_string(event));
      CHECK(next_state(from, event).has_error());
    }
  }
}

TEST_CASE("next_state: cancelling a queued task never spawns it") {
  const auto r = next_state(TaskState::kQueued, TaskEvent::kCancel);
  REQUIRE(r.has_value());
  CHECK(*r == TaskState::kCancelled);
  CHECK(proto::is_terminal(*r));
  CHECK(next_state(*r, TaskEvent::kStart).has_error());
}

TEST_CASE("next_state: a queued task cannot be found lost or requeued, only a running one") {
  CHECK(next_state(TaskState::kQueued, TaskEvent::kFoundLost).has_error());
  CHECK(next_state(TaskState::kQueued, TaskEvent::kRequeue).has_error());
  CHECK(next_state(TaskState::kRunning, TaskEvent::kStart).has_error());
  CHECK(next_state(TaskState::kRunning, TaskEvent::kCancel).has_error());
}

TEST_CASE("to_string(TaskEvent): every event has a distinct snake_case name") {
  std::map<std::string, TaskEvent> seen;
  for (TaskEvent e : all_events()) {
    const std::string name(to_string(e));
    CAPTURE(name);
    CHECK(name != "unknown");
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos);
    CHECK(seen.emplace(name, e).second);
  }
  CHECK(to_string(TaskEvent::kSpawnFail) == "spawn_fail");
  CHECK(to_string(TaskEvent::kExitAfterTimeout) == "exit_after_timeout");
}

}  // namespace tg::daemon
