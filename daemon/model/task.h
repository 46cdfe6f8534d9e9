#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/time_format.h"

namespace tg::daemon {

using proto::TaskId;
using proto::TaskState;

// An attempt of a task with retries that ended and was followed by another (the attempts
// table). The current attempt is the task itself.
struct Attempt {
  int n = 1;
  TaskState state = TaskState::kFailed;  // How it ended: failed or timed_out.
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;
  TimeMs started_at = 0;
  TimeMs ended_at = 0;
  std::int64_t log_end = 0;  // Its output ends at this offset of the task's log.
};

// One task as the daemon and the store know it: a row of the tasks table. The environment is
// stored once per distinct body (env_id) because a batch of 100 000 shares one.
struct Task {
  TaskId id = 0;
  uid_t uid = 0;  // The submitter (SO_PEERCRED); the task runs as this user.
  gid_t gid = 0;
  std::string group;
  std::vector<std::string> argv;
  std::string cwd = "/";
  std::int64_t env_id = 0;
  bool shell = false;
  int priority = 0;
  std::chrono::milliseconds timeout{0};  // 0: none.
  bool requeue = false;
  std::int64_t max_log_bytes = 0;  // As submitted; 0: the daemon's max_log_size.

  TaskState state = TaskState::kQueued;
  pid_t pid = 0;
  std::uint64_t pid_start = 0;  // Start time in clock ticks since boot (/proc/PID/stat field 22).
  std::string boot_id;          // The boot of pid and pid_start; "" if unknown (schema < 3).
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;  // Why it did not just exit ("cancelled: group 'x' cancelled by uid 0").
  TimeMs submitted_at = 0;
  TimeMs started_at = 0;
  TimeMs ended_at = 0;

  // Workflows: what it waits for before it may start, and how often it may run.
  std::vector<TaskId> after;      // Must have succeeded.
  std::vector<TaskId> after_any;  // Must have ended.
  TimeMs begin_at = 0;            // Not before (0: no begin time).
  int retries = 0;
  std::chrono::milliseconds retry_delay{0};
  int attempt = 1;                // The current (or last) attempt.
  std::vector<Attempt> attempts;  // The earlier ones, oldest first.
  // Null: none. Shared with the other tasks of its batch (or restart, or load) that have the
  // same labels: 100 000 copies of one small map would cost some 20 MB.
  std::shared_ptr<const proto::Labels> labels;
  std::string submit_key;     // "" if none; unique per uid among the kept tasks.
  TaskId restarted_from = 0;  // 0: not a restart.
  // What its last run used, where the executor accounts for it (ResourceUsage); else null.
  std::optional<std::int64_t> cpu_user_ms;
  std::optional<std::int64_t> cpu_system_ms;
  std::optional<std::int64_t> memory_peak_bytes;
};

// A group's persistent settings; the rest of its state is derived from its tasks.
struct GroupRow {
  uid_t uid = 0;
  std::string name;
  std::int64_t limit = 0;
  bool fail_fast = false;
  bool paused = false;
  std::optional<proto::CancelRecord> last_cancel;
  bool first_success = false;
  std::string on_done;  // The on-done hook's command; "" for none.
};

}  // namespace tg::daemon
