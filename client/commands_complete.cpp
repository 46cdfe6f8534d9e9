// tgctl __complete groups|tasks: the names the completion scripts offer.

#include <chrono>
#include <ostream>
#include <set>
#include <string>

#include "client/commands.h"

namespace tg::client {

namespace {

Result<void> print_names(Connection& conn, ValueKind kind, Io& io) {
  if (kind == ValueKind::kGroup) {
    auto r = call_as<proto::GroupsResult>(conn, proto::Request{proto::Groups{}});
    if (r.has_error()) return r.error();
    std::set<std::string> names;  // Root sees each user's groups; a name is completed once.
    for (const proto::GroupInfo& g : r->groups) names.insert(g.name);
    for (const std::string& name : names) io.out << name << '\n';
    return {};
  }
  proto::List list;
  list.limit = kMaxCompletedTasks;
  auto r = call_as<proto::ListResult>(conn, proto::Request{list});
  if (r.has_error()) return r.error();
  for (const proto::TaskInfo& t : r->tasks) io.out << t.id << '\n';
  return {};
}

}  // namespace

int run_complete(const std::string& socket, const CompleteCommand& cmd, Io& io) {
  auto conn = Connection::connect(socket);
  if (conn.has_error()) return kExitOk;
  conn->set_deadline(std::chrono::steady_clock::now() + kCompleteDeadline);
  (void)print_names(*conn, cmd.kind, io);  // A completion offers nothing rather than an error.
  io.out.flush();
  return kExitOk;
}

}  // namespace tg::client
