// Integration tests of issue 7 (DESIGN.md "Who may do what", "Processes"), part 2 of 4: the
// modes and owners of task logs, the store, the socket and the state directory, planted symlinks
// and FIFOs, and which fds and environment variables reach a task, driven through the real
// taskgroupd and tgctl binaries. The others: security_users_test.cpp, security_input_test.cpp,
// security_limits_test.cpp.
//
// They need root: they create two real users, tgtest_a and tgtest_b (members of the group
// taskgroupd, so they may use a root daemon's 0660 socket), and act as them. Without root they
// fail with a message saying so; they never skip. Daemons get --drain-timeout 1s so that a test
// that fails with a task still running cannot stall its teardown. Shared helpers are in
// support/security_helpers.h.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/background_process.h"
#include "support/hand_started_daemon.h"
#include "support/peer_client.h"
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
using tg::test::BackgroundProcess;
using tg::test::connect_unix;
using tg::test::Fd;
using tg::test::HandStartedDaemon;
using tg::test::PeerClient;
using tg::test::ProcessOutput;
using tg::test::RawClient;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using tg::test::TestUser;
using tg::test::wait_until;
using tg::test::helpers::lines_of;
using tg::test::helpers::parse_json;
using tg::test::helpers::show;
using namespace tg::test::security;

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE_MESSAGE(::lstat(p.c_str(), &st) == 0, "stat " << p << ": " << tg::test::last_error());
  return st.st_mode;
}

std::set<std::string> fds_of(pid_t pid) {
  std::set<std::string> fds;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    fds.insert(e.path().filename().string());
  }
  return fds;
}

// The daemon's fds that are sockets (the listener and its connections).
std::size_t socket_count(pid_t pid) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;  // An fd closed meanwhile.
    n += fs::read_symlink(e.path(), ec).string().starts_with("socket:");
  }
  return n;
}

}  // namespace

TEST_CASE(
    "Security: a task's log belongs to its submitter, and a planted symlink is not followed") {
  SharedDaemon s;
  const TestUser& a = s.u.a;
  const TestDaemon& d = s.d;

  const auto ok = submit_as(a, d, {"--", "echo", "hello"});
  ok_as(a, d, {"wait", "--task", std::to_string(ok)});
  CHECK(ok_as(a, d, {"logs", std::to_string(ok)}) == "hello\n");
  const fs::path log = d.state_dir() / "logs" / (std::to_string(ok) + ".log");
  const struct stat st = stat_of(log);
  CHECK(S_ISREG(st.st_mode));
  CHECK(st.st_uid == a.uid);
  CHECK_MESSAGE((st.st_mode & 0007) == 0, "log mode " << octal(st.st_mode));

  // The log path of a task that has not started yet, pointing at a file only root may write.
  const fs::path precious = d.dir() / "precious";
  tg::test::write_file(precious, "precious\n");
  REQUIRE(::chmod(precious.c_str(), 0600) == 0);
  ok_as(a, d, {"pause", "held"});
  const auto id = submit_as(a, d, {"-g", "held", "--", "echo", "overwritten"});
  const fs::path planted = d.state_dir() / "logs" / (std::to_string(id) + ".log");
  fs::create_symlink(precious, planted);
  ok_as(a, d, {"resume", "held"});
  wait_ended(d, id);
  const json t = show(d, id);
  CHECK(t.at("state") == "failed");
  REQUIRE(t.at("reason").is_string());
  CHECK_MESSAGE(t.at("reason").get<std::string>().find("log") != std::string::npos, t.dump());
  CHECK(tg::test::read_file(precious) == "precious\n");
  const struct stat p = stat_of(precious);
  CHECK(p.st_uid == 0);
  CHECK((p.st_mode & 07777) == 0600);
  CHECK(fs::is_symlink(planted));
  require_served(d);
}

// A blocking open of a FIFO found at the log path would stall the event loop until someone
// reads it, and with it every user's requests (found by this test; engine.cpp now opens the
// log O_NONBLOCK and checks S_ISREG). Like the symlink above, only someone who can write in
// STATE/logs can plant it: root, or anyone if the logs directory were ever left open.
TEST_CASE("Security: a FIFO planted at a task's log path does not stall the daemon") {
  SharedDaemon s;
  const TestUser& a = s.u.a;
  const TestDaemon& d = s.d;
  ok_as(a, d, {"pause", "held"});
  const auto id = submit_as(a, d, {"-g", "held", "--", "echo", "into the fifo"});
  const fs::path planted = d.state_dir() / "logs" / (std::to_string(id) + ".log");
  REQUIRE(::mkfifo(planted.c_str(), 0666) == 0);
  ok_as(a, d, {"resume", "held"});
  // Whether a fresh client is answered within 2 s, without failing the test if not.
  Fd probe = connect_unix(d.socket_path());
  const std::string req = request("status", nullptr) + "\n";
  REQUIRE(::send(probe.get(), req.data(), req.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(req.size()));
  pollfd p{probe.get(), POLLIN, 0};
  const bool answered = ::poll(&p, 1, 2'000) == 1;
  // Release a stalled daemon before anything else: open the FIFO's other end.
  Fd reader(::open(planted.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  CHECK_MESSAGE(answered, "the daemon did not answer status for 2 s with a FIFO at " << planted);
  wait_ended(d, id);
  CHECK(state_of(d, id) == "failed");
  require_served(d);
}

// tgtest_a and tgtest_b share a primary group (useradd -N: `users`), as users of many systems
// do: a log made 0640 with the task's group (as it once was) would be theirs to read.
TEST_CASE("Security: another user cannot read a task's log file directly, even in its group") {
  SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;
  const auto id = submit_as(a, d, {"--", "echo", "secret-output"});
  ok_as(a, d, {"wait", "--task", std::to_string(id)});
  const fs::path log = d.state_dir() / "logs" / (std::to_string(id) + ".log");
  INFO("log mode " << octal(mode_of(log)) << ", gid " << stat_of(log).st_gid << "; tgtest_b's gid "
                   << b.gid);
  const auto r = tg::test::run_as(b, {"/bin/cat", log.string()});
  CHECK_MESSAGE(r.exit_code != 0, "tgtest_b read tgtest_a's log: " << r.out);
}

// The store holds every user's argv and environment, in a state directory that is 0755 when
// root (StateDirectoryMode=0755): created under an inherited umask of 022 (as it once was) it
// was 0644, readable by all; the daemon now runs with umask 077.
TEST_CASE("Security: another user cannot read the store, which holds every task's environment") {
  SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;
  RunOptions opts;
  opts.env_extra = {{"TG_SEC_API_TOKEN", "hunter2-secret"}};
  const auto id = submit_as(a, d, {"--", "true"}, opts);
  ok_as(a, d, {"wait", "--task", std::to_string(id)});
  for (const auto& e : fs::directory_iterator(d.state_dir())) {
    if (!e.is_regular_file()) continue;
    INFO(e.path() << " mode " << octal(mode_of(e.path())));
    const auto r = tg::test::run_as(b, {"/bin/cat", e.path().string()});
    CHECK_MESSAGE(r.exit_code != 0, "tgtest_b read " << e.path());
    CHECK(r.out.find("hunter2-secret") == std::string::npos);
  }
}

// ================================================================ what reaches a task

TEST_CASE("Security: only fds 0-2 reach a task, whoever submits it, while the daemon is busy") {
  SharedDaemon s;
  const TestUser& a = s.u.a;
  const TestDaemon& d = s.d;
  // Sockets, a parked wait and a log follower: the daemon holds many fds when it spawns.
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 5; ++i) idle.push_back(std::make_unique<RawClient>(d.socket_path()));
  ok_as(a, d, {"pause", "held"});
  const auto held = submit_as(a, d, {"-g", "held", "--", "true"});
  RunOptions at_root_dir;
  at_root_dir.cwd = "/";
  BackgroundProcess follower(tg::test::as_user(a, {TG_CLIENT_BIN, "--socket", d.socket_path(),
                                                   "logs", "-f", std::to_string(held)}),
                             at_root_dir);
  BackgroundProcess waiter(
      tg::test::as_user(a, {TG_CLIENT_BIN, "--socket", d.socket_path(), "wait", "held"}),
      at_root_dir);
  // The listener, 5 sockets, the follower's and the waiter's. Counted, not compared with a
  // baseline: under load a baseline could still count the fixture's probe connection, and
  // "baseline + 8" then never came (the flaky failure under ctest -j2).
  wait_until([&] { return socket_count(d.pid()) >= 8; }, kEventTimeout,
             "the daemon holding sockets for its clients");

  for (const TestUser& who : {a, root_user()}) {
    CAPTURE(who.name);
    const auto id = submit_as(who, d, {"--", "sleep", "30"});
    wait_state(d, id, "running");
    const pid_t pid = show(d, id).at("pid").get<pid_t>();
    CHECK(fds_of(pid) == std::set<std::string>{"0", "1", "2"});
    const fs::path fd_dir = "/proc/" + std::to_string(pid) + "/fd";
    CHECK(fs::read_symlink(fd_dir / "0") == "/dev/null");
    const fs::path log = d.state_dir() / "logs" / (std::to_string(id) + ".log");
    CHECK(fs::read_symlink(fd_dir / "1") == log);
    CHECK(fs::read_symlink(fd_dir / "2") == log);
    ok_as(who, d, {"cancel", "--task", std::to_string(id), "--force"});
    wait_state(d, id, "cancelled");
  }
  ok_as(a, d, {"cancel", "held"});
  CHECK(waiter.wait(kEventTimeout).code == 1);
  CHECK(follower.wait(kEventTimeout).clean());
}

TEST_CASE("Security: no daemon-internal variable reaches a task, and TASKGROUPD_* are not forged") {
  SharedDaemon s;
  const TestUser& a = s.u.a;
  const TestDaemon& d = s.d;
  RunOptions opts;
  opts.env_extra = {{"NOTIFY_SOCKET", "/run/systemd/notify"},
                    {"LISTEN_FDS", "1"},
                    {"LISTEN_PID", "1"},
                    {"LISTEN_FDNAMES", "control"},
                    {"WATCHDOG_USEC", "30000000"},
                    {"WATCHDOG_PID", "1"},
                    {"TASKGROUPD_GROUP", "forged"},
                    {"TASKGROUPD_TASK_ID", "999999"},
                    {"TASKGROUPD_SOCKET", "/forged"},
                    {"TG_SEC_MARKER", "kept"}};
  for (const TestUser& who : {a, root_user()}) {
    CAPTURE(who.name);
    const auto id = submit_as(who, d, {"-g", "envg", "--", "env"}, opts);
    ok_as(who, d, {"wait", "--task", std::to_string(id)});
    std::map<std::string, std::string> env;
    for (const auto& line : lines_of(ok_as(who, d, {"logs", std::to_string(id)}))) {
      const auto eq = line.find('=');
      if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    for (const auto& [name, value] : env) {
      CHECK_MESSAGE(name != "NOTIFY_SOCKET", name);
      CHECK_MESSAGE(!name.starts_with("LISTEN_"), name);
      CHECK_MESSAGE(!name.starts_with("WATCHDOG_"), name);
    }
    CHECK(env["TASKGROUPD_GROUP"] == "envg");
    CHECK(env["TASKGROUPD_TASK_ID"] == std::to_string(id));
    CHECK(env["TASKGROUPD_SOCKET"] == d.socket_path());
    CHECK(env["TG_SEC_MARKER"] == "kept");
  }

  // With no environment sent, a minimal one for the submitter: nothing of the daemon's own.
  auto fds = tg::test::connect_as(a, d.socket_path(), 1);
  PeerClient raw(std::move(fds.front()));
  const json r = raw.call("submit", {{"group", "bare"}, {"argv", {"/usr/bin/env"}}});
  REQUIRE(r.contains("result"));
  const auto id = r.at("result").at("ids").at(0).get<std::int64_t>();
  wait_state(d, id, "succeeded");
  std::set<std::string> names;
  std::map<std::string, std::string> env;
  for (const auto& line : lines_of(ok_as(a, d, {"logs", std::to_string(id)}))) {
    names.insert(line.substr(0, line.find('=')));
    env[line.substr(0, line.find('='))] = line.substr(line.find('=') + 1);
  }
  CHECK(names == std::set<std::string>{"HOME", "LANG", "PATH", "USER", "TASKGROUPD_GROUP",
                                       "TASKGROUPD_SOCKET", "TASKGROUPD_TASK_ID"});
  CHECK(env["USER"] == "tgtest_a");
  CHECK(env["HOME"] == a.home);
}

// ================================================================ sockets and files

namespace {

// Restores the umask at the end of a scope.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

}  // namespace

TEST_CASE("Security: a root daemon started by hand makes its socket 0660 root:taskgroupd") {
  tg::test::require_root("starts a root daemon and checks root-owned modes");
  const Users u = users();
  tg::test::TempDir tmp;
  REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
  const fs::path socket = tmp.path() / "run" / "control.sock";
  for (const mode_t mask : {mode_t{022}, mode_t{077}, mode_t{0}}) {
    CAPTURE(octal(mask));
    const fs::path home = tmp.path() / ("home-" + octal(mask));
    fs::create_directories(home);
    fs::remove_all(tmp.path() / "run");
    // Our umask is the daemon's: 0 is the worst a careless root shell can hand it.
    UmaskGuard guard(mask);
    HandStartedDaemon daemon(root_user(), home, socket);
    const struct stat sock = stat_of(socket);
    CHECK(S_ISSOCK(sock.st_mode));
    CHECK_MESSAGE((sock.st_mode & 07777) == 0660, octal(sock.st_mode));
    CHECK(sock.st_uid == 0);
    CHECK(sock.st_gid == taskgroupd_gid());
    const struct stat dir = stat_of(socket.parent_path());
    CHECK_MESSAGE((dir.st_mode & 0022) == 0, "socket dir " << octal(dir.st_mode));
    CHECK(dir.st_uid == 0);
    // The group's members reach it (the directory must let them through) and are themselves.
    const json st = parse_json(ok_at(u.a, socket, {"status", "--json"}));
    CHECK(st.at("socket") == socket.string());
    const auto id = std::stoll(ok_at(u.a, socket, {"submit", "--", "id", "-u"}));
    ok_at(u.a, socket, {"wait", "--task", std::to_string(id)});
    CHECK(ok_at(u.a, socket, {"logs", std::to_string(id)}) == std::to_string(u.a.uid) + "\n");
  }
}

TEST_CASE("Security: a socket or state directory other users may write is refused, untouched") {
  tg::test::require_root("creates directories of several modes and starts root daemons");
  tg::test::TempDir tmp;
  REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
  const auto make_dir = [&](const std::string& name, mode_t mode) {
    const fs::path dir = tmp.path() / name;
    fs::create_directories(dir);
    REQUIRE(::chmod(dir.c_str(), mode) == 0);
    return dir;
  };
  const auto refused = [&](const fs::path& socket, const fs::path& state, const std::string& why) {
    const ProcessOutput out = tg::test::run_process(
        {TG_DAEMON_BIN, "--socket", socket.string(), "--state-dir", state.string()});
    CHECK_MESSAGE(out.exit_code == 1, "taskgroupd exited " << out.exit_code << ": " << out.err);
    CHECK_MESSAGE(out.err.find(why) != std::string::npos, out.err);
    CHECK_MESSAGE(out.err.find("writable by other users") != std::string::npos, out.err);
    CHECK_FALSE(fs::exists(fs::symlink_status(socket)));
  };

  SUBCASE("a socket directory anyone may write (not sticky)") {
    const fs::path open = make_dir("open", 0777);
    refused(open / "control.sock", tmp.path() / "state", "socket directory");
    CHECK_MESSAGE((stat_of(open).st_mode & 07777) == 0777, octal(stat_of(open).st_mode));
  }
  SUBCASE("a state directory its group may write") {
    const fs::path state = make_dir("state-g", 0770);
    refused(tmp.path() / "run" / "control.sock", state, "state directory");
    CHECK_MESSAGE((stat_of(state).st_mode & 07777) == 0770, octal(stat_of(state).st_mode));
    CHECK_FALSE(fs::exists(state / "taskgroupd.db"));
  }
  SUBCASE("a state directory like /tmp: world-writable and sticky, and it keeps its sticky bit") {
    const fs::path state = make_dir("state-tmp", 01777);
    refused(tmp.path() / "run" / "control.sock", state, "state directory");
    CHECK_MESSAGE((stat_of(state).st_mode & 07777) == 01777, octal(stat_of(state).st_mode));
    CHECK_FALSE(fs::exists(state / "taskgroupd.db"));
  }
  SUBCASE("a sticky socket directory like /tmp is fine: others cannot replace our socket") {
    const fs::path sticky = make_dir("sticky", 01777);
    const fs::path home = make_dir("home", 0755);
    HandStartedDaemon daemon(root_user(), home, sticky / "control.sock");
    CHECK(S_ISSOCK(stat_of(sticky / "control.sock").st_mode));
    CHECK_MESSAGE((stat_of(sticky).st_mode & 07777) == 01777, octal(stat_of(sticky).st_mode));
  }
}

// The daemon sets its own umask (077): the logs directory, made by create_directories(), was
// once 0777 under an inherited umask 0, so anyone could plant a symlink or a FIFO at the log
// path of a task that had not started yet.
TEST_CASE("Security: a root daemon started with umask 0 leaves nothing writable by others") {
  tg::test::require_root("starts a root daemon and checks root-owned modes");
  tg::test::TempDir tmp;
  REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
  const fs::path home = tmp.path() / "home";
  fs::create_directories(home);
  const fs::path socket = tmp.path() / "run" / "control.sock";
  UmaskGuard guard(0);
  HandStartedDaemon daemon(root_user(), home, socket);
  const auto id = std::stoll(ok_at(root_user(), socket, {"submit", "--", "echo", "hi"}));
  ok_at(root_user(), socket, {"wait", "--task", std::to_string(id)});
  for (const auto& e : fs::recursive_directory_iterator(home / "state")) {
    const mode_t m = mode_of(e.path());
    if (S_ISLNK(m)) continue;
    CHECK_MESSAGE((m & 0002) == 0, e.path().string() << " is " << octal(m));
  }
  CHECK((mode_of(home / "state") & 0022) == 0);
}

// Installs made before the daemon set its own umask have a 0644 store and logs and a 0755 logs
// directory, so every local user could read everyone's argv, environment and output. The
// daemon closes them at start (daemon/state_dir.cpp), without following what was planted there.
TEST_CASE(
    "Security: a store and logs directory left open by an older version are closed at start") {
  SharedDaemon s;
  const auto& [a, b] = s.u;
  const auto id = submit_as(a, s.d, {"--", "echo", "old"});
  ok_as(a, s.d, {"wait", "--task", std::to_string(id)});
  const fs::path state = s.d.state_dir();
  const fs::path logs = state / "logs";
  s.d.send_signal(SIGTERM);
  REQUIRE(s.d.wait_exit(milliseconds(5'000)).clean());
  REQUIRE(::chmod(logs.c_str(), 0755) == 0);
  for (const fs::path& dir : {state, logs}) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file()) REQUIRE(::chmod(e.path().c_str(), 0644) == 0);
    }
  }
  // What only root could have planted: a symlink to a file elsewhere, and a FIFO.
  const fs::path elsewhere = s.d.dir() / "elsewhere";
  tg::test::write_file(elsewhere, "not the daemon's\n");
  REQUIRE(::chmod(elsewhere.c_str(), 0644) == 0);
  fs::create_symlink(elsewhere, logs / "999.log");
  REQUIRE(::mkfifo((logs / "998.log").c_str(), 0600) == 0);
  REQUIRE(::chmod((logs / "998.log").c_str(), 0666) == 0);

  s.d.restart();
  open_to_group(s.d);  // The fixture bound a new socket.
  require_served(s.d);
  CHECK_MESSAGE((mode_of(logs) & 07777) == 0700, "logs " << octal(mode_of(logs)));
  for (const fs::path& dir : {state, logs}) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_regular_file() || e.is_symlink()) continue;
      CHECK_MESSAGE((mode_of(e.path()) & 0077) == 0, e.path() << " " << octal(mode_of(e.path())));
      CHECK(tg::test::run_as(b, {"/bin/cat", e.path().string()}).exit_code != 0);
    }
  }
  const fs::path log = logs / (std::to_string(id) + ".log");
  CHECK((mode_of(log) & 07777) == 0600);
  CHECK(stat_of(log).st_uid == a.uid);  // Still its submitter's.
  CHECK(ok_as(a, s.d, {"logs", std::to_string(id)}) == "old\n");
  CHECK((mode_of(elsewhere) & 07777) == 0644);         // Not followed.
  CHECK((mode_of(logs / "998.log") & 07777) == 0666);  // Not a regular file: left alone, logged.
  CHECK(s.d.log().find("not tightening '" + (logs / "998.log").string()) != std::string::npos);
}
