// Integration tests of issue 14 on the host: every task in its own cgroup, under a writable
// cgroup2 directory named by the config (`cgroup = "/path"`). A task's escapes (a `setsid`
// child, a double-forked daemon) are stopped by a group cancel and killed by the restart after
// a crash; with `cgroup = "off"` the documented escape holds. A task burning 1 s of CPU records
// it. Processes are checked through /proc (pid files the escapes write, and the environment
// every task process inherits), not through the daemon.
//
// Needs root and a cgroup2 hierarchy (/sys/fs/cgroup or /sys/fs/cgroup/unified): without them
// these tests fail, saying why.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/hand_started_daemon.h"
#include "support/process.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::DaemonOptions;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{15'000};

bool is_cgroup2_dir(const fs::path& dir) {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, mnt, type;
  std::string rest;
  while (mounts >> dev >> mnt >> type && std::getline(mounts, rest)) {
    if (mnt == dir.string() && type == "cgroup2") return true;
  }
  return false;
}

// A cgroup2 directory of the test's own, given to the daemon. The destructor kills whatever is
// left in it and removes it with its task cgroups.
struct HostCgroup {
  HostCgroup() {
    REQUIRE_MESSAGE(::geteuid() == 0, "the cgroup tests need root");
    std::optional<fs::path> mount;
    for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      if (is_cgroup2_dir(dir)) mount = dir;
    }
    REQUIRE_MESSAGE(mount.has_value(), "no cgroup2 hierarchy at /sys/fs/cgroup(/unified)");
    static int n = 0;
    path = *mount / ("tg-it-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    REQUIRE_MESSAGE(::mkdir(path.c_str(), 0755) == 0, "cannot create " << path.string());
  }
  ~HostCgroup() {
    std::ofstream(path / "cgroup.kill") << "1";
    std::error_code ec;
    for (int i = 0; i < 500; ++i) {  // Bounded: the killed processes leave within ms.
      std::vector<fs::path> dirs;
      for (const auto& e : fs::directory_iterator(path, ec)) {
        if (e.is_directory()) dirs.push_back(e.path());
      }
      for (const auto& d : dirs) (void)::rmdir(d.c_str());
      if (::rmdir(path.c_str()) == 0) return;
      ::usleep(10'000);
    }
    CHECK_MESSAGE(false, "could not remove " << path.string());
  }
  [[nodiscard]] std::string config() const { return "cgroup = \"" + path.string() + "\"\n"; }
  [[nodiscard]] std::vector<std::string> task_cgroups() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.path().filename().string().rfind("task-", 0) == 0) out.push_back(e.path().filename());
    }
    return out;
  }
  fs::path path;
};

// A task that leaves two escapes behind: a `setsid` child, and a daemon that double-forks out
// of the task's session; each writes its pid to WORK/NAME-ID.pid. Then the task sleeps.
std::string escaping_task(const fs::path& work) {
  const std::string w = work.string();
  return "W='" + w +
         "'; I=$TASKGROUPD_TASK_ID; "
         "setsid sh -c 'echo $$ > \"$0\"; exec sleep 1000' \"$W/setsid-$I.pid\" & "
         "( setsid sh -c 'echo $$ > \"$0\"; exec sleep 1000' \"$W/daemon-$I.pid\" & ) ; "
         "exec sleep 1000";
}

// The escapes' pids, once both have written them.
std::vector<pid_t> escapes_of(const fs::path& work, std::int64_t id) {
  const fs::path a = work / ("setsid-" + id_str(id) + ".pid");
  const fs::path b = work / ("daemon-" + id_str(id) + ".pid");
  wait_until([&] { return !read_pids(a).empty() && !read_pids(b).empty(); }, kEventTimeout,
             "task " + id_str(id) + "'s escapes to write their pids");
  return {read_pids(a).front(), read_pids(b).front()};
}

std::vector<pid_t> task_processes(const TestDaemon& d) {
  return processes_with_env("TASKGROUPD_SOCKET=" + d.socket_path());
}

TEST_CASE(
    "cgroups: a group cancel leaves no process of a setsid child or a double-forked "
    "daemon, and status says cgroups") {
  HostCgroup cg;
  TestDaemon d({.args = {"--max-running", "4"}, .config = cg.config()});
  CHECK(status(d).at("isolation") == "cgroups");
  const fs::path work = make_work_dir(d);
  const auto a = submit(d, {"-g", "g", "--shell", "--", escaping_task(work)});
  const auto b = submit(d, {"-g", "g", "--shell", "--", escaping_task(work)});
  std::vector<pid_t> escapes = escapes_of(work, a);
  for (pid_t p : escapes_of(work, b)) escapes.push_back(p);
  REQUIRE(alive_of(escapes).size() == 4);
  CHECK(cg.task_cgroups().size() == 2);
  tgctl_ok(d, {"cancel", "g", "--grace", "5s"});
  CHECK(wait_group(d, "g") != 0);  // Cancelled.
  CHECK_MESSAGE(alive_of(escapes).empty(), "an escape of a cancelled task is still alive");
  CHECK(task_processes(d).empty());
  CHECK(show(d, a).at("state") == "cancelled");
  CHECK(show(d, b).at("state") == "cancelled");
  CHECK(cg.task_cgroups().empty());  // Removed once empty.
}

TEST_CASE(
    "cgroups: after kill -9 of the daemon, the restart kills what tasks left (escapes "
    "included) and records them lost or queued again") {
  HostCgroup cg;
  TestDaemon d({.args = {"--max-running", "4"}, .config = cg.config()});
  const fs::path work = make_work_dir(d);
  const auto lost = submit(d, {"-g", "c", "--shell", "--", escaping_task(work)});
  const auto requeued =
      submit(d, {"-g", "c", "--requeue", "--shell", "--",
                 "[ -e '" + (work / "ran-once").string() + "' ] && exit 0; touch '" +
                     (work / "ran-once").string() + "'; " + escaping_task(work)});
  std::vector<pid_t> escapes = escapes_of(work, lost);
  for (pid_t p : escapes_of(work, requeued)) escapes.push_back(p);
  d.crash();
  REQUIRE_MESSAGE(alive_of(escapes).size() == 4, "the escapes must outlive the daemon's crash");
  d.restart();
  // Recovery has run once the daemon answers.
  CHECK(show(d, lost).at("state") == "lost");
  CHECK_MESSAGE(alive_of(escapes).empty(), "an escape of a crashed task survived the restart");
  CHECK(wait_tasks(d, {requeued}) == 0);  // Ran again: the second run exits 0 at once.
  CHECK(show(d, requeued).at("state") == "succeeded");
  CHECK(task_processes(d).empty());
  CHECK(cg.task_cgroups().empty());
}

TEST_CASE(
    "cgroups: a task that burns about 1 s of CPU records 0.8-1.2 s, a task without "
    "cgroups records none") {
  // 1 s of CPU for the whole task: Python's start may run children of its own (reaped, so in
  // os.times()' children fields), and the cgroup counts them as the task's, rightly.
  const std::string burn =
      "import os\n"
      "def used():\n"
      "    t = os.times()\n"
      "    return t.user + t.system + t.children_user + t.children_system\n"
      "while used() < 1.0:\n"
      "    pass\n";
  SUBCASE("with cgroups") {
    HostCgroup cg;
    TestDaemon d({.config = cg.config()});
    const auto id = submit(d, {"--", "python3", "-c", burn});
    CHECK(wait_tasks(d, {id}) == 0);
    const json t = show(d, id);
    REQUIRE(t.at("cpu_user_ms").is_number());
    REQUIRE(t.at("cpu_system_ms").is_number());
    const std::int64_t cpu =
        t.at("cpu_user_ms").get<std::int64_t>() + t.at("cpu_system_ms").get<std::int64_t>();
    CHECK(cpu >= 800);
    CHECK(cpu <= 1200);
    CHECK(t.contains("memory_peak_bytes"));  // A number where the memory controller is on.
    CHECK(tgctl_ok(d, {"show", id_str(id)}).find("cpu: ") != std::string::npos);
    const json listed = parse_json(tgctl_ok(d, {"list", "--json"})).at("tasks").at(0);
    CHECK(listed.at("cpu_user_ms") == t.at("cpu_user_ms"));
  }
  SUBCASE("without") {
    TestDaemon d({.config = "cgroup = \"off\"\n"});
    const auto id = submit(d, {"--", "true"});
    CHECK(wait_tasks(d, {id}) == 0);
    const json t = show(d, id);
    CHECK(t.at("cpu_user_ms").is_null());
    CHECK(t.at("cpu_system_ms").is_null());
    CHECK(t.at("memory_peak_bytes").is_null());
  }
}

TEST_CASE("cgroup = off: process groups, and a setsid child escapes a cancel (documented)") {
  TestDaemon d({.config = "cgroup = \"off\"\n"});
  CHECK(status(d).at("isolation") == "process groups");
  const fs::path work = make_work_dir(d);
  const auto id = submit(d, {"-g", "o", "--shell", "--", escaping_task(work)});
  const std::vector<pid_t> escapes = escapes_of(work, id);
  tgctl_ok(d, {"cancel", "o", "--grace", "5s"});
  CHECK(wait_group(d, "o") != 0);
  const auto alive = alive_of(escapes);
  CHECK_MESSAGE(alive.size() == 2, "without cgroups the escapes are out of reach");
  for (pid_t p : alive) (void)::kill(p, SIGKILL);  // Ours to clean up.
}

TEST_CASE("cgroups: a cgroup path that is not a cgroup2 directory stops the start with one line") {
  tg::test::TempDir tmp;
  const fs::path home = tmp.path() / "home";
  fs::create_directories(home);
  const fs::path config = tmp.path() / "taskgroupd.toml";
  std::ofstream(config) << "cgroup = \"" << tmp.path().string() << "\"\n";
  tg::test::RunOptions opts = tg::test::hand_daemon_options(home);
  const auto r = tg::test::run_process(
      {TG_DAEMON_BIN, "--config", config.string(), "--socket", (tmp.path() / "s").string(),
       "--state-dir", (tmp.path() / "state").string()},
      opts);
  CHECK_MESSAGE(r.exit_code == 1, describe(r));
  CHECK_MESSAGE(r.err.find("is not a cgroup2 directory") != std::string::npos, describe(r));
}

}  // namespace
