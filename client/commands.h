#pragma once

// One function per tgctl subcommand: build the request, make the round trip(s), print the result.
// Each returns the exit code for an operation the daemon carried out (0, or 1 when `wait` saw a
// failure), or the Error that stopped it; run() (run.h) prints that and picks 1 or 3.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "client/command.h"
#include "client/connection.h"
#include "common/codec.h"
#include "common/error.h"
#include "common/protocol.h"

namespace tg::client {

// Where commands read and write, and what they know of the terminal. Owned by main().
struct Io {
  std::ostream& out;
  std::ostream& err;
  std::istream& in;           // submit --batch -.
  bool err_is_tty = false;    // Draw the wait progress bar on err.
  std::size_t out_width = 0;  // Columns of the terminal on out; 0 when it is not one.
  std::size_t err_width = 0;
  bool out_color = false;  // Colours on out (color.h: a terminal, and NO_COLOR unset or empty).
};

[[nodiscard]] Result<int> run_submit(Connection& conn, const SubmitCommand& cmd,
                                     const proto::Env& env, Io& io);
[[nodiscard]] Result<int> run_list(Connection& conn, const ListCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_show(Connection& conn, const ShowCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_logs(Connection& conn, const LogsCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_groups(Connection& conn, const GroupsCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_group_set(Connection& conn, const GroupSetCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_pause(Connection& conn, const PauseCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_resume(Connection& conn, const ResumeCommand& cmd, Io& io);
// From inside a task (TASKGROUPD_TASK_ID in `env`), the stop signal this cancel may send to
// tgctl itself waits until the result is printed, then ends tgctl with exit 0.
[[nodiscard]] Result<int> run_cancel(Connection& conn, const CancelCommand& cmd,
                                     const proto::Env& env, Io& io);
[[nodiscard]] Result<int> run_wait(Connection& conn, const WaitCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_status(Connection& conn, const StatusCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_reload(Connection& conn, const ReloadCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_reexec(Connection& conn, const ReexecCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_kill(Connection& conn, const KillCommand& cmd, Io& io);
[[nodiscard]] Result<int> run_restart(Connection& conn, const RestartCommand& cmd, Io& io);
// commands_top.cpp: the live view on a terminal until q, or one frame with --once.
[[nodiscard]] Result<int> run_top(Connection& conn, const TopCommand& cmd, Io& io);
// For the completion scripts: the names, one a line. Prints nothing and returns 0 when the daemon
// cannot be reached or answers with an error, so that completing stays quiet; gives up after
// kCompleteDeadline.
[[nodiscard]] int run_complete(const std::string& socket, const CompleteCommand& cmd, Io& io);
inline constexpr std::chrono::milliseconds kCompleteDeadline{2000};
inline constexpr std::int64_t kMaxCompletedTasks = 500;  // The newest.

// One round trip, with the result decoded into T.
template <class T>
[[nodiscard]] Result<T> call_as(Connection& conn, const proto::Request& request,
                                const NotificationHandler* on_notification = nullptr,
                                const IdleHandler* on_idle = nullptr) {
  auto body = conn.call(request, on_notification, on_idle);
  if (body.has_error()) return body.error();
  return proto::decode_result<T>(*body);
}

// For --json: the result body as the daemon sent it, on one line.
void print_json(Io& io, const nlohmann::json& body);

// One round trip for a command with --json: with `json` the body is printed as sent, else it
// is decoded into T and handed to `print`. kExitOk unless the call failed.
template <class T, class Print>
[[nodiscard]] Result<int> call_and_print(Connection& conn, const proto::Request& request, bool json,
                                         Io& io, Print print) {
  if (json) {
    auto body = conn.call(request);
    if (body.has_error()) return body.error();
    print_json(io, *body);
    return kExitOk;
  }
  auto r = call_as<T>(conn, request);
  if (r.has_error()) return r.error();
  print(*r);
  return kExitOk;
}

}  // namespace tg::client
