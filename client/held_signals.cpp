#include "client/held_signals.h"

#include <signal.h>
#include <time.h>

#include <initializer_list>

namespace tg::client {

HeldSignals::HeldSignals() {
  sigfillset(&held_);
  // Raised by a fault of ours (blocked, they kill all the same), for a broken pipe (the write
  // fails with EPIPE, and dying of it is how a pipeline ends), or for job control.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT, SIGPIPE, SIGCHLD,
                  SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH}) {
    sigdelset(&held_, sig);
  }
  // A signal ignored (inherited SIG_IGN) would otherwise be kept pending while blocked, and
  // taken for one that came to end us.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    if (sigismember(&held_, sig) == 1 && ::sigaction(sig, nullptr, &sa) == 0 &&
        sa.sa_handler != SIG_DFL) {
      sigdelset(&held_, sig);
    }
  }
  (void)::sigprocmask(SIG_BLOCK, &held_, &old_);  // Cannot fail with valid arguments.
}

HeldSignals::~HeldSignals() { (void)::sigprocmask(SIG_SETMASK, &old_, nullptr); }

bool HeldSignals::take_pending() {
  const timespec no_wait{};
  bool any = false;
  while (::sigtimedwait(&held_, nullptr, &no_wait) > 0) any = true;
  return any;
}

}  // namespace tg::client
