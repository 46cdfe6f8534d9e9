#pragma once

// Wire types of the taskgroupd protocol (docs/protocol.md): JSON-RPC 2.0 over a Unix stream
// socket, one compact JSON object per '\n'-terminated line. Requests are decoded strictly by
// proto::decode_request (codec.h); results are plain structs with a JSON mapping beside them.
// Adding a field is compatible; renaming or removing one bumps kProtocolVersion.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/json_optional.h"
#include "common/time_format.h"

namespace tg::proto {

using TaskId = std::int64_t;
using Env = std::map<std::string, std::string>;
// A task's labels (submit --label KEY=VALUE): what `list --label` finds it by.
using Labels = std::map<std::string, std::string>;

inline constexpr std::size_t kDefaultMaxFrameBytes = 1 << 20;  // 1 MiB, DESIGN.md.
inline constexpr std::size_t kMaxJsonDepth = 32;
inline constexpr std::size_t kMaxGroupNameBytes = 64;
inline constexpr int kMinPriority = -1000;
inline constexpr int kMaxPriority = 1000;
inline constexpr std::int64_t kMaxRetries = 100;
// Labels: keys are 1-64 bytes of [A-Za-z0-9_.-], values at most 256 bytes, 32 a task at most.
inline constexpr std::size_t kMaxLabelKeyBytes = 64;
inline constexpr std::size_t kMaxLabelValueBytes = 256;
inline constexpr std::size_t kMaxLabels = 32;
inline constexpr std::size_t kMaxSubmitKeyBytes = 256;  // submit's idempotency key: 1-256 bytes.

enum class TaskState {
  kInvalid,      // Decoded from an unknown string; never stored.
  kQueued,       // Persisted; waiting for a free slot (global, group) and an unpaused group.
  kRunning,      // Child spawned; pid and start time persisted.
  kSucceeded,    // Exited 0.
  kFailed,       // Exited non-zero, died of a signal, or could not be started.
  kTimedOut,     // Stopped by the daemon after its timeout.
  kCancelled,    // Cancelled by a user, a fail-fast group, or never started.
  kInterrupted,  // Stopped by the daemon's drain.
  kLost,         // Running when the daemon crashed; found on restart.
};
NLOHMANN_JSON_SERIALIZE_ENUM(TaskState, {{TaskState::kInvalid, nullptr},
                                         {TaskState::kQueued, "queued"},
                                         {TaskState::kRunning, "running"},
                                         {TaskState::kSucceeded, "succeeded"},
                                         {TaskState::kFailed, "failed"},
                                         {TaskState::kTimedOut, "timed_out"},
                                         {TaskState::kCancelled, "cancelled"},
                                         {TaskState::kInterrupted, "interrupted"},
                                         {TaskState::kLost, "lost"}})

[[nodiscard]] std::string_view to_string(TaskState s);
[[nodiscard]] TaskState task_state_from_string(std::string_view s);  // kInvalid if unknown.
[[nodiscard]] bool is_terminal(TaskState s);
[[nodiscard]] bool is_valid_group_name(std::string_view name);
[[nodiscard]] bool is_valid_label_key(std::string_view key);

// ---------------------------------------------------------------- requests (params)

struct Hello {
  std::string client;  // Free text, e.g. "tgctl 0.1.0".
};
struct Status {};

// One command. Fields left unset take the batch's defaults (Submit), then the daemon's.
struct TaskSpec {
  std::vector<std::string> argv;
  std::optional<std::string> cwd;          // Absent: "/".
  std::optional<Env> env;                  // Absent: PATH, HOME, USER, LANG only.
  std::optional<bool> shell;               // Run argv joined by spaces with /bin/sh -c.
  std::optional<int> priority;             // Higher first; default 0.
  std::optional<std::int64_t> timeout_ms;  // 0 or absent: none.
  std::optional<bool> requeue;             // Queue again (instead of lost) after a daemon crash.
  // Stop the task once its log is larger; 0 or absent: the daemon's max_log_size, which also
  // bounds this one.
  std::optional<std::int64_t> max_log_bytes;
  // Workflows (usage.md "Workflows"). Start only after every `after` task has succeeded and
  // every `after_any` task has ended; a dependency in `after` that ends any other way cancels
  // this task instead. Ids of tasks submitted before this one; empty: none.
  std::vector<TaskId> after;
  std::vector<TaskId> after_any;
  std::optional<std::string> after_group;      // As `after`, for every task of this group's run.
  std::optional<std::string> begin_at;         // RFC 3339 UTC: not before then.
  std::optional<std::int64_t> delay_ms;        // Not before the submit plus this.
  std::optional<std::int64_t> retries;         // Run again after a failure or timeout, this often.
  std::optional<std::int64_t> retry_delay_ms;  // Between an attempt's end and the next.
  // Merged with the batch's: a key given on a task overrides the top-level one.
  std::optional<Labels> labels;
};

// One task ({"argv": [...], ...}) or a batch ({"tasks": [{...}, ...]}), one round trip.
// Top-level cwd/env/shell/priority/timeout_ms/requeue/max_log_bytes/labels are the batch's
// defaults.
struct Submit {
  std::string group = "default";
  TaskSpec defaults;            // argv unused.
  std::vector<TaskSpec> tasks;  // Never empty after decoding.
  // Single form only: a second submit of the caller with this key queues nothing and answers
  // the first one's id, as long as that task is kept.
  std::optional<std::string> key;
};

// A group is named by its name and its owner; root may name another user's group.
struct GroupRef {
  std::string name;
  std::optional<std::string> user;  // Owner's login name or numeric uid; default: the caller.
};

struct List {
  std::optional<GroupRef> group;
  std::vector<TaskState> states;      // Any of these; empty: every state. Wire: "state".
  std::optional<std::int64_t> limit;  // The newest `limit` matches, in id order; all if unset.
  std::optional<std::string> user;    // Root only: list this user's tasks (default: all).
  // Set: a paged listing of the matches with a higher id; the reply holds one bounded page and
  // says where the next one starts (ListResult::next_after_id). Unset: every match in one reply,
  // which the daemon still builds and sends a page at a time.
  std::optional<TaskId> after_id;
  Labels labels;                         // Every one must match.
  std::optional<std::int64_t> since_ms;  // Submitted within the last since_ms.
};
struct Show {
  TaskId id = 0;
};
struct Cancel {
  std::optional<GroupRef> group;  // Exactly one of group and ids.
  std::vector<TaskId> ids;
  std::optional<std::int64_t> grace_ms;  // Default: kill_grace.
  bool force = false;                    // SIGKILL now.
};
struct Wait {
  std::optional<GroupRef> group;  // Exactly one of group and ids.
  std::vector<TaskId> ids;
  bool progress = false;  // Push "wait.progress" notifications while waiting.
};
struct Logs {
  TaskId id = 0;
  std::int64_t offset = 0;  // Byte offset to read from.
  bool follow = false;      // Push "logs.data" notifications until the task ends.
  // Only this attempt's part of the log (1 = the first); offsets stay those of the whole log.
  std::optional<std::int64_t> attempt;
};
struct Groups {
  std::optional<std::string> user;  // Root only; default: the caller's groups (root: all).
};
struct GroupSet {
  GroupRef group;
  std::optional<std::int64_t> limit;  // 0 = only the global limit.
  std::optional<bool> fail_fast;
  // A task that succeeds cancels the rest of the group's current tasks ("goal reached").
  std::optional<bool> first_success;
  // A shell command run as the group's owner once a run of the group has ended; "" clears it.
  std::optional<std::string> on_done;
};
struct Pause {
  GroupRef group;
};
struct Resume {
  GroupRef group;
};
struct Reload {};
// Re-execute the daemon's binary in place (root or the daemon's user), as SIGUSR2 does.
struct Reexec {};
// Send a signal to the running tasks of a group, or to tasks by id; their state is unchanged.
struct Kill {
  std::optional<GroupRef> group;  // Exactly one of group and ids.
  std::vector<TaskId> ids;
  int signal = 0;  // 1..64; on the wire a name ("USR1", "SIGUSR1") or a number.
};
// New tasks like ended ones: same group, command, cwd, environment and options.
struct Restart {
  std::vector<TaskId> ids;        // Exactly one of ids and group.
  std::optional<GroupRef> group;  // Its tasks in `states` that were not restarted yet.
  std::vector<TaskState> states;  // With group, and only with it: ended states, at least one.
};

// A live view (tgctl top): "watch.frame" notifications until the client hangs up or the daemon
// stops; no result unless it fails.
struct Watch {
  std::optional<std::string> user;  // Root only; default: the caller's groups (root: everyone's).
};

using Request = std::variant<Hello, Status, Submit, List, Show, Cancel, Wait, Logs, Groups,
                             GroupSet, Pause, Resume, Reload, Reexec, Kill, Restart, Watch>;

[[nodiscard]] std::string_view method_name(const Request& r);
// Params as the client sends them: unset optionals are left out.
[[nodiscard]] nlohmann::json to_params(const Request& r);

// ---------------------------------------------------------------- results

// An attempt of a task with retries that ended and was followed by another.
struct AttemptInfo {
  std::int64_t attempt = 0;               // 1 = the first.
  TaskState state = TaskState::kInvalid;  // How it ended: failed or timed_out.
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<std::string> reason;
  std::optional<std::string> started_at;
  std::optional<std::string> ended_at;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AttemptInfo, attempt, state, exit_code, signal,
                                                reason, started_at, ended_at)

struct TaskInfo {
  TaskId id = 0;
  std::string group;
  std::uint32_t uid = 0;
  std::string user;
  TaskState state = TaskState::kInvalid;
  std::vector<std::string> argv;
  std::string cwd;
  bool shell = false;
  int priority = 0;
  std::int64_t timeout_ms = 0;
  bool requeue = false;
  std::int64_t max_log_bytes = 0;  // As submitted; 0: the daemon's max_log_size.
  std::optional<int> pid;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<std::string> reason;
  std::optional<std::string> submitted_at;  // RFC 3339 UTC.
  std::optional<std::string> started_at;
  std::optional<std::string> ended_at;
  std::string log_path;
  // Workflows: as submitted (after_group resolved into after).
  std::vector<TaskId> after;
  std::vector<TaskId> after_any;
  std::optional<std::string> begin_at;
  std::int64_t retries = 0;
  std::int64_t retry_delay_ms = 0;
  std::int64_t attempt = 1;           // The current or last attempt.
  std::vector<AttemptInfo> attempts;  // The earlier ones, oldest first.
  // A queued task: why it has not started (Slurm's REASON): "dependency" (on the tasks in
  // pending_on, still going), "begin_time" (begin_at), "paused", "group_limit",
  // "global_limit", "priority" (others go first), "draining".
  std::optional<std::string> pending_reason;
  std::vector<TaskId> pending_on;
  Labels labels;                         // {} when it has none.
  std::optional<std::string> key;        // Its submit key, if it was given one.
  std::optional<TaskId> restarted_from;  // The task it is a restart of.
  // What its last run used, once it has ended; null where not accounted (no cgroups, or no
  // memory controller).
  std::optional<std::int64_t> cpu_user_ms;
  std::optional<std::int64_t> cpu_system_ms;
  std::optional<std::int64_t> memory_peak_bytes;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
    TaskInfo, id, group, uid, user, state, argv, cwd, shell, priority, timeout_ms, requeue,
    max_log_bytes, pid, exit_code, signal, reason, submitted_at, started_at, ended_at, log_path,
    after, after_any, begin_at, retries, retry_delay_ms, attempt, attempts, pending_reason,
    pending_on, labels, key, restarted_from, cpu_user_ms, cpu_system_ms, memory_peak_bytes)

// Tasks counted by state: the body of wait results, progress and group summaries.
struct StateCounts {
  std::int64_t queued = 0;
  std::int64_t running = 0;
  std::int64_t succeeded = 0;
  std::int64_t failed = 0;
  std::int64_t timed_out = 0;
  std::int64_t cancelled = 0;
  std::int64_t interrupted = 0;
  std::int64_t lost = 0;

  void add(TaskState s, std::int64_t n = 1);
  [[nodiscard]] std::int64_t total() const;
  [[nodiscard]] std::int64_t done() const { return total() - queued - running; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StateCounts, queued, running, succeeded, failed,
                                                timed_out, cancelled, interrupted, lost)

// What a finished group cancel did, kept on the group.
struct CancelRecord {
  std::uint32_t by_uid = 0;
  std::string reason;
  std::optional<std::string> at;        // When the cancel was called.
  std::optional<std::string> ended_at;  // When its last task ended.
  std::int64_t cancelled_queued = 0;
  std::int64_t signalled = 0;
  std::int64_t killed = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CancelRecord, by_uid, reason, at, ended_at,
                                                cancelled_queued, signalled, killed)

struct GroupInfo {
  std::string name;
  std::uint32_t uid = 0;
  std::string user;
  std::int64_t limit = 0;
  bool fail_fast = false;
  bool paused = false;
  bool cancelling = false;
  StateCounts counts;
  std::optional<CancelRecord> last_cancel;
  bool first_success = false;
  std::optional<std::string> on_done;  // The hook's command; null when none is set.
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GroupInfo, name, uid, user, limit, fail_fast,
                                                paused, cancelling, counts, last_cancel,
                                                first_success, on_done)

struct HelloResult {
  std::string version;
  int protocol = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HelloResult, version, protocol)

struct StatusResult {
  std::string version;
  int protocol = 0;
  int pid = 0;
  std::int64_t uptime_ms = 0;
  std::int64_t max_running = 0;
  std::int64_t running = 0;
  std::int64_t queued = 0;
  bool draining = false;
  std::string socket;
  std::string state_dir;
  std::optional<std::string> config_path;
  std::optional<std::string> config_error;  // Why the last reload was refused.
  // Why nothing is saved any more (a failed fsync): the daemon exits for a restart once no task
  // runs. Absent while all is well.
  std::optional<std::string> store_error;
  // How a task's processes are kept together: "cgroups" (one per task) or "process groups".
  std::string isolation;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StatusResult, version, protocol, pid, uptime_ms,
                                                max_running, running, queued, draining, socket,
                                                state_dir, config_path, config_error, store_error,
                                                isolation)

struct SubmitResult {
  std::vector<TaskId> ids;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SubmitResult, ids)

struct ListResult {
  std::vector<TaskInfo> tasks;
  // A paged listing: send this as after_id for the next page; null when nothing follows. A page
  // may be short, even empty, while more follows (the daemon bounds the work of one reply).
  std::optional<TaskId> next_after_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ListResult, tasks, next_after_id)

struct ShowResult {
  TaskInfo task;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ShowResult, task)

struct CancelResult {
  std::optional<std::string> group;
  std::vector<TaskId> ids;  // For a cancel by id: the ids it acted on.
  std::int64_t cancelled_queued = 0;
  std::int64_t signalled = 0;
  std::int64_t killed = 0;  // Non-zero only with force.
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CancelResult, group, ids, cancelled_queued,
                                                signalled, killed)

// Both the final wait result and the body of "wait.progress" notifications.
struct WaitResult {
  StateCounts counts;
  std::int64_t elapsed_ms = 0;
  bool all_succeeded = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WaitResult, counts, elapsed_ms, all_succeeded)

// Bytes of a task's log. Invalid UTF-8 in the log is replaced by U+FFFD on the wire.
struct LogsResult {
  std::string data;
  std::int64_t offset = 0;  // Where the next read starts.
  bool eof = false;         // The task has ended and everything was read.
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LogsResult, data, offset, eof)

struct GroupsResult {
  std::vector<GroupInfo> groups;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GroupsResult, groups)

struct ReloadResult {
  bool ok = false;
  std::optional<std::string> error;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReloadResult, ok, error)

// A re-exec the daemon has begun: `exe` passed its check and runs as soon as no task is being
// stopped; the connection then closes. `running`: the tasks it will hand over as things stand.
struct ReexecResult {
  std::string exe;
  std::int64_t running = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReexecResult, exe, running)

// What a kill did: the running tasks it signalled; of the ids asked for, those not running.
struct KillResult {
  std::optional<std::string> group;
  std::string signal;           // Its name ("USR1"), or its number.
  std::vector<TaskId> ids;      // Signalled.
  std::vector<TaskId> skipped;  // Not running (queued or ended); only for a kill by id.
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(KillResult, group, signal, ids, skipped)
// The new tasks of a restart, oldest first: ids[i] is a restart of restarted_from[i].
struct RestartResult {
  std::vector<TaskId> ids;
  std::vector<TaskId> restarted_from;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RestartResult, ids, restarted_from)

// --- The body of "watch.frame" notifications: what tgctl top shows, bounded (kWatchMax*).
inline constexpr std::size_t kWatchMaxGroups = 100;   // Busy groups first.
inline constexpr std::size_t kWatchMaxRunning = 200;  // Oldest first.
inline constexpr std::size_t kWatchMaxEnded = 10;     // Latest end first.
inline constexpr std::size_t kWatchCommandBytes = 200;

// The daemon as a whole, whoever asks: its limit and every user's running and queued tasks.
struct WatchDaemon {
  std::string version;
  std::int64_t max_running = 0;
  std::int64_t running = 0;
  std::int64_t queued = 0;
  bool draining = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WatchDaemon, version, max_running, running, queued,
                                                draining)

struct WatchGroup {
  std::string name;
  std::uint32_t uid = 0;
  std::string user;
  std::int64_t limit = 0;
  bool paused = false;
  bool cancelling = false;
  StateCounts counts;  // Its current run (see wait): what a progress bar shows.
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WatchGroup, name, uid, user, limit, paused,
                                                cancelling, counts)

// A running or recently ended task, slimmer than TaskInfo.
struct WatchTask {
  TaskId id = 0;
  std::string group;
  std::uint32_t uid = 0;
  std::string user;
  TaskState state = TaskState::kInvalid;
  std::string command;  // argv joined by spaces, cut at kWatchCommandBytes.
  std::optional<std::string> started_at;
  std::optional<std::string> ended_at;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<std::string> reason;
  // CPU time used so far: null until tasks run in cgroups of their own (DESIGN.md Executors).
  std::optional<std::int64_t> cpu_ms;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WatchTask, id, group, uid, user, state, command,
                                                started_at, ended_at, exit_code, signal, reason,
                                                cpu_ms)

struct WatchFrame {
  WatchDaemon daemon;
  std::vector<WatchGroup> groups;  // At most kWatchMaxGroups of the caller's.
  std::int64_t groups_total = 0;
  std::vector<WatchTask> running;  // At most kWatchMaxRunning of the caller's.
  std::int64_t running_total = 0;
  std::vector<WatchTask> ended;  // The caller's last kWatchMaxEnded since the daemon started.
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WatchFrame, daemon, groups, groups_total, running,
                                                running_total, ended)

// Notification methods pushed by the daemon during a wait, a logs follow or a watch.
inline constexpr std::string_view kWaitProgress = "wait.progress";  // params: WaitResult
inline constexpr std::string_view kLogsData = "logs.data";          // params: {"data": "..."}
inline constexpr std::string_view kWatchFrame = "watch.frame";      // params: WatchFrame

}  // namespace tg::proto
