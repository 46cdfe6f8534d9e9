#include "client/render.h"

#include <signal.h>

#include <doctest/doctest.h>

namespace tg::client {

namespace {

constexpr TimeMs kNow = 1'700'000'100'000;  // 2023-11-14T22:15:00Z.

proto::TaskInfo task(proto::TaskId id, proto::TaskState state) {
  proto::TaskInfo t;
  t.id = id;
  t.group = "nightly";
  t.uid = 1000;
  t.user = "alice";
  t.state = state;
  t.argv = {"make", "-j4"};
  t.cwd = "/src";
  t.submitted_at = format_rfc3339(kNow - 60'000);
  return t;
}

}  // namespace

TEST_CASE("exit_text and elapsed_text: what a task has reached") {
  proto::TaskInfo t = task(1, proto::TaskState::kQueued);
  CHECK(exit_text(t) == "-");
  CHECK(elapsed_text(t, kNow) == "-");
  t.state = proto::TaskState::kRunning;
  t.started_at = format_rfc3339(kNow - 12'300);
  CHECK(elapsed_text(t, kNow) == "12.3s");
  t.state = proto::TaskState::kFailed;
  t.ended_at = format_rfc3339(kNow - 2'300);
  t.exit_code = 2;
  CHECK(exit_text(t) == "2");
  CHECK(elapsed_text(t, kNow) == "10.0s");
  t.exit_code.reset();
  t.signal = SIGKILL;
  CHECK(exit_text(t) == "SIGKILL");
}

TEST_CASE("render_task_table: aligned columns, and the command cut to the terminal") {
  proto::TaskInfo a = task(7, proto::TaskState::kRunning);
  a.started_at = format_rfc3339(kNow - 5'000);
  proto::TaskInfo b = task(12, proto::TaskState::kQueued);
  b.argv = {"echo 'a long shell command line' && sleep 100 && echo done"};
  b.shell = true;

  SUBCASE("not a terminal: nothing cut") {
    CHECK(render_task_table({a, b}, kNow, 0) ==
          "ID  GROUP    STATE    EXIT  ELAPSED  REASON  COMMAND\n"
          " 7  nightly  running     -     5.0s  -       make -j4\n"
          "12  nightly  queued      -        -  -       echo 'a long shell command line' && sleep "
          "100 && echo done\n");
  }
  SUBCASE("a 60-column terminal") {
    const std::string table = render_task_table({a, b}, kNow, 60);
    CHECK(table ==
          "ID  GROUP    STATE    EXIT  ELAPSED  REASON  COMMAND\n"
          " 7  nightly  running     -     5.0s  -       make -j4\n"
          "12  nightly  queued      -        -  -       echo 'a long shell \u2026\n");
  }
  SUBCASE("--wide on a 60-column terminal: nothing cut") {
    b.state = proto::TaskState::kFailed;
    b.reason = std::string(100, 'r');
    b.argv = {std::string(300, 'c')};
    const std::string table = render_task_table({a, b}, kNow, 60, Cut::kNone);
    CHECK(table.find(" " + std::string(100, 'r') + "  " + std::string(300, 'c') + "\n") !=
          std::string::npos);
    CHECK(table.find("\u2026") == std::string::npos);
  }
}

TEST_CASE("render_task_table: REASON says why a queued task waits, or why a task ended so") {
  proto::TaskInfo a = task(3, proto::TaskState::kQueued);
  a.pending_reason = "dependency";
  a.pending_on = {1, 2};
  proto::TaskInfo b = task(4, proto::TaskState::kQueued);
  b.pending_reason = "begin_time";
  b.begin_at = "2026-12-24T17:00:00Z";
  proto::TaskInfo c = task(5, proto::TaskState::kCancelled);
  c.reason = "cancelled: dependency 3 failed";
  const std::string table = render_task_table({a, b, c}, kNow, 0);
  CHECK(table.find(" dependency on 1,2 ") != std::string::npos);
  CHECK(table.find(" begin_time 2026-12-24T17:00:00Z ") != std::string::npos);
  CHECK(table.find(" cancelled: dependency 3 failed ") != std::string::npos);
  // On a terminal, cut to keep the command readable.
  const std::string narrow = render_task_table({c}, kNow, 120);
  CHECK(narrow.find("cancelled: dependency 3 fai\u2026") != std::string::npos);
}

TEST_CASE("render_task_table: a USER column appears when tasks have several owners") {
  proto::TaskInfo a = task(1, proto::TaskState::kQueued);
  proto::TaskInfo b = task(2, proto::TaskState::kQueued);
  b.uid = 1001;
  b.user = "";
  const std::string table = render_task_table({a, b}, kNow, 0);
  CHECK(table.rfind("ID  GROUP    USER   STATE", 0) == 0);
  CHECK(table.find("2  nightly  1001   queued") != std::string::npos);
}

TEST_CASE("TaskTableWriter: one header, the first page's widths, wider later rows shift") {
  proto::TaskInfo a = task(7, proto::TaskState::kRunning);
  a.started_at = format_rfc3339(kNow - 5'000);
  proto::TaskInfo b = task(12, proto::TaskState::kQueued);
  proto::TaskInfo c = task(1234, proto::TaskState::kQueued);
  c.group = "a-longer-group";
  c.argv = {"echo", "0123456789012345678901234567890123456789"};

  SUBCASE("pages print as they come; a wider cell widens its column from its page on") {
    TaskTableWriter table(kNow, 60, false);
    CHECK(table.page({}).empty());  // A page may be empty while more follows.
    CHECK(table.page({a, b}) ==
          "ID  GROUP    STATE    EXIT  ELAPSED  REASON  COMMAND\n"
          " 7  nightly  running     -     5.0s  -       make -j4\n"
          "12  nightly  queued      -        -  -       make -j4\n");
    CHECK(table.page({c}) ==
          "1234  a-longer-group  queued      -        -  -       echo 01234567890123\u2026\n");
    CHECK(table.page({b}) == "  12  nightly         queued      -        -  -       make -j4\n");
    CHECK(table.finish().empty());
  }
  SUBCASE("no task at all: the header alone") {
    TaskTableWriter table(kNow, 0, false);
    CHECK(table.page({}).empty());
    CHECK(table.finish() == "ID  GROUP  STATE  EXIT  ELAPSED  REASON  COMMAND\n");
  }
  SUBCASE("several_owners: USER although the first page has one owner") {
    TaskTableWriter table(kNow, 0, true);
    CHECK(table.page({b}).rfind("ID  GROUP    USER   STATE", 0) == 0);
  }
}

TEST_CASE("render_task: key: value lines with the reason and the times") {
  proto::TaskInfo t = task(42, proto::TaskState::kCancelled);
  t.reason = "cancelled: group 'nightly' cancelled by uid 1000";
  t.timeout_ms = 30'000;
  const std::string out = render_task(t, kNow);
  CHECK(out.find("id:         42\n") != std::string::npos);
  CHECK(out.find("state:      cancelled\n") != std::string::npos);
  CHECK(out.find("reason:     cancelled: group 'nightly' cancelled by uid 1000\n") !=
        std::string::npos);
  CHECK(out.find("timeout:    30s\n") != std::string::npos);
  CHECK(out.find("max log:    daemon's\n") != std::string::npos);
  t.max_log_bytes = 100 << 20;
  CHECK(render_task(t, kNow).find("max log:    100M\n") != std::string::npos);
  CHECK(out.find("submitted:  2023-11-14T22:14:00.000Z\n") != std::string::npos);
  CHECK(out.find("started:    -\n") != std::string::npos);
}

TEST_CASE("render_task: labels, the submit key and the task it restarts, when there are") {
  proto::TaskInfo t = task(43, proto::TaskState::kQueued);
  const std::string plain = render_task(t, kNow);
  CHECK(plain.find("labels:") == std::string::npos);
  CHECK(plain.find("key:") == std::string::npos);
  CHECK(plain.find("restarted from") == std::string::npos);
  t.labels = {{"team", "ml"}, {"env", "prod"}};
  t.key = "nightly-1";
  t.restarted_from = 7;
  const std::string out = render_task(t, kNow);
  CHECK(out.find("labels:     env=prod team=ml\n") != std::string::npos);
  CHECK(out.find("key:        nightly-1\n") != std::string::npos);
  CHECK(out.find("origin:     restarted from 7\n") != std::string::npos);
}

TEST_CASE("render_task: the CPU time and peak memory a task used, where accounted") {
  proto::TaskInfo t = task(44, proto::TaskState::kSucceeded);
  const std::string plain = render_task(t, kNow);
  CHECK(plain.find("cpu:") == std::string::npos);
  CHECK(plain.find("memory:") == std::string::npos);
  t.cpu_user_ms = 1'230;
  t.cpu_system_ms = 40;
  t.memory_peak_bytes = 12 << 20;
  const std::string out = render_task(t, kNow);
  CHECK(out.find("cpu:        1.2s user, 40ms system\n") != std::string::npos);
  CHECK(out.find("memory:     12M at peak\n") != std::string::npos);
}

TEST_CASE("render_groups: limits, flags, counts and the last cancel") {
  proto::GroupInfo g;
  g.name = "nightly";
  g.uid = 1000;
  g.limit = 4;
  g.paused = true;
  g.fail_fast = true;
  g.counts.queued = 3;
  g.counts.succeeded = 10;
  g.counts.failed = 1;
  g.counts.timed_out = 1;
  g.counts.interrupted = 2;
  g.counts.lost = 1;
  g.last_cancel = proto::CancelRecord{
      1000, "fail-fast after task 17 failed", "2023-11-14T22:00:00.000Z", std::nullopt, 3, 2, 0};
  proto::GroupInfo d;
  d.name = "default";
  d.uid = 1000;
  CHECK(render_groups({g, d}) ==
        "NAME     LIMIT  FLAGS             QUEUED  RUNNING  DONE  FAILED  INTERRUPTED  LOST  "
        "CANCELLED\n"
        "nightly      4  paused,fail-fast       3        0    10       2            2     1  "
        "        0\n"
        "default      -  -                      0        0     0       0            0     0  "
        "        0\n"
        "\n"
        "nightly: last cancel at 2023-11-14T22:00:00.000Z by uid 1000: cancelled 3 queued, "
        "signalled 2 (fail-fast after task 17 failed)\n");
}

TEST_CASE("render_status: config_error only when there is one") {
  proto::StatusResult s;
  s.version = "0.1.0";
  s.protocol = 1;
  s.uptime_ms = 7'830'000;
  CHECK(render_status(s).find("uptime:       2h10m\n") != std::string::npos);
  CHECK(render_status(s).find("config_error") == std::string::npos);
  s.isolation = "cgroups";
  CHECK(render_status(s).find("isolation:    cgroups\n") != std::string::npos);
  s.config_error = "line 3: unknown key 'max_runing'";
  CHECK(render_status(s).find("config_error:  line 3: unknown key 'max_runing'\n") !=
        std::string::npos);
}

TEST_CASE("render_cancel: names the group or the tasks and what was done") {
  proto::CancelResult r;
  r.cancelled_queued = 3;
  r.signalled = 2;
  proto::Cancel by_group;
  by_group.group = proto::GroupRef{"nightly", std::nullopt};
  CHECK(render_cancel(by_group, r) == "nightly: cancelled 3 queued, signalled 2");
  r.killed = 2;
  proto::Cancel by_ids;
  by_ids.ids = {4, 5};
  CHECK(render_cancel(by_ids, r) == "tasks 4 5: cancelled 3 queued, signalled 2, killed 2");
  by_ids.ids = {4};
  CHECK(render_cancel(by_ids, r).rfind("task 4: ", 0) == 0);
}

}  // namespace tg::client
