// Integration tests of exactly-once starts (issue 18, item 2): a task runs its command only
// after its start is committed, so kill -9 of the daemon never makes a task run twice. The
// window is made deterministic by holding SQLite's write lock from another process, which keeps
// the daemon from committing a start while its child waits, set up and ready, at the gate; then
// a crash loop under load counts duplicate runs and lost acknowledgements.
//
// Crashes are real: SIGKILL of the taskgroupd process, then a new one on the same state dir.
// Tasks record each run of their command in a work dir; waits are for those events or for
// daemon replies, always bounded.

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/task_helpers.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::ExitStatus;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{15'000};
constexpr milliseconds kExitTimeout{10'000};

// The daemon's children right now (/proc/PID/task/PID/children).
std::vector<pid_t> children_of(pid_t pid) {
  const std::string file =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
  return read_pids(file);
}

// Another process holding SQLite's write lock on the daemon's database (BEGIN IMMEDIATE), as a
// second writer would: every commit of the daemon fails with "database is locked" until
// unlock(). The destructor unlocks, so a failing test never leaves the lock held.
class WriteLock {
 public:
  WriteLock(const fs::path& db, const fs::path& work)
      : locked_(work / "lock-held"),
        unlock_(work / "lock-release"),
        holder_("exec /usr/bin/python3 -c '" + std::string(kScript) + "' '" + db.string() + "' '" +
                    locked_.string() + "' '" + unlock_.string() + "'",
                work / "lock.log") {
    wait_until([&] { return fs::exists(locked_); }, kEventTimeout, "python3 to take the lock");
  }
  ~WriteLock() { unlock(); }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

  void unlock() {
    if (released_) return;
    released_ = true;
    tg::test::write_file(unlock_, "");
    CHECK(holder_.wait(kExitTimeout).code == 0);
  }

 private:
  // Holds the lock until the release file appears (at most 60 s).
  static constexpr const char* kScript =
      "import os, sqlite3, sys, time\n"
      "db, held, release = sys.argv[1:4]\n"
      "con = sqlite3.connect(db, isolation_level=None, timeout=10)\n"
      "con.execute(\"BEGIN IMMEDIATE\")\n"
      "open(held, \"w\").close()\n"
      "for _ in range(6000):\n"
      "    if os.path.exists(release): break\n"
      "    time.sleep(0.01)\n"
      "con.execute(\"ROLLBACK\")\n";

  fs::path locked_;
  fs::path unlock_;
  BackgroundShell holder_;
  bool released_ = false;
};

std::size_t count_lines(const fs::path& file) {
  const std::string text = tg::test::read_file(file);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Every id in a file of one task id per line, with how often each occurs.
std::map<std::int64_t, int> run_counts(const fs::path& file) {
  std::map<std::int64_t, int> counts;
  for (const auto& line : lines_of(tg::test::read_file(file))) {
    if (!line.empty()) ++counts[std::stoll(line)];
  }
  return counts;
}

// `cycles` kill -9s of a daemon running batches of trivial tasks at `max_running`, at random
// moments while they start, run and end; then everything runs to its end. REQUIREs that no
// task ran twice and no acknowledged task was lost.
void crash_loop(int max_running, int cycles) {
  TestDaemon d({.args = {"--max-running", std::to_string(max_running)}});
  const fs::path work = make_work_dir(d);
  const fs::path acked_file = work / "acked";
  const fs::path runs = work / "runs";
  const unsigned seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  // Batches of trivial tasks, so that starts (and their commits) follow each other as fast as
  // they can. Each task records its run; the client records the ids tgctl printed (the daemon
  // acknowledged them), and stops at its first failed submit (the crash).
  const std::string task = "echo \\$TASKGROUPD_TASK_ID >> '" + runs.string() + "'";
  std::string batch;
  for (int i = 0; i < 6; ++i) batch += task + "\\n";
  const std::string client = "while :; do printf \"" + batch + "\" | '" +
                             std::string(TG_CLIENT_BIN) + "' --socket '" + d.socket_path() +
                             "' submit -g load --batch - >> '" + acked_file.string() +
                             "' || exit 0; done";

  for (int cycle = 0; cycle < cycles; ++cycle) {
    CAPTURE(cycle);
    // The crash comes after a random number of runs: while tasks start, run and end.
    const std::size_t crash_at =
        count_lines(runs) + std::uniform_int_distribution<std::size_t>(1, 12)(rng);
    {
      BackgroundShell c(client, work / "client.log");
      wait_until([&] { return count_lines(runs) >= crash_at; }, milliseconds(30'000),
                 "tasks to run");
      d.crash();
      CHECK(c.wait(kExitTimeout).code == 0);
    }
    d.restart();
  }

  const auto acked = parse_ids(tg::test::read_file(acked_file));
  (void)wait_tasks(d, acked, milliseconds(60'000));
  const auto tasks = list_all(d);
  std::size_t lost_acks = 0;
  for (auto id : acked) {
    if (!tasks.contains(id)) ++lost_acks;
  }
  std::size_t duplicates = 0;
  std::size_t lost = 0;
  const auto counts = run_counts(runs);
  for (const auto& [id, n] : counts) {
    if (n > 1) {
      ++duplicates;
      MESSAGE("task " << id << " ran " << n << " times: " << tasks.at(id).dump());
    }
  }
  for (const auto& [id, t] : tasks) {
    CAPTURE(t.dump());
    const std::string state = t.at("state");
    REQUIRE((state == "succeeded" || state == "lost"));
    if (state == "lost") ++lost;
    // A task that succeeded ran exactly once; one that was lost ran at most once (a crash may
    // have caught it between its exec and its echo).
    if (state == "succeeded") CHECK(counts.contains(id));
  }
  MESSAGE(tasks.size() << " tasks, " << cycles << " crashes: " << lost << " lost, " << duplicates
                       << " ran twice, " << lost_acks << " acknowledged and lost");
  // More may be stored than acknowledged: a crash between a submit's commit and its reply.
  CHECK(acked.size() <= tasks.size());
  CHECK(lost_acks == 0);
  CHECK(duplicates == 0);
}

}  // namespace

TEST_CASE("A start that is not yet committed runs nothing, and after kill -9 the task runs once") {
  TestDaemon d({.args = {"--max-running", "1"}});
  const fs::path work = make_work_dir(d);
  const fs::path runs = work / "runs";
  Gate gate(work / "release-first");
  const auto first =
      submit(d, {"-g", "g", "--", "sh", "-c",
                 "echo $$ > '" + (work / "first-pid").string() + "'; " + gate.wait_shell()});
  wait_until([&] { return fs::exists(work / "first-pid"); }, kEventTimeout, "the first task");
  const pid_t first_pid = read_pids(work / "first-pid").at(0);
  const auto second = submit(
      d, {"-g", "g", "--", "sh", "-c", "echo $TASKGROUPD_TASK_ID >> '" + runs.string() + "'"});

  pid_t held = 0;  // The second task's child, waiting for its start to be committed.
  {
    WriteLock lock(d.state_dir() / "taskgroupd.db", work);
    gate.open();  // The first task ends: the second starts, and its commit cannot be made.
    wait_until(
        [&] {
          for (pid_t p : children_of(d.pid())) {
            if (p != first_pid) held = p;
          }
          return held != 0;
        },
        kEventTimeout, "the second task's child");
    CHECK_FALSE(fs::exists(runs));  // Not yet: its start is not on disk.
    d.crash();
  }
  // Its gate hung up with the daemon: the child exits without running the command.
  wait_until([&] { return !process_alive(held); }, kEventTimeout, "the held child to exit");
  CHECK_FALSE(fs::exists(runs));

  d.restart();  // The second task was never on record as started: it is queued, and runs.
  CHECK(wait_tasks(d, {second}) == 0);
  CHECK(run_counts(runs) == std::map<std::int64_t, int>{{second, 1}});
  CHECK(show(d, first).at("state") == "lost");
}

// 50 crashes in all, in two test cases that each fit the suite's per-test bound.
TEST_CASE("25 kill -9s under load at P = 4: no task runs twice, no acknowledged task is lost") {
  crash_loop(4, 25);
}

TEST_CASE("25 kill -9s under load at P = 1: no task runs twice, no acknowledged task is lost") {
  crash_loop(1, 25);
}
