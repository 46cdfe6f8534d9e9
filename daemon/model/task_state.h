#pragma once

#include <string_view>

#include "common/error.h"
#include "common/protocol.h"

namespace tg::daemon {

using proto::TaskState;

// What happened to a task. The daemon decides the event; next_state() decides the state.
enum class TaskEvent {
  kStart,             // A slot was free and the child was spawned.
  kSpawnFail,         // The child could not be spawned (exec, cwd, credentials).
  kCancel,            // Cancelled before it started (group cancel, task cancel, fail-fast).
  kExitSuccess,       // Exited 0 on its own.
  kExitFailure,       // Exited non-zero, died of a signal not ours, or stopped at its log cap.
  kExitAfterTimeout,  // Ended after we stopped it for exceeding its timeout.
  kExitAfterCancel,   // Ended after we stopped it for a cancel.
  kExitAfterDrain,    // Ended after the daemon's drain stopped it.
  kFoundLost,         // Was running when the daemon died; found at restart.
  kRequeue,           // Was running when the daemon died and asked to be queued again.
  kRetry,             // Failed or timed out with retries left: queued for its next attempt.
};

[[nodiscard]] std::string_view to_string(TaskEvent e);

// The task state machine of DESIGN.md, as one pure function: the only place that decides a
// task's next state. Terminal states accept no event; every refused pair is an Error.
[[nodiscard]] Result<TaskState> next_state(TaskState from, TaskEvent event);

}  // namespace tg::daemon
