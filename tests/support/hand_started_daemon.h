#pragma once

// A taskgroupd started the way a person starts it by hand: no socket activation, it binds its
// own --socket PATH, as a given user.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "support/background_process.h"
#include "support/process.h"
#include "support/test_users.h"

namespace tg::test {

// How a taskgroupd started by hand runs: cwd and HOME in `home`, its XDG config, runtime and
// state homes under it, so that no user or system file is read. For daemons a test expects to
// refuse to start (run_process), and for HandStartedDaemon itself.
[[nodiscard]] RunOptions hand_daemon_options(const std::filesystem::path& home);

// Runs taskgroupd --socket SOCKET --state-dir HOME/state --log-level debug ARGS as `user`
// (root: the test process itself), with its XDG homes and cwd in `home`, which must exist and
// be the user's to write. ARGS defaults to a quick stop (--drain-timeout 1s --kill-grace 1s),
// so that a test failing with a task still running cannot stall its teardown. The constructor
// waits (bounded) for the daemon to log "ready"; the destructor sends SIGTERM and CHECKs that
// it exits 0 within 5 s and removes the socket it made. Owned by one test.
class HandStartedDaemon {
 public:
  HandStartedDaemon(const TestUser& user, const std::filesystem::path& home,
                    const std::filesystem::path& socket,
                    std::vector<std::string> args = {"--drain-timeout", "1s", "--kill-grace",
                                                     "1s"});
  ~HandStartedDaemon();
  HandStartedDaemon(const HandStartedDaemon&) = delete;
  HandStartedDaemon& operator=(const HandStartedDaemon&) = delete;

  [[nodiscard]] pid_t pid() const { return process_->pid(); }
  [[nodiscard]] std::string log();  // Its stderr so far.

 private:
  std::filesystem::path socket_;
  std::optional<BackgroundProcess> process_;
};

}  // namespace tg::test
