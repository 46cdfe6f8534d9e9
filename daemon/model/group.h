#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <optional>
#include <string>

#include "common/protocol.h"
#include "common/time_format.h"

namespace tg::daemon {

using GroupId = std::uint32_t;  // Dense ids the Engine hands out; stable for the process.

// Groups are per user: alice's "nightly" and bob's "nightly" are two groups.
struct GroupKey {
  uid_t uid = 0;
  std::string name;
  auto operator<=>(const GroupKey&) const = default;
};

// A cancel in progress on a group (DESIGN.md "Cancel").
struct GroupCancel {
  uid_t by_uid = 0;
  std::string reason;  // Given to each task it cancels.
  TimeMs at = 0;
  std::int64_t cancelled_queued = 0;
  std::int64_t signalled = 0;
  std::int64_t killed = 0;
};

// A group as the Engine keeps it. Settings are persisted (GroupRow); counts are derived from
// the tasks and kept up to date by Engine::transition().
struct Group {
  GroupId id = 0;
  GroupKey key;
  std::int64_t limit = 0;
  bool fail_fast = false;
  bool paused = false;
  proto::StateCounts counts;  // Over every task of the group the daemon remembers.
  // The current run: the tasks since the group last went from idle to busy. `tgctl wait GROUP`
  // waits for these, so a reused group is not judged by last week's failures.
  proto::TaskId run_start = 0;
  proto::StateCounts run_counts;
  std::optional<GroupCancel> cancelling;  // Set from cancel() until its last task has ended.
  std::optional<proto::CancelRecord> last_cancel;
  bool first_success = false;  // A task that succeeds cancels the rest ("goal reached").
  std::string on_done;         // Run once a run has ended (Engine::run_hook); "" for none.
  // A task of the current run left the queue (it started, or failed to start): only such a
  // run's end runs the on-done hook, once.
  bool run_ran = false;
  gid_t owner_gid = 0;  // The gid of its latest submit: the hook runs with it.

  [[nodiscard]] bool busy() const { return counts.queued + counts.running > 0; }
};

}  // namespace tg::daemon
