// Integration tests of the in-place re-exec (issue 18 item 10, docs/usage.md "Upgrading"):
// `tgctl reexec` and SIGUSR2 make the daemon execute its binary again, as `systemctl
// daemon-reexec` does for systemd. The daemon runs from a copy of the build's binary in a
// directory of the test's, so a test can replace it as a package upgrade would (a new file
// renamed over the old one) and see the new one run: /proc/PID/exe names the file again
// instead of "(deleted)". Every signal is real, every task a real process; waits are bounded.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using namespace tg::test::helpers;
using std::chrono::milliseconds;
using tg::test::DaemonOptions;
using tg::test::TempDir;
using tg::test::TestDaemon;
using tg::test::wait_until;

constexpr milliseconds kEventTimeout{20'000};

// The build's taskgroupd copied to `dir`/taskgroupd, as a fresh file (a new inode) each time:
// what an upgrade does to the installed binary.
fs::path install_binary(const fs::path& dir) {
  const fs::path target = dir / "taskgroupd";
  const fs::path fresh = dir / "taskgroupd.new";
  fs::copy_file(TG_DAEMON_BIN, fresh, fs::copy_options::overwrite_existing);
  fs::rename(fresh, target);
  return target;
}

std::string exe_of(pid_t pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).string();
}

std::string state_of(const TestDaemon& d, std::int64_t id) {
  return show(d, id)["state"].get<std::string>();
}

void wait_state(const TestDaemon& d, std::int64_t id, const std::string& state) {
  wait_until([&] { return state_of(d, id) == state; }, kEventTimeout,
             "task " + id_str(id) + " to be " + state);
}

// The daemon has logged that it is ready again after a re-exec (its debug log is the test's).
void wait_reexecuted(const TestDaemon& d, std::size_t times) {
  wait_until(
      [&] {
        const std::string log = d.log();
        std::size_t n = 0;
        for (auto at = log.find("(re-executed)"); at != std::string::npos;
             at = log.find("(re-executed)", at + 1)) {
          ++n;
        }
        return n >= times;
      },
      kEventTimeout, "the daemon to be ready after its re-exec");
}

}  // namespace

TEST_CASE(
    "tgctl reexec runs the new binary in the same process and running tasks run on: their "
    "exits and timeouts are recorded, and what was queued starts") {
  TempDir bin;
  const fs::path exe = install_binary(bin.path());
  TestDaemon d(DaemonOptions{.args = {"--max-running", "3"}, .binary = exe});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "gate");
  const pid_t pid = d.pid();

  const auto failing = submit(d, {"-g", "up", "--", "sh", "-c", gate.wait_shell() + "; exit 3"});
  const auto passing = submit(d, {"-g", "up", "--", "sh", "-c", gate.wait_shell()});
  // Long enough to outlast the re-exec on a loaded machine (8 s did not, with a build running
  // beside the suite), short enough to end within kEventTimeout of the re-exec.
  const auto timing_out = submit(d, {"-g", "up", "--timeout", "16s", "--", "sleep", "600"});
  for (auto id : {failing, passing, timing_out}) wait_state(d, id, "running");
  const pid_t task_pid = show(d, failing)["pid"].get<pid_t>();
  tgctl_ok(d, {"pause", "later"});
  const auto queued = submit(d, {"-g", "later", "--", "true"});
  CHECK(state_of(d, queued) == "queued");

  install_binary(bin.path());  // The upgrade: the file the daemon runs from is replaced.
  REQUIRE(exe_of(pid).find("(deleted)") != std::string::npos);
  const std::string out = tgctl_ok(d, {"reexec"});
  CHECK(out.find("re-executing " + exe.string()) != std::string::npos);
  CHECK(out.find("re-executed: taskgroupd") != std::string::npos);
  CHECK(out.find("pid " + std::to_string(pid)) != std::string::npos);

  CHECK(d.pid() == pid);
  CHECK(process_alive(pid));
  CHECK(exe_of(pid) == exe.string());  // The new file runs, not the deleted one.
  CHECK(d.log().find("recovered 4 task(s): 1 queued, 0 lost, 0 queued again, 3 running on") !=
        std::string::npos);
  // The tasks are the same processes, still children of the daemon, and still running.
  CHECK(show(d, failing)["pid"].get<pid_t>() == task_pid);
  CHECK(process_alive(task_pid));
  CHECK(state_of(d, failing) == "running");
  CHECK(state_of(d, passing) == "running");

  // The timeout counts from the task's start, across the exec.
  wait_state(d, timing_out, "timed_out");
  gate.open();
  wait_state(d, failing, "failed");
  wait_state(d, passing, "succeeded");
  const json ended = show(d, failing);
  CHECK(ended["exit_code"] == 3);          // Reaped by the new program: its exit code, not "lost".
  CHECK(state_of(d, queued) == "queued");  // Its group's pause held across the exec.
  tgctl_ok(d, {"resume", "later"});
  CHECK(wait_tasks(d, {queued}) == 0);
}

TEST_CASE(
    "SIGUSR2 re-executes too, and a tgctl wait and a logs -f in progress go on with the new "
    "program") {
  TempDir bin;
  const fs::path exe = install_binary(bin.path());
  TestDaemon d(DaemonOptions{.binary = exe});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "gate");
  const auto id = submit(
      d, {"-g", "w", "--", "sh", "-c", "echo before; " + gate.wait_shell() + "; echo after"});
  wait_state(d, id, "running");
  BackgroundShell waiter(std::string(TG_CLIENT_BIN) + " --socket " + d.socket_path() +
                             " wait w; echo \"wait exit $?\" >" + (work / "wait.out").string(),
                         work / "wait.log");
  BackgroundShell follower("exec " + std::string(TG_CLIENT_BIN) + " --socket " + d.socket_path() +
                               " logs -f " + id_str(id) + " >" + (work / "follow.out").string(),
                           work / "follow.log");
  wait_until([&] { return requests_logged(d, "wait") >= 1 && requests_logged(d, "logs") >= 1; },
             kEventTimeout, "the wait and the follow to reach the daemon");
  wait_until([&] { return tg::test::read_file(work / "follow.out") == "before\n"; }, kEventTimeout,
             "the follower to show the first line");

  d.send_signal(SIGUSR2);
  wait_reexecuted(d, 1);
  CHECK(state_of(d, id) == "running");
  gate.open();
  CHECK(waiter.wait(kEventTimeout).clean());
  CHECK(follower.wait(kEventTimeout).clean());
  CHECK(tg::test::read_file(work / "wait.out") == "wait exit 0\n");
  // Every byte once: the follow went on from where it was, with the new program.
  CHECK(tg::test::read_file(work / "follow.out") == "before\nafter\n");
  CHECK(state_of(d, id) == "succeeded");
}

TEST_CASE("A re-exec waits for a stop in progress, which ends as it would have") {
  TempDir bin;
  TestDaemon d(DaemonOptions{.binary = install_binary(bin.path())});
  const fs::path work = make_work_dir(d);
  // A task that ignores TERM: its cancel takes the whole grace, then SIGKILL.
  const auto stubborn = submit(
      d, {"-g", "s", "--", "sh", "-c",
          "trap '' TERM; touch " + (work / "armed").string() + "; while :; do sleep 0.05; done"});
  wait_until([&] { return fs::exists(work / "armed"); }, kEventTimeout, "the TERM trap");
  const auto running = submit(d, {"-g", "other", "--", "sleep", "600"});
  wait_state(d, running, "running");
  tgctl_ok(d, {"cancel", "s", "--grace", "1500ms"});
  const std::string out = tgctl_ok(d, {"reexec"});
  CHECK(out.find("re-executed") != std::string::npos);
  // The cancel ended before the exec, by its own rules: cancelled after SIGKILL, not lost.
  const json t = show(d, stubborn);
  CHECK(t["state"] == "cancelled");
  CHECK(t["signal"] == SIGKILL);
  CHECK(state_of(d, running) == "running");
  tgctl_ok(d, {"cancel", "other", "--grace", "100ms"});
  wait_state(d, running, "cancelled");
}

TEST_CASE("A binary that cannot take over is refused, and the daemon goes on as it was") {
  TempDir bin;
  const fs::path exe = install_binary(bin.path());
  TestDaemon d(DaemonOptions{.binary = exe});
  const auto id = submit(d, {"-g", "r", "--", "sleep", "600"});
  wait_state(d, id, "running");

  // A broken upgrade: the new file runs, but is no taskgroupd that can take over.
  tg::test::write_file(bin.path() / "broken",
                       "#!/bin/sh\necho 'missing libfoo.so' >&2\nexit 127\n");
  ::chmod((bin.path() / "broken").c_str(), 0755);
  fs::rename(bin.path() / "broken", exe);
  const auto refused = d.tgctl({"reexec"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("cannot take over: missing libfoo.so") != std::string::npos);

  // Not executable at all.
  tg::test::write_file(bin.path() / "text", "not a program\n");
  fs::rename(bin.path() / "text", exe);
  const auto not_exec = d.tgctl({"reexec"});
  CHECK(not_exec.exit_code == 1);
  CHECK(not_exec.err.find("cannot run " + exe.string()) != std::string::npos);

  CHECK(state_of(d, id) == "running");
  CHECK(d.log().find("re-exec refused") != std::string::npos);
  CHECK(wait_tasks(d, {submit(d, {"-g", "r2", "--", "true"})}) == 0);  // Still starting tasks.
  tgctl_ok(d, {"cancel", "r", "--grace", "100ms"});
}

TEST_CASE("An exec that fails after the check goes on with the running program, tasks adopted") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test traces the daemon and must run as root");
  TempDir bin;
  TestDaemon d(DaemonOptions{.binary = install_binary(bin.path())});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "gate");
  const auto id = submit(d, {"-g", "f", "--", "sh", "-c", gate.wait_shell() + "; exit 4"});
  wait_state(d, id, "running");
  {
    // strace makes the daemon's own execve fail, as a binary removed after the check would;
    // the check runs in a child of the daemon, which is not traced (no -f).
    BackgroundShell strace("exec /usr/bin/strace -p " + std::to_string(d.pid()) +
                               " -e trace=execve -e inject=execve:error=ENOENT",
                           work / "strace.log");
    wait_until(
        [&] {
          return tg::test::read_file(work / "strace.log").find("attached") != std::string::npos;
        },
        kEventTimeout, "strace to attach");
    const std::string out = tgctl_ok(d, {"reexec"});
    CHECK(out.find("re-executed") != std::string::npos);
  }  // strace is killed here, which detaches it.
  CHECK(d.log().find("re-exec failed, going on with the running program") != std::string::npos);
  CHECK(d.log().find("running on after the re-exec") != std::string::npos);
  CHECK(state_of(d, id) == "running");
  gate.open();
  wait_state(d, id, "failed");
  CHECK(show(d, id)["exit_code"] == 4);
}

TEST_CASE("tgctl reexec is refused while draining: it would not outlive the drain") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  Gate gate(work / "gate");
  const auto id = submit(d, {"-g", "dr", "--", "sh", "-c", gate.wait_shell()});
  wait_state(d, id, "running");
  d.send_signal(SIGTERM);
  wait_until([&] { return status(d)["draining"] == true; }, kEventTimeout, "the drain");
  const auto refused = d.tgctl({"reexec"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("the daemon is stopping") != std::string::npos);
  gate.open();
  CHECK(d.wait_exit(kEventTimeout).clean());
}
