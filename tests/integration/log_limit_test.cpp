// Integration tests of the log cap (issue 18, item 6): a task's output cannot fill the disk.
// `tgctl submit --max-log SIZE` and the config key max_log_size stop a task whose log grows
// past its cap: the stop signal, then SIGKILL after the grace, or at once if it goes on writing;
// the task ends `failed` with the reason "log exceeded SIZE". Real daemon, real `yes`.

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using tg::test::TestDaemon;
using namespace tg::test::helpers;

constexpr std::int64_t kMiB = 1 << 20;
// docs/design.md "Log caps": a task writing at full speed may pass its cap by what it writes in
// one check's delay (at most 100 ms, ~10 ms at a steady rate) plus the loop's latency. `yes`
// into the page cache writes 1-3 GB/s on the machines we test on; this is 100 ms of 3 GB/s.
constexpr std::int64_t kOvershootBound = 300 * kMiB;

std::int64_t log_size(const json& task) {
  struct stat st {};
  const std::string path = task.at("log_path").get<std::string>();
  REQUIRE_MESSAGE(::stat(path.c_str(), &st) == 0, "no log at " << path);
  return st.st_size;
}

// Runs `tgctl submit ARGS` and waits for the task; returns its `show --json`, with how long it
// took from the submit to the end of the wait.
json run_to_end(const TestDaemon& d, const std::vector<std::string>& args, milliseconds& took) {
  const auto t0 = Clock::now();
  const auto id = submit(d, args);
  wait_tasks(d, {id});
  took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  return show(d, id);
}

}  // namespace

TEST_CASE("Log cap: `submit --max-log 1M -- yes` is stopped and ends failed, 'log exceeded 1M'") {
  TestDaemon d({.args = {"--kill-grace", "5s"}});
  milliseconds took{};
  const json t = run_to_end(d, {"--max-log", "1M", "--", "yes"}, took);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "failed");
  CHECK(t.at("reason") == "log exceeded 1M");
  CHECK(t.at("signal") == SIGTERM);  // yes dies of the stop signal: no grace needed.
  CHECK(t.at("max_log_bytes") == kMiB);
  const std::int64_t size = log_size(t);
  MESSAGE("log at the stop: " << size << " bytes (cap 1 MiB), " << took.count() << " ms");
  CHECK(size > kMiB);
  CHECK(size <= kMiB + kOvershootBound);
  CHECK(took < milliseconds(5'000));
  CHECK(d.log().find("log exceeded 1M") != std::string::npos);
}

TEST_CASE(
    "Log cap: a task that ignores the stop signal and writes on is SIGKILLed without waiting "
    "for its grace") {
  TestDaemon d({.args = {"--kill-grace", "60s"}});
  milliseconds took{};
  // The ignored TERM is inherited by yes.
  const json t = run_to_end(d, {"--max-log", "1M", "--", "sh", "-c", "trap '' TERM; yes"}, took);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "failed");
  CHECK(t.at("reason") == "log exceeded 1M");
  CHECK(t.at("signal") == SIGKILL);
  const std::int64_t size = log_size(t);
  MESSAGE("log at the kill: " << size << " bytes, " << took.count() << " ms");
  // The first overshoot, 1 MiB more after the stop signal, then one more check's worth.
  CHECK(size <= kMiB + kOvershootBound + kMiB + kOvershootBound);
  CHECK(took < milliseconds(10'000));  // Far from the 60 s grace.
}

TEST_CASE(
    "Log cap: max_log_size in the config caps tasks started after a reload, --max-log only lowers "
    "it") {
  TestDaemon d;
  tg::test::write_file(d.dir() / "taskgroupd.toml", "max_log_size = \"1M\"\n");
  tgctl_ok(d, {"reload"});
  milliseconds took{};
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--", "yes"},
        std::vector<std::string>{"--max-log", "1G", "--", "yes"}}) {
    const json t = run_to_end(d, args, took);
    CAPTURE(t.dump());
    CHECK(t.at("state") == "failed");
    CHECK(t.at("reason") == "log exceeded 1M");
    CHECK(log_size(t) <= kMiB + kOvershootBound);
  }
  const json small = run_to_end(d, {"--max-log", "64K", "--", "yes"}, took);
  CHECK(small.at("reason") == "log exceeded 64K");
}

TEST_CASE("Log cap: a task under its cap is unaffected, and 0 means no cap") {
  TestDaemon d;
  tg::test::write_file(d.dir() / "taskgroupd.toml", "max_log_size = 0\n");
  tgctl_ok(d, {"reload"});
  milliseconds took{};
  const json under = run_to_end(
      d, {"--max-log", "1M", "--", "sh", "-c", "head -c 524288 /dev/zero; echo done"}, took);
  CAPTURE(under.dump());
  CHECK(under.at("state") == "succeeded");
  CHECK(under.at("reason").is_null());
  CHECK(log_size(under) == 524288 + 5);
  const json uncapped = run_to_end(d, {"--", "sh", "-c", "head -c 4194304 /dev/zero"}, took);
  CAPTURE(uncapped.dump());
  CHECK(uncapped.at("state") == "succeeded");
  CHECK(log_size(uncapped) == 4 * kMiB);
}

TEST_CASE("Log cap: a bad --max-log is a usage error and queues nothing") {
  TestDaemon d;
  for (const char* bad : {"banana", "-1", "1.5G", "2P"}) {
    CAPTURE(bad);
    const auto r = d.tgctl({"submit", "--max-log", bad, "--", "true"});
    CAPTURE(describe(r));
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.find("invalid size") != std::string::npos);
  }
  CHECK(list_all(d).empty());
}
