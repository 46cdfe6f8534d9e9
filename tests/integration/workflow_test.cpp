// Integration tests of workflows (issue 13 items 1-4): dependencies, begin times, pending
// reasons and retries, with the real daemon, real processes and a real kill -9. Tasks leave
// evidence in a work dir; waits are for those events or for daemon replies, always bounded.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
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
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{15'000};

// A task that appends its name to <work>/order and exits `code`.
std::vector<std::string> record(const fs::path& work, const std::string& name, int code = 0) {
  return {"--", "sh", "-c",
          "echo " + name + " >> " + (work / "order").string() + "; exit " + std::to_string(code)};
}

std::string state_of(const TestDaemon& d, std::int64_t id) {
  return show(d, id).at("state").get<std::string>();
}

std::string reason_of(const TestDaemon& d, std::int64_t id) {
  const json t = show(d, id);
  return t.contains("reason") && t.at("reason").is_string() ? t.at("reason").get<std::string>()
                                                            : "";
}

}  // namespace

TEST_CASE("A -> B -> C: each starts only after the one before succeeded, in order") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const auto a =
      submit(d, {"--", "sh", "-c", gate.wait_shell() + "; echo A >> " + (work / "order").string()});
  const auto b = submit(d, [&] {
    auto args = record(work, "B");
    args.insert(args.begin(), {"--after", id_str(a)});
    return args;
  }());
  const auto c = submit(d, [&] {
    auto args = record(work, "C");
    args.insert(args.begin(), {"--after", id_str(b)});
    return args;
  }());
  const json waiting = show(d, c);
  CHECK(waiting.at("pending_reason") == "dependency");
  CHECK(waiting.at("pending_on") == json::array({b}));
  // The table says why too.
  CHECK(tgctl_ok(d, {"list"}).find("dependency on " + id_str(b)) != std::string::npos);

  gate.open();
  CHECK(wait_tasks(d, {a, b, c}) == 0);
  CHECK(tg::test::read_file(work / "order") == "A\nB\nC\n");
  CHECK(time_ms(show(d, b).at("started_at")) >= time_ms(show(d, a).at("ended_at")));
  CHECK(time_ms(show(d, c).at("started_at")) >= time_ms(show(d, b).at("ended_at")));
}

TEST_CASE(
    "When A fails, B and C end cancelled naming A and B, never started, and --after-any runs") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const auto a = submit(d, {"--", "sh", "-c", gate.wait_shell() + "; exit 1"});
  const auto b = submit(d, {"--after", id_str(a), "--", "touch", (work / "b-ran").string()});
  const auto c =
      submit(d, {"-g", "other", "--after", id_str(b), "--", "touch", (work / "c-ran").string()});
  const auto any = submit(d, {"--after-any", id_str(a), "--", "true"});
  gate.open();
  CHECK(wait_tasks(d, {a, b, c, any}) == 1);
  CHECK(state_of(d, a) == "failed");
  CHECK(state_of(d, b) == "cancelled");
  CHECK(reason_of(d, b) == "cancelled: dependency " + id_str(a) + " failed");
  CHECK(state_of(d, c) == "cancelled");
  CHECK(reason_of(d, c) == "cancelled: dependency " + id_str(b) + " was cancelled");
  CHECK(show(d, b).at("started_at").is_null());
  CHECK_FALSE(fs::exists(work / "b-ran"));
  CHECK_FALSE(fs::exists(work / "c-ran"));
  CHECK(state_of(d, any) == "succeeded");
}

TEST_CASE("A 1000-task fan-in (--after-group) starts its dependent exactly once, after all") {
  TestDaemon d({.args = {"--max-running", "8"}});
  const fs::path work = make_work_dir(d);
  {
    std::ofstream batch(work / "batch");
    for (int i = 0; i < 1000; ++i) batch << "true\n";
  }
  const auto fan =
      parse_ids(tgctl_ok(d, {"submit", "-g", "fan", "--batch", (work / "batch").string()}));
  REQUIRE(fan.size() == 1000);
  const auto sink = submit(d, {"-g", "sink", "--after-group", "fan", "--", "sh", "-c",
                               "echo once >> " + (work / "sink").string()});
  CHECK(show(d, sink).at("after").size() == 1000);
  CHECK(wait_group(d, "fan") == 0);
  CHECK(wait_tasks(d, {sink}) == 0);
  CHECK(tg::test::read_file(work / "sink") == "once\n");
  std::int64_t last_end = 0;
  for (const auto& [id, t] : list_all(d)) {
    if (t.at("group") == "fan") last_end = std::max(last_end, time_ms(t.at("ended_at")));
  }
  CHECK(time_ms(show(d, sink).at("started_at")) >= last_end);
}

TEST_CASE("kill -9 with tasks waiting on a dependency and a start time: both wait on and run") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  tgctl_ok(d, {"pause", "held"});
  const auto a = submit(d, {"-g", "held", "--", "touch", (work / "a-ran").string()});
  const auto b = submit(d, {"--after", id_str(a), "--", "touch", (work / "b-ran").string()});
  const auto c = submit(d, {"--delay", "3s", "--", "touch", (work / "c-ran").string()});
  CHECK(show(d, c).at("pending_reason") == "begin_time");
  d.crash();
  d.restart();
  const json tb = show(d, b);
  CHECK(tb.at("state") == "queued");
  CHECK(tb.at("pending_reason") == "dependency");
  CHECK(show(d, a).at("pending_reason") == "paused");
  // The start time was kept: c starts when due, not at the restart and not never.
  CHECK(wait_tasks(d, {c}) == 0);
  CHECK(time_ms(show(d, c).at("started_at")) >= time_ms(show(d, c).at("begin_at")));
  CHECK_FALSE(fs::exists(work / "b-ran"));
  tgctl_ok(d, {"resume", "held"});
  CHECK(wait_tasks(d, {a, b}) == 0);
  CHECK(fs::exists(work / "b-ran"));
}

TEST_CASE("--retries 2: failing twice then succeeding ends succeeded at attempt 3, logs kept") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  const std::string count = (work / "count").string();
  const auto id =
      submit(d, {"--retries", "2", "--", "sh", "-c",
                 "n=$(cat " + count + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + count +
                     "; echo run $n; [ $n -ge 3 ]"});
  CHECK(wait_tasks(d, {id}) == 0);
  const json t = show(d, id);
  CHECK(t.at("state") == "succeeded");
  CHECK(t.at("attempt") == 3);
  REQUIRE(t.at("attempts").size() == 2);
  CHECK(t.at("attempts")[0].at("state") == "failed");
  CHECK(t.at("attempts")[0].at("exit_code") == 1);
  CHECK(t.at("attempts")[1].at("attempt") == 2);
  const std::string logs = tgctl_ok(d, {"logs", id_str(id)});
  CHECK(logs.find("=== taskgroupd: attempt 1 of 3") != std::string::npos);
  CHECK(logs.find("run 1\n") != std::string::npos);
  CHECK(logs.find("=== taskgroupd: attempt 3 of 3") != std::string::npos);
  CHECK(logs.find("run 3\n") != std::string::npos);
  const std::string second = tgctl_ok(d, {"logs", id_str(id), "--attempt", "2"});
  CHECK(second.find("attempt 2 of 3") != std::string::npos);
  CHECK(second.find("run 2\n") != std::string::npos);
  CHECK(second.find("run 1") == std::string::npos);
  CHECK(second.find("run 3") == std::string::npos);
  const auto none = d.tgctl({"logs", id_str(id), "--attempt", "4"});
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("has no attempt 4") != std::string::npos);
  // The human view lists the attempts.
  CHECK(tgctl_ok(d, {"show", id_str(id)}).find("attempt 1") != std::string::npos);
}

TEST_CASE("A cancel during the retry delay ends the task cancelled, never run again") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  const auto id = submit(d, {"--retries", "3", "--retry-delay", "60s", "--", "sh", "-c",
                             "echo x >> " + (work / "runs").string() + "; exit 1"});
  wait_until([&] { return show(d, id).at("attempt") == 2; }, kEventTimeout, "a retry queued");
  const json t = show(d, id);
  CHECK(t.at("state") == "queued");
  CHECK(t.at("pending_reason") == "begin_time");
  tgctl_ok(d, {"cancel", "--task", id_str(id)});
  CHECK(state_of(d, id) == "cancelled");
  CHECK(tg::test::read_file(work / "runs") == "x\n");
}

TEST_CASE("Workflow options: bad input is one clear error and queues nothing") {
  TestDaemon d;
  const auto a = submit(d, {"--", "true"});
  const auto refused = [&](const std::vector<std::string>& args, int code,
                           const std::string& message) {
    auto full = args;
    full.insert(full.begin(), "submit");
    const auto r = d.tgctl(full);
    CHECK_MESSAGE(r.exit_code == code, describe(r));
    CHECK_MESSAGE(r.err.find(message) != std::string::npos, describe(r));
  };
  refused({"--after", "999999", "--", "true"}, 1, "a task can only wait for tasks submitted");
  refused({"--after", id_str(a + 100), "--", "true"}, 1, "cycle");
  refused({"--after-group", "nosuch", "--", "true"}, 1, "no group 'nosuch' to wait for");
  refused({"--retries", "-1", "--", "true"}, 2, "--retries");
  refused({"--retries", "101", "--", "true"}, 2, "--retries");
  refused({"--at", "tomorrow", "--", "true"}, 2, "is not a time");
  refused({"--delay", "-5s", "--", "true"}, 2, "--delay");
  CHECK(list_all(d).size() == 1);
  // A time in the past means now.
  const auto past = submit(d, {"--at", "2000-01-01T00:00:00Z", "--", "true"});
  CHECK(wait_tasks(d, {past}) == 0);
}
