#pragma once

// Holding back the signals that would end tgctl, while a reply it must print is on its way.

#include <signal.h>

namespace tg::client {

// While alive, every asynchronous signal whose action is to end tgctl (left at its default:
// TERM, INT, HUP, QUIT, USR1, ALRM, the real-time ones...) is blocked, so it waits instead of
// killing tgctl. For a cancel sent from inside a task (issue 18, item 9): the daemon sends the
// stop signal (any of these, by its config) to the group's tasks, tgctl among them, before it
// replies. Faults (SEGV...), SIGPIPE and job control act as usual. Owned by one command, on
// tgctl's one thread; the mask it changes is the process's. Not copyable.
class HeldSignals {
 public:
  HeldSignals();
  // Restores the mask: a held signal still pending then acts, by default ending tgctl.
  ~HeldSignals();
  HeldSignals(const HeldSignals&) = delete;
  HeldSignals& operator=(const HeldSignals&) = delete;

  // Takes every held signal that has come (each is then gone, its action not taken); true if
  // one had. The caller acts on it: it ends.
  [[nodiscard]] bool take_pending();

 private:
  sigset_t held_{};
  sigset_t old_{};
};

}  // namespace tg::client
