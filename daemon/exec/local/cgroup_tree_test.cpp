// CgroupTree and CgroupWatch against the real cgroup2 tree, with real children: they enter
// their task cgroup before exec, escapes (setsid, double fork) stay inside, cgroup.kill ends
// them all, cgroup.events says so through inotify, and leftovers are found and removed. Needs
// root and a cgroup2 hierarchy (/sys/fs/cgroup or /sys/fs/cgroup/unified): without them these
// tests fail, saying why; they never pass without having run.
#include "daemon/exec/local/cgroup_tree.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include "daemon/exec/local/cgroup_watch.h"
#include "daemon/exec/local/child.h"
#include "daemon/exec/local/sys_compat.h"

namespace tg::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A cgroup of the test's own under the cgroup2 mount, removed (with what is left in it) at the
// end.
struct TestCgroup {
  TestCgroup() {
    REQUIRE_MESSAGE(::geteuid() == 0, "the cgroup tests need root (run the unit tests as root)");
    std::optional<fs::path> mount;
    for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      if (is_cgroup2(dir)) mount = dir;
    }
    REQUIRE_MESSAGE(mount.has_value(), "no cgroup2 hierarchy at /sys/fs/cgroup(/unified)");
    path = *mount / ("tg-unit-" + std::to_string(::getpid()));
    REQUIRE_MESSAGE((::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST),
                    "cannot create a test cgroup at " << path.string());
    auto t = CgroupTree::at(path);
    REQUIRE_MESSAGE(!t.has_error(), (t.has_error() ? t.error().message : std::string()));
    tree.emplace(std::move(*t));
  }
  ~TestCgroup() {
    if (!tree) return;
    for (proto::TaskId id : tree->tasks()) (void)tree->kill_and_remove(id, 5s);
    (void)::rmdir(path.c_str());
  }
  fs::path path;
  std::optional<CgroupTree> tree;
};

// A child that enters the task's cgroup before exec, running `script` with /bin/sh.
Spawned spawn_in(const CgroupTree& tree, proto::TaskId id, const std::string& script) {
  auto procs = tree.create(id);
  REQUIRE(!procs.has_error());
  SpawnSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.cwd = "/";
  spec.env = {"PATH=/usr/bin:/bin"};
  // A regular file (the child refuses anything else), removed once the child has it open.
  spec.log_path = (fs::temp_directory_path() /
                   ("tg-cgroup-test-" + std::to_string(::getpid()) + "-" + std::to_string(id)))
                      .string();
  spec.cgroup_procs_fd = procs->get();
  auto s = spawn_child(spec);
  REQUIRE(!s.has_error());
  pollfd p{s->report.get(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10'000) == 1);
  auto outcome = s->launch->poll(s->report.get());
  REQUIRE(outcome.has_value());
  (void)::unlink(spec.log_path.c_str());
  REQUIRE_MESSAGE(!outcome->has_error(), (outcome->has_error() ? outcome->error().message : ""));
  return std::move(*s);
}

int reap(Spawned& s) {
  pollfd p{s.pidfd.get(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10'000) == 1);
  siginfo_t info{};
  REQUIRE(::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(s.pidfd.get()), &info,
                   WEXITED) == 0);
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

// Waits (bounded) until exactly `n` processes are in the task's cgroup (a subshell on its way
// out may make one more for a moment); how many there are.
std::size_t wait_members(const CgroupTree& tree, proto::TaskId id, std::size_t n) {
  std::size_t got = 0;
  for (int i = 0; i < 1000 && got != n; ++i) {
    got = tree.signal(id, 0);
    if (got != n) ::usleep(10'000);
  }
  return got;
}

// Waits (bounded, on cgroup.events' POLLPRI) until the task's cgroup is empty.
bool wait_empty(const CgroupTree& tree, proto::TaskId id) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  UniqueFd fd(::open((tree.path(id) / "cgroup.events").c_str(), O_RDONLY | O_CLOEXEC));
  while (tree.populated(id) == true) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    pollfd p{fd.get(), POLLPRI, 0};
    (void)::poll(&p, 1, 100);
  }
  return true;
}

TEST_CASE("CgroupTree: open() of off is none, of a directory that is not cgroup2 an error") {
  auto off = CgroupTree::open("off");
  REQUIRE(!off.has_error());
  CHECK_FALSE(off->has_value());
  auto tmp = CgroupTree::open("/tmp");
  REQUIRE(tmp.has_error());
  CHECK(tmp.error().message.find("not a cgroup2 directory") != std::string::npos);
}

TEST_CASE(
    "CgroupTree: a task's escapes (setsid, a double fork) stay in its cgroup and die by "
    "cgroup.kill") {
  TestCgroup cg;
  const CgroupTree& tree = *cg.tree;
  Spawned s = spawn_in(tree, 7, "setsid sleep 1000 & (sleep 1000 &) ; exec sleep 1000");
  CHECK(fs::exists(cg.path / "task-7"));
  CHECK(tree.populated(7) == true);
  CHECK(wait_members(tree, 7, 3) == 3);  // The leader (now sleep) and the two escapes.
  CHECK(tree.tasks() == std::vector<proto::TaskId>{7});
  REQUIRE(!tree.kill(7).has_error());
  CHECK(reap(s) == 128 + SIGKILL);
  CHECK(wait_empty(tree, 7));
  const CgroupUsage u = tree.usage(7);
  CHECK(u.cpu_user_us.has_value());
  CHECK(u.cpu_system_us.has_value());
  CHECK(!tree.remove(7).has_error());
  CHECK(tree.tasks().empty());
}

TEST_CASE("CgroupTree: the stop signal reaches every process of the cgroup, escapes included") {
  TestCgroup cg;
  const CgroupTree& tree = *cg.tree;
  Spawned s = spawn_in(tree, 8, "setsid sleep 1000 & exec sleep 1000");
  REQUIRE(wait_members(tree, 8, 2) == 2);
  CHECK(tree.signal(8, SIGTERM) == 2);
  CHECK(reap(s) == 128 + SIGTERM);
  CHECK(wait_empty(tree, 8));
}

TEST_CASE("CgroupTree: kill_and_remove() ends an earlier daemon's leftovers and removes them") {
  TestCgroup cg;
  const CgroupTree& tree = *cg.tree;
  Spawned s = spawn_in(tree, 9, "setsid sleep 1000 & exec sleep 1000");
  REQUIRE(wait_members(tree, 9, 2) == 2);
  auto r = tree.kill_and_remove(9, 5s);
  REQUIRE(!r.has_error());
  CHECK(*r);  // It had processes.
  CHECK_FALSE(fs::exists(cg.path / "task-9"));
  CHECK(reap(s) == 128 + SIGKILL);
  auto again = tree.kill_and_remove(9, 5s);
  REQUIRE(!again.has_error());
  CHECK_FALSE(*again);  // Nothing there any more.
}

TEST_CASE("CgroupTree: the CPU a task burns is accounted to its cgroup, its children's too") {
  TestCgroup cg;
  const CgroupTree& tree = *cg.tree;
  // A child burns CPU and exits; what it used stays with the cgroup.
  Spawned s = spawn_in(tree, 10, "(i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done)");
  CHECK(reap(s) == 0);
  CHECK(wait_empty(tree, 10));
  const CgroupUsage u = tree.usage(10);
  REQUIRE(u.cpu_user_us.has_value());
  CHECK(*u.cpu_user_us + u.cpu_system_us.value_or(0) > 10'000);
  CHECK(!tree.remove(10).has_error());
}

TEST_CASE("CgroupWatch: the change of cgroup.events when a cgroup empties is reported") {
  TestCgroup cg;
  const CgroupTree& tree = *cg.tree;
  Spawned s = spawn_in(tree, 11, "setsid sleep 1000 & exec sleep 1000");
  REQUIRE(wait_members(tree, 11, 2) == 2);
  boost::asio::io_context ioc{1};
  bool emptied = false;
  CgroupWatch watch(ioc.get_executor(), [&](proto::TaskId id) {
    CHECK(id == 11);
    if (tree.populated(11) == false) {
      emptied = true;
      watch.remove(11);  // The last watch: its inotify instance closes, and run() returns.
    }
  });
  watch.add(11, (tree.path(11) / "cgroup.events").string());
  REQUIRE(tree.populated(11) == true);
  REQUIRE(!tree.kill(11).has_error());
  ioc.run_for(10s);  // Returns as soon as the watch is removed, or after the bound.
  CHECK(emptied);
  CHECK(reap(s) == 128 + SIGKILL);
}

}  // namespace
}  // namespace tg::daemon
