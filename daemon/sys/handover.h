#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace tg::daemon {

// What a daemon that re-executes itself (`tgctl reexec`, SIGUSR2) hands to the program it
// becomes, as systemd's daemon-reexec does: same pid, so its running tasks stay its children.
// The open files survive the exec (their close-on-exec flag cleared); the rest travels as JSON
// in a sealed memfd named by TASKGROUPD_HANDOVER_FD. The store is not part of it: it is closed
// cleanly before the exec and holds every running task, which the next program adopts.
struct Handover {
  // Bumped when a field changes meaning; a binary that does not know it refuses the re-exec
  // at its check (taskgroupd --check-reexec), before anything is handed over.
  static constexpr int kVersion = 1;

  int version = kVersion;
  int listen_fd = -1;               // The listening control socket.
  std::string socket_path;          // Where clients connect (empty: abstract or unnamed).
  std::string owned_socket;         // The file we bound and remove at exit; empty under activation.
  int lock_fd = -1;                 // The state directory's lock, held across the exec.
  unsigned task_umask = 022;        // The umask tasks get: ours is 0077 by now.
  std::int64_t watchdog_usec = 0;   // systemd's watchdog interval (0: none); WATCHDOG_* is gone.
  std::vector<std::int64_t> tasks;  // The running tasks, each a child of this pid.
};

// The program a re-exec runs and how: main() reads these once.
struct SelfExec {
  std::string exe;                // What /proc/self/exe named at start: a new binary there runs.
  std::vector<std::string> argv;  // Our own arguments, given again.
};

// Serializes `h` into a sealed memfd without close-on-exec; returns its fd.
[[nodiscard]] Result<int> write_handover(const Handover& h);
// Reads and closes the memfd main() found in TASKGROUPD_HANDOVER_FD.
[[nodiscard]] Result<Handover> read_handover(int fd);

// Runs `self.exe --check-reexec` with our arguments and waits for it (at most `timeout_ms`):
// the binary must run, accept our flags and config and speak our handover version. Its
// complaint, if any, is the error. Blocks the caller: a re-exec stops the loop anyway.
[[nodiscard]] Result<void> check_new_binary(const SelfExec& self, int timeout_ms);

// Replaces this program with `self.exe`, handing over `h`: returns only if the exec failed,
// with why. Lifecycle signals stay blocked across the exec (the new program takes them as
// early signals); on failure they are blocked still, and every fd is close-on-exec again.
[[nodiscard]] Error exec_handover(const SelfExec& self, const Handover& h);

// Blocks TERM, INT, HUP and USR2 until the next program takes them as early signals: from
// the moment the loop that handled them is gone, none may end the process by its default
// action. exec_handover() does it too; call it earlier, before the loop's signal set goes.
void hold_lifecycle_signals();

// The line `--check-reexec` prints: what run()'s check compares.
[[nodiscard]] std::string reexec_check_line();

}  // namespace tg::daemon
