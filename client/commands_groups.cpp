// tgctl groups, group set, pause, resume, cancel and wait: acting on task groups.

#include <chrono>
#include <optional>
#include <ostream>
#include <string_view>

#include "client/commands.h"
#include "client/format.h"
#include "client/held_signals.h"
#include "client/render.h"
#include "common/duration.h"

namespace tg::client {

namespace {

// The wait progress bar on a terminal. The daemon sends progress when counts change; between
// those, the elapsed time is advanced here so the bar stays live.
class ProgressBar {
 public:
  explicit ProgressBar(Io& io) : io_(io), width_(io.err_width > 0 ? io.err_width : kDefaultWidth) {}

  void update(std::string_view method, const nlohmann::json& params) {
    if (method != proto::kWaitProgress) return;
    auto progress = proto::decode_result<proto::WaitResult>(params);
    if (progress.has_error()) return;  // A malformed progress line is not worth failing the wait.
    last_ = *progress;
    received_ = std::chrono::steady_clock::now();
    draw(last_);
  }

  void tick() {
    if (!drawn_) return;
    proto::WaitResult now = last_;
    now.elapsed_ms += std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - received_)
                          .count();
    draw(now);
  }

  void clear() {
    if (drawn_) io_.err << "\r\x1b[K" << std::flush;
    drawn_ = false;
  }

 private:
  static constexpr std::size_t kDefaultWidth = 80;

  void draw(const proto::WaitResult& p) {
    io_.err << '\r' << progress_line(p, width_) << "\x1b[K" << std::flush;
    drawn_ = true;
  }

  Io& io_;
  const std::size_t width_;
  proto::WaitResult last_;
  std::chrono::steady_clock::time_point received_;
  bool drawn_ = false;
};

// Waits for `request`'s tasks, with a progress bar on a terminal; prints the final counts.
// With a timeout, a wait still going then fails with conn.deadline_passed() set.
Result<proto::WaitResult> wait_for(Connection& conn, proto::Wait request, Io& io,
                                   std::optional<std::chrono::milliseconds> timeout = {}) {
  if (timeout) conn.set_deadline(std::chrono::steady_clock::now() + *timeout);
  request.progress = io.err_is_tty;
  ProgressBar bar(io);
  const NotificationHandler update = [&bar](std::string_view method, const nlohmann::json& p) {
    bar.update(method, p);
  };
  const IdleHandler tick = [&bar] { bar.tick(); };
  auto r = call_as<proto::WaitResult>(conn, proto::Request{request},
                                      request.progress ? &update : nullptr,
                                      request.progress ? &tick : nullptr);
  bar.clear();  // The summary below, or the error, replaces it.
  if (r.has_error()) return r.error();
  io.out << counts_summary(r->counts) << '\n';
  return r;
}

}  // namespace

Result<int> run_groups(Connection& conn, const GroupsCommand& cmd, Io& io) {
  return call_and_print<proto::GroupsResult>(
      conn, proto::Request{cmd.request}, cmd.json, io,
      [&](const proto::GroupsResult& r) { io.out << render_groups(r.groups, io.out_color); });
}

Result<int> run_group_set(Connection& conn, const GroupSetCommand& cmd, Io& io) {
  auto body = conn.call(proto::Request{cmd.request});
  if (body.has_error()) return body.error();
  const auto& req = cmd.request;
  std::string changes;
  if (req.limit) changes = *req.limit > 0 ? "limit " + std::to_string(*req.limit) : "no limit";
  if (req.fail_fast)
    changes +=
        (changes.empty() ? "" : ", ") + std::string(*req.fail_fast ? "fail-fast" : "no fail-fast");
  if (req.first_success) {
    changes += (changes.empty() ? "" : ", ") +
               std::string(*req.first_success ? "first-success" : "no first-success");
  }
  if (req.on_done) {
    changes += (changes.empty() ? "" : ", ") +
               std::string(req.on_done->empty() ? "no on-done hook" : "on-done hook set");
  }
  io.out << req.group.name << ": " << (changes.empty() ? "ok" : changes) << '\n';
  return kExitOk;
}

Result<int> run_pause(Connection& conn, const PauseCommand& cmd, Io& io) {
  auto body = conn.call(proto::Request{cmd.request});
  if (body.has_error()) return body.error();
  io.out << cmd.request.group.name << ": paused\n";
  return kExitOk;
}

Result<int> run_resume(Connection& conn, const ResumeCommand& cmd, Io& io) {
  auto body = conn.call(proto::Request{cmd.request});
  if (body.has_error()) return body.error();
  io.out << cmd.request.group.name << ": resumed\n";
  return kExitOk;
}

Result<int> run_cancel(Connection& conn, const CancelCommand& cmd, const proto::Env& env, Io& io) {
  // From inside a task, this cancel may stop tgctl itself: the daemon signals the tasks before
  // it replies. Hold that signal until the result is out, then act on it: end, the cancel done
  // (exit 0; no --wait, which would wait for our own task).
  std::optional<HeldSignals> held;
  if (env.contains("TASKGROUPD_TASK_ID")) held.emplace();
  auto r = call_as<proto::CancelResult>(conn, proto::Request{cmd.request});
  if (r.has_error()) return r.error();
  io.out << render_cancel(cmd.request, *r) << '\n' << std::flush;
  if (held && held->take_pending()) return kExitOk;
  held.reset();
  if (!cmd.wait) return kExitOk;
  // The cancel succeeded once its tasks have ended; that they did not succeed is the point.
  auto waited = wait_for(conn, proto::Wait{cmd.request.group, cmd.request.ids, false}, io);
  if (waited.has_error()) return waited.error();
  return kExitOk;
}

Result<int> run_wait(Connection& conn, const WaitCommand& cmd, Io& io) {
  auto r = wait_for(conn, cmd.request, io, cmd.timeout);
  if (r.has_error() && conn.deadline_passed()) {
    // As timeout(1): 124, and the tasks are left as they are.
    io.err << "tgctl: gave up waiting after " << format_duration(*cmd.timeout)
           << "; the tasks are still going (not cancelled)\n";
    return kExitWaitTimeout;
  }
  if (r.has_error()) return r.error();
  return r->all_succeeded ? kExitOk : kExitFailed;
}

}  // namespace tg::client
