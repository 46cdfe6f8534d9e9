// Integration tests of persistence (DESIGN.md "Persistence" and "Crash", issue 4): an
// acknowledged submit survives kill -9 of the real daemon, queued work resumes in order, tasks
// running at a crash end `lost` (or run again with --requeue) and what they left behind is
// killed, a damaged or newer database is refused untouched, and a full or read-only state
// directory fails a submit cleanly while the daemon keeps serving.
//
// Crashes are real: SIGKILL of the taskgroupd process, then a new one on the same state dir.
// Tasks leave evidence in a work dir (their pids, markers, run counts); waits are for those
// events or for daemon replies, always bounded. The disk tests mount a small tmpfs or an ext4
// image on a loop device, and so need root (CI and these machines run as root); without it they
// fail, loudly, rather than skip.

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::ExitStatus;
using tg::test::RunOptions;
using tg::test::TempDir;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{15'000};
constexpr milliseconds kExitTimeout{10'000};
constexpr const char* kPython = "/usr/bin/python3";

// A clean stop (SIGTERM, exit 0) that leaves the daemon reaped, for tests that work on the
// store while no daemon runs.
void stop(TestDaemon& d) {
  d.send_signal(SIGTERM);
  const ExitStatus st = d.wait_exit(kExitTimeout);
  REQUIRE_MESSAGE(st.clean(), "taskgroupd after SIGTERM: " << st.describe());
}

// Starts the daemon on its state dir and REQUIREs a refusal: exit 1 within the timeout and
// exactly one line at error level or above. Returns that line.
std::string refused_start(TestDaemon& d) {
  d.restart();
  const ExitStatus st = d.wait_exit(kExitTimeout);
  REQUIRE_MESSAGE((!st.timed_out && st.signal == 0 && st.code == 1),
                  "taskgroupd on a bad store: " << st.describe() << " (want exit 1)");
  std::vector<std::string> errors;
  for (const auto& line : lines_of(log_of_last_start(d))) {
    // One line means one line: a message must not run over into lines of its own.
    CHECK_MESSAGE((line.size() > 24 && line[4] == '-' && line[10] == 'T' && line[23] == ' '),
                  "a log line without a timestamp (a message split over lines?): '" << line << "'");
    // "2026-11-22T02:58:40.534 critical message": the level is the second word.
    const auto words = line.find(' ');
    const std::string level = words == std::string::npos ? "" : line.substr(words + 1, 9);
    if (level.starts_with("critical") || level.starts_with("error")) errors.push_back(line);
  }
  REQUIRE_MESSAGE(errors.size() == 1, "want one error line, got:\n" << log_of_last_start(d));
  return errors.front();
}

// Runs python3 -c SCRIPT ARGS... and REQUIREs exit 0; returns its stdout. For editing a stored
// database the way another program (or a newer taskgroupd) would.
std::string python(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kPython, "-c", script};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = tg::test::run_process(argv);
  REQUIRE_MESSAGE(r.exit_code == 0, "python3 failed: " << r.err);
  return r.out;
}

// The database file and the WAL beside it, byte for byte ("" for a missing file).
struct StoreFiles {
  std::string db;
  std::string wal;
  bool operator==(const StoreFiles&) const = default;
};

StoreFiles store_files(const fs::path& state_dir) {
  return {tg::test::read_file(state_dir / "taskgroupd.db"),
          tg::test::read_file(state_dir / "taskgroupd.db-wal")};
}

std::size_t count_lines(const fs::path& file) {
  const std::string text = tg::test::read_file(file);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// A tmpfs mounted for one test, unmounted by the destructor (lazily, so that a failing test
// with a process still inside cannot leave it behind).
class TmpfsMount {
 public:
  TmpfsMount(fs::path where, const std::string& options) : path_(std::move(where)) {
    REQUIRE_MESSAGE(::geteuid() == 0,
                    "this test mounts a tmpfs and must run as root (CI does); not skipped");
    fs::create_directories(path_);
    REQUIRE_MESSAGE(::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0,
                    "mount tmpfs on " << path_ << ": " << tg::test::last_error());
    mounted_ = true;
  }
  ~TmpfsMount() {
    if (mounted_) (void)::umount2(path_.c_str(), MNT_DETACH);  // Test teardown: best effort.
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  void remount(bool read_only) {
    unsigned long flags = MS_REMOUNT;
    if (read_only) flags |= MS_RDONLY;
    REQUIRE_MESSAGE(
        ::mount("tmpfs", path_.c_str(), "tmpfs", flags, nullptr) == 0,
        "remount " << path_ << (read_only ? " ro: " : " rw: ") << tg::test::last_error());
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  bool mounted_ = false;
};

// An ext4 image, loop-mounted with errors=remount-ro for one test and unmounted (lazily) by the
// destructor. fail() makes the kernel record a file system error, which turns the mount
// read-only at once, also for files that are already open for writing: the only way to get a
// state dir that goes read-only under a running daemon (a plain `mount -o remount,ro` is
// refused with EBUSY while any file on it is open for writing).
class Ext4Mount {
 public:
  Ext4Mount(const fs::path& image, fs::path where) : path_(std::move(where)) {
    REQUIRE_MESSAGE(::geteuid() == 0,
                    "this test loop-mounts an ext4 image and must run as root; not skipped");
    fs::create_directories(path_);
    {
      tg::test::Fd fd(::open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      REQUIRE(fd.valid());
      REQUIRE(::ftruncate(fd.get(), 32 << 20) == 0);
    }
    const auto mkfs = tg::test::run_process({"/sbin/mkfs.ext4", "-q", "-F", image.string()});
    REQUIRE_MESSAGE(mkfs.exit_code == 0, "mkfs.ext4: " << mkfs.err);
    mount(image);
  }
  ~Ext4Mount() {
    if (mounted_) (void)::umount2(path_.c_str(), MNT_DETACH);  // Test teardown: best effort.
  }
  Ext4Mount(const Ext4Mount&) = delete;
  Ext4Mount& operator=(const Ext4Mount&) = delete;

  void mount(const fs::path& image) {
    const auto r = tg::test::run_process(
        {"/bin/mount", "-o", "loop,errors=remount-ro", image.string(), path_.string()});
    REQUIRE_MESSAGE(r.exit_code == 0, "mount " << image << ": " << r.err);
    mounted_ = true;
  }
  void unmount() {
    REQUIRE_MESSAGE(::umount2(path_.c_str(), 0) == 0, "umount: " << tg::test::last_error());
    mounted_ = false;
  }
  // A file system error: the kernel remounts it read-only ("emergency_ro").
  void fail() const {
    const std::string dev = fs::path(source()).filename().string();  // "loop3".
    tg::test::write_file("/sys/fs/ext4/" + dev + "/trigger_fs_error", "test\n");
    const tg::test::Fd probe(
        ::open((path_ / "probe").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    REQUIRE_MESSAGE((!probe.valid() && errno == EROFS), "still writable after the error");
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  // The device mounted at path_, from /proc/self/mountinfo ("... - ext4 /dev/loop3 rw,...").
  [[nodiscard]] std::string source() const {
    for (const auto& line : lines_of(tg::test::read_file("/proc/self/mountinfo"))) {
      std::istringstream in(line);
      std::vector<std::string> f;
      for (std::string w; in >> w;) f.push_back(w);
      const auto dash = std::find(f.begin(), f.end(), "-");
      if (f.size() > 4 && f[4] == path_.string() && dash != f.end() && dash + 2 < f.end()) {
        return *(dash + 2);
      }
    }
    FAIL("no mount at " << path_);
    return {};
  }

  fs::path path_;
  bool mounted_ = false;
};

// Writes zeros to `file` until the file system is full; REQUIREs ENOSPC within `max_bytes`.
void fill_up(const fs::path& file, std::size_t max_bytes) {
  tg::test::Fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  REQUIRE(fd.valid());
  const std::string chunk(4096, '\0');
  std::size_t written = 0;
  for (;;) {
    const ssize_t w = ::write(fd.get(), chunk.data(), chunk.size());
    if (w < 0) {
      REQUIRE_MESSAGE(errno == ENOSPC, "filling " << file << ": " << tg::test::last_error());
      return;
    }
    written += static_cast<std::size_t>(w);
    REQUIRE_MESSAGE(written <= max_bytes, "wrote " << written << " bytes and still not full");
  }
}

std::set<std::int64_t> ids_of(const std::map<std::int64_t, json>& tasks) {
  std::set<std::int64_t> ids;
  for (const auto& [id, t] : tasks) ids.insert(id);
  return ids;
}

}  // namespace

TEST_CASE("Every submit acknowledged right before a kill -9 is there after restart, 20 rounds") {
  TestDaemon d({.args = {"--max-running", "2"}});
  tgctl_ok(d, {"pause", "held"});
  std::vector<std::int64_t> acked;
  std::vector<std::int64_t> held;  // Queued in the paused group: they must still be queued.
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    std::vector<std::int64_t> now;
    switch (round % 4) {
      case 0:
        now.push_back(submit(d, {"-g", "held", "--", "echo", "held", id_str(round)}));
        held.push_back(now.back());
        break;
      case 1:
        now.push_back(submit(d, {"-g", "runs", "--", "true"}));
        break;
      case 2:
        now.push_back(submit(d, {"-g", "runs", "--requeue", "--", "true"}));
        break;
      case 3: {
        RunOptions batch;
        batch.stdin_text = "true\necho two\necho three\n";
        now = parse_ids(tgctl_ok(d, {"submit", "-g", "batches", "--batch", "-"}, batch));
        REQUIRE(now.size() == 3);
        break;
      }
    }
    d.crash();  // Right after the reply: no time for anything else to reach the disk.
    d.restart();
    for (auto id : now) {
      CHECK_MESSAGE((acked.empty() || id > acked.back()), "id " << id << " reused or out of order");
      acked.push_back(id);
    }
    const auto tasks = list_all(d);
    for (auto id : acked)
      CHECK_MESSAGE(tasks.count(id) == 1, "acknowledged task " << id << " lost");
    for (auto id : held) CHECK(tasks.at(id).at("state") == "queued");
    for (const auto& [id, t] : tasks) {
      if (t.at("requeue") == true) CHECK(t.at("state") != "lost");
    }
  }
  // The paused group kept its tasks (and its pause) through 20 crashes; they run now.
  tgctl_ok(d, {"resume", "held"});
  CHECK(wait_tasks(d, held) == 0);
  const auto tasks = list_all(d);
  CHECK(tasks.size() == acked.size());
  for (auto id : held) {
    CHECK(tgctl_ok(d, {"logs", id_str(id)}).starts_with("held "));
  }
}

TEST_CASE("Clients submitting while the daemon is kill -9ed at random moments lose nothing") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  const fs::path acked_file = work / "acked";
  const unsigned seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  const std::string tgctl = "T='" + std::string(TG_CLIENT_BIN) + "'; S='" + d.socket_path() +
                            "'; A='" + acked_file.string() +
                            "'; n=0; while [ $n -lt 3000 ]; do n=$((n+1)); ";
  // One client submits single tasks that are queued again after a crash; the other batches of
  // three that end `lost` if a crash catches them running. Each records an id only once tgctl
  // has printed it (the daemon acknowledged it) and stops at the first failure.
  const std::string singles =
      tgctl + "out=$(\"$T\" --socket \"$S\" submit -g singles --requeue -- true) || exit 0; " +
      "echo \"$out\" >> \"$A\"; done";
  const std::string batches =
      tgctl + "out=$(printf 'true\\ntrue\\ntrue\\n' | \"$T\" --socket \"$S\" submit -g batches " +
      "--batch -); rc=$?; [ -n \"$out\" ] && echo \"$out\" >> \"$A\"; [ $rc -eq 0 ] || exit 0; " +
      "done";

  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    CAPTURE(round);
    const std::size_t before = count_lines(acked_file);
    const std::size_t kill_after = before + std::uniform_int_distribution<std::size_t>(3, 60)(rng);
    {
      BackgroundShell a(singles, work / "client.log");
      BackgroundShell b(batches, work / "client.log");
      wait_until([&] { return count_lines(acked_file) >= kill_after; }, milliseconds(60'000),
                 "clients to be acknowledged " + std::to_string(kill_after) + " ids");
      d.crash();
      CHECK(a.wait(kExitTimeout).code == 0);  // They stop at their first failed submit.
      CHECK(b.wait(kExitTimeout).code == 0);
    }
    const std::int64_t restarted_at = wall_now_ms();
    d.restart();

    const auto acked = parse_ids(tg::test::read_file(acked_file));
    const std::set<std::int64_t> unique(acked.begin(), acked.end());
    CHECK_MESSAGE(unique.size() == acked.size(), "an id was acknowledged twice");
    const auto tasks = list_all(d);
    for (auto id : acked) {
      CHECK_MESSAGE(tasks.count(id) == 1, "acknowledged task " << id << " lost in the crash");
    }
    for (const auto& [id, t] : tasks) {
      // Running now means started by this daemon: nothing is stuck from before the crash.
      if (t.at("state") == "running") CHECK(time_ms(t.at("started_at")) >= restarted_at);
      if (t.at("group") == "singles") CHECK(t.at("state") != "lost");  // --requeue.
    }
  }

  // The rest runs to completion: every task ends, the requeued ones succeed.
  const auto tasks = list_all(d);
  std::vector<std::int64_t> all;
  for (const auto& [id, t] : tasks) all.push_back(id);
  REQUIRE(!all.empty());
  (void)wait_tasks(d, all, milliseconds(90'000));
  std::size_t lost = 0;
  for (const auto& [id, t] : list_all(d)) {
    CAPTURE(t.dump());
    const std::string state = t.at("state");
    CHECK((state == "succeeded" || state == "lost"));
    if (state == "lost") {
      ++lost;
      CHECK(t.at("group") == "batches");
      CHECK(t.at("reason").is_string());
    }
  }
  MESSAGE(tasks.size() << " tasks in " << kRounds << " crashes, " << lost << " lost");
}

TEST_CASE("Queued tasks keep their order across a restart") {
  SUBCASE("after a crash with the only slot taken by a blocked task") {
    TestDaemon d({.args = {"--max-running", "1"}});
    const fs::path work = make_work_dir(d);
    Gate gate(work / "release");
    const auto blocker =
        submit(d, {"-g", "block", "--", "sh", "-c",
                   tracked_script(work, {.body = gate.wait_shell(), .grandchild_s = 20})});
    wait_started(work, {blocker});
    const fs::path order = work / "order";
    std::vector<std::int64_t> ids;
    const auto queue = [&](const std::string& group, const std::string& name, int priority) {
      ids.push_back(submit(d, {"-g", group, "--priority", std::to_string(priority), "--", "sh",
                               "-c", "echo " + name + " >> '" + order.string() + "'"}));
    };
    queue("ord", "low", 0);
    queue("ord", "high", 10);
    queue("ord", "mid-a", 5);
    queue("other", "mid-other", 5);  // Across groups too: priority, then id.
    queue("ord", "mid-b", 5);
    queue("other", "negative", -3);
    CHECK(status(d).at("queued") == 6);

    d.crash();
    d.restart();
    CHECK(wait_tasks(d, ids) == 0);
    CHECK(show(d, blocker).at("state") == "lost");
    CHECK(lines_of(tg::test::read_file(order)) ==
          std::vector<std::string>{"high", "mid-a", "mid-other", "mid-b", "low", "negative"});
  }
  SUBCASE("after a clean stop with the group paused") {
    TestDaemon d({.args = {"--max-running", "1"}});
    const fs::path work = make_work_dir(d);
    const fs::path order = work / "order";
    tgctl_ok(d, {"pause", "ord"});
    std::vector<std::int64_t> ids;
    for (const auto& [name, priority] : std::vector<std::pair<std::string, int>>{
             {"first-0", 0}, {"a-7", 7}, {"second-0", 0}, {"b-7", 7}, {"minus-1", -1}}) {
      ids.push_back(submit(d, {"-g", "ord", "--priority", std::to_string(priority), "--", "sh",
                               "-c", "echo " + name + " >> '" + order.string() + "'"}));
    }
    d.restart();
    CHECK(status(d).at("queued") == 5);
    CHECK(tg::test::read_file(order).empty());  // Still paused after the restart.
    tgctl_ok(d, {"resume", "ord"});
    CHECK(wait_tasks(d, ids) == 0);
    CHECK(lines_of(tg::test::read_file(order)) ==
          std::vector<std::string>{"a-7", "b-7", "first-0", "second-0", "minus-1"});
  }
}

TEST_CASE("A task running at a crash is lost, and one submitted with --requeue runs again") {
  TestDaemon d({.args = {"--max-running", "2"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const std::string counted = "echo run >> \"$W/runs-$I\"; " + gate.wait_shell();
  const auto plain = submit(d, {"--", "sh", "-c", tracked_script(work, {.body = counted})});
  const auto again =
      submit(d, {"--requeue", "--", "sh", "-c", tracked_script(work, {.body = counted})});
  wait_started(work, {plain, again});
  wait_until([&] { return count_lines(work / ("runs-" + id_str(again))) == 1; }, kEventTimeout,
             "the --requeue task's first run");
  std::vector<pid_t> first_run = task_pids(work, plain);
  for (pid_t p : task_pids(work, again)) first_run.push_back(p);
  const auto started_before = time_ms(show(d, again).at("started_at"));

  d.crash();
  CHECK(alive_of(first_run) == first_run);  // The daemon's death alone kills no task.
  d.restart();

  const json lost = show(d, plain);
  CHECK(lost.at("state") == "lost");
  REQUIRE(lost.at("reason").is_string());
  CHECK(lost.at("reason").get<std::string>().find("lost") != std::string::npos);
  CHECK(lost.at("ended_at").is_string());
  wait_until([&] { return count_lines(work / ("runs-" + id_str(again))) == 2; }, kEventTimeout,
             "the --requeue task to run a second time");
  const json rerun = show(d, again);
  CHECK(rerun.at("state") == "running");
  CHECK(time_ms(rerun.at("started_at")) > started_before);
  wait_until([&] { return alive_of(first_run).empty(); }, kEventTimeout,
             "the first run's processes to be gone");
  gate.open();
  CHECK(wait_tasks(d, {again}) == 0);
  CHECK(show(d, again).at("state") == "succeeded");
  CHECK(show(d, plain).at("state") == "lost");  // Final: waiting did not change it.
}

TEST_CASE("Processes left by tasks running at a crash, grandchildren too, are killed on restart") {
  TestDaemon d({.args = {"--max-running", "3"}});
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const auto done = submit(d, {"--", "true"});
  const auto failed = submit(d, {"--", "sh", "-c", "echo some output; exit 3"});
  CHECK(wait_tasks(d, {done}) == 0);
  CHECK(wait_tasks(d, {failed}) == 1);
  std::vector<std::int64_t> ids;
  ids.push_back(submit(d, {"--", "sh", "-c", tracked_script(work, {.body = gate.wait_shell()})}));
  ids.push_back(submit(d, {"--", "sh", "-c",
                           tracked_script(work, {.body = "trap '' TERM; " + gate.wait_shell(),
                                                 .ignore_term_grandchild = true})}));
  wait_started(work, ids);
  std::vector<pid_t> pids;
  for (auto id : ids) {
    for (pid_t p : task_pids(work, id)) pids.push_back(p);
  }
  REQUIRE(pids.size() == 4);

  d.crash();
  CHECK(alive_of(pids) == pids);  // Leader and grandchild of each: alive, orphaned.
  d.restart();
  wait_until([&] { return alive_of(pids).empty(); }, kEventTimeout,
             "the restarted daemon to kill the leftover leaders and grandchildren");
  for (auto id : ids) CHECK(show(d, id).at("state") == "lost");
  // What had ended before the crash keeps its state, exit code and log.
  CHECK(show(d, done).at("state") == "succeeded");
  const json f = show(d, failed);
  CHECK(f.at("state") == "failed");
  CHECK(f.at("exit_code") == 3);
  CHECK(tgctl_ok(d, {"logs", id_str(failed)}) == "some output\n");
  CHECK(d.log().find("leftover") != std::string::npos);
}

TEST_CASE("A group cancel of queued tasks is in the store when it returns: kill -9 loses none") {
  TestDaemon d;
  tgctl_ok(d, {"pause", "doomed"});
  tgctl_ok(d, {"pause", "kept"});
  // Interleaved ids and mixed priorities: the cancel must take exactly the group's tasks.
  std::vector<std::int64_t> doomed, kept;
  for (int i = 0; i < 50; ++i) {
    doomed.push_back(
        submit(d, {"-g", "doomed", "--priority=" + std::to_string(i % 3 - 1), "--", "true"}));
    kept.push_back(submit(d, {"-g", "kept", "--", "true"}));
  }
  const std::string out = tgctl_ok(d, {"cancel", "doomed"});
  CHECK_MESSAGE(out.find("cancelled 50 queued") != std::string::npos, out);
  d.crash();
  d.restart();
  const auto all = list_all(d);
  for (auto id : doomed) {
    const json& t = all.at(id);
    CHECK(t.at("state") == "cancelled");
    CHECK(t.at("reason") ==
          "cancelled: group 'doomed' cancelled by uid " + std::to_string(::getuid()));
    CHECK(t.at("ended_at").is_string());
  }
  for (auto id : kept) CHECK(all.at(id).at("state") == "queued");
  CHECK(status(d).at("queued") == 50);
  // The group takes work again, and the new task is not caught by the old cancel.
  tgctl_ok(d, {"resume", "doomed"});
  const auto again = submit(d, {"-g", "doomed", "--", "true"});
  CHECK(wait_tasks(d, {again}) == 0);
}

TEST_CASE(
    "A second daemon on the same state dir is refused and leaves the first one's tasks alone") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const auto id = submit(d, {"--", "sh", "-c", tracked_script(work, {.body = gate.wait_shell()})});
  wait_started(work, {id});
  const pid_t leader = task_pids(work, id).front();

  // Another socket, the same state dir: it must not recover (and kill) what the first runs.
  tg::test::write_file(d.dir() / "none.toml", "");
  const auto out = tg::test::run_process(
      {TG_DAEMON_BIN, "--socket", (d.dir() / "second.sock").string(), "--state-dir",
       d.state_dir().string(), "--config", (d.dir() / "none.toml").string()},
      {.stdin_text = "", .env_extra = {}, .cwd = {}, .timeout = kExitTimeout});
  CHECK(out.exit_code == 1);
  CHECK_MESSAGE(out.err.find("another taskgroupd (pid " + std::to_string(d.pid()) +
                             ") is using state directory") != std::string::npos,
                out.err);
  CHECK(std::count(out.err.begin(), out.err.end(), '\n') == 1);
  CHECK_FALSE(fs::exists(d.dir() / "second.sock"));
  CHECK(process_alive(leader));
  CHECK(show(d, id).at("state") == "running");

  gate.open();
  CHECK(wait_tasks(d, {id}) == 0);
  // The lock goes with the process, even with kill -9: the next start takes it.
  d.crash();
  d.restart();
  CHECK(show(d, id).at("state") == "succeeded");
}

TEST_CASE("A pid reused by an unrelated process after a crash is not killed on restart") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const auto id = submit(d, {"--", "sh", "-c", tracked_script(work, {.body = gate.wait_shell()})});
  wait_started(work, {id});
  const auto task_group = task_pids(work, id).front();
  d.crash();
  REQUIRE(::kill(-task_group, SIGKILL) == 0);  // The task dies with its daemon...
  wait_until([&] { return alive_of(task_pids(work, id)).empty(); }, kEventTimeout,
             "the task's processes to die");

  // ...and its pid goes to someone else: an unrelated process leading its own process group,
  // as the task did. The store is edited to name it, as if the pid had been reused.
  const pid_t stranger = ::fork();
  REQUIRE(stranger >= 0);
  if (stranger == 0) {
    (void)::setsid();
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const char* argv[] = {"/bin/sleep", "30", nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    ::_exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      (void)::kill(pid, SIGKILL);
      (void)tg::test::wait_for_exit(pid, kExitTimeout);
    }
  } reap{stranger};
  wait_until(
      [&] {
        return tg::test::read_file("/proc/" + std::to_string(stranger) + "/comm") == "sleep\n";
      },
      kEventTimeout, "the stranger to exec sleep");
  python(
      "import sqlite3, sys\n"
      "c = sqlite3.connect(sys.argv[1])\n"
      "n = c.execute('UPDATE tasks SET pid = ? WHERE id = ? AND state = ?',\n"
      "              (int(sys.argv[2]), int(sys.argv[3]), 'running')).rowcount\n"
      "c.commit(); c.close()\n"
      "sys.exit(0 if n == 1 else 3)\n",
      {(d.state_dir() / "taskgroupd.db").string(), std::to_string(stranger), id_str(id)});

  d.restart();
  const json t = show(d, id);
  CHECK(t.at("state") == "lost");
  CHECK(t.at("pid") == stranger);
  // Recovery is over once the daemon answers; the stranger's start time did not match.
  CHECK(process_alive(stranger));
  CHECK(d.log().find("leftover process group " + std::to_string(stranger)) == std::string::npos);
}

TEST_CASE("A task's processes from another boot are not killed, even with pid and start time") {
  TestDaemon d;
  const fs::path work = make_work_dir(d);
  Gate gate(work / "release");
  const auto id = submit(d, {"--", "sh", "-c", tracked_script(work, {.body = gate.wait_shell()})});
  wait_started(work, {id});
  const std::vector<pid_t> pids = task_pids(work, id);
  struct Reap {
    pid_t group;
    ~Reap() { (void)::kill(-group, SIGKILL); }  // Test teardown: best effort.
  } reap{pids.front()};
  d.crash();
  // As after a reboot that happened to give the leader the same pid and start time: the
  // store's boot id is another one.
  python(
      "import sqlite3, sys\n"
      "c = sqlite3.connect(sys.argv[1])\n"
      "n = c.execute('UPDATE tasks SET boot_id = ? WHERE id = ? AND state = ? AND boot_id != ?',\n"
      "              ('another-boot', int(sys.argv[2]), 'running', '')).rowcount\n"
      "c.commit(); c.close()\n"
      "sys.exit(0 if n == 1 else 3)\n",
      {(d.state_dir() / "taskgroupd.db").string(), id_str(id)});

  d.restart();
  CHECK(show(d, id).at("state") == "lost");
  // Recovery is over once the daemon answers: the processes were left alone.
  CHECK(alive_of(pids) == pids);
  CHECK(d.log().find("leftover process group") == std::string::npos);
  CHECK(d.log().find("another or an unknown boot") != std::string::npos);
}

TEST_CASE("A corrupt database is refused with one clear line and exit 1, and left as it was") {
  TestDaemon d;
  tgctl_ok(d, {"pause", "kept"});
  std::string batch;
  for (int i = 0; i < 400; ++i)
    batch += "echo a line long enough to fill pages " + id_str(i) + "\n";
  RunOptions opts;
  opts.stdin_text = batch;
  const auto ids = parse_ids(tgctl_ok(d, {"submit", "-g", "kept", "--batch", "-"}, opts));
  REQUIRE(ids.size() == 400);
  stop(d);

  const fs::path db = d.state_dir() / "taskgroupd.db";
  const StoreFiles good = store_files(d.state_dir());
  REQUIRE(good.db.size() >= 8 * 4096);
  std::string damaged = good.db;
  std::string want_in_error;
  SUBCASE("garbage over a page in the middle") {
    const std::size_t page = (good.db.size() / 4096) / 2;
    for (std::size_t i = 0; i < 4096; ++i) damaged[page * 4096 + i] = static_cast<char>(i * 7 + 13);
    want_in_error = "corrupt";
  }
  SUBCASE("garbage over the header") {
    for (std::size_t i = 0; i < 100; ++i) damaged[i] = static_cast<char>(0xA5);
    want_in_error = "not a taskgroupd database";
  }
  tg::test::write_file(db, damaged);
  const StoreFiles before = store_files(d.state_dir());

  const std::string line = refused_start(d);
  CHECK_MESSAGE(line.find(want_in_error) != std::string::npos, line);
  CHECK_MESSAGE(line.find(db.string()) != std::string::npos, line);
  CHECK_MESSAGE(line.find("refusing to start") != std::string::npos, line);
  CHECK_MESSAGE(store_files(d.state_dir()) == before, "the refused start changed the store");

  // Nothing was lost by refusing: with the good file back, every task is there.
  tg::test::write_file(db, good.db);
  d.restart();
  CHECK(status(d).at("queued") == 400);
  CHECK(show(d, ids.back()).at("state") == "queued");
}

TEST_CASE("A database with a newer schema version is refused and left untouched") {
  TestDaemon d;
  tgctl_ok(d, {"pause", "kept"});
  const auto id = submit(d, {"-g", "kept", "--", "true"});
  stop(d);
  const std::string db = (d.state_dir() / "taskgroupd.db").string();
  const std::string ours =
      lines_of(python("import sqlite3, sys\n"
                      "c = sqlite3.connect(sys.argv[1])\n"
                      "print(c.execute('PRAGMA user_version').fetchone()[0])\n"
                      "c.execute('PRAGMA user_version = 9999'); c.commit(); c.close()\n",
                      {db}))
          .at(0);
  REQUIRE(std::stoi(ours) >= 1);
  const StoreFiles before = store_files(d.state_dir());

  const std::string line = refused_start(d);
  CHECK_MESSAGE(line.find("9999") != std::string::npos, line);
  CHECK_MESSAGE(line.find("newer") != std::string::npos, line);
  CHECK_MESSAGE(line.find("refusing to start") != std::string::npos, line);
  CHECK_MESSAGE(store_files(d.state_dir()) == before, "the refused start changed the store");

  python(
      "import sqlite3, sys\n"
      "c = sqlite3.connect(sys.argv[1])\n"
      "c.execute('PRAGMA user_version = ' + str(int(sys.argv[2]))); c.commit(); c.close()\n",
      {db, ours});
  d.restart();
  CHECK(show(d, id).at("state") == "queued");
}

TEST_CASE("On a full disk a submit fails with a clear error, the daemon serves on, and recovers") {
  TempDir base;
  TmpfsMount disk(base.path() / "state", "size=2m,mode=0700");
  TestDaemon d({.args = {"--max-running", "2"}, .state_dir = disk.path()});
  std::set<std::int64_t> acked;
  const auto first = submit(d, {"--", "echo", "before"});
  acked.insert(first);
  CHECK(wait_tasks(d, {first}) == 0);
  tgctl_ok(d, {"pause", "held"});
  acked.insert(submit(d, {"-g", "held", "--", "echo", "held"}));

  fill_up(disk.path() / "filler", 4 << 20);
  // A single submit needs at least one new WAL frame: no room for it. Whatever the daemon
  // acknowledges is kept, but one of a few tries must fail, and fail clearly.
  tg::test::ProcessOutput refused;
  for (int i = 0; i < 20 && refused.exit_code != 1; ++i) {
    refused = d.tgctl({"submit", "-g", "held", "--", "echo", "while full"});
    if (refused.exit_code == 0) {
      for (auto id : parse_ids(refused.out)) acked.insert(id);
    }
  }
  REQUIRE_MESSAGE(refused.exit_code == 1, "no submit failed on a full disk: " << refused.err);
  CHECK(refused.out.empty());
  CHECK(lines_of(refused.err).size() == 1);
  CHECK_MESSAGE(refused.err.find("disk full") != std::string::npos, refused.err);
  CHECK_MESSAGE(refused.err.find("could not save") != std::string::npos, refused.err);

  std::string big;
  for (int i = 0; i < 300; ++i) big += "echo " + std::string(1000, 'x') + "\n";
  RunOptions batch;
  batch.stdin_text = big;
  const auto batch_refused = d.tgctl({"submit", "-g", "held", "--batch", "-"}, batch);
  CHECK(batch_refused.exit_code == 1);
  CHECK(batch_refused.out.empty());

  // Still serving: queries answer from memory, and show only what was acknowledged.
  CHECK(status(d).at("pid") == d.pid());
  CHECK(ids_of(list_all(d)) == acked);

  fs::remove(disk.path() / "filler");
  const auto after = submit(d, {"--", "echo", "after"});
  acked.insert(after);
  CHECK(wait_tasks(d, {after}) == 0);
  CHECK(tgctl_ok(d, {"logs", id_str(after)}) == "after\n");
  CHECK(ids_of(list_all(d)) == acked);

  // Nothing half-written reached the store either.
  d.restart();
  const auto tasks = list_all(d);
  CHECK(ids_of(tasks) == acked);
  for (const auto& [id, t] : tasks) {
    const std::string want = t.at("group") == "held" ? "queued" : "succeeded";
    CHECK(t.at("state") == want);
  }
}

TEST_CASE("A read-only state dir is refused at start with one clear line and left untouched") {
  TempDir base;
  TmpfsMount disk(base.path() / "state", "size=4m,mode=0700");
  TestDaemon d({.state_dir = disk.path()});
  tgctl_ok(d, {"pause", "held"});
  const auto id = submit(d, {"-g", "held", "--", "true"});
  stop(d);
  disk.remount(true);
  const StoreFiles before = store_files(disk.path());

  const std::string line = refused_start(d);
  CHECK_MESSAGE((line.find("not writable") != std::string::npos ||
                 line.find("read-only") != std::string::npos),
                line);
  CHECK_MESSAGE(line.find(disk.path().string()) != std::string::npos, line);
  CHECK(store_files(disk.path()) == before);

  disk.remount(false);
  d.restart();
  CHECK(show(d, id).at("state") == "queued");
}

TEST_CASE(
    "A state dir turning read-only under the daemon fails submits clearly, and it serves on") {
  TempDir base;
  Ext4Mount disk(base.path() / "disk.img", base.path() / "state");
  TestDaemon d({.args = {"--max-running", "2"}, .state_dir = disk.path()});
  std::set<std::int64_t> acked;
  const auto done = submit(d, {"--", "echo", "before"});
  acked.insert(done);
  CHECK(wait_tasks(d, {done}) == 0);
  tgctl_ok(d, {"pause", "held"});
  acked.insert(submit(d, {"-g", "held", "--", "echo", "held"}));

  disk.fail();
  const auto refused = d.tgctl({"submit", "-g", "held", "--", "echo", "while read-only"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.out.empty());
  CHECK(lines_of(refused.err).size() == 1);
  CHECK_MESSAGE(refused.err.find("could not save") != std::string::npos, refused.err);
  CHECK_MESSAGE(refused.err.find("read-only") != std::string::npos, refused.err);
  RunOptions batch;
  batch.stdin_text = "true\ntrue\ntrue\n";
  CHECK(d.tgctl({"submit", "-g", "held", "--batch", "-"}, batch).exit_code == 1);
  // Other requests make their change, but must not call it saved.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"cancel", "--task", id_str(*acked.rbegin())},
        {"pause", "other"},
        {"pause", "held"},
        {"group", "set", "held", "--limit", "3"}}) {
    CAPTURE(args.front());
    const auto r = d.tgctl(args);
    CHECK(r.exit_code == 1);
    CHECK(lines_of(r.err).size() == 1);
    CHECK_MESSAGE(r.err.find("not yet saved") != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("read-only") != std::string::npos, r.err);
    CHECK_MESSAGE(r.err.find("will retry") != std::string::npos, r.err);
  }
  CHECK(show(d, *acked.rbegin()).at("state") == "cancelled");

  // Still serving, from memory: queries work and show only what was acknowledged.
  CHECK(status(d).at("pid") == d.pid());
  CHECK(ids_of(list_all(d)) == acked);
  CHECK(show(d, done).at("state") == "succeeded");
  d.send_signal(SIGTERM);
  const ExitStatus st = d.wait_exit(kExitTimeout);
  // The cancel could never be saved: the stop says so, and is not clean.
  CHECK_MESSAGE(st.code == 1, "taskgroupd stopping on a read-only state dir: " << st.describe());

  // Mounted again (writable; the error is only recorded): nothing half-written is in the store.
  disk.unmount();
  disk.mount(base.path() / "disk.img");
  d.restart();
  const auto tasks = list_all(d);
  CHECK(ids_of(tasks) == acked);
  CHECK(tasks.at(done).at("state") == "succeeded");
}

TEST_CASE("Finished tasks beyond retention_count are pruned with their logs, also on a reload") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path logs = d.state_dir() / "logs";
  const auto log_ids = [&] {
    std::set<std::int64_t> ids;
    for (const auto& f : fs::directory_iterator(logs)) ids.insert(std::stoll(f.path().stem()));
    return ids;
  };
  std::string batch;
  for (int i = 0; i < 600; ++i) batch += "true\n";
  RunOptions opts;
  opts.stdin_text = batch;
  opts.timeout = milliseconds(60'000);
  const auto ids = parse_ids(tgctl_ok(d, {"submit", "--batch", "-"}, opts));
  REQUIRE(ids.size() == 600);
  REQUIRE(wait_tasks(d, ids, milliseconds(120'000)) == 0);
  REQUIRE(log_ids().size() == 600);

  // At start: more than one slice to prune, with the file's retention_count.
  tg::test::write_file(d.dir() / "taskgroupd.toml", "retention_count = 100\n");
  d.restart();
  wait_until([&] { return list_all(d).size() == 100; }, kEventTimeout, "100 tasks kept");
  const auto kept = ids_of(list_all(d));
  CHECK(log_ids() == kept);

  // A reload that lowers it prunes at once, not an hour later; `durable` applies at once too.
  tg::test::write_file(d.dir() / "taskgroupd.toml", "retention_count = 10\ndurable = false\n");
  d.send_signal(SIGHUP);
  wait_until([&] { return list_all(d).size() == 10; }, kEventTimeout, "10 tasks kept");
  const auto newest = ids_of(list_all(d));
  CHECK(log_ids() == newest);
  for (auto id : newest) CHECK(kept.count(id) == 1);
  CHECK(d.log().find("durable=false") != std::string::npos);
  CHECK(status(d).at("pid") == d.pid());
}

TEST_CASE("On a full disk cancel, pause and group set say they are not yet saved, and retry") {
  TempDir base;
  TmpfsMount disk(base.path() / "state", "size=2m,mode=0700");
  TestDaemon d({.state_dir = disk.path()});
  tgctl_ok(d, {"pause", "held"});
  std::vector<std::int64_t> queued;
  for (int i = 0; i < 20; ++i) queued.push_back(submit(d, {"-g", "held", "--", "true"}));

  fill_up(disk.path() / "filler", 4 << 20);
  // A write needs a new WAL frame, for which there is no room: within a few tries, one fails.
  // Each try makes a change that is kept in memory whatever the reply.
  tg::test::ProcessOutput refused;
  std::size_t cancels = 0;
  for (; cancels + 1 < queued.size() && refused.exit_code != 1; ++cancels) {
    refused = d.tgctl({"cancel", "--task", id_str(queued[cancels])});
  }
  REQUIRE_MESSAGE(refused.exit_code == 1, "no cancel failed on a full disk: " << refused.err);
  CHECK(lines_of(refused.err).size() == 1);
  CHECK_MESSAGE(refused.err.find("disk full") != std::string::npos, refused.err);
  CHECK_MESSAGE(refused.err.find("not yet saved") != std::string::npos, refused.err);
  CHECK_MESSAGE(refused.err.find("will retry") != std::string::npos, refused.err);
  const auto failed = queued[cancels - 1];
  CHECK(show(d, failed).at("state") == "cancelled");  // It happened, as far as memory goes.
  // What is still pending makes the next commits fail too, and they say so.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"pause", "other"}, {"group", "set", "held", "--limit", "7"}}) {
    const auto r = d.tgctl(args);
    CHECK(r.exit_code == 1);
    CHECK_MESSAGE(r.err.find("not yet saved") != std::string::npos, r.err);
  }

  // Room again: the retry commits it all, and a crash afterwards loses none of it.
  fs::remove(disk.path() / "filler");
  wait_until([&] { return d.log().find("after the earlier failure") != std::string::npos; },
             kEventTimeout, "the retry to succeed");
  d.crash();
  d.restart();
  CHECK(show(d, failed).at("state") == "cancelled");
  CHECK(show(d, queued.back()).at("state") == "queued");
  const json groups = parse_json(tgctl_ok(d, {"groups", "--json"}));
  bool other_paused = false;
  for (const auto& g : groups.at("groups")) {
    if (g.at("name") == "other") other_paused = g.at("paused").get<bool>();
    if (g.at("name") == "held") CHECK(g.at("limit") == 7);
  }
  CHECK(other_paused);
}
