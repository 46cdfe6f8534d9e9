#include "support/hand_started_daemon.h"

#include <signal.h>

#include <chrono>

#include <doctest/doctest.h>

#include "support/wait_until.h"

namespace tg::test {

namespace fs = std::filesystem;

RunOptions hand_daemon_options(const fs::path& home) {
  RunOptions opts;
  opts.cwd = home;
  opts.env_extra = {{"HOME", home.string()},
                    {"XDG_CONFIG_HOME", (home / "config").string()},
                    {"XDG_RUNTIME_DIR", (home / "xdg-run").string()},
                    {"XDG_STATE_HOME", (home / "state-home").string()}};
  return opts;
}

HandStartedDaemon::HandStartedDaemon(const TestUser& user, const fs::path& home,
                                     const fs::path& socket, std::vector<std::string> args)
    : socket_(socket) {
  const RunOptions opts = hand_daemon_options(home);
  std::vector<std::string> argv = {
      TG_DAEMON_BIN, "--socket", socket.string(), "--state-dir", (home / "state").string(),
      "--log-level", "debug"};
  argv.insert(argv.end(), args.begin(), args.end());
  process_.emplace(user.uid == 0 ? argv : as_user(user, argv), opts);
  wait_until(
      [&] {
        (void)process_->running();
        return process_->err().find("ready") != std::string::npos;
      },
      milliseconds(10'000), "taskgroupd started by hand to say ready");
}

HandStartedDaemon::~HandStartedDaemon() {
  if (!process_) return;
  (void)::kill(process_->pid(), SIGTERM);
  const auto st = process_->wait(milliseconds(5'000));
  CHECK_MESSAGE(st.clean(), "taskgroupd after SIGTERM: " << st.describe() << "\n"
                                                         << process_->err());
  CHECK_FALSE(fs::exists(fs::symlink_status(socket_)));  // It removes the socket it made.
}

std::string HandStartedDaemon::log() {
  (void)process_->running();  // Reads what it has written so far.
  return process_->err();
}

}  // namespace tg::test
