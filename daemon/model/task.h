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

  // Null: none. Shared with the other tasks of its batch (or restart, or load) that have the
  // same labels: 100 000 copies of one small map would cost some 20 MB.
  std::shared_ptr<const proto::Labels> labels;
  std::string submit_key;     // "" if none; unique per uid among the kept tasks.
  TaskId restarted_from = 0;  // 0: not a restart.
};

// A group's persistent settings; the rest of its state is derived from its tasks.
struct GroupRow {
  uid_t uid = 0;
  std::string name;
  std::int64_t limit = 0;
  bool fail_fast = false;
  bool paused = false;
  std::optional<proto::CancelRecord> last_cancel;
};

}  // namespace tg::daemon
