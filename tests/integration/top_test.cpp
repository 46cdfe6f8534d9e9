// Integration tests of `tgctl top` (usage.md "tgctl top") driven in tmux on a real terminal, of
// `top --once` into a pipe, and of the colour rule for list and groups.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/task_helpers.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using namespace tg::test::helpers;

// A tmux server of our own (-L: its own socket, no config), with one session of one pane
// running `command` in a 150x45 terminal. The destructor kills the server and everything in it.
class Tmux {
 public:
  explicit Tmux(const std::string& command, const std::map<std::string, std::string>& env = {}) {
    static std::atomic<int> counter{0};
    name_ = "tgtop-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    REQUIRE_MESSAGE(fs::exists("/usr/bin/tmux"), "tmux is not installed: scripts/deps.sh");
    std::vector<std::string> argv = {"new-session", "-d", "-x", "150", "-y", "45", "-s", "top"};
    for (const auto& [k, v] : env) argv.insert(argv.end(), {"-e", k + "=" + v});
    argv.push_back(command);
    run(argv);
  }
  ~Tmux() { (void)tg::test::run_process({"/usr/bin/tmux", "-L", name_, "kill-server"}); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  // `tmux ARGS` against our server; REQUIREs success; returns its stdout.
  std::string run(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"/usr/bin/tmux", "-L", name_, "-f", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = tg::test::run_process(argv);
    INFO(describe(r));
    REQUIRE(r.exit_code == 0);
    return r.out;
  }
  // What the pane shows; with `escapes`, its colours and attributes as escape sequences.
  std::string screen(bool escapes = false) const {
    if (escapes) return run({"capture-pane", "-p", "-e", "-t", "top"});
    return run({"capture-pane", "-p", "-t", "top"});
  }
  void keys(const std::vector<std::string>& keys) const {
    std::vector<std::string> argv = {"send-keys", "-t", "top"};
    argv.insert(argv.end(), keys.begin(), keys.end());
    run(argv);
  }
  // Waits until the pane shows a line holding every one of `parts`; returns the screen.
  std::string wait_for(const std::vector<std::string>& parts,
                       std::chrono::milliseconds timeout = 15s) const {
    std::string shown;
    tg::test::wait_until(
        [&] {
          shown = screen();
          for (const std::string& line : lines_of(shown)) {
            bool all = true;
            for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
            if (all) return true;
          }
          return false;
        },
        timeout, "a line with " + tg::test::quote_argv(parts) + " in:\n" + shown);
    return shown;
  }
  // The pane's state: "ALT CURSOR": alternate screen on (1/0), cursor visible (1/0).
  std::string modes() const {
    return run({"display-message", "-p", "-t", "top", "#{alternate_on} #{cursor_flag}"});
  }

 private:
  std::string name_;
};

// A shell command that runs `tgctl ... top ARGS` and then says how it ended and whether the
// terminal's mode (stty -g) is what it was before; then stays, so that the pane can be read.
std::string top_in_shell(const TestDaemon& d, const std::string& args = "") {
  return "sh -c 'before=$(stty -g); " + std::string(TG_CLIENT_BIN) + " --socket " +
         d.socket_path() + " top " + args +
         "; code=$?; after=$(stty -g); "
         "if [ \"$before\" = \"$after\" ]; then echo TTY-RESTORED; else echo TTY-CHANGED; fi; "
         "echo TOP-EXIT=$code; exec sleep 600'";
}

// After top has ended in `tmux`: it exited `code`, the mode and the screen are restored.
void check_restored(const Tmux& tmux, int code) {
  const std::string shown = tmux.wait_for({"TOP-EXIT="});
  INFO(shown);
  CHECK(shown.find("TOP-EXIT=" + std::to_string(code)) != std::string::npos);
  CHECK(shown.find("TTY-RESTORED") != std::string::npos);
  CHECK(shown.find("GROUPS") == std::string::npos);  // Its frame was on the alternate screen.
  CHECK(tmux.modes() == "0 1\n");
}

}  // namespace

TEST_CASE("top: a group's progress moves, a cancel needs y, q restores the terminal") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const Gate first(d.dir() / "gate-first"), rest(d.dir() / "gate-rest");
  submit(d, {"-g", "topgrp", "--shell", "--", first.wait_shell()});
  const std::int64_t second = submit(d, {"-g", "topgrp", "--shell", "--", rest.wait_shell()});
  submit(d, {"-g", "topgrp", "--shell", "--", rest.wait_shell()});
  Tmux tmux(top_in_shell(d));

  tmux.wait_for({"topgrp", "0/3"});
  tmux.wait_for({"RUNNING (3)"});
  first.open();
  tmux.wait_for({"topgrp", "1/3"});  // Pushed by the daemon: top polls nothing.
  tmux.wait_for({"RUNNING (2)"});

  tmux.keys({"p"});
  tmux.wait_for({"topgrp", "paused"});
  CHECK(group_info(d, "topgrp")["paused"] == true);
  tmux.keys({"p"});
  tmux.wait_for({"resumed topgrp"});
  CHECK(group_info(d, "topgrp")["paused"] == false);

  tmux.keys({"c"});
  tmux.wait_for({"Cancel group topgrp? (y/n)"});
  tmux.keys({"n"});
  tmux.wait_for({"not cancelled"});
  CHECK(show(d, second)["state"] == "running");

  tmux.keys({"c"});
  tmux.wait_for({"Cancel group topgrp? (y/n)"});
  tmux.keys({"y"});
  tmux.wait_for({"topgrp", "3/3"});
  tmux.wait_for({"cancelled: group 'topgrp' cancelled by uid"});
  CHECK(group_info(d, "topgrp")["counts"]["cancelled"] == 2);
  CHECK(show(d, second)["state"] == "cancelled");

  tmux.keys({"q"});
  check_restored(tmux, 0);
}

TEST_CASE("top: a filter, then Ctrl+C quits with the terminal restored") {
  TestDaemon d;
  submit(d, {"-g", "alpha", "--", "true"});
  submit(d, {"-g", "beta", "--", "true"});
  REQUIRE(wait_group(d, "alpha") == 0);
  REQUIRE(wait_group(d, "beta") == 0);
  Tmux tmux(top_in_shell(d));
  tmux.wait_for({"GROUPS (2)"});
  tmux.keys({"g"});
  tmux.wait_for({"filter groups:"});
  tmux.keys({"bet", "Enter"});
  tmux.wait_for({"GROUPS (1)"});
  tmux.wait_for({"filter: bet"});
  tmux.keys({"C-c"});
  check_restored(tmux, 0);
}

TEST_CASE("top: the daemon going away ends it with the terminal restored") {
  TestDaemon d;
  submit(d, {"-g", "gone", "--", "true"});
  Tmux tmux(top_in_shell(d));
  tmux.wait_for({"GROUPS (1)"});
  d.send_signal(SIGTERM);
  REQUIRE(d.wait_exit(10s).clean());
  check_restored(tmux, 1);
  CHECK(tmux.screen().find("tgctl: the daemon is stopping") != std::string::npos);
}

TEST_CASE("top --once: one frame as plain text into a pipe") {
  TestDaemon d;
  const Gate gate(d.dir() / "gate");
  submit(d, {"-g", "piped", "--", "false"});
  REQUIRE(wait_group(d, "piped") == 1);
  submit(d, {"-g", "piped", "--shell", "--", gate.wait_shell()});
  RunOptions no_color_unset;  // The test's environment has no NO_COLOR: colours would be allowed.
  const auto r = d.tgctl({"top", "--once"}, no_color_unset);
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find('\x1b') == std::string::npos);
  CHECK(r.out.find("GROUPS (1)") != std::string::npos);
  CHECK(r.out.find("RUNNING (1)") != std::string::npos);
  CHECK(r.out.find("ENDED (the last 1)") != std::string::npos);
  CHECK(r.out.find("failed") != std::string::npos);
  CHECK(r.out.find("quit") == std::string::npos);  // No key help in a pipe.

  const auto refused = d.tgctl({"top"});  // Live, without a terminal.
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("top needs a terminal") != std::string::npos);
}

TEST_CASE("list and groups: colours on a terminal, none in a pipe or with NO_COLOR") {
  TestDaemon d;
  submit(d, {"-g", "colours", "--", "true"});
  submit(d, {"-g", "colours", "--", "false"});
  REQUIRE(wait_group(d, "colours") == 1);

  for (const std::string cmd : {"list", "groups"}) {
    CAPTURE(cmd);
    const auto piped = d.tgctl({cmd});
    REQUIRE(piped.exit_code == 0);
    CHECK(piped.out.find('\x1b') == std::string::npos);

    const std::string run = std::string(TG_CLIENT_BIN) + " --socket " + d.socket_path() + " " +
                            cmd + "; echo LISTED; exec sleep 600";
    Tmux colored(run, {{"NO_COLOR", ""}});  // Empty: as if unset (no-color.org).
    colored.wait_for({"LISTED"});
    // Red for the failure (a state word in list, a count in groups).
    const std::string shown = colored.screen(true);
    INFO(shown);
    CHECK(shown.find('\x1b') != std::string::npos);
    CHECK(shown.find("31m") != std::string::npos);

    Tmux plain(run, {{"NO_COLOR", "1"}});
    plain.wait_for({"LISTED"});
    CHECK(plain.screen(true).find('\x1b') == std::string::npos);
  }
}
