#pragma once

#include <sys/types.h>

namespace tg::daemon {

// Who is on the other end of a connection, from SO_PEERCRED at accept. Nothing a request says
// about identity is ever used instead.
struct Peer {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  [[nodiscard]] bool root() const { return uid == 0; }
};

}  // namespace tg::daemon
