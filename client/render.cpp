#include "client/render.h"

#include <string.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <set>

#include "client/color.h"
#include "client/format.h"
#include "common/duration.h"
#include "common/size.h"

namespace tg::client {

namespace {

std::string owner(const std::string& user, std::uint32_t uid) {
  return user.empty() ? std::to_string(uid) : user;
}

std::string signal_name(int sig) {
  // sigabbrev_np is thread-safe and never localised, unlike strsignal.
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

std::string time_or_dash(const std::optional<std::string>& t) { return t ? *t : "-"; }

std::string id_list(const std::vector<proto::TaskId>& ids) {
  std::string out;
  for (proto::TaskId id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out;
}

// Dependencies, begin time, retries and earlier attempts: only what the task has.
void add_workflow_fields(const proto::TaskInfo& t, Fields& f) {
  if (!t.after.empty()) f.emplace_back("after", id_list(t.after) + " (must succeed)");
  if (!t.after_any.empty()) f.emplace_back("after any", id_list(t.after_any) + " (must end)");
  if (t.begin_at) f.emplace_back("not before", *t.begin_at);
  if (t.retries == 0) return;
  f.emplace_back("retries", std::to_string(t.retries) + " (delay " +
                                format_duration(std::chrono::milliseconds(t.retry_delay_ms)) + ")");
  f.emplace_back("attempt", std::to_string(t.attempt) + " of " + std::to_string(t.retries + 1));
  for (const auto& a : t.attempts) {
    std::string line = std::string(proto::to_string(a.state));
    if (a.signal) line += " " + signal_name(*a.signal);
    if (a.exit_code) line += " exit " + std::to_string(*a.exit_code);
    line += ", " + time_or_dash(a.started_at) + " - " + time_or_dash(a.ended_at);
    if (a.reason) line += " (" + printable(*a.reason) + ")";
    f.emplace_back("attempt " + std::to_string(a.attempt), line);
  }
}

std::string yes_no(bool b) { return b ? "yes" : "no"; }

// "env=prod team=ml": as given to --label, in key order.
std::string labels_text(const proto::Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

template <class T>
bool several_owners(const std::vector<T>& items) {
  std::set<std::uint32_t> uids;
  for (const auto& item : items) uids.insert(item.uid);
  return uids.size() > 1;
}

std::string flags(const proto::GroupInfo& g) {
  std::string out;
  const auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ',';
    out += name;
  };
  add(g.paused, "paused");
  add(g.fail_fast, "fail-fast");
  add(g.first_success, "first-success");
  add(g.on_done.has_value(), "on-done");
  add(g.cancelling, "cancelling");
  return out.empty() ? "-" : out;
}

std::string cancel_counts(std::int64_t queued, std::int64_t signalled, std::int64_t killed) {
  std::string out =
      "cancelled " + std::to_string(queued) + " queued, signalled " + std::to_string(signalled);
  if (killed > 0) out += ", killed " + std::to_string(killed);
  return out;
}

std::string selection_name(const proto::Cancel& request) {
  if (request.group) return request.group->name;
  const auto& ids = request.ids;
  if (ids.size() > 5) return std::to_string(ids.size()) + " tasks";
  std::string out = ids.size() == 1 ? "task" : "tasks";
  for (auto id : ids) out += " " + std::to_string(id);
  return out;
}

}  // namespace

std::string exit_text(const proto::TaskInfo& task) {
  if (task.signal) return signal_name(*task.signal);
  if (task.exit_code) return std::to_string(*task.exit_code);
  return "-";
}

std::string elapsed_text(const proto::TaskInfo& task, TimeMs now) {
  const auto started = task.started_at ? parse_rfc3339(*task.started_at) : std::nullopt;
  if (!started) return "-";
  const auto ended = task.ended_at ? parse_rfc3339(*task.ended_at) : std::nullopt;
  return format_elapsed(std::chrono::milliseconds(ended.value_or(now) - *started));
}

std::string pending_text(const proto::TaskInfo& task) {
  if (!task.pending_reason) return "-";
  std::string out = *task.pending_reason;
  if (*task.pending_reason == "dependency" && !task.pending_on.empty()) {
    out += " on";
    for (std::size_t i = 0; i < task.pending_on.size(); ++i) {
      out += (i == 0 ? " " : ",") + std::to_string(task.pending_on[i]);
    }
  } else if (*task.pending_reason == "begin_time" && task.begin_at) {
    out += " " + *task.begin_at;
  }
  return out;
}

std::string reason_text(const proto::TaskInfo& task) {
  if (task.state == proto::TaskState::kQueued) return pending_text(task);
  return task.reason ? printable(*task.reason) : "-";
}

std::string render_task_table(const std::vector<proto::TaskInfo>& tasks, TimeMs now,
                              std::size_t width, Cut cut) {
  TaskTableWriter table(now, width, false, cut);
  std::string out = table.page(tasks);
  return out + table.finish();
}

void TaskTableWriter::start(const std::vector<proto::TaskInfo>& tasks) {
  started_ = true;
  with_user_ = several_owners_ || several_owners(tasks);
  columns_ = {{"ID", Align::kRight}, {"GROUP"}};
  if (with_user_) columns_.push_back({"USER"});
  columns_.insert(columns_.end(),
                  {{"STATE"}, {"EXIT", Align::kRight}, {"ELAPSED", Align::kRight}, {"REASON"}});
}

std::string TaskTableWriter::page(const std::vector<proto::TaskInfo>& tasks) {
  if (tasks.empty()) return {};
  const bool header = !started_;
  if (header) start(tasks);
  std::vector<std::vector<std::string>> rows;
  rows.reserve(tasks.size());
  constexpr std::size_t kUncut = std::numeric_limits<std::size_t>::max();
  const std::size_t reason_width = cut_ == Cut::kNone ? kUncut
                                   : width_ == 0      ? kMaxReasonWidth
                                                      : kMaxReasonWidthOnTerminal;
  for (const auto& t : tasks) {
    std::vector<std::string> row = {std::to_string(t.id), t.group};
    if (with_user_) row.push_back(owner(t.user, t.uid));
    row.insert(row.end(), {state_word(t.state, color_), exit_text(t), elapsed_text(t, now_),
                           truncate_display(reason_text(t), reason_width)});
    rows.push_back(std::move(row));
  }
  if (header) {
    // The command gets what the first page's other columns leave of the terminal.
    std::size_t used = 0;
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      std::size_t w = display_width(columns_[c].header);
      for (const auto& row : rows) w = std::max(w, display_width(row[c]));
      used += w + 2;
    }
    constexpr std::size_t kMinCommandWidth = 20;
    command_width_ = cut_ == Cut::kNone ? kUncut
                     : width_ == 0      ? kMaxCommandWidth
                                   : std::max(kMinCommandWidth, width_ > used ? width_ - used : 0);
    columns_.push_back({"COMMAND"});
  }
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    rows[i].push_back(
        truncate_display(printable(command_line(tasks[i].argv, tasks[i].shell)), command_width_));
  }
  return render_table_part(columns_, rows, widths_, header);
}

std::string TaskTableWriter::finish() {
  if (started_) return {};
  start({});
  columns_.push_back({"COMMAND"});
  return render_table_part(columns_, {}, widths_, true);
}

std::string render_task(const proto::TaskInfo& t, TimeMs now) {
  Fields f = {
      {"id", std::to_string(t.id)},
      {"group", t.group},
      {"user", owner(t.user, t.uid) + (t.user.empty() ? "" : " (" + std::to_string(t.uid) + ")")},
      {"state", std::string(proto::to_string(t.state))}};
  if (t.reason) f.emplace_back("reason", printable(*t.reason));
  if (t.pending_reason) f.emplace_back("waiting for", pending_text(t));
  f.emplace_back("command", printable(command_line(t.argv, t.shell)));
  f.emplace_back("shell", yes_no(t.shell));
  f.emplace_back("cwd", printable(t.cwd));
  f.emplace_back("priority", std::to_string(t.priority));
  f.emplace_back("timeout", t.timeout_ms > 0
                                ? format_duration(std::chrono::milliseconds(t.timeout_ms))
                                : "none");
  f.emplace_back("max log", t.max_log_bytes > 0 ? format_size(t.max_log_bytes) : "daemon's");
  f.emplace_back("requeue", yes_no(t.requeue));
  if (t.pid) f.emplace_back("pid", std::to_string(*t.pid));
  f.emplace_back("exit", exit_text(t));
  f.emplace_back("submitted", time_or_dash(t.submitted_at));
  f.emplace_back("started", time_or_dash(t.started_at));
  f.emplace_back("ended", time_or_dash(t.ended_at));
  f.emplace_back("elapsed", elapsed_text(t, now));
  if (t.cpu_user_ms || t.cpu_system_ms) {
    auto cpu = [](std::optional<std::int64_t> ms) {
      return ms ? format_elapsed(std::chrono::milliseconds(*ms)) : std::string("-");
    };
    f.emplace_back("cpu", cpu(t.cpu_user_ms) + " user, " + cpu(t.cpu_system_ms) + " system");
  }
  if (t.memory_peak_bytes) f.emplace_back("memory", format_size(*t.memory_peak_bytes) + " at peak");
  if (!t.labels.empty()) f.emplace_back("labels", printable(labels_text(t.labels)));
  if (t.key) f.emplace_back("key", printable(*t.key));
  // The words the issue promises, whole on one line: `grep 'restarted from 7'` finds it.
  if (t.restarted_from)
    f.emplace_back("origin", "restarted from " + std::to_string(*t.restarted_from));
  if (!t.log_path.empty()) f.emplace_back("log", printable(t.log_path));
  add_workflow_fields(t, f);
  return render_fields(f);
}

std::string render_groups(const std::vector<proto::GroupInfo>& groups, bool color) {
  const auto count = [color](std::int64_t n, proto::TaskState s) {
    return paint(std::to_string(n), n == 0 ? "" : state_sgr(s), color);
  };
  const bool with_user = several_owners(groups);
  std::vector<Column> columns = {{"NAME"}};
  if (with_user) columns.push_back({"USER"});
  columns.insert(columns.end(), {{"LIMIT", Align::kRight},
                                 {"FLAGS"},
                                 {"QUEUED", Align::kRight},
                                 {"RUNNING", Align::kRight},
                                 {"DONE", Align::kRight},
                                 {"FAILED", Align::kRight},
                                 {"INTERRUPTED", Align::kRight},
                                 {"LOST", Align::kRight},
                                 {"CANCELLED", Align::kRight}});
  std::vector<std::vector<std::string>> rows;
  std::string cancels;
  for (const auto& g : groups) {
    const auto& n = g.counts;
    std::vector<std::string> row = {g.name};
    if (with_user) row.push_back(owner(g.user, g.uid));
    row.insert(
        row.end(),
        {g.limit > 0 ? std::to_string(g.limit) : "-",
         paint(flags(g), g.paused || g.cancelling ? kSgrYellow : "", color),
         count(n.queued, proto::TaskState::kQueued), count(n.running, proto::TaskState::kRunning),
         count(n.succeeded, proto::TaskState::kSucceeded),
         // A timeout is the task's failure; an interruption (a stop of the daemon) and
         // a loss (its crash) are not the task's doing, so they are counted apart.
         count(n.failed + n.timed_out, proto::TaskState::kFailed),
         count(n.interrupted, proto::TaskState::kInterrupted),
         count(n.lost, proto::TaskState::kLost), count(n.cancelled, proto::TaskState::kCancelled)});
    rows.push_back(std::move(row));
    if (const auto& c = g.last_cancel) {
      cancels += g.name + (with_user ? " (" + owner(g.user, g.uid) + ")" : "") +
                 ": last cancel at " + time_or_dash(c->at) + " by uid " +
                 std::to_string(c->by_uid) + ": " +
                 cancel_counts(c->cancelled_queued, c->signalled, c->killed);
      if (!c->reason.empty()) cancels += " (" + printable(c->reason) + ")";
      cancels += "\n";
    }
  }
  std::string out = render_table(columns, rows);
  if (!cancels.empty()) out += "\n" + cancels;
  return out;
}

std::string render_status(const proto::StatusResult& s) {
  Fields f = {{"version", s.version + " (protocol " + std::to_string(s.protocol) + ")"},
              {"pid", std::to_string(s.pid)},
              {"uptime", format_elapsed(std::chrono::milliseconds(s.uptime_ms))},
              {"max_running", std::to_string(s.max_running)},
              {"running", std::to_string(s.running)},
              {"queued", std::to_string(s.queued)},
              {"draining", yes_no(s.draining)},
              {"isolation", s.isolation.empty() ? "-" : s.isolation},
              {"socket", s.socket},
              {"state_dir", s.state_dir},
              {"config", s.config_path.value_or("(none)")}};
  if (s.config_error) f.emplace_back("config_error", printable(*s.config_error));
  if (s.store_error) f.emplace_back("store_error", printable(*s.store_error));
  return render_fields(f);
}

std::string render_cancel(const proto::Cancel& request, const proto::CancelResult& r) {
  return selection_name(request) + ": " + cancel_counts(r.cancelled_queued, r.signalled, r.killed);
}

}  // namespace tg::client
