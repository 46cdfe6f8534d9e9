#pragma once

// The TestDaemon fixture: a real taskgroupd, socket-activated by the test (STYLE.md rule 25).

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/temp_dir.h"

namespace tg::test {

struct DaemonOptions {
  // Extra flags, e.g. {"--max-running", "2"}.
  std::vector<std::string> args = {};
  // A state dir to reuse, which the caller keeps alive; by default a fresh one in the temp dir.
  std::optional<std::filesystem::path> state_dir = std::nullopt;
  // The taskgroupd binary to run; by default the one this build made.
  std::optional<std::filesystem::path> binary = std::nullopt;
  // The config file's contents at the first start (TOML); empty: the defaults.
  std::string config = {};
};

// Owns one temp dir and, at any time, at most one taskgroupd child. The constructor binds and
// listens on <dir>/s itself and execs taskgroupd with that socket as fd 3 (LISTEN_FDS=1,
// LISTEN_PID set in the child), so clients can connect at once, with no retry loop. The
// daemon's stdout and stderr go to <dir>/daemon.log, printed if the test fails. Its config,
// runtime and state homes all point into the temp dir, so no user or system file is read.
// The destructor sends SIGTERM and CHECKs that the daemon exits 0 within 5 s.
class TestDaemon {
 public:
  explicit TestDaemon(DaemonOptions options = {});
  ~TestDaemon();
  TestDaemon(const TestDaemon&) = delete;
  TestDaemon& operator=(const TestDaemon&) = delete;

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }  // For tasks.
  [[nodiscard]] std::string socket_path() const;
  [[nodiscard]] const std::filesystem::path& state_dir() const { return state_dir_; }
  [[nodiscard]] pid_t pid() const { return pid_; }  // -1 once reaped.

  void send_signal(int sig);  // kill(2) the daemon; REQUIREs it to be running.
  // Waits for the daemon to exit and reaps it; a timeout leaves it running.
  [[nodiscard]] ExitStatus wait_exit(milliseconds timeout);
  // SIGKILL and reap it, REQUIREing that it died of that within 10 s: a crash, as far as the
  // store can tell.
  void crash();
  // Stops the daemon (SIGTERM, REQUIRE exit 0 within 5 s) unless it has already been reaped,
  // then starts a new one on the same socket path, state dir and flags.
  void restart();

  // tgctl --socket <ours> ARGS..., bounded by opts.timeout.
  [[nodiscard]] ProcessOutput tgctl(const std::vector<std::string>& args,
                                    const RunOptions& opts = {}) const;
  [[nodiscard]] std::string log() const;  // The daemon's stderr so far.

 private:
  void start();

  TempDir dir_;  // First member: removed last, after the daemon is gone.
  DaemonOptions options_;
  std::filesystem::path state_dir_;
  pid_t pid_ = -1;
};

// tgctl with --socket set, bounded by opts.timeout (the test fails if it hangs).
[[nodiscard]] ProcessOutput run_tgctl(const std::string& socket,
                                      const std::vector<std::string>& args,
                                      const RunOptions& opts = {});

}  // namespace tg::test
