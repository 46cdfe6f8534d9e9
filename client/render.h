#pragma once

// The human form of each method's result. Pure: the caller passes the current time and the
// terminal width, so the output is tested without a daemon.

#include <cstddef>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/time_format.h"

namespace tg::client {

// Commands longer than this are cut when the output is not a terminal; use --json for all of it.
inline constexpr std::size_t kMaxCommandWidth = 200;

// "2", "SIGKILL", or "-" before the task has ended.
[[nodiscard]] std::string exit_text(const proto::TaskInfo& task);
// Run time so far (running) or in all (ended); "-" if it never started.
[[nodiscard]] std::string elapsed_text(const proto::TaskInfo& task, TimeMs now);

// ID GROUP STATE EXIT ELAPSED COMMAND (and USER when the tasks have several owners). The
// command is cut to fit `width` columns on a terminal, or to kMaxCommandWidth when width is 0.
[[nodiscard]] std::string render_task_table(const std::vector<proto::TaskInfo>& tasks, TimeMs now,
                                            std::size_t width);
// key: value lines for `tgctl show`.
[[nodiscard]] std::string render_task(const proto::TaskInfo& task, TimeMs now);
// NAME LIMIT FLAGS QUEUED RUNNING DONE FAILED CANCELLED, then each group's last cancel.
[[nodiscard]] std::string render_groups(const std::vector<proto::GroupInfo>& groups);
[[nodiscard]] std::string render_status(const proto::StatusResult& status);
// "nightly: cancelled 3 queued, signalled 2" for what `request` selected.
[[nodiscard]] std::string render_cancel(const proto::Cancel& request,
                                        const proto::CancelResult& result);

}  // namespace tg::client
