// tgctl list, show and logs: reading tasks and their output.

#include <unistd.h>

#include <chrono>
#include <optional>
#include <ostream>
#include <vector>

#include "client/commands.h"
#include "client/render.h"
#include "common/time_format.h"

namespace tg::client {

void print_json(Io& io, const nlohmann::json& body) { io.out << proto::dump_json(body) << '\n'; }

namespace {

// One page of a listing: the result body as the daemon sent it, and where the next page starts.
struct ListPage {
  nlohmann::json tasks;                        // An array.
  std::optional<proto::TaskId> next_after_id;  // Null: this was the last page.
};

Result<ListPage> next_list_page(Connection& conn, const proto::List& request) {
  auto body = conn.call(proto::Request{request});
  if (body.has_error()) return body.error();
  const Error bad{Errc::kInternal, "unexpected reply from daemon: not a list page"};
  if (!body->is_object() || !body->contains("tasks") || !body->at("tasks").is_array()) return bad;
  ListPage page{std::move(body->at("tasks")), std::nullopt};
  const nlohmann::json next = body->value("next_after_id", nlohmann::json());
  if (next.is_null()) return page;
  if (!next.is_number_integer()) return bad;
  page.next_after_id = next.get<proto::TaskId>();
  // A cursor that does not move forward would otherwise keep us here forever.
  if (*page.next_after_id <= request.after_id.value_or(0)) return bad;
  return page;
}

}  // namespace

// Pages through the listing and prints each page as it arrives: memory holds one page. With
// --limit N the first request selects the newest N; the next ones go on from the cursor without
// the limit, and we stop after N tasks (tasks submitted meanwhile come after those N).
Result<int> run_list(Connection& conn, const ListCommand& cmd, Io& io) {
  proto::List request = cmd.request;
  request.after_id = 0;
  std::optional<std::int64_t> left = request.limit;
  // Root without a group or user filter may see several users' tasks on later pages.
  const bool several_owners = ::geteuid() == 0 && !request.group && !request.user;
  std::optional<TaskTableWriter> table;
  bool any = false;
  for (;;) {
    auto page = next_list_page(conn, request);
    if (page.has_error()) return page.error();
    if (!table) {  // The first page: only now is it known that something will be printed.
      table.emplace(now_ms(), io.out_width, several_owners && page->next_after_id,
                    cmd.wide ? Cut::kNone : Cut::kToFit, io.out_color);
      if (cmd.json) io.out << "{\"tasks\":[";
    }
    std::vector<proto::TaskInfo> tasks;
    for (const auto& t : page->tasks) {
      if (left && *left == 0) break;
      if (left) --*left;
      if (cmd.json) {
        io.out << (any ? "," : "") << proto::dump_json(t);
        any = true;
        continue;
      }
      auto info = proto::decode_result<proto::TaskInfo>(t);
      if (info.has_error()) return info.error();
      tasks.push_back(std::move(*info));
    }
    if (!cmd.json) io.out << table->page(tasks);
    io.out.flush();  // As it comes, also into a pipe.
    if (!page->next_after_id || (left && *left == 0)) break;
    request.after_id = page->next_after_id;
    request.limit.reset();
  }
  io.out << (cmd.json ? "]}\n" : table->finish());
  return kExitOk;
}

Result<int> run_show(Connection& conn, const ShowCommand& cmd, Io& io) {
  return call_and_print<proto::ShowResult>(
      conn, proto::Request{proto::Show{cmd.id}}, cmd.json, io,
      [&](const proto::ShowResult& r) { io.out << render_task(r.task, now_ms()); });
}

namespace {

// Reads the log in as many round trips as the daemon takes to hand it out.
Result<int> print_log(Connection& conn, proto::TaskId id, std::optional<int> attempt, Io& io) {
  proto::Logs request{id, 0, false, attempt};
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
        call_as<proto::LogsResult>(conn, proto::Request{proto::Logs{id, offset, true, {}}}, &write);
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
  return cmd.follow ? follow_log(conn, cmd.id, io) : print_log(conn, cmd.id, cmd.attempt, io);
}

}  // namespace tg::client
