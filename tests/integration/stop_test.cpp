// Integration tests of "a stop always ends" (issue 18, item 1): a task is its whole session, so
// a child that leaves the task's process group (bash job control, any setpgid) is signalled and
// killed with it; a cancel, a timeout and the third signal therefore always end the task, and
// what a task leaves behind when it exits on its own is killed in every process group.
//
// Tasks are bash scripts with `set -m` (job control): every job they start gets a process group
// of its own, in the task's session. They record their pids in a work dir; waits are for those
// files and for daemon replies, always bounded.

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using tg::test::DaemonOptions;
using tg::test::ExitStatus;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{15'000};

// A bash task with job control: two background jobs in process groups of their own (the second
// ignores TERM when `stubborn`), their pids and the shell's written atomically to pids-ID, then
// `tail` (in the shell itself). Each job sleeps `seconds`.
std::string escaping_script(const fs::path& work, bool stubborn, const std::string& tail,
                            int seconds = 600) {
  const std::string s = std::to_string(seconds);
  const std::string second =
      stubborn ? "sh -c 'trap \"\" TERM; exec sleep " + s + "' & " : "sleep " + s + " & ";
  return "set -m; W='" + work.string() + "'; I=$TASKGROUPD_TASK_ID; sleep " + s + " & a=$!; " +
         second +
         "b=$!; echo \"$$ $a $b\" > \"$W/pids-$I.tmp\" && mv \"$W/pids-$I.tmp\" "
         "\"$W/pids-$I\"; " +
         tail;
}

// Waits for the task's pids file; REQUIREs three pids, and the jobs in process groups other
// than the shell's (else the test would not test the escape).
std::vector<pid_t> escaped_pids(const fs::path& work, std::int64_t id) {
  const fs::path file = work / ("pids-" + std::to_string(id));
  wait_until([&] { return fs::exists(file); }, kEventTimeout, "the task's pids file");
  const auto pids = read_pids(file);
  REQUIRE(pids.size() == 3);
  for (std::size_t i = 1; i < pids.size(); ++i) {
    const pid_t pgid = ::getpgid(pids[i]);
    CHECK_MESSAGE(pgid != pids[0], "job " << pids[i] << " stayed in the shell's process group");
    CHECK(::getsid(pids[i]) == pids[0]);  // Still in the task's session.
  }
  return pids;
}

void wait_gone(const std::vector<pid_t>& pids, const std::string& what) {
  wait_until([&] { return alive_of(pids).empty(); }, kEventTimeout, what);
}

std::int64_t submit_bash(const TestDaemon& d, const std::string& group, const std::string& script,
                         std::vector<std::string> flags = {}) {
  std::vector<std::string> args = {"-g", group};
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), {"--", "bash", "-c", script});
  return submit(d, args);
}

}  // namespace

TEST_CASE(
    "A cancel ends a task whose children left its process group: they get TERM with the shell") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  const auto id = submit_bash(d, "jc", escaping_script(work, false, "wait"));
  const auto pids = escaped_pids(work, id);

  CHECK(tgctl_ok(d, {"cancel", "jc", "--grace", "500ms"}) ==
        "jc: cancelled 0 queued, signalled 1\n");
  CHECK(wait_group(d, "jc") == 1);
  wait_gone(pids, "the shell and both escaped jobs gone");
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "cancelled");
  const json g = group_info(d, "jc");
  CHECK(g.at("cancelling") == false);
  CHECK(g.at("last_cancel").at("killed") == 0);  // TERM was enough: it reached every job.
  // The group takes submits again and the slot is free.
  CHECK(wait_tasks(d, {submit(d, {"-g", "jc", "--", "true"})}) == 0);
}

TEST_CASE("A job that ignores TERM in a process group of its own is SIGKILLed at the grace's end") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  const auto id = submit_bash(d, "jc", escaping_script(work, true, "wait"));
  const auto pids = escaped_pids(work, id);

  const auto t0 = Clock::now();
  CHECK(tgctl_ok(d, {"cancel", "jc", "--grace", "500ms"}) ==
        "jc: cancelled 0 queued, signalled 1\n");
  CHECK(wait_group(d, "jc") == 1);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  CHECK_MESSAGE(took >= milliseconds(500), "ended " << took.count() << " ms in, before the grace");
  wait_gone(pids, "the stubborn escaped job killed");
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "cancelled");
  CHECK(group_info(d, "jc").at("last_cancel").at("killed") == 1);
}

TEST_CASE("cancel --force kills a task's jobs in every process group of its session") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  const auto id = submit_bash(d, "jc", escaping_script(work, true, "wait"));
  const auto pids = escaped_pids(work, id);
  CHECK(tgctl_ok(d, {"cancel", "jc", "--force"}) ==
        "jc: cancelled 0 queued, signalled 1, killed 1\n");
  CHECK(wait_group(d, "jc") == 1);
  wait_gone(pids, "every job of the task killed");
  CHECK(show(d, id).at("signal") == SIGKILL);
}

TEST_CASE("A timeout ends a task whose children left its process group") {
  TestDaemon d(DaemonOptions{.args = {"--kill-grace", "500ms"}});
  const fs::path work = make_work_dir(d);
  const auto id = submit_bash(d, "to", escaping_script(work, true, "wait"), {"--timeout", "1s"});
  const auto pids = escaped_pids(work, id);
  CHECK(wait_group(d, "to") == 1);
  wait_gone(pids, "the timed-out task's jobs gone");
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "timed_out");
  CHECK(t.at("reason") == "timed_out: exceeded 1s");
}

TEST_CASE("A task that exits on its own leaves nothing running in any process group of its own") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  // The shell exits 0 at once, leaving both jobs behind.
  const auto id = submit_bash(d, "left", escaping_script(work, true, "exit 0"));
  const auto pids = escaped_pids(work, id);
  CHECK(wait_tasks(d, {id}) == 0);
  wait_gone({pids[1], pids[2]}, "the jobs the task left behind killed at its end");
  CHECK(show(d, id).at("state") == "succeeded");
}

TEST_CASE("The third SIGTERM exits the daemon although a task's jobs left its process group") {
  // A grace long enough that only the third signal can end the task within the test's bound.
  TestDaemon d(DaemonOptions{.args = {"--kill-grace", "60s", "--drain-timeout", "60s"}});
  const fs::path work = make_work_dir(d);
  const auto id = submit_bash(d, "jc", escaping_script(work, true, "wait"));
  const auto pids = escaped_pids(work, id);
  d.send_signal(SIGTERM);
  wait_until([&] { return status(d).at("draining") == true; }, kEventTimeout,
             "the daemon draining");
  d.send_signal(SIGINT);  // Stop now: the shell dies of TERM, the stubborn job ignores it.
  wait_until([&] { return !process_alive(pids[0]); }, kEventTimeout, "the shell dead of TERM");
  CHECK(process_alive(pids[2]));
  d.send_signal(SIGTERM);  // A different signal from the last: the two cannot merge into one.
  const ExitStatus st = d.wait_exit(kEventTimeout);
  CHECK_MESSAGE(st.clean(), "taskgroupd: " << st.describe());
  if (st.timed_out) {
    d.send_signal(SIGKILL);
    (void)d.wait_exit(milliseconds(5'000));
  }
  wait_gone(pids, "every process of the task gone after the third signal");
  d.restart();
  CHECK(show(d, id).at("state") == "interrupted");
}

// systemd sends SIGCONT right after the stop signal, and so must we (issue 18, item 9): a TERM
// only becomes pending in a stopped process, so without the CONT a task stopped by SIGSTOP (a
// debugger, a user's kill -STOP, ^Z in a shell) would sleep through the whole grace and be
// SIGKILLed without running its TERM trap.
TEST_CASE("A stopped task is continued after the stop signal, so its TERM trap runs at once") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  const std::string w = "W='" + work.string() + "'; ";
  const auto id = submit_bash(d, "stopped",
                              w + "trap 'echo trapped > \"$W/trap\"; exit 3' TERM; " +
                                  "echo $$ > \"$W/pid.tmp\" && mv \"$W/pid.tmp\" \"$W/pid\"; " +
                                  "kill -STOP $$; sleep 600");
  wait_until([&] { return fs::exists(work / "pid"); }, kEventTimeout, "the task's pid file");
  const auto pids = read_pids(work / "pid");
  REQUIRE(pids.size() == 1);
  const auto state = [&] {  // The state letter of /proc/PID/stat ('T': stopped).
    const std::string stat = tg::test::read_file("/proc/" + std::to_string(pids[0]) + "/stat");
    const auto paren = stat.rfind(')');
    return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
  };
  wait_until([&] { return state() == 'T'; }, kEventTimeout, "the task stopped by SIGSTOP");

  // A grace longer than the wait below: only a TERM that the task acts on ends it in time.
  CHECK(tgctl_ok(d, {"cancel", "stopped", "--grace", "60s"}) ==
        "stopped: cancelled 0 queued, signalled 1\n");
  wait_until([&] { return fs::exists(work / "trap"); }, kEventTimeout,
             "the stopped task's TERM trap to run");
  CHECK(wait_group(d, "stopped") == 1);
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "cancelled");
  CHECK(t.at("exit_code") == 3);
  CHECK(group_info(d, "stopped").at("last_cancel").at("killed") == 0);
}
