// tgctl status, reload and reexec: the daemon itself.

#include <ostream>

#include "client/commands.h"
#include "client/render.h"

namespace tg::client {

Result<int> run_status(Connection& conn, const StatusCommand& cmd, Io& io) {
  return call_and_print<proto::StatusResult>(
      conn, proto::Request{proto::Status{}}, cmd.json, io,
      [&](const proto::StatusResult& r) { io.out << render_status(r); });
}

Result<int> run_reload(Connection& conn, const ReloadCommand&, Io& io) {
  auto r = call_as<proto::ReloadResult>(conn, proto::Request{proto::Reload{}});
  if (r.has_error()) return r.error();
  // A refused config is a failed operation, but the daemon keeps running on the old one.
  if (!r->ok)
    return Error{Errc::kInvalidParams, "reload failed: " + r->error.value_or("unknown error")};
  io.out << "ok\n";
  return kExitOk;
}

Result<int> run_reexec(Connection& conn, const ReexecCommand&, Io& io) {
  auto r = call_as<proto::ReexecResult>(conn, proto::Request{proto::Reexec{}});
  if (r.has_error()) return r.error();
  io.out << "re-executing " << r->exe << " (" << r->running << " running)\n";
  io.out.flush();
  // The program that answered closes every connection just before its exec; what connects
  // from then on is answered by the next one, once it has adopted the running tasks.
  conn.wait_closed();
  if (auto c = conn.reconnect(); c.has_error()) return c.error();
  auto s = call_as<proto::StatusResult>(conn, proto::Request{proto::Status{}});
  if (s.has_error()) return s.error();
  io.out << "re-executed: taskgroupd " << s->version << ", pid " << s->pid << ", " << s->running
         << " running, " << s->queued << " queued\n";
  return kExitOk;
}

}  // namespace tg::client
