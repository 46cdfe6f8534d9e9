#include "daemon/exec/local/pidfd_wait.h"

#include <sys/wait.h>

#include <cerrno>

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

bool has_exited(int pidfd) {
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info,
               WEXITED | WNOHANG | WNOWAIT) == 0) {
    return info.si_pid != 0;
  }
  // EAGAIN: a non-blocking pidfd whose child runs. Any other error is no reason to wait again
  // (the readiness would come back at once, for ever): the caller goes on and reports it.
  return errno != EAGAIN;
}

}  // namespace tg::daemon
