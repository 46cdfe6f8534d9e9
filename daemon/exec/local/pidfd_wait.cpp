#include "daemon/exec/local/pidfd_wait.h"

#include <sys/wait.h>

#include "daemon/exec/local/sys_compat.h"

namespace tg::daemon {

std::optional<siginfo_t> wait_pidfd(int pidfd, int flags) {
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | flags) !=
          0 ||
      info.si_pid == 0) {
    return std::nullopt;
  }
  return info;
}

ExitStatus exit_status(const siginfo_t& info) {
  ExitStatus s;
  if (info.si_code == CLD_EXITED) {
    s.exit_code = info.si_status;
  } else {
    s.signal = info.si_status;
  }
  return s;
}

bool has_exited(int pidfd) { return wait_pidfd(pidfd, WNOHANG | WNOWAIT).has_value(); }

}  // namespace tg::daemon
