// Integration tests of a failing fsync (issue 18, item 3): the submit whose commit met it is
// answered `outcome_unknown`, nothing more is saved or started in that run of the daemon (the
// kernel may have dropped the failed pages: PostgreSQL's "fsyncgate"), reads and running tasks
// go on, `status` says so, and the daemon exits 75 for a restart once no task runs.
//
// The fault is real: strace attached to the running daemon makes its fsync and fdatasync calls
// fail with EIO (`-e inject`), as a dying disk would. Needs root to trace (CI runs as root).

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/raw_client.h"
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

// strace attached to `pid`, failing each of its fsync and fdatasync calls with EIO until the
// destructor kills it (which detaches it).
class FailingFsync {
 public:
  FailingFsync(pid_t pid, const fs::path& work)
      : log_(work / "strace.log"),
        strace_("exec /usr/bin/strace -p " + std::to_string(pid) +
                    " -e trace=fsync,fdatasync -e inject=fsync,fdatasync:error=EIO",
                log_) {
    REQUIRE_MESSAGE(::geteuid() == 0, "this test traces the daemon and must run as root");
    wait_until([&] { return tg::test::read_file(log_).find("attached") != std::string::npos; },
               kEventTimeout, "strace to attach");
  }
  [[nodiscard]] std::string log() const { return tg::test::read_file(log_); }

 private:
  fs::path log_;
  BackgroundShell strace_;
};

json submit_true(tg::test::RawClient& c, std::int64_t id) {
  return c.call("submit", {{"group", "after"}, {"argv", {"true"}}}, id);
}

}  // namespace

TEST_CASE(
    "A failed fsync: the submit's outcome is unknown, nothing more is saved or started, "
    "and the daemon exits 75 once its running task has ended") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  const auto before = submit(d, {"-g", "g", "--", "true"});
  REQUIRE(wait_tasks(d, {before}) == 0);
  Gate gate(work / "release");
  const auto runner = submit(d, {"-g", "r", "--", "sh", "-c", gate.wait_shell()});
  wait_until([&] { return show(d, runner).at("state") == "running"; }, kEventTimeout,
             "the task to run");
  tgctl_ok(d, {"pause", "held"});
  const auto queued = submit(d, {"-g", "held", "--", "true"});

  {
    FailingFsync fault(d.pid(), work);
    tg::test::RawClient c(d.socket_path());
    const json first = submit_true(c, 1);
    CAPTURE(first.dump());
    REQUIRE(first.contains("error"));
    CHECK(first.at("error").at("data").at("kind") == "outcome_unknown");
    CHECK(first.at("error").at("message").get<std::string>().find(
              "may or may not have been saved") != std::string::npos);
    CHECK(fault.log().find("EIO (Input/output error) (INJECTED)") != std::string::npos);

    // From now on nothing is acknowledged as saved, even if the disk said yes again.
    const json second = submit_true(c, 2);
    CAPTURE(second.dump());
    REQUIRE(second.contains("error"));
    CHECK(second.at("error").at("data").at("kind") == "io");
    CHECK(second.at("error").at("message").get<std::string>().find(
              "refused until the daemon restarts") != std::string::npos);
  }
  // Reads are served, the running task runs, and status says why nothing is saved.
  const json st = status(d);
  CHECK(st.at("store_error").get<std::string>().find("fsync failed") != std::string::npos);
  CHECK(show(d, runner).at("state") == "running");
  CHECK(show(d, before).at("state") == "succeeded");
  // Nothing starts either: a start that cannot be recorded could run twice.
  const auto resumed = d.tgctl({"resume", "held"});
  CHECK_MESSAGE(resumed.exit_code == 1, describe(resumed));
  CHECK(resumed.err.find("saving has stopped") != std::string::npos);
  CHECK(show(d, queued).at("state") == "queued");

  gate.open();  // The last running task ends: the daemon exits for a restart.
  const ExitStatus exited = d.wait_exit(kEventTimeout);
  CHECK_MESSAGE(exited.code == 75, exited.describe());
  CHECK(d.log().find("exiting for a restart") != std::string::npos);

  d.restart();  // A new process recovers from what the disk holds, and saves again.
  CHECK(status(d).at("store_error").is_null());
  CHECK(show(d, before).at("state") == "succeeded");
  CHECK(show(d, runner).at("state") == "lost");  // Its end could not be saved.
  const auto after = submit(d, {"-g", "g", "--", "true"});
  CHECK(wait_tasks(d, {after}) == 0);
}
