#pragma once

// The human form of each method's result. Pure: the caller passes the current time and the
// terminal width, so the output is tested without a daemon.

#include <cstddef>
#include <string>
#include <vector>

#include "client/format.h"
#include "common/protocol.h"
#include "common/time_format.h"

namespace tg::client {

// Commands longer than this are cut when the output is not a terminal; use --json for all of it.
inline constexpr std::size_t kMaxCommandWidth = 200;
// The REASON column: why a queued task waits, or why a task ended as it did, cut to this.
inline constexpr std::size_t kMaxReasonWidth = 80;
inline constexpr std::size_t kMaxReasonWidthOnTerminal = 28;

// "2", "SIGKILL", or "-" before the task has ended.
[[nodiscard]] std::string exit_text(const proto::TaskInfo& task);
// Run time so far (running) or in all (ended); "-" if it never started.
[[nodiscard]] std::string elapsed_text(const proto::TaskInfo& task, TimeMs now);

// How much of REASON and COMMAND a task table shows.
enum class Cut {
  kToFit,  // Cut to the terminal's width (kMaxCommandWidth and kMaxReasonWidth without one).
  kNone,   // --wide: all of both, however long the lines get.
};

// ID GROUP STATE EXIT ELAPSED REASON COMMAND (and USER when the tasks have several owners).
// With Cut::kToFit the command is cut to fit `width` columns on a terminal, or to
// kMaxCommandWidth when width is 0.
[[nodiscard]] std::string render_task_table(const std::vector<proto::TaskInfo>& tasks, TimeMs now,
                                            std::size_t width, Cut cut = Cut::kToFit);
// The same table printed as it arrives, a page at a time (tgctl list). The columns, their widths
// and the command's width come from the first page that has tasks; a later page widens a column
// that needs it, from that page on, and its commands are cut to the first page's width. USER is
// shown when the first page has several owners, or always with `several_owners` (the listing
// may hold several users' tasks).
class TaskTableWriter {
 public:
  // `color`: STATE in its colour (color.h).
  TaskTableWriter(TimeMs now, std::size_t width, bool several_owners, Cut cut = Cut::kToFit,
                  bool color = false)
      : now_(now), width_(width), several_owners_(several_owners), cut_(cut), color_(color) {}
  // The rows of these tasks, after the header if it has not been printed yet; "" for no tasks.
  [[nodiscard]] std::string page(const std::vector<proto::TaskInfo>& tasks);
  // The header alone if no page had tasks, else "".
  [[nodiscard]] std::string finish();

 private:
  void start(const std::vector<proto::TaskInfo>& tasks);

  // Constant after construction.
  TimeMs now_;
  std::size_t width_;
  bool several_owners_;
  Cut cut_;
  bool color_;

  bool started_ = false;
  bool with_user_ = false;
  std::vector<Column> columns_;
  std::vector<std::size_t> widths_;
  std::size_t command_width_ = 0;
};

// key: value lines for `tgctl show`.
[[nodiscard]] std::string render_task(const proto::TaskInfo& task, TimeMs now);
// NAME LIMIT FLAGS QUEUED RUNNING DONE FAILED CANCELLED, then each group's last cancel.
// `color`: non-zero counts in their state's colour, FLAGS paused/cancelling in yellow.
[[nodiscard]] std::string render_groups(const std::vector<proto::GroupInfo>& groups,
                                        bool color = false);
[[nodiscard]] std::string render_status(const proto::StatusResult& status);
// "nightly: cancelled 3 queued, signalled 2" for what `request` selected.
[[nodiscard]] std::string render_cancel(const proto::Cancel& request,
                                        const proto::CancelResult& result);

}  // namespace tg::client
