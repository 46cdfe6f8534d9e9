// tgctl list, show and logs: reading tasks and their output.

#include <chrono>
#include <optional>
#include <ostream>

#include "client/commands.h"
#include "client/render.h"
#include "common/time_format.h"

namespace tg::client {

void print_json(Io& io, const nlohmann::json& body) { io.out << proto::dump_json(body) << '\n'; }

Result<int> run_list(Connection& conn, const ListCommand& cmd, Io& io) {
  const proto::Request request{cmd.request};
  if (cmd.json) {
    auto body = conn.call(request);
    if (body.has_error()) return body.error();
    print_json(io, *body);
    return kExitOk;
  }
  auto r = call_as<proto::ListResult>(conn, request);
  if (r.has_error()) return r.error();
  io.out << render_task_table(r->tasks, now_ms(), io.out_width);
  return kExitOk;
}

Result<int> run_show(Connection& conn, const ShowCommand& cmd, Io& io) {
  const proto::Request request{proto::Show{cmd.id}};
  if (cmd.json) {
    auto body = conn.call(request);
    if (body.has_error()) return body.error();
    print_json(io, *body);
    return kExitOk;
  }
  auto r = call_as<proto::ShowResult>(conn, request);
  if (r.has_error()) return r.error();
  io.out << render_task(r->task, now_ms());
  return kExitOk;
}

namespace {

// Reads the log in as many round trips as the daemon takes to hand it out.
Result<int> print_log(Connection& conn, proto::TaskId id, Io& io) {
  proto::Logs request{id, 0, false};
  for (;;) {
    auto r = call_as<proto::LogsResult>(conn, proto::Request{request});
    if (r.has_error()) return r.error();
    io.out << r->data;
    // A daemon that does not move the offset forward would otherwise keep us here forever.
    if (r->eof || r->data.empty() || r->offset <= request.offset) break;
    request.offset = r->offset;
  }
  io.out.flush();
  return kExitOk;
}

// The daemon pushes "logs.data" until the task ends, then replies; the reply carries any bytes
// not pushed yet. A re-exec of the daemon ends the follow with Errc::kRestarting: it goes on
// with the next program from the bytes already shown.
Result<int> follow_log(Connection& conn, proto::TaskId id, Io& io) {
  std::int64_t offset = 0;
  const NotificationHandler write = [&](std::string_view method, const nlohmann::json& params) {
    if (method != proto::kLogsData || !params.is_object()) return;
    auto data = params.find("data");
    if (data == params.end() || !data->is_string()) return;
    const auto& bytes = data->get_ref<const std::string&>();
    io.out << bytes;
    io.out.flush();  // Streamed as it comes, also into a pipe.
    offset += static_cast<std::int64_t>(bytes.size());
  };
  std::optional<std::chrono::steady_clock::time_point> deadline;  // From the first `restarting`.
  for (;;) {
    auto r =
        call_as<proto::LogsResult>(conn, proto::Request{proto::Logs{id, offset, true}}, &write);
    if (r.has_error() && r.error().code == Errc::kRestarting) {
      const auto now = std::chrono::steady_clock::now();
      if (!deadline) deadline = now + Connection::kRestartWait;
      if (now > *deadline) return r.error();
      if (auto c = conn.reconnect(); c.has_error()) return c.error();
      continue;
    }
    if (r.has_error()) return r.error();
    io.out << r->data;
    io.out.flush();
    return kExitOk;
  }
}

}  // namespace

Result<int> run_logs(Connection& conn, const LogsCommand& cmd, Io& io) {
  return cmd.follow ? follow_log(conn, cmd.id, io) : print_log(conn, cmd.id, io);
}

}  // namespace tg::client
