// Integration tests of the core promise (DESIGN.md): limits, priorities, task environment,
// logs, batches, the raw protocol and exec failures, driven through the real taskgroupd
// and tgctl binaries.

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/raw_client.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::RawClient;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{10'000};
constexpr milliseconds kWaitTimeout{15'000};  // tgctl wait --task: tgctl's usual bound.
constexpr int kGatePolls = 1'500;             // A task at a gate gives up after ~15 s.

std::size_t count_files(const fs::path& dir, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with(prefix)) ++n;
  }
  return n;
}

// A task that records how many tasks tagged `tag` were running when it started: it creates
// its marker <tag>.running.<id>, appends the number of markers to <tag>.counts, waits for
// the gate, and removes its marker before it exits. A marker lives only while its task
// runs, so the counts never overstate the real overlap; the last of two overlapping tasks
// to count sees both.
std::string overlap_script(const fs::path& work, const std::string& tag, const Gate& gate) {
  const std::string w = work.string(), marker = w + "/" + tag + ".running.$TASKGROUPD_TASK_ID";
  return ": > " + marker + "; ls " + w + " | grep -c '^" + tag + "\\.running\\.' >> " + w + "/" +
         tag + ".counts; " + gate.wait_shell() + "; rm " + marker;
}

std::vector<int> read_counts(const fs::path& file) {
  std::vector<int> counts;
  for (const auto& line : lines_of(tg::test::read_file(file))) counts.push_back(std::stoi(line));
  return counts;
}

}  // namespace

TEST_CASE("With --max-running 2, six long tasks run two at a time, never more") {
  TestDaemon d({.args = {"--max-running", "2"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release", kGatePolls);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(submit(d, {"-g", "six", "--", "sh", "-c", overlap_script(work, "t", gate)}));
  }
  wait_until([&] { return count_files(work, "t.running.") >= 2; }, kEventTimeout,
             "two tasks running");
  // Both slots are taken and every task blocks on the gate: the daemon is as busy as it may be.
  const json st = status(d);
  CHECK(st.at("running") == 2);
  CHECK(st.at("queued") == 4);
  CHECK(count_files(work, "t.running.") == 2);

  gate.open();
  CHECK(wait_tasks(d, ids, kWaitTimeout) == 0);
  const auto counts = read_counts(work / "t.counts");
  REQUIRE(counts.size() == 6);
  CHECK(*std::max_element(counts.begin(), counts.end()) == 2);
}

TEST_CASE("A group with limit 1 never overlaps its tasks while the global limit is higher") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release", kGatePolls);
  CHECK(tgctl_ok(d, {"group", "set", "one", "--limit", "1"}).find("one") != std::string::npos);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(submit(d, {"-g", "one", "--", "sh", "-c", overlap_script(work, "one", gate)}));
  }
  const auto other =
      submit(d, {"-g", "other", "--", "sh", "-c", overlap_script(work, "other", gate)});
  // A task of another group runs beside the first: the global limit has room, the group not.
  wait_until([&] { return count_files(work, "one.running.") >= 1; }, kEventTimeout,
             "the first task of group 'one' running");
  wait_until([&] { return count_files(work, "other.running.") >= 1; }, kEventTimeout,
             "the task of group 'other' running beside it");
  const json g = group_info(d, "one");
  CHECK(g.at("limit") == 1);
  CHECK(g.at("counts").at("running") == 1);
  CHECK(g.at("counts").at("queued") == 2);
  CHECK(count_files(work, "one.running.") == 1);

  gate.open();
  CHECK(wait_group(d, "one") == 0);
  CHECK(wait_tasks(d, {other}, kWaitTimeout) == 0);
  CHECK(read_counts(work / "one.counts") == std::vector<int>{1, 1, 1});
}

TEST_CASE("A command exiting 3 ends failed with exit_code 3") {
  TestDaemon d;
  const auto id = submit(d, {"--", "sh", "-c", "exit 3"});
  CHECK(wait_tasks(d, {id}, kWaitTimeout) == 1);  // tgctl wait: 1 when not all succeeded.
  const json t = show(d, id);
  CHECK(t.at("state") == "failed");
  CHECK(t.at("exit_code") == 3);
  CHECK(t.at("signal").is_null());
  CHECK(t.at("started_at").is_string());
  CHECK(t.at("ended_at").is_string());
}

TEST_CASE("A task runs in the submitting shell's cwd and environment") {
  TestDaemon d;
  const fs::path cwd = d.dir() / "where I submit";
  fs::create_directories(cwd);
  RunOptions opts;
  opts.cwd = cwd;
  opts.env_extra = {{"TG_IT_VALUE", "hello from the submitter"}};
  const auto id =
      submit(d, {"-g", "envgroup", "--", "sh", "-c", "pwd; printf '%s\\n' \"$TG_IT_VALUE\""}, opts);
  CHECK(wait_tasks(d, {id}, kWaitTimeout) == 0);
  CHECK(tgctl_ok(d, {"logs", std::to_string(id)}) == cwd.string() + "\nhello from the submitter\n");
  CHECK(show(d, id).at("cwd") == cwd.string());

  // The daemon adds where the task can reach it, and who it is (DESIGN.md, Cancel).
  const auto self = submit(
      d, {"-g", "envgroup", "--", "sh", "-c",
          "printf '%s\\n' \"$TASKGROUPD_SOCKET\" \"$TASKGROUPD_GROUP\" \"$TASKGROUPD_TASK_ID\""});
  CHECK(wait_tasks(d, {self}, kWaitTimeout) == 0);
  CHECK(tgctl_ok(d, {"logs", std::to_string(self)}) ==
        d.socket_path() + "\nenvgroup\n" + std::to_string(self) + "\n");
}

TEST_CASE("tgctl logs shows a task's output, stdout and stderr interleaved in one log") {
  TestDaemon d;
  const auto id = submit(d, {"--", "sh", "-c", "echo out-1; echo err-1 >&2; echo out-2"});
  CHECK(wait_tasks(d, {id}, kWaitTimeout) == 0);
  const std::string want = "out-1\nerr-1\nout-2\n";
  CHECK(tgctl_ok(d, {"logs", std::to_string(id)}) == want);
  CHECK(tgctl_ok(d, {"logs", std::to_string(id), "-f"}) == want);  // Ended: -f returns at once.
}

TEST_CASE("A batch of 1000 commands is one submit that prints 1000 increasing ids, all succeed") {
  TestDaemon d({.args = {"--max-running", "8"}});
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += "echo line " + std::to_string(i) + "\n";
  RunOptions opts;
  opts.stdin_text = batch;
  const auto ids = parse_ids(tgctl_ok(d, {"submit", "-g", "batch", "--batch", "-"}, opts));
  REQUIRE(ids.size() == 1000);
  CHECK(std::adjacent_find(ids.begin(), ids.end(), [](auto a, auto b) { return a >= b; }) ==
        ids.end());
  // One round trip: the daemon logs each submit call with its task count.
  CHECK(d.log().find("1000 task(s) submitted group='batch'") != std::string::npos);

  RunOptions slow;
  slow.timeout = milliseconds(60'000);
  const auto waited = d.tgctl({"wait", "batch"}, slow);
  CHECK_MESSAGE(waited.exit_code == 0, waited.out << waited.err);
  const json listed =
      parse_json(tgctl_ok(d, {"list", "-g", "batch", "--state", "succeeded", "--json"}));
  CHECK(listed.at("tasks").size() == 1000);
  CHECK(tgctl_ok(d, {"logs", std::to_string(ids.back())}) == "line 999\n");
}

TEST_CASE("Raw socket: status gets a result, garbage -32700, an unknown method -32601") {
  TestDaemon d;
  RawClient c(d.socket_path());

  c.send_line(R"({"jsonrpc":"2.0","id":1,"method":"status"})");
  json r = c.read_json();
  CHECK(r.at("jsonrpc") == "2.0");
  CHECK(r.at("id") == 1);
  REQUIRE(r.contains("result"));
  CHECK(r.at("result").at("pid") == d.pid());

  c.send_line("this is { not json");
  r = c.read_json();
  CHECK(r.at("error").at("code") == -32700);
  CHECK(r.at("id").is_null());

  c.send_line(R"({"jsonrpc":"2.0","id":"x7","method":"no.such.method"})");
  r = c.read_json();
  CHECK(r.at("error").at("code") == -32601);
  CHECK(r.at("id") == "x7");

  // The connection survives its bad requests.
  r = c.call("status", nullptr, 2);
  CHECK(r.contains("result"));
}

TEST_CASE("Raw socket: a client stuck mid-garbage does not delay another client") {
  TestDaemon d;
  RawClient slow(d.socket_path());
  REQUIRE(slow.send_raw("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sta"));  // No newline yet.
  REQUIRE(slow.send_raw("%%% garbage \x01\x02 without an end"));

  RawClient other(d.socket_path());
  const json r = other.call("status");
  CHECK(r.contains("result"));

  slow.send_line("");  // Now the garbage line ends: it gets its parse error, on its own.
  CHECK(slow.read_json().at("error").at("code") == -32700);
}

TEST_CASE("Raw socket: a frame over 1 MiB gets too_large or a close, and others are served") {
  TestDaemon d;
  RawClient big(d.socket_path());
  // Sent until the daemon stops taking it: it may hang up before the last byte.
  (void)big.send_raw(std::string((1 << 20) + 4096, 'x'));
  const auto line = big.read_line();
  if (line) {
    const json r = parse_json(*line);
    CHECK(r.at("error").at("data").at("kind") == "too_large");
    CHECK_FALSE(big.read_line().has_value());  // The rest cannot be framed: it hangs up.
  }

  RawClient other(d.socket_path());
  const json r = other.call("status");
  CHECK(r.contains("result"));
}

TEST_CASE("Higher priority starts first when a slot frees up, and equal priority is FIFO") {
  TestDaemon d({.args = {"--max-running", "1"}});
  const fs::path work = make_work_dir(d);
  const fs::path order = work / "order";
  Gate gate(work / "release", kGatePolls);
  const std::string w = work.string();
  std::vector<std::int64_t> ids = {
      submit(d, {"-g", "prio", "--", "sh", "-c",
                 ": > " + w + "/blocker.started; " + gate.wait_shell() + "; echo blocker >> " + w +
                     "/order"})};
  wait_until([&] { return fs::exists(work / "blocker.started"); }, kEventTimeout,
             "the blocking task running");
  const auto queue = [&](const std::string& name, int priority) {
    ids.push_back(submit(d, {"-g", "prio", "--priority", std::to_string(priority), "--", "sh", "-c",
                             "echo " + name + " >> " + order.string()}));
  };
  queue("low", 0);
  queue("high", 10);
  queue("mid-a", 5);
  queue("mid-b", 5);
  queue("negative", -3);
  CHECK(status(d).at("queued") == 5);

  gate.open();
  CHECK(wait_tasks(d, ids, kWaitTimeout) == 0);
  CHECK(lines_of(tg::test::read_file(order)) ==
        std::vector<std::string>{"blocker", "high", "mid-a", "mid-b", "low", "negative"});
}

TEST_CASE("Only fds 0-2 reach a task, and stdin is /dev/null") {
  TestDaemon d;
  const auto id = submit(d, {"--", "sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/fd/0"});
  CHECK(wait_tasks(d, {id}, kWaitTimeout) == 0);
  CHECK(tgctl_ok(d, {"logs", std::to_string(id)}) == "0\n1\n2\n/dev/null\n");
}

TEST_CASE(
    "A command that cannot be executed fails with a reason naming it and the daemon lives on") {
  TestDaemon d;
  SUBCASE("by path") {
    const auto id = submit(d, {"--", "/nonexistent/cmd", "arg"});
    CHECK(wait_tasks(d, {id}, kWaitTimeout) == 1);
    const json t = show(d, id);
    CHECK(t.at("state") == "failed");
    REQUIRE(t.at("reason").is_string());
    CHECK_MESSAGE(t.at("reason").get<std::string>().find("/nonexistent/cmd") != std::string::npos,
                  "reason: " << t.at("reason"));
  }
  SUBCASE("by name, looked up in PATH") {
    const auto id = submit(d, {"--", "tgit-no-such-command"});
    CHECK(wait_tasks(d, {id}, kWaitTimeout) == 1);
    const json t = show(d, id);
    CHECK(t.at("state") == "failed");
    REQUIRE(t.at("reason").is_string());
    CHECK_MESSAGE(
        t.at("reason").get<std::string>().find("tgit-no-such-command") != std::string::npos,
        "reason: " << t.at("reason"));
  }
  const auto ok = submit(d, {"--", "true"});
  CHECK(wait_tasks(d, {ok}, kWaitTimeout) == 0);
  CHECK(status(d).at("pid") == d.pid());
}

TEST_CASE("SIGTERM with nothing running makes the daemon exit 0") {
  TestDaemon d;
  CHECK(status(d).at("running") == 0);
  d.send_signal(SIGTERM);
  const auto st = d.wait_exit(milliseconds(5'000));
  CHECK_MESSAGE(st.clean(), st.describe());
}

TEST_CASE("Finished tasks, their logs and the id sequence survive a restart") {
  TestDaemon d;
  const auto id = submit(d, {"--", "sh", "-c", "echo before restart"});
  CHECK(wait_tasks(d, {id}, kWaitTimeout) == 0);
  d.restart();
  const json t = show(d, id);
  CHECK(t.at("state") == "succeeded");
  CHECK(tgctl_ok(d, {"logs", std::to_string(id)}) == "before restart\n");
  CHECK(submit(d, {"--", "true"}) > id);
}

TEST_CASE("After the daemon is SIGKILLed, its running task is lost and killed, queued ones run") {
  TestDaemon d({.args = {"--max-running", "1"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release", kGatePolls);
  const std::string w = work.string();
  const auto running = submit(
      d, {"--", "sh", "-c",
          "echo $$ > " + w + "/pid.tmp; mv " + w + "/pid.tmp " + w + "/pid; " + gate.wait_shell()});
  wait_until([&] { return fs::exists(work / "pid"); }, kEventTimeout, "the first task running");
  const auto queued = submit(d, {"--", "sh", "-c", "echo ran after the crash"});
  const pid_t leftover = std::stoi(tg::test::read_file(work / "pid"));

  d.send_signal(SIGKILL);
  const auto st = d.wait_exit(milliseconds(5'000));
  CHECK_MESSAGE(st.signal == SIGKILL, st.describe());
  CHECK(process_alive(leftover));  // Its own session: the daemon's death did not touch it.

  d.restart();
  wait_until([&] { return !process_alive(leftover); }, kEventTimeout,
             "the restarted daemon to kill the crashed run's leftover process");
  CHECK(wait_tasks(d, {running, queued}, kWaitTimeout) == 1);
  CHECK(show(d, running).at("state") == "lost");
  CHECK(show(d, queued).at("state") == "succeeded");
  CHECK(tgctl_ok(d, {"logs", std::to_string(queued)}) == "ran after the crash\n");
  // `groups` counts the loss apart from failures (not the task's doing).
  const std::string groups = tgctl_ok(d, {"groups"});
  CHECK_MESSAGE(groups.find("DONE  FAILED  INTERRUPTED  LOST  CANCELLED\n") != std::string::npos,
                groups);
  CHECK_MESSAGE(groups.find("1       0            0     1          0\n") != std::string::npos,
                groups);
}

TEST_CASE("tgctl list --limit N shows the newest N matches, oldest first, after the filters") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const auto a1 = submit(d, {"-g", "a", "--", "true"});
  const auto b1 = submit(d, {"-g", "b", "--", "true"});
  const auto a2 = submit(d, {"-g", "a", "--", "sh", "-c", "exit 1"});
  const auto b2 = submit(d, {"-g", "b", "--", "true"});
  const auto a3 = submit(d, {"-g", "a", "--", "true"});
  REQUIRE(wait_tasks(d, {a1, b1, a2, b2, a3}, kWaitTimeout) == 1);  // a2 failed; all have ended.
  using Ids = std::vector<std::int64_t>;

  CHECK(listed_ids(d, {}) == Ids{a1, b1, a2, b2, a3});  // Every match without --limit.
  CHECK(listed_ids(d, {"--limit", "2"}) == Ids{b2, a3});
  CHECK(listed_ids(d, {"--limit", "1"}) == Ids{a3});
  CHECK(listed_ids(d, {"--limit", "5"}) == Ids{a1, b1, a2, b2, a3});
  CHECK(listed_ids(d, {"--limit", "100"}) == Ids{a1, b1, a2, b2, a3});
  // The limit applies to what the filters let through, not before them.
  CHECK(listed_ids(d, {"-g", "a", "--limit", "2"}) == Ids{a2, a3});
  CHECK(listed_ids(d, {"-g", "b", "--limit", "1"}) == Ids{b2});
  CHECK(listed_ids(d, {"--state", "succeeded", "--limit", "3"}) == Ids{b1, b2, a3});
  CHECK(listed_ids(d, {"--state", "failed", "--limit", "3"}) == Ids{a2});
  CHECK(listed_ids(d, {"-g", "a", "--state", "succeeded", "--limit", "1"}) == Ids{a3});
  CHECK(listed_ids(d, {"-g", "nobody", "--limit", "3"}).empty());

  // The table for people: a header and one row per task, newest two, oldest first.
  const auto table = lines_of(tgctl_ok(d, {"list", "--limit", "2"}));
  REQUIRE(table.size() == 3);
  CHECK(table[0].find("ID") != std::string::npos);
  CHECK(std::stoll(table[1]) == b2);
  CHECK(std::stoll(table[2]) == a3);

  for (const char* bad : {"0", "-1", "x"}) {
    CAPTURE(bad);
    const auto r = d.tgctl({"list", "--limit", bad});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(lines_of(r.err).size() >= 1);
  }
}

TEST_CASE("tgctl submit --batch FILE submits one task per command line, prints their ids, runs") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  const fs::path file = work / "commands.txt";
  // Comments and blank lines are skipped; each line is one shell command, quoting and all.
  tg::test::write_file(file,
                       "# a comment\n"
                       "echo one > '" +
                           (work / "out-1").string() +
                           "'\n"
                           "\n"
                           "   \n"
                           "printf '%s\\n' 'two  spaces' | tr a b > '" +
                           (work / "out-2").string() +
                           "'\n"
                           "  # an indented comment\n"
                           "echo three; exit 3\n");
  const auto r = d.tgctl({"submit", "-g", "fromfile", "--batch", file.string()});
  REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err);
  CHECK(r.err.empty());
  const auto ids = parse_ids(r.out);
  REQUIRE(ids.size() == 3);
  CHECK(ids[0] < ids[1]);
  CHECK(ids[1] < ids[2]);
  CHECK(d.log().find("3 task(s) submitted group='fromfile'") != std::string::npos);

  CHECK(wait_group(d, "fromfile") == 1);  // The third exits 3.
  CHECK(tg::test::read_file(work / "out-1") == "one\n");
  CHECK(tg::test::read_file(work / "out-2") == "two  spbces\n");
  for (std::size_t i = 0; i < 2; ++i) {
    const json t = show(d, ids[i]);
    CAPTURE(t.dump());
    CHECK(t.at("group") == "fromfile");
    CHECK(t.at("state") == "succeeded");
  }
  const json third = show(d, ids[2]);
  CHECK(third.at("state") == "failed");
  CHECK(third.at("exit_code") == 3);
  CHECK(tgctl_ok(d, {"logs", std::to_string(ids[2])}) == "three\n");

  // A file that cannot be read is a clear error before anything is submitted.
  const auto missing = d.tgctl({"submit", "-g", "fromfile", "--batch", (work / "nope").string()});
  CHECK(missing.exit_code == 1);
  CHECK(missing.out.empty());
  CHECK(lines_of(missing.err).size() == 1);
  CHECK_MESSAGE(
      missing.err.find("cannot read '" + (work / "nope").string() + "'") != std::string::npos,
      missing.err);
  CHECK(listed_ids(d, {"-g", "fromfile"}) == ids);
}

TEST_CASE("list --wide prints a command longer than the table's cut in full") {
  TestDaemon d;
  const std::string comment(300, 'x');
  const auto id = submit(d, {"--", "sh", "-c", "true # " + comment});
  CHECK(wait_tasks(d, {id}) == 0);
  const std::string cut = tgctl_ok(d, {"list"});
  CHECK_MESSAGE(cut.find(comment) == std::string::npos, cut);
  CHECK_MESSAGE(cut.find("\u2026") != std::string::npos, cut);
  const std::string wide = tgctl_ok(d, {"list", "--wide"});
  CHECK_MESSAGE(wide.find("true # " + comment + "'\n") != std::string::npos, wide);
}
