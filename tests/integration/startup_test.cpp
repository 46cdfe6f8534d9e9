// Integration tests of a daemon started by hand, binding its own socket (DESIGN.md "Signals and
// lifecycle", Start): a stale socket file is replaced, a live one is left to the daemon serving
// it; and of a daemon that cannot create processes (RLIMIT_NPROC), which fails the task with the
// reason and serves on.

#include <grp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/hand_started_daemon.h"
#include "support/process.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/test_users.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::Fd;
using tg::test::HandStartedDaemon;
using tg::test::ProcessOutput;
using tg::test::RunOptions;
using tg::test::TestUser;
using tg::test::helpers::describe;
using tg::test::helpers::lines_of;
using tg::test::helpers::parse_ids;
using tg::test::helpers::parse_json;

// HandStartedDaemon treats uid 0 as "the test process itself", whoever that is.
TestUser self() { return {"self", 0, 0, {}, ""}; }

sockaddr_un address(const fs::path& path) {
  sockaddr_un addr{};
  REQUIRE(path.string().size() < sizeof addr.sun_path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.string().size() + 1);
  return addr;
}

// errno of a connect to `path`, 0 if it succeeded.
int connect_error(const fs::path& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  const sockaddr_un addr = address(path);
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ? 0
                                                                                         : errno;
}

// tgctl --socket SOCKET ARGS as the test process, in "/" (a task runs in its submitter's cwd,
// and the daemon's user may not enter ours); must exit 0. Returns stdout.
std::string ok_at(const fs::path& socket, const std::vector<std::string>& args) {
  RunOptions opts;
  opts.cwd = "/";
  const auto r = tg::test::run_tgctl(socket.string(), args, opts);
  REQUIRE_MESSAGE(r.exit_code == 0, "tgctl " << tg::test::quote_argv(args) << ": " << describe(r));
  return r.out;
}

std::int64_t submit_at(const fs::path& socket, std::vector<std::string> args) {
  args.insert(args.begin(), "submit");
  const auto ids = parse_ids(ok_at(socket, args));
  REQUIRE(ids.size() == 1);
  return ids.front();
}

json show_at(const fs::path& socket, std::int64_t id) {
  return parse_json(ok_at(socket, {"show", std::to_string(id), "--json"})).at("task");
}

int wait_at(const fs::path& socket, std::int64_t id) {
  return tg::test::run_tgctl(socket.string(), {"wait", "--task", std::to_string(id)}).exit_code;
}

// The lines of a daemon's log at level error or critical ("2026-11-22T02:58:40.534 critical
// message": the level is the second word), CHECKing that every line has its timestamp.
std::vector<std::string> error_lines(const std::string& log) {
  std::vector<std::string> errors;
  for (const auto& line : lines_of(log)) {
    CHECK_MESSAGE((line.size() > 24 && line[4] == '-' && line[10] == 'T' && line[23] == ' '),
                  "a log line without a timestamp (a message split over lines?): '" << line << "'");
    const auto words = line.find(' ');
    const std::string level = words == std::string::npos ? "" : line.substr(words + 1, 9);
    if (level.starts_with("critical") || level.starts_with("error")) errors.push_back(line);
  }
  return errors;
}

// Threads whose real uid is `uid`: what RLIMIT_NPROC counts.
long threads_of(uid_t uid) {
  long n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string status = tg::test::read_file(e.path() / "status");
    const auto uid_at = status.find("\nUid:\t");
    const auto threads_at = status.find("\nThreads:\t");
    if (uid_at == std::string::npos || threads_at == std::string::npos) continue;
    if (std::stoul(status.substr(uid_at + 6)) != uid) continue;
    n += std::stol(status.substr(threads_at + 10));
  }
  return n;
}

// Sets the soft RLIMIT_NPROC of `pid`, a process of `user`, from a forked helper running as
// `user`: changing another process's limits takes its uids and gids, or CAP_SYS_RESOURCE, which
// root in a container may lack. The hard limit stays, so the soft one can be raised again.
void set_nproc(const TestUser& user, pid_t pid, rlim_t soft) {
  const pid_t helper = ::fork();
  REQUIRE_MESSAGE(helper >= 0, "fork: " << tg::test::last_error());
  if (helper == 0) {
    rlimit l{};
    if (::setgroups(0, nullptr) != 0 || ::setresgid(user.gid, user.gid, user.gid) != 0 ||
        ::setresuid(user.uid, user.uid, user.uid) != 0 ||
        ::prlimit(pid, RLIMIT_NPROC, nullptr, &l) != 0) {
      ::_exit(errno);
    }
    l.rlim_cur = std::min(soft, l.rlim_max);
    ::_exit(::prlimit(pid, RLIMIT_NPROC, &l, nullptr) == 0 ? 0 : errno);
  }
  const auto st = tg::test::wait_for_exit(helper, milliseconds(10'000));
  REQUIRE_MESSAGE(st.clean(), "setting RLIMIT_NPROC " << soft << " of " << pid << ": "
                                                      << st.describe() << " ("
                                                      << std::strerror(st.code) << ")");
}

}  // namespace

TEST_CASE("A stale socket file, bound once and left by no one, is replaced and served") {
  tg::test::TempDir tmp;
  const fs::path home = tmp.path() / "home";
  fs::create_directories(home);
  fs::create_directories(tmp.path() / "run");
  const fs::path socket = tmp.path() / "run" / "control.sock";
  {
    // What a crashed daemon leaves: a socket file that was bound and is listened on no more.
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    const sockaddr_un addr = address(socket);
    REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  }
  struct stat st {};
  REQUIRE(::lstat(socket.c_str(), &st) == 0);
  REQUIRE(S_ISSOCK(st.st_mode));
  REQUIRE(connect_error(socket) == ECONNREFUSED);

  HandStartedDaemon daemon(self(), home, socket);
  CHECK(connect_error(socket) == 0);
  CHECK(daemon.log().find("replaced stale socket '" + socket.string() + "'") != std::string::npos);
  CHECK(error_lines(daemon.log()).empty());
  CHECK(parse_json(ok_at(socket, {"status", "--json"})).at("pid") == daemon.pid());
  const auto id = submit_at(socket, {"--", "true"});
  CHECK(wait_at(socket, id) == 0);
}

TEST_CASE("A second daemon on a live socket exits 1 with one clear line, and the first serves on") {
  tg::test::TempDir tmp;
  const fs::path first_home = tmp.path() / "first", second_home = tmp.path() / "second";
  fs::create_directories(first_home);
  fs::create_directories(second_home);
  const fs::path socket = tmp.path() / "run" / "control.sock";
  HandStartedDaemon first(self(), first_home, socket);
  const auto before = submit_at(socket, {"--", "true"});
  CHECK(wait_at(socket, before) == 0);

  const RunOptions opts = tg::test::hand_daemon_options(second_home);
  const auto second = tg::test::run_process(
      {TG_DAEMON_BIN, "--socket", socket.string(), "--state-dir", (second_home / "state").string()},
      opts);
  CHECK_MESSAGE(second.exit_code == 1, describe(second));
  CHECK(second.out.empty());
  const auto errors = error_lines(second.err);
  REQUIRE_MESSAGE(errors.size() == 1, "want one error line, got:\n" << second.err);
  CHECK_MESSAGE(errors[0].find("already listening") != std::string::npos, errors[0]);
  CHECK_MESSAGE(errors[0].find(socket.string()) != std::string::npos, errors[0]);
  CHECK(second.err.find("ready:") == std::string::npos);

  // The first keeps its socket file and serves as before.
  struct stat st {};
  REQUIRE(::lstat(socket.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK(parse_json(ok_at(socket, {"status", "--json"})).at("pid") == first.pid());
  const auto after = submit_at(socket, {"--", "true"});
  CHECK(wait_at(socket, after) == 0);
  const json listed = parse_json(ok_at(socket, {"list", "--json"}));
  CHECK(listed.at("tasks").size() == 2);
}

TEST_CASE(
    "Nothing but a stale socket is removed: a file, a symlink, a FIFO or a directory at "
    "--socket is refused with one line, exit 1, and left untouched") {
  tg::test::TempDir tmp;
  const fs::path home = tmp.path() / "home";
  fs::create_directories(home);
  const fs::path precious = tmp.path() / "precious";
  tg::test::write_file(precious, "precious\n");
  const fs::path at = tmp.path() / "sock";
  SUBCASE("a regular file") { tg::test::write_file(at, "precious\n"); }
  SUBCASE("a symlink to a regular file") { fs::create_symlink(precious, at); }
  SUBCASE("a dangling symlink") { fs::create_symlink(tmp.path() / "nowhere", at); }
  SUBCASE("a FIFO") { REQUIRE(::mkfifo(at.c_str(), 0600) == 0); }
  SUBCASE("a directory") { fs::create_directories(at / "inside"); }
  struct stat before {};
  REQUIRE(::lstat(at.c_str(), &before) == 0);

  const RunOptions opts = tg::test::hand_daemon_options(home);
  const auto r = tg::test::run_process(
      {TG_DAEMON_BIN, "--socket", at.string(), "--state-dir", (home / "state").string()}, opts);
  CHECK_MESSAGE(r.exit_code == 1, describe(r));
  const auto errors = error_lines(r.err);
  REQUIRE_MESSAGE(errors.size() == 1, "want one error line, got:\n" << r.err);
  CHECK_MESSAGE(errors[0].find("is not a socket") != std::string::npos, errors[0]);
  CHECK(r.err.find("replaced stale socket") == std::string::npos);

  struct stat after {};
  REQUIRE(::lstat(at.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  CHECK(after.st_mode == before.st_mode);
  CHECK(tg::test::read_file(precious) == "precious\n");
  if (S_ISREG(after.st_mode)) CHECK(tg::test::read_file(at) == "precious\n");
  if (S_ISDIR(after.st_mode)) CHECK(fs::exists(at / "inside"));
}

TEST_CASE("A FIFO at --config is refused at start with one line, exit 1, without blocking") {
  tg::test::TempDir tmp;
  const fs::path home = tmp.path() / "home";
  fs::create_directories(home);
  const fs::path fifo = tmp.path() / "taskgroupd.toml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  RunOptions opts = tg::test::hand_daemon_options(home);
  opts.timeout = milliseconds(10'000);  // A read of the FIFO would block until then.
  const auto r = tg::test::run_process(
      {TG_DAEMON_BIN, "--config", fifo.string(), "--socket", (tmp.path() / "s").string()}, opts);
  CHECK_MESSAGE(r.exit_code == 1, describe(r));
  // Refused before logging starts: the plain "taskgroupd: ..." line of any config error.
  CHECK(r.err == "taskgroupd: " + fifo.string() + ": not a regular file\n");
  CHECK_FALSE(fs::exists(tmp.path() / "s"));  // It never listened.
}

TEST_CASE("A daemon that cannot create a process fails the task, says why, and serves on") {
  tg::test::require_root("runs a daemon as a test user and limits its processes (RLIMIT_NPROC)");
  // A user of its own: RLIMIT_NPROC counts every process of the user, so no other test's
  // processes may be counted with the daemon's.
  const TestUser u = tg::test::ensure_user("tgtest_nproc");
  tg::test::TempDir tmp;
  REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
  const fs::path home = tmp.path() / "home";
  fs::create_directories(home);
  REQUIRE(::chown(home.c_str(), u.uid, u.gid) == 0);
  const fs::path socket = home / "run" / "control.sock";
  HandStartedDaemon daemon(u, home, socket);
  const auto before = submit_at(socket, {"--", "true"});  // Root's tasks run as the daemon's user.
  CHECK(wait_at(socket, before) == 0);

  // Not one more process for the daemon's user, which has only the daemon now.
  const long now = threads_of(u.uid);
  REQUIRE(now >= 1);
  set_nproc(u, daemon.pid(), static_cast<rlim_t>(now));
  const auto refused = submit_at(socket, {"--", "true"});
  CHECK(wait_at(socket, refused) == 1);
  const json t = show_at(socket, refused);
  CAPTURE(t.dump());
  CHECK(t.at("state") == "failed");
  CHECK(t.at("reason") == "failed to start: clone failed: Resource temporarily unavailable");
  CHECK(t.at("pid").is_null());
  CHECK(daemon.log().find("task " + std::to_string(refused) + " failed to start") !=
        std::string::npos);

  // It serves on, and runs tasks again once it may.
  CHECK(parse_json(ok_at(socket, {"status", "--json"})).at("pid") == daemon.pid());
  set_nproc(u, daemon.pid(), RLIM_INFINITY);
  const auto after = submit_at(socket, {"--", "true"});
  CHECK(wait_at(socket, after) == 0);
  CHECK(show_at(socket, after).at("state") == "succeeded");
}
