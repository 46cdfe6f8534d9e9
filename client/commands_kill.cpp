// tgctl kill: a signal to running tasks, by id or of a group.

#include <ostream>
#include <string>
#include <vector>

#include "client/commands.h"

namespace tg::client {

namespace {

std::string joined(const std::vector<proto::TaskId>& ids) {
  std::string out;
  for (proto::TaskId id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return out;
}

}  // namespace

Result<int> run_kill(Connection& conn, const KillCommand& cmd, Io& io) {
  return call_and_print<proto::KillResult>(
      conn, proto::Request{cmd.request}, cmd.json, io, [&](const proto::KillResult& r) {
        if (r.ids.empty()) {
          io.out << r.signal << " sent to no task: none of them is running\n";
        } else {
          io.out << r.signal << " sent to " << r.ids.size() << " running task(s): " << joined(r.ids)
                 << '\n';
        }
        if (!r.skipped.empty()) io.out << "not running, skipped: " << joined(r.skipped) << '\n';
      });
}

}  // namespace tg::client
