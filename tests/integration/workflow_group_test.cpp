// Integration tests of issue 13 items 8-11, with the real binaries, real processes and real
// signals: `tgctl wait --timeout` (exit 124, the tasks go on), first-success groups (three
// racers: the losers run their TERM cleanup and end cancelled with the goal reason), `tgctl kill`
// (a USR1 trap, a STOP/CONT pair, another user's task refused, an unknown signal) and the on-done
// hook (its environment, once per run, its output in the daemon's log).
//
// Tasks leave evidence in a work dir; every wait is for an event (a file, a state, a log line)
// and bounded.

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/raw_client.h"
#include "support/security_helpers.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/test_users.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{15'000};

// A daemon whose teardown cannot stall on a task a failed test left running, with room for
// three racers whatever the number of CPUs.
TestDaemon quick_daemon(const std::string& kill_grace = "1s") {
  return TestDaemon(
      {.args = {"--drain-timeout", "1s", "--kill-grace", kill_grace, "--max-running", "4"}});
}

std::string state_of(const TestDaemon& d, std::int64_t id) {
  return show(d, id).at("state").get<std::string>();
}

void wait_state(const TestDaemon& d, std::int64_t id, const std::string& state) {
  wait_until([&] { return state_of(d, id) == state; }, kEventTimeout,
             "task " + id_str(id) + " " + state);
}

void wait_for_file(const fs::path& path, const std::string& what) {
  wait_until([&] { return fs::exists(path); }, kEventTimeout, what);
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// The process state letter of /proc/PID/stat ('T': stopped); '?' if it is gone.
char proc_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

// `env` output as NAME -> value.
std::map<std::string, std::string> env_of(const std::string& text) {
  std::map<std::string, std::string> out;
  for (const auto& line : lines_of(text)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace

// ================================================================ wait --timeout

TEST_CASE("wait --timeout: gives up with exit 124 and leaves the tasks running") {
  TestDaemon d = quick_daemon();
  const auto id = submit(d, {"-g", "slow", "--", "sleep", "600"});
  wait_state(d, id, "running");

  SUBCASE("by id") {
    const auto r = d.tgctl({"wait", "--task", id_str(id), "--timeout", "1s"});
    CHECK_MESSAGE(r.exit_code == 124, describe(r));
    CHECK_MESSAGE(r.err.find("gave up waiting after 1s") != std::string::npos, r.err);
    CHECK(r.out.empty());
  }
  SUBCASE("a group") {
    const auto r = d.tgctl({"wait", "slow", "--timeout", "300ms"});
    CHECK_MESSAGE(r.exit_code == 124, describe(r));
    CHECK_MESSAGE(r.err.find("gave up waiting after 300ms") != std::string::npos, r.err);
  }
  CHECK(state_of(d, id) == "running");  // Not cancelled, not stopped.
  CHECK(show(d, id).at("signal").is_null());
  tgctl_ok(d, {"cancel", "--task", id_str(id), "--force"});
}

TEST_CASE("wait --timeout: a wait that ends in time exits as without it") {
  TestDaemon d = quick_daemon();
  const auto ok = submit(d, {"--", "true"});
  const auto r = d.tgctl({"wait", "--task", id_str(ok), "--timeout", "30s"});
  CHECK_MESSAGE(r.exit_code == 0, describe(r));
  CHECK(r.err.empty());
  const auto bad = submit(d, {"--", "false"});
  CHECK(d.tgctl({"wait", "--task", id_str(bad), "--timeout", "30s"}).exit_code == 1);
  const auto usage = d.tgctl({"wait", "--task", id_str(ok), "--timeout", "soon"});
  CHECK_MESSAGE(usage.exit_code == 2, describe(usage));
}

// ================================================================ first-success groups

TEST_CASE("first-success: the first success cancels the other racers, which run their cleanup") {
  TestDaemon d = quick_daemon("10s");  // Time enough for the losers' cleanup.
  const fs::path work = make_work_dir(d);
  Gate gate(work / "win-now");
  const std::string w = "W='" + work.string() + "'; I=$TASKGROUPD_TASK_ID; ";
  tgctl_ok(d, {"group", "set", "race", "--first-success"});
  CHECK(group_info(d, "race").at("first_success") == true);
  // A loser cleans up on TERM and exits; until then it keeps going.
  const std::string loser = w +
                            "trap 'echo cleanup > \"$W/cleanup-$I\"; exit 0' TERM; "
                            ": > \"$W/started-$I\"; while :; do sleep 0.1; done";
  const std::vector<std::int64_t> losers = {submit(d, {"-g", "race", "--", "sh", "-c", loser}),
                                            submit(d, {"-g", "race", "--", "sh", "-c", loser})};
  for (auto id : losers) wait_for_file(work / ("started-" + id_str(id)), "loser running");
  const auto winner =
      submit(d, {"-g", "race", "--", "sh", "-c", w + gate.wait_shell() + "; exit 0"});
  wait_state(d, winner, "running");
  gate.open();
  CHECK(wait_group(d, "race") == 1);  // Not all succeeded: the losers were cancelled.

  CHECK(state_of(d, winner) == "succeeded");
  const std::string goal = "goal reached: task " + id_str(winner) + " succeeded";
  for (auto id : losers) {
    const json t = show(d, id);
    CAPTURE(t.dump());
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") == goal);
    CHECK(tg::test::read_file(work / ("cleanup-" + id_str(id))) == "cleanup\n");
  }
  const json g = group_info(d, "race");
  CHECK(g.at("last_cancel").at("reason") == goal);
  CHECK(g.at("counts").at("cancelled") == 2);
  CHECK(tgctl_ok(d, {"groups"}).find("first-success") != std::string::npos);

  tgctl_ok(d, {"group", "set", "race", "--no-first-success"});
  CHECK(group_info(d, "race").at("first_success") == false);
}

// ================================================================ kill

TEST_CASE("kill -s: a signal reaches a running task's trap and the task keeps running") {
  TestDaemon d = quick_daemon();
  const fs::path work = make_work_dir(d);
  const fs::path got = work / "got";
  const auto id = submit(d, {"--", "sh", "-c",
                             "trap 'echo got >> \"" + got.string() + "\"' USR1; : > \"" +
                                 (work / "ready").string() + "\"; while :; do sleep 0.1; done"});
  wait_for_file(work / "ready", "the task with its trap set");

  const std::string out = tgctl_ok(d, {"kill", "-s", "USR1", id_str(id)});
  CHECK_MESSAGE(out.find("USR1 sent to 1 running task(s): " + id_str(id)) != std::string::npos,
                out);
  wait_until([&] { return fs::exists(got) && tg::test::read_file(got) == "got\n"; }, kEventTimeout,
             "the USR1 trap");
  tgctl_ok(d, {"kill", "-s", "SIGUSR1", "-g", "default"});
  wait_until([&] { return fs::exists(got) && tg::test::read_file(got) == "got\ngot\n"; },
             kEventTimeout, "the second USR1 trap");
  CHECK(state_of(d, id) == "running");

  SUBCASE("STOP, then CONT: the task is stopped, then runs again, and stays running") {
    const pid_t pid = show(d, id).at("pid").get<pid_t>();
    tgctl_ok(d, {"kill", "-s", "STOP", id_str(id)});
    wait_until([&] { return proc_state(pid) == 'T'; }, kEventTimeout, "the task stopped");
    CHECK(state_of(d, id) == "running");
    tgctl_ok(d, {"kill", "-s", "18", id_str(id)});  // SIGCONT by number.
    wait_until([&] { return proc_state(pid) != 'T'; }, kEventTimeout, "the task continued");
    CHECK(state_of(d, id) == "running");
  }
  SUBCASE("tasks that are not running are skipped and said so; JSON lists them") {
    tgctl_ok(d, {"pause", "held"});
    const auto queued = submit(d, {"-g", "held", "--", "true"});
    const json r =
        parse_json(tgctl_ok(d, {"kill", "-s", "USR1", id_str(queued), id_str(id), "--json"}));
    CHECK(r.at("signal") == "USR1");
    CHECK(r.at("ids") == json::array({id}));
    CHECK(r.at("skipped") == json::array({queued}));
    tgctl_ok(d, {"resume", "held"});
  }
  SUBCASE("an unknown signal is a clear error, from tgctl and from the daemon") {
    const auto bad = d.tgctl({"kill", "-s", "BOGUS", id_str(id)});
    CHECK_MESSAGE(bad.exit_code == 2, describe(bad));
    CHECK_MESSAGE(bad.err.find("unknown signal 'BOGUS'") != std::string::npos, bad.err);
    CHECK_MESSAGE(d.tgctl({"kill", id_str(id)}).exit_code == 2, "-s is required");
    tg::test::RawClient raw(d.socket_path());
    const json reply = raw.call("kill", {{"ids", {id}}, {"signal", "BOGUS"}});
    CAPTURE(reply.dump());
    CHECK(reply.at("error").at("code") == -32602);
    CHECK(reply.at("error").at("message").get<std::string>().find("unknown signal") !=
          std::string::npos);
  }
  CHECK(state_of(d, id) == "running");
  tgctl_ok(d, {"cancel", "--task", id_str(id), "--force"});
}

TEST_CASE("kill -s: another user's tasks and groups are refused, root may signal them") {
  namespace sec = tg::test::security;
  sec::SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;
  const auto id = sec::submit_as(a, d, {"-g", "mine", "--", "sleep", "600"});
  wait_state(d, id, "running");
  const auto refused = sec::tgctl_at(b, d.socket_path(), {"kill", "-s", "USR1", id_str(id)});
  CHECK_MESSAGE(refused.exit_code == 1, describe(refused));
  CHECK_MESSAGE(refused.err.find("no task " + id_str(id)) != std::string::npos, refused.err);
  const auto group =
      sec::tgctl_at(b, d.socket_path(), {"kill", "-s", "USR1", "-g", "mine", "--user", a.name});
  CHECK_MESSAGE(group.exit_code == 1, describe(group));
  CHECK_MESSAGE(group.err.find("only root") != std::string::npos, group.err);
  CHECK(state_of(d, id) == "running");  // Unharmed: USR1 would have ended `sleep`.
  // Root may: USR1 ends the sleep (its default action), which is the task's own end.
  tgctl_ok(d, {"kill", "-s", "USR1", "-g", "mine", "--user", a.name});
  wait_state(d, id, "failed");
  CHECK(show(d, id).at("signal") == 10);
}

// ================================================================ on-done hook

TEST_CASE("on-done hook: runs once per run, as the owner, with the run's counts") {
  // A grace far beyond the hook's needs: on a loaded machine a 1 s bound stopped the hook
  // before it wrote its evidence (seen in a full CI-like run).
  TestDaemon d = quick_daemon("30s");
  const fs::path work = make_work_dir(d);
  const std::string hook = "n=$(cat '" + (work / "runs").string() +
                           "' 2>/dev/null | wc -l); env > '" + work.string() +
                           "/env-'$n; echo run >> '" + (work / "runs").string() +
                           "'; echo hello from the $TASKGROUPD_GROUP hook";
  tgctl_ok(d, {"group", "set", "hk", "--on-done", hook});
  CHECK(group_info(d, "hk").at("on_done") == hook);
  CHECK(tgctl_ok(d, {"groups"}).find("on-done") != std::string::npos);

  // Run 1: one success, one failure, one cancelled while it waited.
  tgctl_ok(d, {"group", "set", "hk", "--limit", "2"});
  const fs::path gate_file = work / "go";
  Gate gate(gate_file);
  const auto first = submit(d, {"-g", "hk", "--", "sh", "-c", gate.wait_shell()});
  const auto second = submit(d, {"-g", "hk", "--", "sh", "-c", gate.wait_shell() + "; exit 3"});
  const auto third = submit(d, {"-g", "hk", "--", "true"});
  wait_state(d, second, "running");
  tgctl_ok(d, {"cancel", "--task", id_str(third)});
  CHECK_FALSE(fs::exists(work / "runs"));  // Not before the run has ended.
  gate.open();
  CHECK(wait_group(d, "hk") == 1);
  wait_for_file(work / "env-0", "the first run's hook");
  wait_until([&] { return d.log().find("on-done hook 1 ended exit=0") != std::string::npos; },
             kEventTimeout, "the hook's end in the daemon's log");
  const auto env = env_of(tg::test::read_file(work / "env-0"));
  CHECK(env.at("TASKGROUPD_GROUP") == "hk");
  CHECK(env.at("TASKGROUPD_SUCCEEDED") == "1");
  CHECK(env.at("TASKGROUPD_FAILED") == "1");
  CHECK(env.at("TASKGROUPD_CANCELLED") == "1");
  CHECK(env.at("TASKGROUPD_SOCKET") == d.socket_path());
  CHECK(env.at("USER") == "root");
  CHECK(env.at("HOME") == "/root");
  CHECK(env.count("TASKGROUPD_TASK_ID") == 0);
  CHECK(d.log().find("hello from the hk hook") != std::string::npos);  // Its output is logged.
  (void)first;

  // Run 2: its own counts, and one more hook.
  const auto again = submit(d, {"-g", "hk", "--", "true"});
  CHECK(wait_tasks(d, {again}) == 0);
  wait_for_file(work / "env-1", "the second run's hook");
  const auto env2 = env_of(tg::test::read_file(work / "env-1"));
  CHECK(env2.at("TASKGROUPD_SUCCEEDED") == "1");
  CHECK(env2.at("TASKGROUPD_FAILED") == "0");
  CHECK(env2.at("TASKGROUPD_CANCELLED") == "0");
  wait_until([&] { return d.log().find("on-done hook 2 ended exit=0") != std::string::npos; },
             kEventTimeout, "the second hook's end");
  CHECK(tg::test::read_file(work / "runs") == "run\nrun\n");  // Exactly once per run.
  CHECK(count_of(d.log(), "on-done hook") == 4);              // Two started, two ended.

  // Cleared: the next run runs none (it would have started before the wait's reply).
  tgctl_ok(d, {"group", "set", "hk", "--on-done", ""});
  CHECK(group_info(d, "hk").at("on_done").is_null());
  CHECK(wait_tasks(d, {submit(d, {"-g", "hk", "--", "true"})}) == 0);
  CHECK(d.log().find("on-done hook 3") == std::string::npos);
  CHECK(tg::test::read_file(work / "runs") == "run\nrun\n");
}

TEST_CASE("on-done hook: one still running after kill_grace gets SIGTERM") {
  TestDaemon d = quick_daemon();  // kill_grace 1s.
  const fs::path work = make_work_dir(d);
  const fs::path term = work / "term";
  tgctl_ok(d, {"group", "set", "slowhook", "--on-done",
               "trap 'echo term > \"" + term.string() + "\"; exit 7' TERM; sleep 30 & wait"});
  CHECK(wait_tasks(d, {submit(d, {"-g", "slowhook", "--", "true"})}) == 0);
  wait_for_file(term, "the hook's TERM trap");
  wait_until([&] { return d.log().find("on-done hook 1 ended exit=7") != std::string::npos; },
             kEventTimeout, "the hook's end in the daemon's log");
}
