// Integration tests of cancel, the heart of taskgroupd (DESIGN.md "Cancel", issue 3): group and
// task cancel with real processes and real signals, the grace and SIGKILL, fail-fast, timeouts,
// pause/resume, self-cancel through the environment, `tgctl wait` and `tgctl logs -f`.
//
// Tasks are shell scripts that leave evidence in a work dir: a "started-ID" marker as their first
// action, "pids-ID" with their own pid and their grandchildren's, "trap-ID" from their TERM trap.
// Waits are for events (files, process exits, daemon replies), always bounded. The few sleeps
// place a step in time on purpose (a check during a grace, a second cancel in the middle of
// one); no result depends on how long they take.

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "support/background_process.h"
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
using tg::test::RawClient;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{10'000};
constexpr milliseconds kWaitTimeout{15'000};  // tgctl wait --task: tgctl's usual bound.
constexpr int kGatePolls = 1'500;             // A task at a gate gives up after ~15 s.

std::string my_uid() { return std::to_string(::getuid()); }

// `tgctl submit -g GROUP -- sh -c SCRIPT`.
std::int64_t submit_sh(const TestDaemon& d, const std::string& group, const std::string& script,
                       const RunOptions& opts = {}) {
  return submit(d, {"-g", group, "--", "sh", "-c", script}, opts);
}

bool is_null_or_absent(const json& obj, const std::string& key) {
  return !obj.contains(key) || obj.at(key).is_null();
}

// How long a task ran, from its recorded times.
std::int64_t ran_ms(const json& task) {
  return time_ms(task.at("ended_at")) - time_ms(task.at("started_at"));
}

std::string group_reason(const std::string& group) {
  return "cancelled: group '" + group + "' cancelled by uid " + my_uid();
}

// If the test ends early (a failed REQUIRE) with tasks still running, SIGKILLs them through the
// daemon, so that TestDaemon's SIGTERM finds nothing to drain and no `sleep 1000` outlives the
// test. Declared after the TestDaemon, so it runs before the daemon is stopped.
class ForceCancelAtExit {
 public:
  ForceCancelAtExit(const TestDaemon& d, std::vector<std::string> groups)
      : d_(d), groups_(std::move(groups)) {}
  ~ForceCancelAtExit() {
    for (const auto& g : groups_) (void)d_.tgctl({"cancel", g, "--force"});  // Unknown: fine.
  }
  ForceCancelAtExit(const ForceCancelAtExit&) = delete;
  ForceCancelAtExit& operator=(const ForceCancelAtExit&) = delete;

 private:
  const TestDaemon& d_;
  std::vector<std::string> groups_;
};

// The evidence files of task `id`.
fs::path started_marker(const fs::path& work, std::int64_t id) {
  return work / ("started-" + id_str(id));
}
fs::path pids_file(const fs::path& work, std::int64_t id) { return work / ("pids-" + id_str(id)); }
fs::path trap_file(const fs::path& work, std::int64_t id) { return work / ("trap-" + id_str(id)); }

// Shell prologue: W is the work dir, id the task's id; the first action creates started-$id.
std::string prologue(const fs::path& work) {
  return "W='" + work.string() + "'; id=$TASKGROUPD_TASK_ID; : > \"$W/started-$id\"; ";
}

// Shell that writes `pids` (words expanding to pids) to pids-$id, all at once.
std::string record_pids(const std::string& pids) {
  return "printf '%s\\n' " + pids +
         " > \"$W/pids-$id.tmp\"; mv \"$W/pids-$id.tmp\" \"$W/pids-$id\"; ";
}

// A well-behaved task: on TERM its trap writes trap-$id (after `trap_delay` seconds of cleanup,
// if given) and exits 1. It has two grandchildren in its session: a plain `sleep 1000` and one
// that ignores TERM, which only the daemon's SIGKILL of the process group can end, when the
// grace is over (the task ends then, not when its shell exits). pids-$id
// holds the shell's pid and both grandchildren's; it exists once the trap is in place.
std::string cleanup_task(const fs::path& work, const std::string& trap_delay = "") {
  const std::string delay = trap_delay.empty() ? "" : "sleep " + trap_delay + "; ";
  return prologue(work) + "trap '" + delay + "echo cleanup >> \"$W/trap-$id\"; exit 1' TERM; " +
         "sleep 1000 & p1=$!; (trap '' TERM; exec sleep 1000) & p2=$!; " +
         record_pids("$$ $p1 $p2") + "wait";
}

// A task whose whole tree ignores TERM: only SIGKILL ends it. pids-$id: the shell, a grandchild.
std::string stubborn_task(const fs::path& work) {
  return prologue(work) + "trap '' TERM; sleep 1000 & p1=$!; " + record_pids("$$ $p1") + "wait";
}

void wait_for_file(const fs::path& path, const std::string& what) {
  wait_until([&] { return fs::exists(path); }, kEventTimeout, what);
}

// The pids task `id` recorded in pids-ID; REQUIREs at least one.
std::vector<pid_t> recorded_pids(const fs::path& work, std::int64_t id) {
  const auto pids = read_pids(pids_file(work, id));
  REQUIRE_MESSAGE(!pids.empty(), "no pids recorded by task " << id);
  return pids;
}

bool any_alive(const std::vector<pid_t>& pids) {
  return std::any_of(pids.begin(), pids.end(), process_alive);
}
bool all_alive(const std::vector<pid_t>& pids) {
  return std::all_of(pids.begin(), pids.end(), process_alive);
}

std::string describe_pids(const std::vector<pid_t>& pids) {
  std::string out;
  for (pid_t p : pids) {
    out += std::to_string(p) + (process_alive(p) ? " (alive) " : " (gone) ");
  }
  return out;
}

void wait_all_gone(const std::vector<pid_t>& pids, const std::string& what) {
  const auto deadline = Clock::now() + kEventTimeout;
  while (any_alive(pids)) {
    if (Clock::now() >= deadline) {
      FAIL("still alive after " << kEventTimeout.count() << " ms: " << what << ": "
                                << describe_pids(pids));
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

// The argv of `tgctl --socket <ours> ARGS...`, for a BackgroundProcess.
std::vector<std::string> tgctl_argv(const TestDaemon& d, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {TG_CLIENT_BIN, "--socket", d.socket_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

}  // namespace

TEST_CASE(
    "Cancelling a group at its limit cancels the waiting tasks unstarted, the running ones run "
    "their trap, and no process of theirs is left") {
  TestDaemon d({.args = {"--max-running", "4", "--kill-grace", "2s"}});
  ForceCancelAtExit guard(d, {"full"});
  const fs::path work = make_work_dir(d);
  tgctl_ok(d, {"group", "set", "full", "--limit", "2"});
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(submit_sh(d, "full", cleanup_task(work)));
  const std::vector<std::int64_t> running(ids.begin(), ids.begin() + 2);
  const std::vector<std::int64_t> queued(ids.begin() + 2, ids.end());
  std::vector<pid_t> pids;
  for (auto id : running) {
    wait_for_file(pids_file(work, id), "task " + id_str(id) + " running with its trap set");
    const auto p = recorded_pids(work, id);
    REQUIRE(p.size() == 3);
    pids.insert(pids.end(), p.begin(), p.end());
  }
  const json before = group_info(d, "full");
  CHECK(before.at("counts").at("running") == 2);
  CHECK(before.at("counts").at("queued") == 3);
  CHECK_MESSAGE(all_alive(pids), describe_pids(pids));

  CHECK(tgctl_ok(d, {"cancel", "full"}) == "full: cancelled 3 queued, signalled 2\n");
  // One committed step before the reply: the waiting tasks are already cancelled.
  for (auto id : queued) CHECK(show(d, id).at("state") == "cancelled");

  CHECK(wait_group(d, "full") == 1);
  wait_all_gone(pids, "the tasks' shells and grandchildren (one of them ignores TERM)");
  for (auto id : ids) {
    const json t = show(d, id);
    CAPTURE(t.dump());
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") == group_reason("full"));
    CHECK(t.at("ended_at").is_string());
  }
  for (auto id : running) {
    const json t = show(d, id);
    CAPTURE(t.dump());
    CHECK(t.at("exit_code") == 1);  // The trap's `exit 1`: TERM, not KILL, ended it.
    CHECK(t.at("signal").is_null());
    CHECK(tg::test::read_file(trap_file(work, id)) == "cleanup\n");
  }
  // The group is idle: nothing can start any more, and the waiting tasks never did.
  CHECK(status(d).at("running") == 0);
  CHECK(status(d).at("queued") == 0);
  for (auto id : queued) {
    const json t = show(d, id);
    CAPTURE(t.dump());
    CHECK(t.at("started_at").is_null());
    CHECK(t.at("pid").is_null());
    CHECK_FALSE(fs::exists(started_marker(work, id)));
    CHECK(tgctl_ok(d, {"logs", "-f", id_str(id)}).empty());  // Ended, with no output.
  }
  const json g = group_info(d, "full");
  CAPTURE(g.dump());
  CHECK(g.at("cancelling") == false);
  CHECK(g.at("counts").at("cancelled") == 5);
  const json& c = g.at("last_cancel");
  REQUIRE(c.is_object());
  CHECK(c.at("by_uid") == ::getuid());
  CHECK(c.at("reason") == group_reason("full"));
  CHECK(c.at("cancelled_queued") == 3);
  CHECK(c.at("signalled") == 2);
  // Each tree's TERM-ignoring grandchild outlived its shell and was SIGKILLed when the grace
  // ended: the shells ran their trap, but their trees needed the kill.
  CHECK(c.at("killed") == 2);
  CHECK(time_ms(c.at("at")) <= time_ms(c.at("ended_at")));
}

TEST_CASE(
    "Submits to a cancelling group are refused with group_cancelling, and accepted again "
    "once the cancel is done") {
  TestDaemon d;
  ForceCancelAtExit guard(d, {"busy"});
  const fs::path work = make_work_dir(d);
  const auto id = submit_sh(d, "busy", stubborn_task(work));
  wait_for_file(pids_file(work, id), "the stubborn task running");
  CHECK(tgctl_ok(d, {"cancel", "busy", "--grace", "60s"}) ==
        "busy: cancelled 0 queued, signalled 1\n");
  CHECK(group_info(d, "busy").at("cancelling") == true);

  const auto refused = d.tgctl({"submit", "-g", "busy", "--", "true"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.out.empty());
  CHECK_MESSAGE(refused.err.starts_with("tgctl: "), refused.err);
  CHECK_MESSAGE(lines_of(refused.err).size() == 1, refused.err);
  CHECK_MESSAGE(refused.err.find("busy") != std::string::npos, refused.err);
  CHECK_MESSAGE(refused.err.find("cancel") != std::string::npos, refused.err);
  RawClient raw(d.socket_path());
  const json r = raw.call("submit", {{"group", "busy"}, {"argv", {"true"}}});
  CAPTURE(r.dump());
  REQUIRE(r.contains("error"));
  CHECK(r.at("error").at("data").at("kind") == "group_cancelling");
  // Other groups are not affected.
  CHECK(wait_tasks(d, {submit(d, {"-g", "bystander", "--", "true"})}, kWaitTimeout) == 0);

  CHECK(tgctl_ok(d, {"cancel", "busy", "--force"}) ==
        "busy: cancelled 0 queued, signalled 0, killed 1\n");
  CHECK(wait_group(d, "busy") == 1);
  CHECK(group_info(d, "busy").at("cancelling") == false);
  const auto again = submit_sh(d, "busy", "echo accepted again");
  CHECK(wait_tasks(d, {again}, kWaitTimeout) == 0);
  CHECK(tgctl_ok(d, {"logs", id_str(again)}) == "accepted again\n");
  CHECK(wait_group(d, "busy") == 0);  // The new run is judged on its own.
}

TEST_CASE("A tree that ignores TERM is SIGKILLed when the grace ends and not before") {
  TestDaemon d;
  ForceCancelAtExit guard(d, {"stubborn"});
  const fs::path work = make_work_dir(d);
  const auto id = submit_sh(d, "stubborn", stubborn_task(work));
  wait_for_file(pids_file(work, id), "the stubborn task running");
  const auto pids = recorded_pids(work, id);
  constexpr milliseconds kGrace{2'000};

  const auto t0 = Clock::now();
  CHECK(tgctl_ok(d, {"cancel", "stubborn", "--grace", "2s"}) ==
        "stubborn: cancelled 0 queued, signalled 1\n");
  // Half a second in: TERM has been sent and ignored, and the grace is not over. A death seen
  // here is a bug only if the grace had not yet passed when we looked (a loaded machine may
  // take us past it).
  std::this_thread::sleep_until(t0 + milliseconds(500));
  const bool alive_early = all_alive(pids);
  const auto looked_at = since(t0);
  CHECK_MESSAGE((alive_early || looked_at >= kGrace), "killed before the grace ended: at "
                                                          << looked_at.count()
                                                          << " ms: " << describe_pids(pids));
  const json during = show(d, id);
  CHECK((during.at("state") == "running" || since(t0) >= kGrace));

  wait_all_gone(pids, "the stubborn tree killed after the grace");
  const auto gone_at = since(t0);
  CHECK_MESSAGE(gone_at >= kGrace, "gone after " << gone_at.count() << " ms, grace 2000 ms");
  CHECK_MESSAGE(gone_at < kGrace + milliseconds(3'000),
                "gone only after " << gone_at.count() << " ms, grace 2000 ms");

  CHECK(wait_group(d, "stubborn") == 1);
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "cancelled");
  CHECK(t.at("signal") == 9);
  CHECK(t.at("exit_code").is_null());
  CHECK(t.at("reason") == group_reason("stubborn"));
  const json c = group_info(d, "stubborn").at("last_cancel");
  CAPTURE(c.dump());
  CHECK(c.at("signalled") == 1);
  CHECK(c.at("killed") == 1);
  CHECK(c.at("cancelled_queued") == 0);
}

TEST_CASE(
    "A grandchild's TERM cleanup gets the whole grace after its parent has exited, and the task "
    "ends when the tree is gone, not at the end of the grace") {
  TestDaemon d;
  ForceCancelAtExit guard(d, {"tree"});
  const fs::path work = make_work_dir(d);
  // The shell dies of TERM at once (no trap); its background child cleans up for a second.
  const std::string script =
      prologue(work) +
      "(trap 'sleep 1; echo cleaned >> \"$W/trap-$id\"; exit 0' TERM; sleep 1000 & wait) & "
      "p1=$!; " +
      record_pids("$$ $p1") + "wait";
  const auto id = submit_sh(d, "tree", script);
  wait_for_file(pids_file(work, id), "the task running with its grandchild's trap set");
  const auto pids = recorded_pids(work, id);
  REQUIRE(pids.size() == 2);
  const auto t0 = Clock::now();
  CHECK(tgctl_ok(d, {"cancel", "tree", "--grace", "8s"}) ==
        "tree: cancelled 0 queued, signalled 1\n");
  CHECK(wait_group(d, "tree") == 1);
  const auto ended_after = since(t0);
  // The cleanup ran to its end: the shell's exit did not take its group down with it.
  CHECK(tg::test::read_file(trap_file(work, id)) == "cleaned\n");
  wait_all_gone(pids, "the task's shell and its cleaned-up child");
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "cancelled");
  CHECK(t.at("signal") == SIGTERM);  // The shell's own end.
  CHECK_MESSAGE(ended_after < milliseconds(7'000),
                "ended " << ended_after.count()
                         << " ms after the cancel: the grace (8 s) was "
                            "waited out although the tree was gone after ~1 s");
  const json c = group_info(d, "tree").at("last_cancel");
  CHECK(c.at("signalled") == 1);
  CHECK(c.at("killed") == 0);  // Nothing needed SIGKILL.
}

TEST_CASE("A second cancel during the grace does not restart it") {
  TestDaemon d;
  ForceCancelAtExit guard(d, {"twice"});
  const fs::path work = make_work_dir(d);
  const auto id = submit_sh(d, "twice", stubborn_task(work));
  wait_for_file(pids_file(work, id), "the stubborn task running");
  const auto pids = recorded_pids(work, id);
  constexpr milliseconds kGrace{3'000};

  const auto t0 = Clock::now();
  CHECK(tgctl_ok(d, {"cancel", "twice", "--grace", "3s"}) ==
        "twice: cancelled 0 queued, signalled 1\n");
  std::this_thread::sleep_until(t0 + milliseconds(1'500));
  const auto second_at = since(t0);
  CHECK(tgctl_ok(d, {"cancel", "twice", "--grace", "3s"}) ==
        "twice: cancelled 0 queued, signalled 0\n");

  wait_all_gone(pids, "the stubborn tree killed when the first grace ends");
  const auto gone_at = since(t0);
  CHECK_MESSAGE(gone_at >= kGrace, "gone after " << gone_at.count() << " ms, grace 3000 ms");
  // A restarted grace would kill no earlier than the second cancel plus the grace.
  CHECK_MESSAGE(gone_at < second_at + kGrace,
                "gone after " << gone_at.count() << " ms: the second cancel (at "
                              << second_at.count() << " ms) restarted the grace");
  CHECK(wait_group(d, "twice") == 1);
  const json t = show(d, id);
  CHECK(t.at("state") == "cancelled");
  CHECK(t.at("signal") == 9);
  const json c = group_info(d, "twice").at("last_cancel");
  CAPTURE(c.dump());
  CHECK(c.at("signalled") == 1);
  CHECK(c.at("killed") == 1);
}

TEST_CASE(
    "cancel --task on a task its group's cancel is stopping changes neither reason nor grace") {
  TestDaemon d;
  ForceCancelAtExit guard(d, {"both"});
  const fs::path work = make_work_dir(d);
  const auto id = submit_sh(d, "both", stubborn_task(work));
  wait_for_file(pids_file(work, id), "the stubborn task running");
  const auto pids = recorded_pids(work, id);
  const auto t0 = Clock::now();
  CHECK(tgctl_ok(d, {"cancel", "both", "--grace", "2s"}) ==
        "both: cancelled 0 queued, signalled 1\n");
  // Already stopping: nothing is signalled again, and the task keeps its group's reason.
  CHECK(tgctl_ok(d, {"cancel", "--task", id_str(id)}) ==
        "task " + id_str(id) + ": cancelled 0 queued, signalled 0\n");
  CHECK(wait_group(d, "both") == 1);
  wait_all_gone(pids, "the stubborn tree, killed when the group's grace ends");
  CHECK(since(t0) >= milliseconds(2'000));
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "cancelled");
  CHECK(t.at("reason") == group_reason("both"));
  CHECK(t.at("signal") == SIGKILL);
}

TEST_CASE("cancel --force SIGKILLs at once, as a first cancel or during a long grace") {
  TestDaemon d;
  ForceCancelAtExit guard(d, {"graceful", "forced"});
  const fs::path work = make_work_dir(d);
  const auto slow = submit_sh(d, "graceful", stubborn_task(work));
  const auto fast = submit_sh(d, "forced", stubborn_task(work));
  wait_for_file(pids_file(work, slow), "the first stubborn task running");
  wait_for_file(pids_file(work, fast), "the second stubborn task running");
  const auto slow_pids = recorded_pids(work, slow), fast_pids = recorded_pids(work, fast);

  SUBCASE("during a grace of 60 s") {
    CHECK(tgctl_ok(d, {"cancel", "graceful", "--grace", "60s"}) ==
          "graceful: cancelled 0 queued, signalled 1\n");
    CHECK_MESSAGE(all_alive(slow_pids), describe_pids(slow_pids));
    const auto t0 = Clock::now();
    CHECK(tgctl_ok(d, {"cancel", "graceful", "--force"}) ==
          "graceful: cancelled 0 queued, signalled 0, killed 1\n");
    wait_all_gone(slow_pids, "the stubborn tree killed by --force");
    CHECK(since(t0) < milliseconds(5'000));  // Not the 60 s grace.
    CHECK(wait_group(d, "graceful") == 1);
    const json t = show(d, slow);
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("signal") == 9);
    const json c = group_info(d, "graceful").at("last_cancel");
    CAPTURE(c.dump());
    CHECK(c.at("signalled") == 1);
    CHECK(c.at("killed") == 1);
  }
  SUBCASE("as the first cancel") {
    const auto t0 = Clock::now();
    CHECK(tgctl_ok(d, {"cancel", "forced", "--force"}) ==
          "forced: cancelled 0 queued, signalled 1, killed 1\n");
    wait_all_gone(fast_pids, "the stubborn tree killed by --force");
    CHECK(since(t0) < milliseconds(5'000));  // Not the default 10 s kill_grace.
    CHECK(wait_group(d, "forced") == 1);
    const json t = show(d, fast);
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("signal") == 9);
    const json c = group_info(d, "forced").at("last_cancel");
    CAPTURE(c.dump());
    CHECK(c.at("signalled") == 1);
    CHECK(c.at("killed") == 1);
  }
}

TEST_CASE("Cancelling an idle group succeeds and changes nothing, an unknown group is not_found") {
  TestDaemon d;
  const auto done = submit(d, {"-g", "idle", "--", "true"});
  CHECK(wait_tasks(d, {done}, kWaitTimeout) == 0);
  tgctl_ok(d, {"group", "set", "empty", "--limit", "1"});  // A group that never had a task.

  for (int i = 0; i < 2; ++i) {  // Twice in a row: still nothing to do.
    CHECK(tgctl_ok(d, {"cancel", "idle"}) == "idle: cancelled 0 queued, signalled 0\n");
    CHECK(tgctl_ok(d, {"cancel", "empty"}) == "empty: cancelled 0 queued, signalled 0\n");
  }
  CHECK(show(d, done).at("state") == "succeeded");
  const json g = group_info(d, "idle");
  CAPTURE(g.dump());
  CHECK(g.at("cancelling") == false);
  CHECK(is_null_or_absent(g, "last_cancel"));  // Nothing was cancelled: nothing to record.
  // Submits are accepted at once.
  CHECK(wait_tasks(d, {submit(d, {"-g", "idle", "--", "true"})}, kWaitTimeout) == 0);

  const auto unknown = d.tgctl({"cancel", "no-such-group"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.out.empty());
  CHECK_MESSAGE(unknown.err.starts_with("tgctl: "), unknown.err);
  CHECK_MESSAGE(lines_of(unknown.err).size() == 1, unknown.err);
  CHECK_MESSAGE(unknown.err.find("no-such-group") != std::string::npos, unknown.err);
  RawClient raw(d.socket_path());
  const json r = raw.call("cancel", {{"group", "no-such-group"}});
  CAPTURE(r.dump());
  REQUIRE(r.contains("error"));
  CHECK(r.at("error").at("data").at("kind") == "not_found");
}

TEST_CASE(
    "Cancelling a busy group twice in a row counts once, and cancel --wait returns when all "
    "have ended") {
  TestDaemon d({.args = {"--max-running", "4", "--kill-grace", "2s"}});
  ForceCancelAtExit guard(d, {"again"});
  const fs::path work = make_work_dir(d);
  tgctl_ok(d, {"group", "set", "again", "--limit", "1"});
  // The trap takes a moment: --wait must wait for it.
  const auto running = submit_sh(d, "again", cleanup_task(work, "0.3"));
  const auto queued = submit_sh(d, "again", cleanup_task(work));
  wait_for_file(pids_file(work, running), "the first task running with its trap set");
  const auto pids = recorded_pids(work, running);

  CHECK(tgctl_ok(d, {"cancel", "again"}) == "again: cancelled 1 queued, signalled 1\n");
  const auto second = tgctl_ok(d, {"cancel", "again", "--wait"});
  CHECK_MESSAGE(second.starts_with("again: cancelled 0 queued, signalled 0\n"), second);
  // --wait returned: everything has ended, the trap has run, the cancel is recorded.
  CHECK(show(d, running).at("state") == "cancelled");
  CHECK(tg::test::read_file(trap_file(work, running)) == "cleanup\n");  // Signalled once.
  const json g = group_info(d, "again");
  CAPTURE(g.dump());
  CHECK(g.at("cancelling") == false);
  CHECK(g.at("counts").at("running") == 0);
  const json& c = g.at("last_cancel");
  REQUIRE(c.is_object());
  CHECK(c.at("cancelled_queued") == 1);
  CHECK(c.at("signalled") == 1);
  CHECK(c.at("killed") == 1);  // Its TERM-ignoring grandchild, at the end of the grace.
  wait_all_gone(pids, "the first task's tree");
  CHECK(show(d, queued).at("started_at").is_null());
  CHECK_FALSE(fs::exists(started_marker(work, queued)));
}

TEST_CASE(
    "A cancel sent right behind a batch of 50 leaves every task cancelled and starts "
    "nothing after its reply") {
  TestDaemon d({.args = {"--max-running", "8"}});
  ForceCancelAtExit guard(d, {"burst"});
  const fs::path work = make_work_dir(d);
  json tasks = json::array();
  for (int i = 0; i < 50; ++i) {
    tasks.push_back(json{{"argv", json::array({"sh", "-c", prologue(work) + "exec sleep 1000"})}});
  }
  const json submit_req = {{"jsonrpc", "2.0"},
                           {"id", 1},
                           {"method", "submit"},
                           {"params", {{"group", "burst"}, {"tasks", tasks}}}};
  const json cancel_req = {
      {"jsonrpc", "2.0"}, {"id", 2}, {"method", "cancel"}, {"params", {{"group", "burst"}}}};
  RawClient raw(d.socket_path());
  // Both in one write: the cancel is read while the first tasks are being spawned.
  REQUIRE(raw.send_raw(submit_req.dump() + "\n" + cancel_req.dump() + "\n"));
  const json submitted = raw.read_json(kEventTimeout);
  const json cancelled = raw.read_json(kEventTimeout);
  const std::int64_t reply_ms = tg::now_ms();
  CAPTURE(submitted.dump());
  CAPTURE(cancelled.dump());
  REQUIRE(submitted.at("result").at("ids").size() == 50);
  const json& counts = cancelled.at("result");
  const std::int64_t cancelled_queued = counts.at("cancelled_queued");
  const std::int64_t signalled = counts.at("signalled");
  CHECK(cancelled_queued + signalled == 50);
  CHECK(signalled <= 8);  // --max-running 8.

  CHECK(wait_group(d, "burst") == 1);
  CHECK(status(d).at("running") == 0);
  const json list = parse_json(tgctl_ok(d, {"list", "-g", "burst", "--json"})).at("tasks");
  REQUIRE(list.size() == 50);
  std::int64_t started = 0;
  for (const auto& t : list) {
    CAPTURE(t.dump());
    const std::int64_t id = t.at("id");
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") == group_reason("burst"));
    if (t.at("started_at").is_null()) {
      CHECK_FALSE(fs::exists(started_marker(work, id)));
    } else {
      ++started;
      CHECK(time_ms(t.at("started_at")) <= reply_ms);  // Started before the cancel answered.
      CHECK(t.at("pid").is_number());
    }
  }
  CHECK(started == signalled);
  std::int64_t markers = 0;
  for (const auto& e : fs::directory_iterator(work)) {
    if (e.path().filename().string().starts_with("started-")) ++markers;
  }
  CHECK(markers <= signalled);
  const json c = group_info(d, "burst").at("last_cancel");
  CAPTURE(c.dump());
  CHECK(c.at("cancelled_queued") == cancelled_queued);
  CHECK(c.at("signalled") == signalled);
}

TEST_CASE("cancel --task stops a running task and cancels a queued one, and the group goes on") {
  TestDaemon d({.args = {"--max-running", "4", "--kill-grace", "2s"}});
  ForceCancelAtExit guard(d, {"byid"});
  const fs::path work = make_work_dir(d);
  tgctl_ok(d, {"group", "set", "byid", "--limit", "1"});
  const auto running = submit_sh(d, "byid", cleanup_task(work, "0.3"));
  const auto queued = submit_sh(d, "byid", cleanup_task(work));
  const auto after = submit_sh(d, "byid", "echo not cancelled");
  wait_for_file(pids_file(work, running), "the first task running with its trap set");
  const auto pids = recorded_pids(work, running);

  const auto out =
      tgctl_ok(d, {"cancel", "--task", id_str(running), "--task", id_str(queued), "--wait"});
  CHECK_MESSAGE(out.starts_with("tasks " + id_str(running) + " " + id_str(queued) +
                                ": cancelled 1 queued, signalled 1\n"),
                out);
  // --wait returned: both have ended, and the trap has run.
  const std::string reason = "cancelled: task cancelled by uid " + my_uid();
  for (auto id : {running, queued}) {
    const json t = show(d, id);
    CAPTURE(t.dump());
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") == reason);
  }
  CHECK(show(d, running).at("exit_code") == 1);
  CHECK(tg::test::read_file(trap_file(work, running)) == "cleanup\n");
  wait_all_gone(pids, "the cancelled task's tree");
  // The group was not cancelled: the next task runs.
  CHECK(wait_tasks(d, {after}, kWaitTimeout) == 0);
  CHECK(tgctl_ok(d, {"logs", id_str(after)}) == "not cancelled\n");
  CHECK(show(d, queued).at("started_at").is_null());
  CHECK_FALSE(fs::exists(started_marker(work, queued)));
  CHECK(group_info(d, "byid").at("cancelling") == false);

  const auto unknown = d.tgctl({"cancel", "--task", id_str(after), "--task", "999999"});
  CHECK(unknown.exit_code == 1);  // All or nothing: an unknown id is not_found.
  CHECK_MESSAGE(unknown.err.find("999999") != std::string::npos, unknown.err);
}

TEST_CASE("In a fail-fast group the first failure cancels the rest, naming the failed task") {
  TestDaemon d({.args = {"--max-running", "4", "--kill-grace", "2s"}});
  ForceCancelAtExit guard(d, {"ff"});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "fail-now", kGatePolls);
  // Two tasks run (limit 2) and two wait; the one that will fail is queued ahead of those by
  // its priority and starts once the limit is raised, when everything else is in place (its
  // timeout counts from its start).
  tgctl_ok(d, {"group", "set", "ff", "--fail-fast", "--limit", "2"});
  const std::vector<std::int64_t> running = {submit_sh(d, "ff", cleanup_task(work)),
                                             submit_sh(d, "ff", cleanup_task(work))};
  std::vector<pid_t> pids;
  for (auto id : running) {
    wait_for_file(pids_file(work, id), "task " + id_str(id) + " running with its trap set");
    const auto p = recorded_pids(work, id);
    pids.insert(pids.end(), p.begin(), p.end());
  }
  const std::vector<std::int64_t> queued = {submit_sh(d, "ff", cleanup_task(work)),
                                            submit_sh(d, "ff", cleanup_task(work))};
  std::int64_t failing = 0;
  std::string failed_state;
  json failed_reason;  // null: it just exited.
  json failed_exit_code, failed_signal;
  SUBCASE("by exiting 1") {
    failing = submit(d, {"-g", "ff", "--priority", "10", "--", "sh", "-c",
                         prologue(work) + gate.wait_shell() + "; exit 1"});
    failed_state = "failed";
    failed_exit_code = 1;
  }
  SUBCASE("by timing out") {
    failing = submit(d, {"-g", "ff", "--priority", "10", "--timeout", "1s", "--", "sh", "-c",
                         prologue(work) + gate.wait_shell()});
    failed_state = "timed_out";
    failed_reason = "timed_out: exceeded 1s";
    failed_signal = SIGTERM;
  }
  SUBCASE("by a signal it sends itself") {
    // No core file: the default action of SIGSEGV is to dump one.
    failing = submit(d, {"-g", "ff", "--priority", "10", "--", "sh", "-c",
                         prologue(work) + "ulimit -c 0; " + gate.wait_shell() + "; kill -SEGV $$"});
    failed_state = "failed";
    failed_reason = "killed by signal 11 (SIGSEGV)";
    failed_signal = SIGSEGV;
  }
  tgctl_ok(d, {"group", "set", "ff", "--limit", "3"});
  wait_for_file(started_marker(work, failing), "the task that will fail running");
  CHECK(group_info(d, "ff").at("fail_fast") == true);

  if (failed_state == "failed") gate.open();  // The other one times out on its own.
  CHECK(wait_group(d, "ff") == 1);
  wait_all_gone(pids, "the other tasks' trees");
  const json f = show(d, failing);
  CAPTURE(f.dump());
  CHECK(f.at("state") == failed_state);
  CHECK(f.at("reason") == failed_reason);
  CHECK(f.at("exit_code") == failed_exit_code);
  CHECK(f.at("signal") == failed_signal);
  const std::string reason = "cancelled: fail-fast after task " + id_str(failing) + " failed";
  for (auto id : running) {
    const json t = show(d, id);
    CAPTURE(t.dump());
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") == reason);
    CHECK(tg::test::read_file(trap_file(work, id)) == "cleanup\n");
  }
  for (auto id : queued) {
    const json t = show(d, id);
    CAPTURE(t.dump());
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") == reason);
    CHECK(t.at("started_at").is_null());
    CHECK_FALSE(fs::exists(started_marker(work, id)));
  }
  const json c = group_info(d, "ff").at("last_cancel");
  CAPTURE(c.dump());
  CHECK(c.at("reason") == reason);
  CHECK(c.at("cancelled_queued") == 2);
  CHECK(c.at("signalled") == 2);
}

TEST_CASE(
    "A task past its --timeout ends timed_out with its tree gone, and one that ignores TERM "
    "is SIGKILLed after kill_grace") {
  TestDaemon d({.args = {"--max-running", "4", "--kill-grace", "1s"}});
  ForceCancelAtExit guard(d, {"slow"});
  const fs::path work = make_work_dir(d);
  const auto polite =
      submit(d, {"-g", "slow", "--timeout", "1s", "--", "sh", "-c",
                 prologue(work) + "sleep 100 & p1=$!; " + record_pids("$$ $p1") + "wait"});
  const auto stubborn =
      submit(d, {"-g", "slow", "--timeout", "1s", "--", "sh", "-c", stubborn_task(work)});
  wait_for_file(pids_file(work, polite), "the polite task running");
  wait_for_file(pids_file(work, stubborn), "the stubborn task running");
  const auto polite_pids = recorded_pids(work, polite),
             stubborn_pids = recorded_pids(work, stubborn);

  CHECK(wait_tasks(d, {polite, stubborn}, kWaitTimeout) == 1);
  wait_all_gone(polite_pids, "the polite task's tree");
  wait_all_gone(stubborn_pids, "the stubborn task's tree");
  const json p = show(d, polite);
  CAPTURE(p.dump());
  CHECK(p.at("state") == "timed_out");
  CHECK(p.at("reason") == "timed_out: exceeded 1s");
  CHECK(p.at("signal") == SIGTERM);
  CHECK(ran_ms(p) >= 1'000 - 1);  // Times have millisecond precision.
  const json s = show(d, stubborn);
  CAPTURE(s.dump());
  CHECK(s.at("state") == "timed_out");
  CHECK(s.at("reason") == "timed_out: exceeded 1s");
  CHECK(s.at("signal") == SIGKILL);
  CHECK(ran_ms(s) >= 2'000 - 1);  // Timeout, then the 1 s kill_grace.
  CHECK(ran_ms(s) < 2'000 + 3'000);
}

// The daemon does not wait for a child's exec, so a cancel can reach a child that has not yet
// made its own process group (docs/design.md, "Processes"): it must still die, unstarted or
// not, and nothing of it may be left.
TEST_CASE("A cancel that lands while its tasks are being spawned leaves no process behind") {
  TestDaemon d({.args = {"--max-running", "64"}});
  std::string batch;
  for (int i = 0; i < 64; ++i) batch += "exec sleep 30\n";
  RunOptions opts;
  opts.stdin_text = batch;
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    const std::string group = "burst" + std::to_string(round);
    const auto ids = parse_ids(tgctl_ok(d, {"submit", "-g", group, "--batch", "-"}, opts));
    REQUIRE(ids.size() == 64);
    tgctl_ok(d, {"cancel", group, "--grace", "5s"});
    CHECK(wait_group(d, group) == 1);
    wait_until(
        [&] { return tg::test::helpers::processes_with_env("TASKGROUPD_GROUP=" + group).empty(); },
        kEventTimeout, "no process of group " + group + " left");
    const json list = parse_json(tgctl_ok(d, {"list", "-g", group, "--json"})).at("tasks");
    REQUIRE(list.size() == 64);
    for (const auto& t : list) {
      CAPTURE(t.dump());
      CHECK(t.at("state") == "cancelled");
      CHECK(t.at("reason") == group_reason(group));
    }
  }
  CHECK(status(d).at("running") == 0);
}

TEST_CASE(
    "Tasks that exit just as their timeout fires are each recorded once and the daemon "
    "lives on") {
  TestDaemon d({.args = {"--max-running", "100"}});
  ForceCancelAtExit guard(d, {"edge"});
  // Exits spread around the 1 s timeout, 0.2 ms apart: some land in the same turn of the
  // daemon's loop as their timer, whose handler is then already queued when the exit is handled.
  std::string batch;
  for (int i = 0; i < 100; ++i) {
    char line[32];
    std::snprintf(line, sizeof line, "exec sleep %.4f\n", 0.990 + i * 0.0002);
    batch += line;
  }
  RunOptions opts;
  opts.stdin_text = batch;
  const auto ids =
      parse_ids(tgctl_ok(d, {"submit", "-g", "edge", "--timeout", "1s", "--batch", "-"}, opts));
  REQUIRE(ids.size() == 100);
  const auto waited = d.tgctl({"wait", "edge"});
  CHECK_MESSAGE(waited.exit_code <= 1, waited.err);
  CHECK_MESSAGE(waited.err.empty(), waited.err);  // Not "taskgroupd closed the connection".
  const auto alive = d.tgctl({"status", "--json"});
  REQUIRE_MESSAGE(alive.exit_code == 0, "taskgroupd died as its tasks ended: " << alive.err);
  const json st = parse_json(alive.out);
  CHECK(st.at("pid") == d.pid());
  CHECK(st.at("running") == 0);
  const json list = parse_json(tgctl_ok(d, {"list", "-g", "edge", "--json"})).at("tasks");
  REQUIRE(list.size() == 100);
  for (const auto& t : list) {
    CAPTURE(t.dump());
    if (t.at("state") == "succeeded") {
      CHECK(t.at("exit_code") == 0);
      CHECK(is_null_or_absent(t, "reason"));  // Not rewritten by a timeout that came too late.
    } else {
      CHECK(t.at("state") == "timed_out");
      CHECK(t.at("reason") == "timed_out: exceeded 1s");
    }
  }
}

TEST_CASE(
    "A task cancelled during its grace stays cancelled when its own timeout fires before "
    "the kill") {
  TestDaemon d;
  ForceCancelAtExit guard(d, {"overlap"});
  const fs::path work = make_work_dir(d);
  const auto id =
      submit(d, {"-g", "overlap", "--timeout", "1s", "--", "sh", "-c", stubborn_task(work)});
  wait_for_file(pids_file(work, id), "the stubborn task running");
  const auto pids = recorded_pids(work, id);
  // Cancelled first (the timeout is 1 s away); the timeout fires during the 2 s grace.
  CHECK(tgctl_ok(d, {"cancel", "overlap", "--grace", "2s"}) ==
        "overlap: cancelled 0 queued, signalled 1\n");
  CHECK(wait_group(d, "overlap") == 1);
  wait_all_gone(pids, "the stubborn tree");
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("signal") == SIGKILL);
  // The user cancelled it, and the group counts it as cancelled (last_cancel): its record must
  // say so, like a cancel arriving after a timeout does (engine_cancel.cpp).
  CHECK(t.at("state") == "cancelled");
  CHECK(t.at("reason") == group_reason("overlap"));
  const json c = group_info(d, "overlap").at("last_cancel");
  CAPTURE(c.dump());
  CHECK(c.at("signalled") == 1);
  CHECK(c.at("killed") == 1);
}

TEST_CASE("A cancel that comes during a timeout's grace leaves a state and a reason that agree") {
  TestDaemon d({.args = {"--kill-grace", "3s"}});
  ForceCancelAtExit guard(d, {"late"});
  const fs::path work = make_work_dir(d);
  const auto id =
      submit(d, {"-g", "late", "--timeout", "300ms", "--", "sh", "-c", stubborn_task(work)});
  wait_for_file(pids_file(work, id), "the stubborn task running");
  const auto pids = recorded_pids(work, id);
  const std::string stopping = "task " + id_str(id) + " stopping with signal";
  wait_until([&] { return d.log().find(stopping) != std::string::npos; }, kEventTimeout,
             "the timeout to send the stop signal");
  std::string cancel_reason;
  SUBCASE("of the group") {
    CHECK(tgctl_ok(d, {"cancel", "late"}) == "late: cancelled 0 queued, signalled 1\n");
    cancel_reason = group_reason("late");
  }
  SUBCASE("by id") {
    CHECK(tgctl_ok(d, {"cancel", "--task", id_str(id)}) ==
          "task " + id_str(id) + ": cancelled 0 queued, signalled 1\n");
    cancel_reason = "cancelled: task cancelled by uid " + my_uid();
  }
  CHECK(wait_tasks(d, {id}, kWaitTimeout) == 1);
  wait_all_gone(pids, "the stubborn tree, killed when the timeout's grace ends");
  const json t = show(d, id);
  CAPTURE(t.dump());
  CHECK(t.at("signal") == SIGKILL);
  // Whichever cause the daemon records, the state and the reason must tell the same story.
  if (t.at("state") == "timed_out") {
    CHECK(t.at("reason") == "timed_out: exceeded 300ms");
  } else {
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") == cancel_reason);
  }
}

TEST_CASE("A paused group starts nothing while other groups run, and runs again on resume") {
  TestDaemon d({.args = {"--max-running", "4"}});
  ForceCancelAtExit guard(d, {"held"});
  const fs::path work = make_work_dir(d);
  CHECK(tgctl_ok(d, {"pause", "held"}) == "held: paused\n");
  const auto held = submit_sh(d, "held", prologue(work) + "echo held ran");
  const auto other = submit(d, {"-g", "free", "--", "sh", "-c", "echo free ran"});
  CHECK(wait_tasks(d, {other}, kWaitTimeout) ==
        0);  // The scheduler has had its turns since the submit.
  const json g = group_info(d, "held");
  CAPTURE(g.dump());
  CHECK(g.at("paused") == true);
  CHECK(g.at("counts").at("queued") == 1);
  CHECK(show(d, held).at("state") == "queued");
  CHECK_FALSE(fs::exists(started_marker(work, held)));

  CHECK(tgctl_ok(d, {"resume", "held"}) == "held: resumed\n");
  CHECK(wait_tasks(d, {held}, kWaitTimeout) == 0);
  CHECK(fs::exists(started_marker(work, held)));
  CHECK(tgctl_ok(d, {"logs", id_str(held)}) == "held ran\n");
  CHECK(group_info(d, "held").at("paused") == false);

  // Cancelling a paused group cancels what waits in it.
  tgctl_ok(d, {"pause", "held"});
  const auto never = submit_sh(d, "held", prologue(work) + "echo never");
  CHECK(tgctl_ok(d, {"cancel", "held"}) == "held: cancelled 1 queued, signalled 0\n");
  const json t = show(d, never);
  CHECK(t.at("state") == "cancelled");
  CHECK(t.at("started_at").is_null());
  tgctl_ok(d, {"resume", "held"});
  CHECK(wait_group(d, "held") == 1);
  CHECK(show(d, never).at("state") == "cancelled");
  CHECK_FALSE(fs::exists(started_marker(work, never)));
}

TEST_CASE("A task cancels its own group with tgctl cancel \"$TASKGROUPD_GROUP\"") {
  TestDaemon d({.args = {"--max-running", "4", "--kill-grace", "2s"}});
  ForceCancelAtExit guard(d, {"self"});
  const fs::path work = make_work_dir(d);
  tgctl_ok(d, {"group", "set", "self", "--limit", "2"});
  RunOptions with_tgctl;  // Tasks get the submitter's environment.
  with_tgctl.env_extra = {{"TGCTL", TG_CLIENT_BIN}};
  Gate gate(work / "cancel-now", kGatePolls);
  const auto sibling = submit_sh(d, "self", cleanup_task(work), with_tgctl);
  const auto canceller = submit_sh(
      d, "self",
      prologue(work) + gate.wait_shell() + "; \"$TGCTL\" cancel \"$TASKGROUPD_GROUP\"; sleep 1000",
      with_tgctl);
  const auto queued = submit_sh(d, "self", cleanup_task(work), with_tgctl);
  wait_for_file(pids_file(work, sibling), "the sibling running with its trap set");
  wait_for_file(started_marker(work, canceller), "the canceller running");
  const auto pids = recorded_pids(work, sibling);

  gate.open();
  CHECK(wait_group(d, "self") == 1);
  wait_all_gone(pids, "the sibling's tree");
  for (auto id : {sibling, canceller, queued}) {
    const json t = show(d, id);
    CAPTURE(t.dump());
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") == group_reason("self"));
  }
  CHECK(tg::test::read_file(trap_file(work, sibling)) == "cleanup\n");
  CHECK(show(d, queued).at("started_at").is_null());
  CHECK_FALSE(fs::exists(started_marker(work, queued)));
  const json c = group_info(d, "self").at("last_cancel");
  CAPTURE(c.dump());
  CHECK(c.at("by_uid") == ::getuid());
  CHECK(c.at("cancelled_queued") == 1);
  CHECK(c.at("signalled") == 2);
}

// The cancel's TERM reaches the task's whole session, tgctl included, before its reply does
// (the daemon signals, then answers). tgctl holds it until the result is printed, then ends
// with exit 0 (issue 18, item 9). The shell traps TERM, so it lives on to record both.
TEST_CASE("tgctl cancel of its own group from inside a task prints the result and exits 0") {
  TestDaemon d;
  ForceCancelAtExit guard(d, {"self"});
  const fs::path work = make_work_dir(d);
  RunOptions with_tgctl;
  with_tgctl.env_extra = {{"TGCTL", TG_CLIENT_BIN}};
  const auto id =
      submit_sh(d, "self",
                prologue(work) + "trap 'echo term >> \"$W/trap-$id\"' TERM; " +
                    "\"$TGCTL\" cancel \"$TASKGROUPD_GROUP\" > \"$W/out\" 2> \"$W/err\"; " +
                    "echo $? > \"$W/code.tmp\"; mv \"$W/code.tmp\" \"$W/code\"",
                with_tgctl);
  wait_for_file(work / "code", "tgctl's exit code");
  CHECK(tg::test::read_file(work / "code") == "0\n");
  CHECK(tg::test::read_file(work / "out") == "self: cancelled 0 queued, signalled 1\n");
  CHECK(tg::test::read_file(work / "err") == "");
  CHECK(wait_group(d, "self") == 1);
  CHECK(tg::test::read_file(trap_file(work, id)) == "term\n");  // The TERM was for the task.
  CHECK(show(d, id).at("state") == "cancelled");
}

TEST_CASE("tgctl wait exits 0 when all succeeded and 1 otherwise, for groups and task ids") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const auto ok1 = submit(d, {"-g", "good", "--", "true"});
  const auto ok2 = submit(d, {"-g", "good", "--", "sh", "-c", "exit 0"});
  const auto good = submit(d, {"-g", "mixed", "--", "true"});
  const auto bad = submit(d, {"-g", "mixed", "--", "sh", "-c", "exit 1"});
  CHECK(wait_group(d, "good") == 0);
  CHECK(wait_group(d, "mixed") == 1);
  CHECK(wait_tasks(d, {ok1, ok2}, kWaitTimeout) == 0);
  CHECK(wait_tasks(d, {good}, kWaitTimeout) == 0);
  CHECK(wait_tasks(d, {bad}, kWaitTimeout) == 1);
  CHECK(wait_tasks(d, {good, bad}, kWaitTimeout) == 1);
  const auto unknown = d.tgctl({"wait", "--task", "999999"});
  CHECK(unknown.exit_code == 1);
  CHECK(d.tgctl({"wait", "no-such-group"}).exit_code == 1);
}

TEST_CASE("tgctl wait returns as soon as the last task ends") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release", kGatePolls);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(submit_sh(d, "w", prologue(work) + gate.wait_shell()));
  for (auto id : ids) wait_for_file(started_marker(work, id), "task " + id_str(id) + " running");

  const std::size_t waits_before = requests_logged(d, "wait");
  BackgroundProcess waiter(tgctl_argv(d, {"wait", "w"}));
  wait_until([&] { return requests_logged(d, "wait") > waits_before; }, kEventTimeout,
             "the daemon to receive the wait");
  CHECK_MESSAGE(waiter.running(),
                "wait returned while its tasks run: " << waiter.out() << waiter.err());
  const auto opened = Clock::now();
  gate.open();
  const auto st = waiter.wait(kEventTimeout);
  const auto took = since(opened);
  CHECK_MESSAGE(st.clean(), st.describe() << "\n" << waiter.out() << waiter.err());
  CHECK_MESSAGE(took < milliseconds(2'000), "wait took " << took.count() << " ms after release");
  // It did not return early: every task has ended.
  for (auto id : ids) CHECK(show(d, id).at("state") == "succeeded");
}

TEST_CASE("tgctl logs -f prints each line as the task writes it and exits 0 when it ends") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release", kGatePolls);
  const std::string script = "echo line 1; " + gate.wait_shell() + "; echo line 2";
  std::int64_t id = 0;
  std::size_t follows_before = 0;
  std::optional<BackgroundProcess> follower;

  SUBCASE("followed while it runs") {
    id = submit_sh(d, "lf", script);
    follows_before = requests_logged(d, "logs");
    follower.emplace(tgctl_argv(d, {"logs", "-f", id_str(id)}));
  }
  SUBCASE("followed from before it starts") {
    tgctl_ok(d, {"pause", "lf"});
    id = submit_sh(d, "lf", script);
    follows_before = requests_logged(d, "logs");
    follower.emplace(tgctl_argv(d, {"logs", "-f", id_str(id)}));
    wait_until([&] { return requests_logged(d, "logs") > follows_before; }, kEventTimeout,
               "the daemon to receive logs -f");
    CHECK(show(d, id).at("state") == "queued");
    tgctl_ok(d, {"resume", "lf"});
  }
  REQUIRE(follower.has_value());
  const bool first = follower->wait_for_output("line 1\n", kEventTimeout);
  CHECK_MESSAGE(first, "logs -f did not show line 1 while the task ran; stdout: "
                           << follower->out() << " stderr: " << follower->err());
  CHECK_FALSE(gate.is_open());
  CHECK(show(d, id).at("state") == "running");  // Live: the task has not written line 2 yet.
  CHECK(follower->out() == "line 1\n");

  gate.open();
  const auto st = follower->wait(kEventTimeout);
  CHECK_MESSAGE(st.clean(), st.describe() << " stderr: " << follower->err());
  CHECK(follower->out() == "line 1\nline 2\n");
  CHECK(show(d, id).at("state") == "succeeded");
}
