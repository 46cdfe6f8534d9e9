// Integration tests of a write-ahead log deleted, truncated or damaged after a crash (issue 18
// item 11c; usage.md "A lost write-ahead log"): the daemon refuses to start with one clear
// line, starts with --accept-lost-tasks and then never reuses a task id, and a kill -9 or a
// clean stop with the WAL untouched raises no alarm.
//
// The tasks whose commits the WAL loses are submitted after a clean restart (which checkpoints
// and removes the WAL), so they sit in the WAL alone: each test checks that it exists and is not
// empty before the crash. Waits are for daemon replies and exits, always bounded.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/process.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using tg::test::DaemonOptions;
using tg::test::ExitStatus;
using tg::test::TestDaemon;
using namespace tg::test::helpers;

constexpr milliseconds kExitTimeout{10'000};

fs::path wal_of(const TestDaemon& d) { return d.state_dir() / "taskgroupd.db-wal"; }

std::uintmax_t wal_size(const TestDaemon& d) {
  std::error_code ec;
  const auto size = fs::file_size(wal_of(d), ec);
  return ec ? 0 : size;
}

// Submits `n` tasks that end at once and waits for them: their submits, starts and ends are
// commits. Returns their ids.
std::vector<std::int64_t> run_tasks(const TestDaemon& d, int n) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(submit(d, {"-g", "w", "--", "true"}));
  REQUIRE(wait_tasks(d, ids) == 0);
  return ids;
}

// Tasks 1-2 checkpointed into the database by a clean restart, then tasks 3-5 in the WAL only,
// then kill -9. Returns the highest id acknowledged.
std::int64_t crash_with_tasks_in_wal(TestDaemon& d) {
  run_tasks(d, 2);
  d.restart();  // Clean stop: the WAL is checkpointed and removed.
  const auto ids = run_tasks(d, 3);
  REQUIRE_MESSAGE(wal_size(d) > 0, "the last tasks are not in a WAL: nothing to lose");
  d.crash();
  REQUIRE(wal_size(d) > 0);
  return ids.back();
}

void truncate_to(const fs::path& file, std::uintmax_t size) {
  REQUIRE(::truncate(file.c_str(), static_cast<off_t>(size)) == 0);
}

// Overwrites the last `n` bytes of `file` (the last frame's page: its checksum no longer holds).
void scribble_tail(const fs::path& file, std::size_t n) {
  const auto size = fs::file_size(file);
  REQUIRE(size > n);
  tg::test::Fd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
  REQUIRE(fd.valid());
  const std::string junk(n, '\x5a');
  REQUIRE(::pwrite(fd.get(), junk.data(), junk.size(), static_cast<off_t>(size - n)) ==
          static_cast<ssize_t>(n));
}

// Starts the daemon again and REQUIREs the refusal: exit 1 and one critical line that names
// the ledger, the WAL and the way out. Returns that line.
std::string refused_start(TestDaemon& d) {
  d.restart();
  const ExitStatus st = d.wait_exit(kExitTimeout);
  REQUIRE_MESSAGE((!st.timed_out && st.signal == 0 && st.code == 1),
                  "taskgroupd after a lost WAL: " << st.describe() << " (want exit 1)\n"
                                                  << log_of_last_start(d));
  std::vector<std::string> critical;
  for (const auto& line : lines_of(log_of_last_start(d))) {
    if (line.find(" critical ") != std::string::npos) critical.push_back(line);
  }
  REQUIRE_MESSAGE(critical.size() == 1, "want one critical line:\n" << log_of_last_start(d));
  const std::string& line = critical.front();
  CHECK(line.find("lacks commits") != std::string::npos);
  CHECK(line.find((d.state_dir() / "taskgroupd.ledger").string()) != std::string::npos);
  CHECK(line.find(wal_of(d).string()) != std::string::npos);
  CHECK(line.find("acknowledged tasks or changes are lost") != std::string::npos);
  CHECK(line.find("--accept-lost-tasks") != std::string::npos);
  return line;
}

// --accept-lost-tasks on the same state dir: starts, says so, and hands out a new id above
// every one acknowledged before the crash. Then a plain restart raises no alarm.
void accept_and_check_ids(const TestDaemon& crashed, std::int64_t highest_acked) {
  TestDaemon d(DaemonOptions{{"--accept-lost-tasks"}, crashed.state_dir()});
  const std::int64_t next = submit(d, {"-g", "w", "--", "true"});
  CHECK_MESSAGE(next > highest_acked,
                "id " << next << " reused (acknowledged up to " << highest_acked << ")");
  const std::string log = log_of_last_start(d);
  CHECK(log.find("Starting anyway (--accept-lost-tasks)") != std::string::npos);
  CHECK(list_all(d).count(1) == 1);  // What the database held is still there.
  REQUIRE(wait_tasks(d, {next}) == 0);
}

TEST_CASE("A WAL deleted after kill -9 is refused at start, and accepted with a flag") {
  TestDaemon d;
  const std::int64_t highest = crash_with_tasks_in_wal(d);
  fs::remove(wal_of(d));
  const std::string line = refused_start(d);
  CHECK(line.find("is missing") != std::string::npos);
  accept_and_check_ids(d, highest);
}

TEST_CASE("A WAL truncated after kill -9 is refused at start, and accepted with a flag") {
  TestDaemon d;
  const std::int64_t highest = crash_with_tasks_in_wal(d);
  const auto size = wal_size(d);
  truncate_to(wal_of(d), size / 2);
  const std::string line = refused_start(d);
  CHECK(line.find("has " + std::to_string(size / 2) + " bytes") != std::string::npos);
  CHECK(wal_size(d) == size / 2);  // Left as it was, for a later look.
  accept_and_check_ids(d, highest);
}

TEST_CASE("A WAL whose last frame was damaged after kill -9 is refused, and accepted") {
  TestDaemon d;
  const std::int64_t highest = crash_with_tasks_in_wal(d);
  const auto size = wal_size(d);
  scribble_tail(wal_of(d), 512);
  refused_start(d);
  CHECK(wal_size(d) == size);
  accept_and_check_ids(d, highest);
}

TEST_CASE("kill -9 with the WAL untouched, and a clean stop, restart with no alarm and no id gap") {
  TestDaemon d;
  const std::int64_t highest = crash_with_tasks_in_wal(d);
  d.restart();
  CHECK(submit(d, {"-g", "w", "--", "true"}) == highest + 1);
  d.restart();  // Clean stop and start.
  CHECK(submit(d, {"-g", "w", "--", "true"}) == highest + 2);
  const std::string log = d.log();
  CHECK(log.find("lacks commits") == std::string::npos);
  CHECK(log.find("task ids continue above") == std::string::npos);
}

}  // namespace
