// spawn_child() with real processes: the report pipe says "exec'd" or names the failed step,
// the child opens its own log, and it is reaped through its pidfd.
#include "daemon/exec/local/child.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "daemon/exec/local/sys_compat.h"
#include "daemon/exec/local/task_session.h"

namespace tg::daemon {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tg-child.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

SpawnSpec spec_in(const TempDir& dir, std::vector<std::string> argv) {
  SpawnSpec spec;
  spec.argv = std::move(argv);
  spec.cwd = dir.path.string();
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.log_path = (dir.path / "task.log").string();
  return spec;
}

// The child's report, waited for with a bound (the pipe is readable at the latest when the
// child has exited).
Result<void> report_of(Spawned& s) {
  pollfd p{s.report.get(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10'000) == 1);
  auto outcome = s.launch->poll(s.report.get());
  REQUIRE(outcome.has_value());
  return *outcome;
}

// Reaps the child through its pidfd; its exit code, or 128 + signal.
int reap(Spawned& s) {
  pollfd p{s.pidfd.get(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10'000) == 1);
  siginfo_t info{};
  REQUIRE(::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(s.pidfd.get()), &info,
                   WEXITED) == 0);
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Removes `caps` from the calling process's effective, permitted and inheritable sets; false
// (errno set) if the kernel refuses.
bool drop_capabilities(std::initializer_list<int> caps) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  for (const int cap : caps) {
    const auto bit = 1U << (cap % 32);
    auto& d = data[cap / 32];
    d.effective &= ~bit;
    d.permitted &= ~bit;
    d.inheritable &= ~bit;
  }
  return ::syscall(SYS_capset, &header, data) == 0;
}

// Runs `body` in a forked helper process, so that what it does to its credentials stays there,
// and returns what it returned (or a description of how the helper died). No doctest macro
// runs in the helper.
std::string in_helper(const std::function<std::string()>& body) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    const std::string out = body();
    (void)!::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  pollfd p{fds[0], POLLIN, 0};
  while (::poll(&p, 1, 20'000) == 1) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    out += " [helper ended with status " + std::to_string(status) + "]";
  }
  return out;
}

// In a helper: spawn_child(spec) and describe the outcome as "<report> | exit <code>".
std::string spawn_and_describe(const SpawnSpec& spec) {
  auto s = spawn_child(spec);
  if (s.has_error()) return "no child: " + s.error().message;
  pollfd p{s->report.get(), POLLIN, 0};
  if (::poll(&p, 1, 10'000) != 1) return "no report within 10 s";
  const auto outcome = s->launch->poll(s->report.get());
  if (!outcome) return "an empty report";
  const std::string report = outcome->has_error() ? outcome->error().message : "exec'd";
  pollfd e{s->pidfd.get(), POLLIN, 0};
  if (::poll(&e, 1, 10'000) != 1) return report + " | still running";
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(s->pidfd.get()), &info, WEXITED) !=
      0) {
    return report + " | waitid: " + std::strerror(errno);
  }
  return report + " | exit " +
         std::to_string(info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status);
}

}  // namespace

TEST_CASE("spawn_child: a credential switch that fails is reported by name, and nothing runs") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: switching credentials needs root (run the unit tests as root)");
    return;
  }
  TempDir dir;
  REQUIRE(::chmod(dir.path.c_str(), 0777) == 0);  // The non-root helper creates the log here.
  const fs::path ran = dir.path / "ran";
  auto spec = spec_in(dir, {"sh", "-c", ": > '" + ran.string() + "'"});
  spec.credentials = SpawnSpec::Credentials{65534, 65534, {65534}};  // nobody, nogroup.
  std::string want;
  std::function<bool()> weaken;
  SUBCASE("without CAP_SETGID: setgroups") {
    weaken = [] { return drop_capabilities({CAP_SETGID}); };
    want = "setgroups failed: Operation not permitted | exit 127";
  }
  SUBCASE("without CAP_SETUID: setuid, after setgroups and setgid succeeded") {
    weaken = [] { return drop_capabilities({CAP_SETUID}); };
    want = "setuid failed: Operation not permitted | exit 127";
  }
  SUBCASE("as a user switching to themselves with other groups: setgroups") {
    weaken = [] {
      return ::setresgid(65534, 65534, 65534) == 0 && ::setresuid(65534, 65534, 65534) == 0;
    };
    spec.credentials->groups = {0};
    want = "setgroups failed: Operation not permitted | exit 127";
  }
  SUBCASE("as a user switching to another: the log cannot be given to them") {
    weaken = [] {
      return ::setresgid(65534, 65534, 65534) == 0 && ::setresuid(65534, 65534, 65534) == 0;
    };
    spec.credentials = SpawnSpec::Credentials{1, 1, {1}};  // daemon.
    want = "cannot give the log to uid 1: Operation not permitted | exit 127";
  }
  REQUIRE(weaken);
  const std::string got = in_helper([&] {
    if (!weaken()) return std::string("weakening the helper failed: ") + std::strerror(errno);
    return spawn_and_describe(spec);
  });
  CHECK(got == want);
  CHECK_FALSE(fs::exists(ran));  // The command never ran.
}

// True once `pid` is blocked in system call `nr` (/proc/PID/syscall), checked every 5 ms for
// up to 10 s; false if it never is.
bool blocks_in(pid_t pid, long nr) {
  const std::string file = "/proc/" + std::to_string(pid) + "/syscall";
  for (int i = 0; i < 2000; ++i) {
    if (std::atol(read_file(file).c_str()) == nr) return true;
    ::usleep(5'000);
  }
  return false;
}

TEST_CASE("spawn_child: a child held by a gate runs its command only once the gate is released") {
  TempDir dir;
  auto gate = StartGate::open();
  REQUIRE(gate.has_value());
  const fs::path ran = dir.path / "ran";
  auto spec = spec_in(dir, {"touch", ran.string()});
  spec.gate_fd = gate->wait_fd();
  auto s = spawn_child(spec);
  REQUIRE(s.has_value());
  REQUIRE(blocks_in(s->pid, SYS_ppoll));  // Ready, and waiting at the gate.
  CHECK(fs::exists(spec.log_path));       // Every step before it is done...
  CHECK_FALSE(fs::exists(ran));           // ...but not the command.
  pollfd p{s->report.get(), POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 0);  // No report yet: it has not exec'd.
  gate->release();
  CHECK(report_of(*s).has_value());  // EOF: it exec'd.
  CHECK(reap(*s) == 0);
  CHECK(fs::exists(ran));
}

TEST_CASE("spawn_child: children of a gate that goes away unreleased never run their command") {
  TempDir dir;
  std::vector<Spawned> children;
  std::vector<fs::path> marks;
  {
    auto gate = StartGate::open();
    REQUIRE(gate.has_value());
    for (int i = 0; i < 3; ++i) {  // Each also holds the others' copies until its close_range.
      marks.push_back(dir.path / ("ran-" + std::to_string(i)));
      auto spec = spec_in(dir, {"touch", marks.back().string()});
      spec.log_path = (dir.path / ("task-" + std::to_string(i) + ".log")).string();
      spec.gate_fd = gate->wait_fd();
      auto s = spawn_child(spec);
      REQUIRE(s.has_value());
      children.push_back(std::move(*s));
    }
    for (auto& c : children) REQUIRE(blocks_in(c.pid, SYS_ppoll));
  }  // As the daemon's death closes it.
  for (std::size_t i = 0; i < children.size(); ++i) {
    const auto r = report_of(children[i]);
    REQUIRE(r.has_error());
    CHECK(r.error().message == "the daemon stopped before the task's start was saved");
    CHECK(reap(children[i]) == 127);
    CHECK_FALSE(fs::exists(marks[i]));
  }
}

TEST_CASE("spawn_child: the command runs in its own session with its output in a 0600 log") {
  TempDir dir;
  for (const bool gated : {false, true}) {
    CAPTURE(gated);
    auto gate = StartGate::open();
    REQUIRE(gate.has_value());
    auto spec = spec_in(dir, {"sh", "-c", "echo out; echo err >&2; ps -o sid= -p $$"});
    if (gated) spec.gate_fd = gate->wait_fd();
    auto s = spawn_child(spec);
    REQUIRE(s.has_value());
    gate->release();
    CHECK(s->start_time == process_start_time(s->pid));
    CHECK(report_of(*s).has_value());  // EOF: it exec'd.
    CHECK(reap(*s) == 0);
    const std::string log = read_file(spec.log_path);
    CHECK(log.starts_with("out\nerr\n"));
    CHECK(std::atoi(log.c_str() + 8) == s->pid);  // Its session id is its own pid.
    struct stat st {};
    REQUIRE(::stat(spec.log_path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
}

TEST_CASE("spawn_child: with no_new_privs the command starts with NoNewPrivs set") {
  TempDir dir;
  for (const bool no_new_privs : {false, true}) {
    CAPTURE(no_new_privs);
    auto spec = spec_in(dir, {"grep", "^NoNewPrivs:", "/proc/self/status"});
    spec.no_new_privs = no_new_privs;
    auto s = spawn_child(spec);
    REQUIRE(s.has_value());
    CHECK(report_of(*s).has_value());
    CHECK(reap(*s) == 0);
    CHECK(read_file(spec.log_path) == (no_new_privs ? "NoNewPrivs:\t1\n" : "NoNewPrivs:\t0\n"));
  }
}

TEST_CASE("spawn_child: the user's strings in a failure are escaped and capped") {
  TempDir dir;
  SUBCASE("a cwd with a newline and an escape sequence") {
    auto spec = spec_in(dir, {"true"});
    spec.cwd = (dir.path / "x\n\x1b[2Jy").string();
    auto s = spawn_child(spec);
    REQUIRE(s.has_value());
    const auto r = report_of(*s);
    REQUIRE(r.has_error());
    CHECK(r.error().message ==
          "cannot enter '" + dir.path.string() + "/x\\n\\x1b[2Jy': No such file or directory");
    CHECK(reap(*s) == 127);
  }
  SUBCASE("a path of 900 KB") {
    auto s = spawn_child(spec_in(dir, {"/" + std::string(900'000, 'a')}));
    REQUIRE(s.has_value());
    const auto r = report_of(*s);
    REQUIRE(r.has_error());
    CHECK(r.error().message.size() < 400);
    CHECK(r.error().message.ends_with("…[+899745 bytes]': File name too long"));
    CHECK(reap(*s) == 127);
  }
  SUBCASE("a command name not in PATH") {
    auto s = spawn_child(spec_in(dir, {"no\nsuch"}));
    REQUIRE(s.has_error());
    CHECK(s.error().message == "command not found: no\\nsuch");
  }
}

TEST_CASE("spawn_child: a step that fails before exec is reported by name, and the child exits") {
  TempDir dir;
  SUBCASE("cwd") {
    auto spec = spec_in(dir, {"true"});
    spec.cwd = (dir.path / "missing").string();
    auto s = spawn_child(spec);
    REQUIRE(s.has_value());
    const auto r = report_of(*s);
    REQUIRE(r.has_error());
    CHECK(r.error().message == "cannot enter '" + spec.cwd + "': No such file or directory");
    CHECK(reap(*s) == 127);
  }
  SUBCASE("exec") {
    const fs::path script = dir.path / "not-executable";
    std::ofstream(script) << "#!/bin/sh\n";
    auto s = spawn_child(spec_in(dir, {script.string()}));
    REQUIRE(s.has_value());
    const auto r = report_of(*s);
    REQUIRE(r.has_error());
    CHECK(r.error().message == "cannot execute '" + script.string() + "': Permission denied");
    CHECK(reap(*s) == 127);
  }
  SUBCASE("a symlink at the log path is not followed") {
    const fs::path target = dir.path / "precious";
    std::ofstream(target) << "precious\n";
    auto spec = spec_in(dir, {"true"});
    fs::create_symlink(target, spec.log_path);
    auto s = spawn_child(spec);
    REQUIRE(s.has_value());
    const auto r = report_of(*s);
    REQUIRE(r.has_error());
    CHECK(r.error().message.starts_with("cannot open log '" + spec.log_path + "'"));
    CHECK(reap(*s) == 127);
    CHECK(read_file(target) == "precious\n");
  }
  SUBCASE("a FIFO at the log path fails the task instead of hanging it") {
    auto spec = spec_in(dir, {"true"});
    REQUIRE(::mkfifo(spec.log_path.c_str(), 0600) == 0);
    auto s = spawn_child(spec);
    REQUIRE(s.has_value());
    const auto r = report_of(*s);
    REQUIRE(r.has_error());
    CHECK(r.error().message.find(spec.log_path) != std::string::npos);
    CHECK(reap(*s) == 127);
  }
}

TEST_CASE("spawn_child: a command not in PATH is refused before any child exists") {
  TempDir dir;
  auto s = spawn_child(spec_in(dir, {"tg-no-such-command"}));
  REQUIRE(s.has_error());
  CHECK(s.error().message == "command not found: tg-no-such-command");
}

TEST_CASE("find_executable searches PATH in order, an empty entry meaning the cwd") {
  TempDir dir;
  const fs::path tool = dir.path / "tg-tool";
  std::ofstream(tool) << "#!/bin/sh\n";
  fs::permissions(tool, fs::perms::owner_all);
  const std::string d = dir.path.string();
  CHECK(find_executable("tg-tool", "/nonexistent:" + d) == d + "/tg-tool");
  CHECK(find_executable("tg-tool", d + ":/bin") == d + "/tg-tool");
  CHECK(find_executable("tg-tool", "/bin:/usr/bin") == std::nullopt);
  CHECK(find_executable("sh", "") == "/usr/bin/sh");  // The default PATH.
  CHECK(find_executable("./x", "/bin") == "./x");     // A path is taken as it is.
  std::error_code ec;
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path);
  CHECK(find_executable("tg-tool", "/nonexistent:") == "./tg-tool");
  fs::current_path(cwd, ec);
}

TEST_CASE("signal_sessions reaches a child whether or not it has made its session yet") {
  TempDir dir;
  for (int i = 0; i < 20; ++i) {
    auto s = spawn_child(spec_in(dir, {"sleep", "30"}));
    REQUIRE(s.has_value());
    (void)signal_sessions({s->pid}, SIGTERM);  // Right away: often before its setsid().
    const int status = reap(*s);
    CHECK(status == 128 + SIGTERM);
  }
}

}  // namespace tg::daemon
