#pragma once

// A child that runs while the test goes on: its output is read as it comes (for `tgctl logs -f`,
// or to see when `tgctl wait` returns), every read bounded in time.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "support/process.h"

namespace tg::test {

// Starts argv[0] (a path) at construction with stdin from /dev/null, stdout and stderr on pipes
// and only fds 0-2 open, in the environment run_process() would give it (opts.cwd and
// opts.env_extra apply; opts.stdin_text must be empty; opts.timeout is unused). The destructor
// SIGKILLs and reaps it if it is still running. Move-only; owned by one test.
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv, const RunOptions& opts = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  // Reads output until stdout contains `needle`; false if it does not within `timeout`
  // (or if both pipes close first).
  [[nodiscard]] bool wait_for_output(std::string_view needle, milliseconds timeout);
  // Reads what is there now without blocking; true while the child has not exited.
  [[nodiscard]] bool running();
  // Reads output until both pipes close, then reaps the child. On timeout it is left
  // running (timed_out set) for the destructor to kill.
  [[nodiscard]] ExitStatus wait(milliseconds timeout);

  [[nodiscard]] const std::string& out() const { return out_; }
  [[nodiscard]] const std::string& err() const { return err_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  // One poll() round of at most `timeout_ms` (0: do not block); returns false once both
  // pipes are closed.
  bool pump(int timeout_ms);

  std::vector<std::string> argv_;  // For messages.
  pid_t pid_ = -1;                 // -1 once reaped.
  Fd out_fd_;
  Fd err_fd_;
  std::string out_;
  std::string err_;
};

}  // namespace tg::test
