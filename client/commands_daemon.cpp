// tgctl status and reload: the daemon itself.

#include <ostream>

#include "client/commands.h"
#include "client/render.h"

namespace tg::client {

Result<int> run_status(Connection& conn, const StatusCommand& cmd, Io& io) {
  const proto::Request request{proto::Status{}};
  if (cmd.json) {
    auto body = conn.call(request);
    if (body.has_error()) return body.error();
    print_json(io, *body);
    return kExitOk;
  }
  auto r = call_as<proto::StatusResult>(conn, request);
  if (r.has_error()) return r.error();
  io.out << render_status(*r);
  return kExitOk;
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

}  // namespace tg::client
