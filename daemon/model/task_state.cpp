#include "daemon/model/task_state.h"

#include <string>

namespace tg::daemon {

std::string_view to_string(TaskEvent e) {
  switch (e) {
    case TaskEvent::kStart:
      return "start";
    case TaskEvent::kSpawnFail:
      return "spawn_fail";
    case TaskEvent::kCancel:
      return "cancel";
    case TaskEvent::kExitSuccess:
      return "exit_success";
    case TaskEvent::kExitFailure:
      return "exit_failure";
    case TaskEvent::kExitAfterTimeout:
      return "exit_after_timeout";
    case TaskEvent::kExitAfterCancel:
      return "exit_after_cancel";
    case TaskEvent::kExitAfterDrain:
      return "exit_after_drain";
    case TaskEvent::kFoundLost:
      return "found_lost";
    case TaskEvent::kRequeue:
      return "requeue";
    case TaskEvent::kRetry:
      return "retry";
  }
  return "unknown";
}

namespace {

Result<TaskState> from_queued(TaskEvent e) {
  switch (e) {
    case TaskEvent::kStart:
      return TaskState::kRunning;
    case TaskEvent::kSpawnFail:
      return TaskState::kFailed;
    case TaskEvent::kCancel:
      return TaskState::kCancelled;
    case TaskEvent::kExitSuccess:
    case TaskEvent::kExitFailure:
    case TaskEvent::kExitAfterTimeout:
    case TaskEvent::kExitAfterCancel:
    case TaskEvent::kExitAfterDrain:
    case TaskEvent::kFoundLost:
    case TaskEvent::kRequeue:
    case TaskEvent::kRetry:
      break;
  }
  return Error{Errc::kInternal, "a queued task cannot " + std::string(to_string(e))};
}

Result<TaskState> from_running(TaskEvent e) {
  switch (e) {
    case TaskEvent::kExitSuccess:
      return TaskState::kSucceeded;
    case TaskEvent::kExitFailure:
      return TaskState::kFailed;
    case TaskEvent::kExitAfterTimeout:
      return TaskState::kTimedOut;
    case TaskEvent::kExitAfterCancel:
      return TaskState::kCancelled;
    case TaskEvent::kExitAfterDrain:
      return TaskState::kInterrupted;
    case TaskEvent::kFoundLost:
      return TaskState::kLost;
    case TaskEvent::kRequeue:
    case TaskEvent::kRetry:
      return TaskState::kQueued;
    case TaskEvent::kStart:
    case TaskEvent::kSpawnFail:
    case TaskEvent::kCancel:
      break;
  }
  return Error{Errc::kInternal, "a running task cannot " + std::string(to_string(e))};
}

}  // namespace

Result<TaskState> next_state(TaskState from, TaskEvent event) {
  switch (from) {
    case TaskState::kQueued:
      return from_queued(event);
    case TaskState::kRunning:
      return from_running(event);
    case TaskState::kInvalid:
    case TaskState::kSucceeded:
    case TaskState::kFailed:
    case TaskState::kTimedOut:
    case TaskState::kCancelled:
    case TaskState::kInterrupted:
    case TaskState::kLost:
      break;
  }
  return Error{Errc::kInternal, "a " + std::string(proto::to_string(from)) + " task cannot " +
                                    std::string(to_string(event))};
}

}  // namespace tg::daemon
