// Integration tests of the daemon's signals (DESIGN.md "Signals and lifecycle", issue 5): the
// drain on SIGTERM/SIGINT and its escalation by a second and a third signal, signals at awkward
// moments (while starting up, in a burst, during the kill phase), and the config reload on
// SIGHUP or `tgctl reload`.
//
// Every signal is real: kill(2) to the taskgroupd process the fixture started. After each stop
// the test checks the exit code, that no task process is left (the pids each task recorded,
// grandchildren included, and a scan of /proc for anything still carrying the daemon's socket in
// its environment), and, after a restart on the same state dir, that the store holds every task
// in the state it should (queued ones still queued and then run, interrupted ones recorded).
// Waits are for events (files the tasks write, daemon replies, process exits), always bounded.

#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/background_process.h"
#include "support/hand_started_daemon.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using tg::test::BackgroundProcess;
using tg::test::ExitStatus;
using tg::test::RawClient;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{15'000};

std::int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
}

// Waits for the daemon to exit and CHECKs it exited 0; returns how long that took.
std::int64_t expect_clean_exit(TestDaemon& d, milliseconds timeout) {
  const auto t0 = Clock::now();
  const ExitStatus st = d.wait_exit(timeout);
  CHECK_MESSAGE(st.clean(), "taskgroupd: " << st.describe() << " (want exit 0 within "
                                           << timeout.count() << " ms)");
  if (st.timed_out) {  // Leave nothing running for the next test.
    d.send_signal(SIGKILL);
    (void)d.wait_exit(milliseconds(5'000));
  }
  return elapsed_ms(t0);
}

// After the daemon has exited: nothing of its tasks may be left, neither the pids they recorded
// nor any process carrying the daemon's socket in its environment.
void expect_no_task_process(const TestDaemon& d, const std::vector<pid_t>& recorded) {
  // SIGKILL is sent before the daemon exits, but dying takes the kernel a moment: on a loaded
  // machine a killed process can still show in /proc just after. Bounded, then strict.
  const auto deadline = Clock::now() + milliseconds(3'000);
  while (Clock::now() < deadline &&
         !(alive_of(recorded).empty() &&
           processes_with_env("TASKGROUPD_SOCKET=" + d.socket_path()).empty())) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  const auto alive = alive_of(recorded);
  CHECK_MESSAGE(alive.empty(), alive.size() << " recorded task process(es) still alive, first "
                                            << (alive.empty() ? 0 : alive.front()));
  const auto strays = processes_with_env("TASKGROUPD_SOCKET=" + d.socket_path());
  CHECK_MESSAGE(strays.empty(), strays.size() << " process(es) of our tasks still alive, first "
                                              << (strays.empty() ? 0 : strays.front()));
}

void wait_draining(const TestDaemon& d) {
  wait_until([&] { return status(d).at("draining") == true; }, kEventTimeout,
             "the daemon to report draining");
}

// Pids recorded by tracked tasks, leader and grandchild of each.
std::vector<pid_t> pids_of(const fs::path& work, const std::vector<std::int64_t>& ids) {
  std::vector<pid_t> pids;
  for (auto id : ids) {
    for (pid_t p : task_pids(work, id)) pids.push_back(p);
  }
  return pids;
}

bool exists(const fs::path& work, const std::string& marker, std::int64_t id) {
  return fs::exists(work / (marker + "-" + id_str(id)));
}

// A tracked task that ignores the stop signal: its leader records the TERM and keeps going, its
// grandchild ignores it. Only SIGKILL ends it early; it exits on its own after `seconds`.
TrackedTask stubborn(int seconds = 30) {
  return {.body = busy_loop(seconds),
          .trap_term = true,
          .ignore_term_grandchild = true,
          .grandchild_s = seconds};
}

// A tracked task that runs until the stop signal kills it (bounded at `seconds`).
TrackedTask until_stopped(int seconds = 30) {
  return {.body = "sleep " + std::to_string(seconds), .grandchild_s = seconds};
}

std::int64_t submit_tracked(const TestDaemon& d, const fs::path& work, const TrackedTask& task,
                            const std::string& group = "default") {
  return submit(d, {"-g", group, "--", "sh", "-c", tracked_script(work, task)});
}

// The task's state and the reason given for it, after the store has been reloaded.
void expect_interrupted(const json& t, int signal, const std::string& reason_part) {
  CAPTURE(t.dump());
  CHECK(t.at("state") == "interrupted");
  CHECK(t.at("signal") == signal);
  REQUIRE(t.at("reason").is_string());
  CHECK(t.at("reason").get<std::string>().find(reason_part) != std::string::npos);
}

void write_config(const TestDaemon& d, const std::string& toml) {
  tg::test::write_file(d.dir() / "taskgroupd.toml", toml);
}

// Rewrites the config file, sends SIGHUP and waits until the daemon reports `max_running`.
void reload_max_running(TestDaemon& d, int max_running) {
  write_config(d, "max_running = " + std::to_string(max_running) + "\n");
  (void)status(d);  // Serving, so its handlers are in place (systemd too reloads only then).
  d.send_signal(SIGHUP);
  wait_until([&] { return status(d).at("max_running") == max_running; }, kEventTimeout,
             "max_running " + std::to_string(max_running) + " after SIGHUP");
}

}  // namespace

TEST_CASE("SIGINT or SIGTERM before any task has started: exit 0, queued tasks kept for later") {
  int sig = SIGTERM;
  SUBCASE("SIGTERM") { sig = SIGTERM; }
  SUBCASE("SIGINT") { sig = SIGINT; }
  TestDaemon d({.args = {"--max-running", "2"}});
  const fs::path work = make_work_dir(d);
  tgctl_ok(d, {"pause", "later"});
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(submit_tracked(d, work, {}, "later"));
  CHECK(status(d).at("running") == 0);

  d.send_signal(sig);
  expect_clean_exit(d, milliseconds(10'000));
  CHECK(count_started(work) == 0);
  expect_no_task_process(d, {});

  d.restart();
  for (auto id : ids) CHECK(show(d, id).at("state") == "queued");
  tgctl_ok(d, {"resume", "later"});
  CHECK(wait_tasks(d, ids) == 0);
  CHECK(count_started(work) == 3);
}

// Unlike the test above, nothing holds the queued tasks back but the signal: the group is not
// paused and there are free slots, so the daemon's first scheduling turn would start them. A
// signal that arrives before that turn must win (DESIGN.md: any number of signals, at any
// moment, "even before the first task starts").
TEST_CASE("signal during startup keeps the queue") {
  TestDaemon d({.args = {"--max-running", "1"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const auto first = submit_tracked(d, work, {.body = gate.wait_shell()});
  wait_started(work, {first});
  std::vector<std::int64_t> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(submit_tracked(d, work, {}));
  const std::vector<pid_t> pids = task_pids(work, first);
  // A drain keeps queued tasks queued: stop with them in the store, and nothing else running.
  d.send_signal(SIGTERM);
  wait_draining(d);
  gate.open();
  expect_clean_exit(d, milliseconds(20'000));
  expect_no_task_process(d, pids);
  REQUIRE(count_started(work) == 1);

  int sig = SIGTERM;
  SUBCASE("SIGTERM") { sig = SIGTERM; }
  SUBCASE("SIGINT") { sig = SIGINT; }
  d.restart();
  // As early as the signal can be survived: once taskgroupd has blocked it (from its
  // .preinit_array on; before that, the default action would end the process), long before it
  // is ready.
  const auto blocks = [&](pid_t pid) {
    std::istringstream status(tg::test::read_file("/proc/" + std::to_string(pid) + "/status"));
    for (std::string line; std::getline(status, line);) {
      if (!line.starts_with("SigBlk:")) continue;
      const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
      return ((mask >> (sig - 1)) & 1ULL) != 0;
    }
    return false;
  };
  const auto deadline = Clock::now() + milliseconds(10'000);
  while (!blocks(d.pid())) {
    REQUIRE_MESSAGE(Clock::now() < deadline, "taskgroupd never blocked " << ::sigabbrev_np(sig));
  }
  d.send_signal(sig);
  expect_clean_exit(d, milliseconds(20'000));
  // Only the first task ever started, before the first stop: none of the queued ones.
  CHECK_MESSAGE(count_started(work) == 1,
                "tasks ever started: " << count_started(work) << " (want only the first)");
  expect_no_task_process(d, pids);

  const std::int64_t restarted_at = wall_now_ms();
  d.restart();
  const auto stored = list_all(d);
  CHECK(stored.size() == 4);
  CHECK(stored.at(first).at("state") == "succeeded");
  CHECK(wait_tasks(d, queued) == 0);  // Kept queued through both stops; they run now.
  for (auto id : queued) CHECK(time_ms(show(d, id).at("started_at")) >= restarted_at);
}

// The window before main() (issue 18, item 9): main() is too late to block the lifecycle signals,
// the shared libraries' initialisers and our static constructors run before it. A library
// preloaded for the test stops taskgroupd in the middle of those initialisers (SIGSTOP from its
// constructor), deterministically; the signal is sent to the stopped process and SIGCONT lets it
// go on. Unblocked, the signal's default action ends it at once; blocked from the program's
// .preinit_array on, it waits for the event loop, which drains and exits 0.
TEST_CASE("A TERM or INT while the libraries initialise, before main(), ends in a clean drain") {
  int sig = SIGTERM;
  SUBCASE("SIGTERM") { sig = SIGTERM; }
  SUBCASE("SIGINT") { sig = SIGINT; }
  const tg::test::TempDir home;
  RunOptions opts = tg::test::hand_daemon_options(home.path());
  opts.env_extra["LD_PRELOAD"] = TG_STOP_AT_INIT_LIB;
  // Under ASan the runtime wants to be the first library loaded: the preload comes before it.
  const char* asan = std::getenv("ASAN_OPTIONS");
  opts.env_extra["ASAN_OPTIONS"] =
      std::string(asan ? asan : "") + (asan && *asan ? ":" : "") + "verify_asan_link_order=0";
  BackgroundProcess daemon({TG_DAEMON_BIN, "--socket", (home.path() / "s").string(), "--state-dir",
                            (home.path() / "state").string()},
                           opts);
  const std::string stat_path = "/proc/" + std::to_string(daemon.pid()) + "/stat";
  const auto state = [&] {  // The state letter of /proc/PID/stat ('T': stopped).
    const std::string stat = tg::test::read_file(stat_path);
    const auto paren = stat.rfind(')');
    return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
  };
  wait_until([&] { return state() == 'T'; }, kEventTimeout,
             "taskgroupd stopped by the preloaded library");
  REQUIRE(::kill(daemon.pid(), sig) == 0);
  (void)::kill(daemon.pid(), SIGCONT);  // Gone already if the signal killed it.
  const ExitStatus st = daemon.wait(milliseconds(20'000));
  CHECK_MESSAGE(st.clean(), "taskgroupd signalled before main(): " << st.describe() << "\n"
                                                                   << daemon.err());
  CHECK(daemon.err().find(std::string("received ") + ::sigabbrev_np(sig)) != std::string::npos);
}

TEST_CASE("A signal while the daemon opens its store: TERM and INT exit 0, HUP is survived") {
  // `systemctl stop` during a slow start sends SIGTERM before READY=1, and opening a big store
  // (quick_check reads every page) is the slow part. Each round signals a fresh daemon as soon
  // as it has the database open, before it is ready.
  TestDaemon d;
  tgctl_ok(d, {"pause", "kept"});
  std::string batch;
  for (int i = 0; i < 30'000; ++i) batch += "echo a task that is only here to make the store big\n";
  RunOptions opts;
  opts.stdin_text = batch;
  opts.timeout = milliseconds(60'000);
  const auto ids = parse_ids(tgctl_ok(d, {"submit", "-g", "kept", "--batch", "-"}, opts));
  REQUIRE(ids.size() == 30'000);
  d.send_signal(SIGTERM);
  REQUIRE(d.wait_exit(milliseconds(10'000)).clean());
  const fs::path db = fs::canonical(d.state_dir() / "taskgroupd.db");
  const auto has_db_open = [&](pid_t pid) {
    std::error_code ec;
    for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      if (fs::read_symlink(fd.path(), ec) == db) return true;
    }
    return false;
  };
  constexpr int kSignals[] = {SIGTERM, SIGINT, SIGHUP};
  for (int round = 0; round < 6; ++round) {
    const int sig = kSignals[round % 3];
    const std::string name = ::sigabbrev_np(sig);
    CAPTURE(round);
    CAPTURE(name);
    d.restart();
    const auto deadline = Clock::now() + milliseconds(10'000);
    while (!has_db_open(d.pid())) {
      REQUIRE_MESSAGE(Clock::now() < deadline, "taskgroupd never opened its database");
    }
    d.send_signal(sig);
    if (sig == SIGHUP) {
      const auto r = d.tgctl({"status", "--json"});
      CHECK_MESSAGE(r.exit_code == 0, "taskgroupd did not survive a SIGHUP while starting");
      if (r.exit_code == 0) d.send_signal(SIGTERM);
    }
    const ExitStatus st = d.wait_exit(milliseconds(20'000));
    CHECK_MESSAGE(st.clean(), "taskgroupd signalled while starting: " << st.describe());
    if (st.timed_out) break;  // The destructor deals with it.
  }
  if (d.pid() < 0) d.restart();
  CHECK(status(d).at("queued") == 30'000);
  CHECK(show(d, ids.back()).at("state") == "queued");
}

TEST_CASE("The first SIGTERM with every slot full refuses submits, serves queries, and drains") {
  TestDaemon d({.args = {"--max-running", "2"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const TrackedTask gated{.body = gate.wait_shell()};
  const std::vector<std::int64_t> running = {submit_tracked(d, work, gated),
                                             submit_tracked(d, work, gated)};
  wait_started(work, running);
  const std::vector<std::int64_t> queued = {submit_tracked(d, work, gated),
                                            submit_tracked(d, work, gated, "other"),
                                            submit_tracked(d, work, gated)};
  const std::vector<pid_t> pids = pids_of(work, running);
  // The /proc scan that checks for strays finds the tasks' processes while they run.
  CHECK(processes_with_env("TASKGROUPD_SOCKET=" + d.socket_path()).size() >= pids.size());
  // A client waiting for the running tasks before the signal keeps waiting through the drain.
  const fs::path wait_out = work / "wait.out";
  std::string wait_cmd = "'" + std::string(TG_CLIENT_BIN) + "' --socket '" + d.socket_path() +
                         "' wait --task " + id_str(running[0]) + " --task " + id_str(running[1]);
  BackgroundShell waiter(wait_cmd + "; echo \"exit $?\"", wait_out);
  // And one waiting for a queued task, which cannot end before the daemon stops.
  const fs::path stuck_out = work / "stuck.out";
  BackgroundShell stuck("'" + std::string(TG_CLIENT_BIN) + "' --socket '" + d.socket_path() +
                            "' wait --task " + id_str(queued[0]) + "; echo \"exit $?\"",
                        stuck_out);
  RawClient raw(d.socket_path());

  d.send_signal(SIGTERM);
  wait_draining(d);
  const auto refused = d.tgctl({"submit", "--", "true"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.out.empty());
  CHECK(lines_of(refused.err).size() == 1);
  CHECK_MESSAGE(refused.err.find("draining") != std::string::npos, refused.err);
  const json raw_refused = raw.call("submit", {{"argv", {"true"}}});
  CHECK_MESSAGE(raw_refused.at("error").at("data").at("kind") == "draining", raw_refused.dump());
  // Queries and cancel keep working; queued tasks stay queued and do not start.
  const json st = status(d);
  CHECK(st.at("running") == 2);
  CHECK(st.at("queued") == 3);
  for (auto id : queued) CHECK(show(d, id).at("state") == "queued");
  CHECK(list_all(d).size() == 5);
  tgctl_ok(d, {"cancel", "--task", id_str(queued[2])});
  CHECK(show(d, queued[2]).at("state") == "cancelled");
  CHECK(wait_tasks(d, {queued[2]}) == 1);  // Ended, not succeeded: wait answers at once.
  CHECK(alive_of(pids) == pids);

  gate.open();  // They finish well inside the 30 s drain timeout.
  const auto took = expect_clean_exit(d, milliseconds(20'000));
  CHECK(took < 20'000);
  CHECK(waiter.wait(milliseconds(10'000)).clean());
  CHECK(tg::test::read_file(wait_out).ends_with("exit 0\n"));  // All succeeded.
  // The other wait is told the daemon stopped: one line, exit 1.
  CHECK(stuck.wait(milliseconds(10'000)).clean());
  const auto stuck_lines = lines_of(tg::test::read_file(stuck_out));
  REQUIRE(stuck_lines.size() == 2);
  CHECK_MESSAGE(stuck_lines[0].find("stopping") != std::string::npos, stuck_lines[0]);
  CHECK(stuck_lines[1] == "exit 1");
  expect_no_task_process(d, pids);
  CHECK_FALSE(exists(work, "started", queued[0]));
  CHECK_FALSE(exists(work, "started", queued[1]));

  d.restart();
  for (auto id : running) CHECK(show(d, id).at("state") == "succeeded");
  CHECK(show(d, queued[2]).at("state") == "cancelled");
  CHECK(wait_tasks(d, {queued[0], queued[1]}) == 0);  // Queued ones run after the restart.
}

TEST_CASE(
    "Tasks outliving --drain-timeout get the stop signal, then SIGKILL, and end interrupted") {
  TestDaemon d({.args = {"--max-running", "2", "--drain-timeout", "1s", "--kill-grace", "1s"}});
  const fs::path work = make_work_dir(d);
  const auto polite = submit_tracked(d, work, until_stopped());
  const auto deaf = submit_tracked(d, work, stubborn());
  wait_started(work, {polite, deaf});
  const auto waiting = submit_tracked(d, work, {});
  const std::vector<pid_t> pids = pids_of(work, {polite, deaf});

  const std::int64_t signalled_at = wall_now_ms();
  d.send_signal(SIGTERM);
  const auto took = expect_clean_exit(d, milliseconds(20'000));
  CHECK(took >= 1'800);  // 1 s to finish, then 1 s of grace for the one that ignores TERM.
  expect_no_task_process(d, pids);
  CHECK(exists(work, "term", deaf));  // It did get the stop signal first.
  CHECK_FALSE(exists(work, "started", waiting));

  d.restart();
  const json p = show(d, polite), f = show(d, deaf);
  expect_interrupted(p, SIGTERM, "drain timeout");
  expect_interrupted(f, SIGKILL, "drain timeout");
  CHECK(time_ms(p.at("ended_at")) - signalled_at >= 900);
  CHECK(time_ms(f.at("ended_at")) - signalled_at >= 1'800);
  CHECK(time_ms(f.at("ended_at")) - time_ms(p.at("ended_at")) >= 500);  // The grace.
  CHECK(wait_tasks(d, {waiting}) == 0);
}

TEST_CASE("A second signal stops waiting for running tasks: they get the stop signal at once") {
  TestDaemon d({.args = {"--max-running", "2", "--drain-timeout", "60s", "--kill-grace", "2s"}});
  const fs::path work = make_work_dir(d);
  const auto a = submit_tracked(d, work, until_stopped());
  const auto b = submit_tracked(d, work, {.body = "sleep 30", .ignore_term_grandchild = true});
  wait_started(work, {a, b});
  const auto waiting = submit_tracked(d, work, {});
  const std::vector<pid_t> pids = pids_of(work, {a, b});

  d.send_signal(SIGTERM);
  wait_draining(d);
  CHECK(status(d).at("running") == 2);
  CHECK(alive_of(pids) == pids);  // The first signal alone leaves them the 60 s.
  const auto second_at = Clock::now();
  d.send_signal(SIGINT);
  expect_clean_exit(d, milliseconds(20'000));
  CHECK(elapsed_ms(second_at) < 20'000);  // Nowhere near the 60 s drain timeout.
  expect_no_task_process(d, pids);

  d.restart();
  expect_interrupted(show(d, a), SIGTERM, "second signal");
  expect_interrupted(show(d, b), SIGTERM, "second signal");
  CHECK(wait_tasks(d, {waiting}) == 0);
}

TEST_CASE("A third signal SIGKILLs tasks that ignore the stop signal, and the daemon exits") {
  TestDaemon d({.args = {"--max-running", "2", "--drain-timeout", "60s", "--kill-grace", "60s"}});
  const fs::path work = make_work_dir(d);
  const std::vector<std::int64_t> ids = {submit_tracked(d, work, stubborn()),
                                         submit_tracked(d, work, stubborn())};
  wait_started(work, ids);
  const auto waiting = submit_tracked(d, work, {});
  const std::vector<pid_t> pids = pids_of(work, ids);

  d.send_signal(SIGTERM);
  wait_draining(d);
  d.send_signal(SIGTERM);
  wait_until([&] { return exists(work, "term", ids[0]) && exists(work, "term", ids[1]); },
             kEventTimeout, "both tasks to get the stop signal after the second SIGTERM");
  CHECK(status(d).at("running") == 2);  // They ignore it; 60 s of grace are ahead.
  CHECK(alive_of(pids) == pids);
  const auto third_at = Clock::now();
  d.send_signal(SIGTERM);
  expect_clean_exit(d, milliseconds(20'000));
  CHECK(elapsed_ms(third_at) < 20'000);
  expect_no_task_process(d, pids);

  d.restart();
  for (auto id : ids) expect_interrupted(show(d, id), SIGKILL, "interrupted");
  CHECK(wait_tasks(d, {waiting}) == 0);
}

TEST_CASE("Ten SIGINTs in a burst while tasks start and end leave a consistent store") {
  TestDaemon d({.args = {"--max-running", "4", "--drain-timeout", "2s", "--kill-grace", "1s"}});
  const fs::path work = make_work_dir(d);
  const std::vector<std::int64_t> stubborn_ids = {submit_tracked(d, work, stubborn(), "long"),
                                                  submit_tracked(d, work, stubborn(), "long")};
  wait_started(work, stubborn_ids);
  std::string batch;
  for (int i = 0; i < 300; ++i) batch += "echo churn " + id_str(i) + "\n";
  RunOptions opts;
  opts.stdin_text = batch;
  const auto churn = parse_ids(tgctl_ok(d, {"submit", "-g", "churn", "--batch", "-"}, opts));
  REQUIRE(churn.size() == 300);
  const std::vector<pid_t> pids = pids_of(work, stubborn_ids);
  // Busy: two slots churn through short tasks, starting and reaping all the time.
  wait_until(
      [&] {
        const json listed =
            parse_json(tgctl_ok(d, {"list", "-g", "churn", "--state", "succeeded", "--json"}));
        return listed.at("tasks").size() >= 20;
      },
      milliseconds(30'000), "20 short tasks to have run");

  for (int i = 0; i < 10; ++i) REQUIRE(::kill(d.pid(), SIGINT) == 0);
  expect_clean_exit(d, milliseconds(20'000));
  expect_no_task_process(d, pids);

  d.restart();
  auto tasks = list_all(d);
  CHECK(tasks.size() == 302);
  for (const auto& [id, t] : tasks) {
    CAPTURE(t.dump());
    const std::string state = t.at("state");
    CHECK(state != "lost");  // Every task was accounted for before the daemon exited.
    CHECK(state != "failed");
  }
  for (auto id : stubborn_ids) CHECK(tasks.at(id).at("state") == "interrupted");
  std::vector<std::int64_t> all;
  for (const auto& [id, t] : tasks) all.push_back(id);
  (void)wait_tasks(d, all, milliseconds(60'000));
  tasks = list_all(d);
  for (auto id : churn) {
    const std::string state = tasks.at(id).at("state");
    CHECK_MESSAGE((state == "succeeded" || state == "interrupted"), "task " << id << ": " << state);
  }
}

TEST_CASE("A signal during the kill phase: the grace goes on, and a third signal kills at once") {
  SUBCASE("one more signal: nothing is skipped, the grace runs out, SIGKILL") {
    TestDaemon d({.args = {"--max-running", "2", "--drain-timeout", "1s", "--kill-grace", "3s"}});
    const fs::path work = make_work_dir(d);
    const std::vector<std::int64_t> ids = {submit_tracked(d, work, stubborn()),
                                           submit_tracked(d, work, stubborn())};
    wait_started(work, ids);
    const std::vector<pid_t> pids = pids_of(work, ids);
    const auto first_at = Clock::now();
    d.send_signal(SIGTERM);
    wait_until([&] { return exists(work, "term", ids[0]) && exists(work, "term", ids[1]); },
               kEventTimeout, "the drain timeout to send the stop signal");
    d.send_signal(SIGINT);  // In the 3 s grace: the tasks are already stopping.
    CHECK(status(d).at("running") == 2);
    expect_clean_exit(d, milliseconds(20'000));
    CHECK(elapsed_ms(first_at) >= 3'800);  // 1 s drain timeout + the whole 3 s grace.
    expect_no_task_process(d, pids);
    d.restart();
    for (auto id : ids) expect_interrupted(show(d, id), SIGKILL, "drain timeout");
  }
  SUBCASE("two more signals: the third one SIGKILLs now") {
    TestDaemon d({.args = {"--max-running", "2", "--drain-timeout", "1s", "--kill-grace", "60s"}});
    const fs::path work = make_work_dir(d);
    const std::vector<std::int64_t> ids = {submit_tracked(d, work, stubborn()),
                                           submit_tracked(d, work, stubborn())};
    wait_started(work, ids);
    const std::vector<pid_t> pids = pids_of(work, ids);
    d.send_signal(SIGTERM);
    wait_until([&] { return exists(work, "term", ids[0]) && exists(work, "term", ids[1]); },
               kEventTimeout, "the drain timeout to send the stop signal");
    const auto kill_phase_at = Clock::now();
    d.send_signal(SIGINT);
    d.send_signal(SIGTERM);  // A different signal: the two cannot merge into one.
    expect_clean_exit(d, milliseconds(20'000));
    CHECK(elapsed_ms(kill_phase_at) < 20'000);  // Not the 60 s grace.
    expect_no_task_process(d, pids);
    d.restart();
    for (auto id : ids) expect_interrupted(show(d, id), SIGKILL, "drain timeout");
  }
}

TEST_CASE("SIGHUP raising max_running starts more tasks at once, lowering it kills nothing") {
  TestDaemon d;  // No --max-running: the flag would override the file.
  const fs::path work = make_work_dir(d);
  reload_max_running(d, 1);
  // Each task waits for its own release file, and records a TERM if it ever gets one.
  const TrackedTask own_gate{
      .body =
          "i=0; until [ -e \"$W/release-$I\" ]; do i=$((i+1)); [ $i -gt 3000 ] && exit 99; "
          "sleep 0.01; done",
      .trap_term = true};
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(submit_tracked(d, work, own_gate));
  const auto release = [&](std::int64_t id) {
    tg::test::write_file(work / ("release-" + id_str(id)), "");
    CHECK(wait_tasks(d, {id}) == 0);
  };
  wait_started(work, {ids[0]});
  json st = status(d);
  CHECK(st.at("running") == 1);
  CHECK(st.at("queued") == 3);

  reload_max_running(d, 3);
  wait_started(work, {ids[1], ids[2]});
  st = status(d);
  CHECK(st.at("running") == 3);
  CHECK(st.at("queued") == 1);
  const std::vector<pid_t> pids = pids_of(work, {ids[0], ids[1], ids[2]});

  reload_max_running(d, 1);
  CHECK(alive_of(pids) == pids);  // Lowering kills nothing...
  release(ids[0]);
  st = status(d);  // ...and defers starts: two still run, over the new limit of one.
  CHECK(st.at("running") == 2);
  CHECK(st.at("queued") == 1);
  release(ids[1]);
  CHECK_FALSE(exists(work, "started", ids[3]));
  release(ids[2]);
  wait_started(work, {ids[3]});  // Now there is room under the limit.
  release(ids[3]);
  for (auto id : ids) {
    CHECK(show(d, id).at("state") == "succeeded");
    CHECK_FALSE(exists(work, "term", id));  // No reload signalled a task.
  }
  CHECK(d.log().find("config applied: max_running=3") != std::string::npos);

  d.send_signal(SIGTERM);
  expect_clean_exit(d, milliseconds(10'000));
  std::vector<pid_t> all_pids = pids;
  for (pid_t p : task_pids(work, ids[3])) all_pids.push_back(p);
  expect_no_task_process(d, all_pids);
  d.restart();
  const auto stored = list_all(d);
  CHECK(stored.size() == ids.size());
  for (auto id : ids) {
    REQUIRE(stored.count(id) == 1);
    CHECK(stored.at(id).at("state") == "succeeded");
  }
}

TEST_CASE("A broken config on reload keeps the old one and says why, in status and in the log") {
  std::string broken, want;
  SUBCASE("invalid TOML") {
    broken = "max_running = [\n";
    want = "taskgroupd.toml";
  }
  SUBCASE("max_running is not a number") {
    broken = "max_running = \"x\"\n";
    want = "max_running";
  }
  SUBCASE("an unknown key") {
    broken = "max_running = 2\nmax_runing = 3\n";
    want = "max_runing";
  }
  bool fifo = false;
  SUBCASE("a FIFO at the config path (reading it would block the loop)") {
    fifo = true;
    want = "not a regular file";
  }
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  reload_max_running(d, 1);
  Gate gate(work / "release");
  const TrackedTask gated{.body = gate.wait_shell(), .trap_term = true};
  const auto running = submit_tracked(d, work, gated);
  wait_started(work, {running});
  const auto queued = submit_tracked(d, work, gated);
  const std::vector<pid_t> pids = task_pids(work, running);

  const fs::path config_file = d.dir() / "taskgroupd.toml";
  if (fifo) {
    fs::remove(config_file);
    REQUIRE(::mkfifo(config_file.c_str(), 0600) == 0);
  } else {
    write_config(d, broken);
  }
  d.send_signal(SIGHUP);
  wait_until(
      [&] { return status(d).contains("config_error") && !status(d)["config_error"].is_null(); },
      kEventTimeout, "status to report the config error");
  const json st = status(d);
  const std::string error = st.at("config_error");
  CHECK_MESSAGE(error.find(want) != std::string::npos, error);
  CHECK(st.at("max_running") == 1);  // The old config stays.
  CHECK(st.at("running") == 1);
  CHECK(st.at("queued") == 1);
  CHECK(tgctl_ok(d, {"status"}).find(want) != std::string::npos);  // For people too.
  CHECK(d.log().find("reload refused") != std::string::npos);

  // tgctl reload does the same, and says so: one line, exit 1.
  const auto refused = d.tgctl({"reload"});
  CHECK(refused.exit_code == 1);
  CHECK(lines_of(refused.err).size() == 1);
  CHECK_MESSAGE(refused.err.find(want) != std::string::npos, refused.err);
  CHECK(status(d).at("max_running") == 1);
  CHECK(alive_of(pids) == pids);
  CHECK_FALSE(exists(work, "started", queued));

  // A good file again, through tgctl reload: the error clears and the raise applies at once.
  if (fifo) fs::remove(config_file);  // Writing to it would block the test instead.
  write_config(d, "max_running = 2\n");
  CHECK(tgctl_ok(d, {"reload"}) == "ok\n");
  const json fixed = status(d);
  CHECK((!fixed.contains("config_error") || fixed.at("config_error").is_null()));
  CHECK(fixed.at("max_running") == 2);
  wait_started(work, {queued});
  gate.open();
  CHECK(wait_tasks(d, {running, queued}) == 0);
  CHECK_FALSE(exists(work, "term", running));

  d.send_signal(SIGTERM);
  expect_clean_exit(d, milliseconds(10'000));
  std::vector<pid_t> all_pids = pids;
  for (pid_t p : task_pids(work, queued)) all_pids.push_back(p);
  expect_no_task_process(d, all_pids);
  d.restart();
  const auto stored = list_all(d);
  CHECK(stored.size() == 2);
  for (auto id : {running, queued}) {
    REQUIRE(stored.count(id) == 1);
    CHECK(stored.at(id).at("state") == "succeeded");
  }
  // The file is good now, so the restarted daemon takes it as it is.
  CHECK(status(d).at("max_running") == 2);
}

TEST_CASE("Timeouts changed by SIGHUP apply to the next drain") {
  TestDaemon d;  // Timeouts come from the config file only: flags would override it.
  const fs::path work = make_work_dir(d);
  write_config(d, "max_running = 2\ndrain_timeout = \"60s\"\nkill_grace = \"60s\"\n");
  (void)status(d);
  d.send_signal(SIGHUP);
  wait_until([&] { return status(d).at("max_running") == 2; }, kEventTimeout, "the first reload");
  const auto id = submit_tracked(d, work, stubborn());
  wait_started(work, {id});
  const std::vector<pid_t> pids = task_pids(work, id);
  write_config(d, "max_running = 2\ndrain_timeout = \"1s\"\nkill_grace = \"1s\"\n");
  d.send_signal(SIGHUP);
  wait_until(
      [&] { return d.log().find("drain_timeout=1000ms kill_grace=1000ms") != std::string::npos; },
      kEventTimeout, "the second reload to be applied");

  const auto signalled_at = Clock::now();
  d.send_signal(SIGTERM);
  expect_clean_exit(d, milliseconds(30'000));
  const auto took = elapsed_ms(signalled_at);
  CHECK(took >= 1'800);  // 1 s to finish, 1 s of grace after the stop signal.
  CHECK(took < 30'000);  // Not the 60 s + 60 s of the old config.
  CHECK(exists(work, "term", id));
  expect_no_task_process(d, pids);
  d.restart();
  expect_interrupted(show(d, id), SIGKILL, "drain timeout");
}

TEST_CASE("A reload during a drain, raising max_running, starts none of the queued tasks") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  reload_max_running(d, 1);
  Gate gate(work / "release");
  const auto running = submit_tracked(d, work, {.body = gate.wait_shell()});
  wait_started(work, {running});
  const std::vector<std::int64_t> queued = {submit_tracked(d, work, {}),
                                            submit_tracked(d, work, {})};
  const std::vector<pid_t> pids = task_pids(work, running);

  d.send_signal(SIGTERM);
  wait_draining(d);
  write_config(d, "max_running = 3\n");
  CHECK(tgctl_ok(d, {"reload"}) == "ok\n");
  d.send_signal(SIGHUP);  // The signal too, during the drain.
  wait_until([&] { return d.log().find("config applied: max_running=3") != std::string::npos; },
             kEventTimeout, "the reload to be applied");
  const json st = status(d);
  CHECK(st.at("max_running") == 3);
  CHECK(st.at("draining") == true);
  CHECK(st.at("running") == 1);
  CHECK(st.at("queued") == 2);
  gate.open();
  expect_clean_exit(d, milliseconds(20'000));
  expect_no_task_process(d, pids);
  for (auto id : queued) CHECK_FALSE(exists(work, "started", id));

  const std::int64_t restarted_at = wall_now_ms();
  d.restart();
  CHECK(show(d, running).at("state") == "succeeded");
  CHECK(wait_tasks(d, queued) == 0);  // Kept queued through the stop; they run now.
  for (auto id : queued) CHECK(time_ms(show(d, id).at("started_at")) >= restarted_at);
}

// A SIGHUP during a drain reloads the config as at any time (the test above), and the log says
// that it came while draining (issue 18, item 9): a `systemctl reload` racing a stop otherwise
// leaves no trace but the config line.
TEST_CASE("A SIGHUP during a drain is logged as such, and the drain goes on") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const auto running = submit_tracked(d, work, {.body = gate.wait_shell()});
  wait_started(work, {running});
  const std::vector<pid_t> pids = task_pids(work, running);
  d.send_signal(SIGTERM);
  wait_draining(d);
  d.send_signal(SIGHUP);
  wait_until([&] { return d.log().find("received HUP while draining") != std::string::npos; },
             kEventTimeout, "the SIGHUP during the drain to be logged");
  CHECK(status(d).at("draining") == true);
  gate.open();
  expect_clean_exit(d, milliseconds(20'000));
  expect_no_task_process(d, pids);
  d.restart();
  CHECK(show(d, running).at("state") == "succeeded");
}
