// Integration tests of issue 7 (DESIGN.md "Who may do what"), part 1 of 4: per-user isolation
// (who sees, waits on and cancels what, root's --user), tasks running with their submitter's
// credentials, and what a user is refused (a daemon of one user, busy), driven through the real
// taskgroupd and tgctl binaries. The others: security_files_test.cpp, security_input_test.cpp,
// security_limits_test.cpp.
//
// They need root: they create two real users, tgtest_a and tgtest_b (members of the group
// taskgroupd, so they may use a root daemon's 0660 socket), and act as them. Without root they
// fail with a message saying so; they never skip. Daemons get --drain-timeout 1s so that a test
// that fails with a task still running cannot stall its teardown. Shared helpers are in
// support/security_helpers.h.

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/hand_started_daemon.h"
#include "support/peer_client.h"
#include "support/security_helpers.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/test_users.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::HandStartedDaemon;
using tg::test::PeerClient;
using tg::test::ProcessOutput;
using tg::test::TestDaemon;
using tg::test::TestUser;
using tg::test::helpers::describe;
using tg::test::helpers::lines_of;
using tg::test::helpers::parse_json;
using tg::test::helpers::show;
using namespace tg::test::security;

constexpr int kRaceTries = 20;  // Runs of a racy refusal, so that a bug shows every time.

// tgctl as `user`; must exit 1 (the daemon refused) with `why` in its error line.
void refused_as(const TestUser& user, const TestDaemon& d, const std::vector<std::string>& args,
                const std::string& why) {
  const auto r = tgctl_at(user, d.socket_path(), args);
  CHECK_MESSAGE(r.exit_code == 1, "tgctl " << tg::test::quote_argv(args) << " as " << user.name
                                           << " should be refused: " << describe(r));
  CHECK_MESSAGE(r.err.find(why) != std::string::npos, "tgctl " << tg::test::quote_argv(args)
                                                               << " as " << user.name << ": want '"
                                                               << why << "' in: " << r.err);
}

}  // namespace

// ================================================================ isolation

TEST_CASE("Security: a user cannot see, show, wait on, follow, read or cancel another's task") {
  SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;
  const auto running = submit_as(a, d, {"-g", "shared", "--", "sleep", "600"});
  ok_as(a, d, {"pause", "held"});
  const auto queued = submit_as(a, d, {"-g", "held", "--", "true"});
  wait_state(d, running, "running");
  const std::string rid = std::to_string(running), qid = std::to_string(queued);

  // Listing: none of A's tasks or groups, whichever way B asks.
  for (const auto& args : std::vector<std::vector<std::string>>{{"list", "--json"},
                                                                {"list", "-g", "shared", "--json"},
                                                                {"list", "-g", "held", "--json"}}) {
    CHECK_MESSAGE(parse_json(ok_as(b, d, args)).at("tasks").empty(), tg::test::quote_argv(args));
  }
  CHECK(parse_json(ok_as(b, d, {"groups", "--json"})).at("groups").empty());

  // By id: A's task looks exactly like one that does not exist.
  const std::string missing = "987654321";
  for (const auto& id : {rid, qid}) {
    refused_as(b, d, {"show", id}, "no task " + id);
    refused_as(b, d, {"wait", "--task", id}, "no task " + id);
    refused_as(b, d, {"logs", id}, "no task " + id);
    refused_as(b, d, {"logs", "-f", id}, "no task " + id);
    refused_as(b, d, {"cancel", "--task", id}, "no task " + id);
    refused_as(b, d, {"cancel", "--task", id, "--force"}, "no task " + id);
  }
  const auto without = [](std::string text, const std::string& id) {
    const auto at = text.find(id);
    return at == std::string::npos ? text : text.replace(at, id.size(), "ID");
  };
  const auto r_missing = tg::test::tgctl_as(b, d.socket_path(), {"show", missing});
  const auto r_hidden = tg::test::tgctl_as(b, d.socket_path(), {"show", rid});
  CHECK(r_missing.exit_code == r_hidden.exit_code);
  CHECK(without(r_hidden.err, rid) == without(r_missing.err, missing));

  // By group name: B's own (absent) groups, or A's named explicitly, which only root may do.
  refused_as(b, d, {"cancel", "shared"}, "no group 'shared'");
  refused_as(b, d, {"wait", "shared"}, "no group 'shared'");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"list", "--user", "tgtest_a"},
           {"list", "-g", "shared", "--user", "tgtest_a"},
           {"groups", "--user", "tgtest_a"},
           {"cancel", "shared", "--user", "tgtest_a"},
           {"cancel", "shared", "--user", std::to_string(a.uid), "--force"},
           {"wait", "shared", "--user", "tgtest_a"},
           {"pause", "shared", "--user", "tgtest_a"},
           {"resume", "held", "--user", "tgtest_a"},
           {"group", "set", "shared", "--user", "tgtest_a", "--limit", "7"},
           {"list", "--user", "root"},
           {"list", "--user", "0"}}) {
    refused_as(b, d, args, "only root");
  }
  refused_as(b, d, {"reload"}, "only root");
  refused_as(b, d, {"reexec"}, "only root or the daemon's user may re-execute it");

  // Nothing a request says about identity is taken: extra identity params are refused.
  auto fds = tg::test::connect_as(b, d.socket_path(), 1);
  PeerClient raw(std::move(fds.front()));
  expect_error(raw.call("submit", {{"argv", {"true"}}, {"uid", 0}}), -32602, "", "uid");
  expect_error(raw.call("submit", {{"argv", {"true"}}, {"user", "tgtest_a"}}), -32602, "", "user");
  expect_error(raw.call("cancel", {{"ids", {running}}, {"user", "tgtest_a"}}), -32602);
  expect_error(raw.call("show", {{"id", running}}), -32000, "not_found");
  expect_error(raw.call("logs", {{"id", running}, {"offset", 0}}), -32000, "not_found");
  expect_error(raw.call("wait", {{"ids", {running, queued}}}), -32000, "not_found");
  expect_error(raw.call("cancel", {{"ids", {running}}, {"force", true}}), -32000, "not_found");
  expect_error(raw.call("list", {{"user", "tgtest_a"}}), -32000, "permission_denied");

  // And nothing changed: A's tasks and groups are as they were.
  CHECK(state_of(d, running) == "running");
  CHECK(state_of(d, queued) == "queued");
  const json groups = parse_json(ok_as(a, d, {"groups", "--json"})).at("groups");
  REQUIRE(groups.size() == 2);
  for (const auto& g : groups) {
    CHECK(g.at("limit") == 0);
    CHECK(g.at("cancelling") == false);
    CHECK(g.at("last_cancel").is_null());
    CHECK(g.at("paused") == (g.at("name") == "held"));
  }
  CHECK(d.log().find("cancel by uid=" + std::to_string(b.uid)) == std::string::npos);

  // A still acts on its own.
  ok_as(a, d, {"cancel", "shared"});
  wait_state(d, running, "cancelled");
  ok_as(a, d, {"cancel", "held"});
  CHECK(state_of(d, queued) == "cancelled");
}

TEST_CASE("Security: same-named groups of two users are two groups, each cancelled on its own") {
  SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;
  const auto ta = submit_as(a, d, {"-g", "nightly", "--", "sleep", "600"});
  const auto tb = submit_as(b, d, {"-g", "nightly", "--", "sleep", "600"});
  wait_state(d, ta, "running");
  wait_state(d, tb, "running");
  CHECK(parse_json(ok_as(a, d, {"list", "-g", "nightly", "--json"})).at("tasks").size() == 1);
  ok_as(b, d, {"cancel", "nightly", "--grace", "1s"});
  wait_state(d, tb, "cancelled");
  CHECK(state_of(d, ta) == "running");
  CHECK(
      parse_json(ok_as(a, d, {"groups", "--json"})).at("groups").at(0).at("last_cancel").is_null());
  ok_as(a, d, {"cancel", "nightly"});
  wait_state(d, ta, "cancelled");
}

TEST_CASE("Security: root sees every user's tasks and acts on them, naming groups with --user") {
  SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;
  const TestUser root = root_user();
  const auto ta = submit_as(a, d, {"-g", "shared", "--", "sleep", "600"});
  const auto tb = submit_as(b, d, {"-g", "shared", "--", "sleep", "600"});
  ok_as(b, d, {"pause", "later"});
  const auto tb2 = submit_as(b, d, {"-g", "later", "--", "true"});
  wait_state(d, ta, "running");
  wait_state(d, tb, "running");

  const json all = parse_json(ok_as(root, d, {"list", "--json"})).at("tasks");
  std::set<std::int64_t> uids;
  for (const auto& t : all) uids.insert(t.at("uid").get<std::int64_t>());
  CHECK(all.size() == 3);
  CHECK(uids == std::set<std::int64_t>{a.uid, b.uid});
  CHECK(show(d, ta).at("user") == "tgtest_a");

  const json only_a =
      parse_json(ok_as(root, d, {"list", "-g", "shared", "--user", "tgtest_a", "--json"}))
          .at("tasks");
  REQUIRE(only_a.size() == 1);
  CHECK(only_a.at(0).at("id") == ta);
  CHECK(
      parse_json(ok_as(root, d, {"groups", "--user", "tgtest_b", "--json"})).at("groups").size() ==
      2);
  // Root's own (absent) group of that name is not A's.
  CHECK(d.tgctl({"cancel", "shared"}).exit_code == 1);
  CHECK(state_of(d, ta) == "running");

  ok_as(root, d, {"group", "set", "later", "--user", "tgtest_b", "--limit", "3"});
  ok_as(root, d, {"resume", "later", "--user", std::to_string(b.uid)});
  wait_state(d, tb2, "succeeded");
  CHECK(ok_as(root, d, {"logs", std::to_string(tb2)}).empty());

  ok_as(root, d, {"cancel", "shared", "--user", "tgtest_a", "--grace", "1s"});
  wait_state(d, ta, "cancelled");
  CHECK(state_of(d, tb) == "running");  // B's 'shared' is another group.
  CHECK(show(d, ta).at("reason").get<std::string>().find("by uid 0") != std::string::npos);
  ok_as(root, d, {"cancel", "--task", std::to_string(tb), "--force"});
  wait_state(d, tb, "cancelled");
  ok_as(root, d, {"reload"});
}

// ================================================================ credentials of tasks

TEST_CASE("Security: a task runs as its submitter, with their gid and groups and no capabilities") {
  SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;

  const auto ids = submit_as(a, d, {"-g", "who", "--", "sh", "-c", "id -u; id -g; id -G"});
  ok_as(a, d, {"wait", "--task", std::to_string(ids)});
  const auto lines = lines_of(ok_as(a, d, {"logs", std::to_string(ids)}));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == std::to_string(a.uid));
  CHECK(lines[1] == std::to_string(a.gid));
  std::set<std::string> got, want;
  std::istringstream in(lines[2]);
  for (std::string g; in >> g;) got.insert(g);
  for (gid_t g : a.groups) want.insert(std::to_string(g));
  CHECK(got == want);
  CHECK(want.count(std::to_string(taskgroupd_gid())) == 1);

  // Every id of the running process, real, effective, saved and filesystem; and no capability.
  const auto sleeper = submit_as(b, d, {"-g", "who", "--", "sleep", "600"});
  wait_state(d, sleeper, "running");
  const pid_t pid = show(d, sleeper).at("pid").get<pid_t>();
  const std::string bu = std::to_string(b.uid), bg = std::to_string(b.gid);
  CHECK(status_field(pid, "Uid") == std::vector<std::string>{bu, bu, bu, bu});
  CHECK(status_field(pid, "Gid") == std::vector<std::string>{bg, bg, bg, bg});
  std::vector<std::string> groups;
  for (gid_t g : b.groups) groups.push_back(std::to_string(g));
  auto seen = status_field(pid, "Groups");
  std::sort(seen.begin(), seen.end(),
            [](const auto& x, const auto& y) { return std::stol(x) < std::stol(y); });
  CHECK(seen == groups);
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) {
    CHECK_MESSAGE(status_field(pid, cap).at(0) == "0000000000000000", cap);
  }
  ok_as(b, d, {"cancel", "--task", std::to_string(sleeper), "--force"});

  // Root's own task runs as root (the daemon never makes anyone more or less than they are).
  const auto rooted = submit_as(root_user(), d, {"--", "id", "-u"});
  ok_as(root_user(), d, {"wait", "--task", std::to_string(rooted)});
  CHECK(ok_as(root_user(), d, {"logs", std::to_string(rooted)}) == "0\n");
}

TEST_CASE("Security: a submitter without a passwd entry gets a failed task, never a root one") {
  SharedDaemon s;
  const TestDaemon& d = s.d;
  // A uid no account has (a deleted user's, or a container's), allowed onto the socket by
  // the group taskgroupd.
  const uid_t ghost = 54321;
  REQUIRE(::getpwuid(ghost) == nullptr);
  const TestUser nobody{"uid-54321", ghost, ghost, {taskgroupd_gid()}, "/"};
  auto fds = tg::test::connect_as(nobody, d.socket_path(), 1);
  PeerClient c(std::move(fds.front()));
  const json r =
      c.call("submit", {{"argv", {"sh", "-c", "id -u > " + (d.dir() / "ran").string()}}});
  REQUIRE(r.contains("result"));
  const auto id = r.at("result").at("ids").at(0).get<std::int64_t>();
  wait_ended(d, id);
  const json t = show(d, id);
  CHECK(t.at("state") == "failed");
  CHECK(t.at("pid").is_null());
  CHECK(t.at("uid") == ghost);
  CHECK_MESSAGE(t.at("reason").get<std::string>().find("passwd") != std::string::npos, t.dump());
  CHECK_FALSE(fs::exists(d.dir() / "ran"));
}

TEST_CASE("Security: a user's task cannot write a root-only file or read /etc/shadow") {
  SharedDaemon s;
  const TestUser& a = s.u.a;
  const TestDaemon& d = s.d;
  const fs::path file = d.dir() / "root-only";
  tg::test::write_file(file, "original\n");
  REQUIRE(::chmod(file.c_str(), 0644) == 0);
  const auto w = submit_as(a, d, {"--", "sh", "-c", "echo pwned > " + file.string()});
  const auto r = submit_as(a, d, {"--", "cat", "/etc/shadow"});
  const auto c = submit_as(a, d, {"--", "sh", "-c", "echo x > " + (d.dir() / "new").string()});
  for (auto id : {w, r, c}) {
    wait_ended(d, id);
    CHECK(state_of(d, id) == "failed");
    CHECK(ok_as(a, d, {"logs", std::to_string(id)}).find("ermission denied") != std::string::npos);
  }
  CHECK(tg::test::read_file(file) == "original\n");
  CHECK_FALSE(fs::exists(d.dir() / "new"));
}

// ================================================================ a daemon of one user, refusals

TEST_CASE(
    "Security: a daemon started by hand as a user makes its socket 0600 and serves only them") {
  const Users u = users();
  const auto& [a, b] = u;
  tg::test::TempDir tmp;
  REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
  const fs::path home = tmp.path() / "a";
  fs::create_directories(home);
  REQUIRE(::chown(home.c_str(), a.uid, a.gid) == 0);
  REQUIRE(::chmod(home.c_str(), 0755) == 0);
  const fs::path socket = home / "run" / "control.sock";
  HandStartedDaemon daemon(a, home, socket);

  const struct stat sock = stat_of(socket);
  CHECK(S_ISSOCK(sock.st_mode));
  CHECK_MESSAGE((sock.st_mode & 07777) == 0600, octal(sock.st_mode));
  CHECK(sock.st_uid == a.uid);
  const struct stat dir = stat_of(socket.parent_path());
  CHECK_MESSAGE((dir.st_mode & 07777) == 0700, "socket dir " << octal(dir.st_mode));
  CHECK(dir.st_uid == a.uid);

  // Its user and root are served; B cannot even open the socket.
  CHECK(parse_json(ok_at(a, socket.string(), {"status", "--json"})).at("pid").is_number());
  CHECK(
      parse_json(ok_at(root_user(), socket.string(), {"status", "--json"})).at("pid").is_number());
  int err = 0;
  CHECK(tg::test::connect_as(b, socket.string(), 1, &err).empty());
  CHECK(err == EACCES);
  CHECK(tg::test::tgctl_as(b, socket.string(), {"status"}).exit_code == 3);

  // Opened up by mistake (an admin's chmod), the daemon itself still refuses B: it could only
  // run B's tasks as A.
  REQUIRE(::chmod(socket.parent_path().c_str(), 0755) == 0);
  REQUIRE(::chmod(socket.c_str(), 0666) == 0);
  auto fds = tg::test::connect_as(b, socket.string(), 1);
  PeerClient c(std::move(fds.front()));
  const json r = c.read_json();
  expect_error(r, -32000, "permission_denied", "serves uid " + std::to_string(a.uid));
  CHECK(r.at("id").is_null());
  CHECK(c.closed_by_peer(milliseconds(5'000)));
  CHECK(daemon.log().find("uid=" + std::to_string(b.uid) + " refused") != std::string::npos);
  CHECK(parse_json(ok_at(a, socket.string(), {"list", "--json"})).at("tasks").empty());
}

// The daemon answers a refused connection with one error line and closes it. tgctl usually
// sends its request only after that: it must still read that line and report it (exit 1), not
// EPIPE from send() as "cannot send to taskgroupd: Broken pipe" (exit 3), as it once did.
TEST_CASE("Security: tgctl reports the daemon's refusal (busy, permission_denied), exit 1") {
  SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;
  tg::test::write_file(d.dir() / "taskgroupd.toml", "max_connections_per_uid = 1\n");
  ok_as(root_user(), d, {"reload"});
  auto held = tg::test::connect_as(a, d.socket_path(), 1);
  require_served(d);
  // Whether tgctl sends before the daemon hangs up is a race: try it a few times.
  const auto count_wrong = [](const std::function<ProcessOutput()>& run, const std::string& why,
                              std::string& example) {
    int wrong = 0;
    for (int i = 0; i < kRaceTries; ++i) {
      const ProcessOutput r = run();
      if (r.exit_code != 1 || r.err.find(why) == std::string::npos) {
        ++wrong;
        example = describe(r);
      }
    }
    return wrong;
  };
  std::string example;
  const int busy_wrong =
      count_wrong([&] { return tg::test::tgctl_as(a, d.socket_path(), {"status"}); },
                  "too many connections", example);
  CHECK_MESSAGE(busy_wrong == 0, busy_wrong << " of " << kRaceTries << " runs, e.g. " << example);
  held.clear();

  tg::test::TempDir tmp;
  REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
  const fs::path home = tmp.path() / "a";
  fs::create_directories(home);
  REQUIRE(::chown(home.c_str(), a.uid, a.gid) == 0);
  const fs::path socket = home / "control.sock";
  HandStartedDaemon daemon(a, home, socket);
  REQUIRE(::chmod(socket.c_str(), 0666) == 0);  // As in the test above: opened by mistake.
  const int denied_wrong = count_wrong(
      [&] {
        return tg::test::tgctl_as(b, socket.string(), {"submit", "--", "true"});
      },
      "serves uid", example);
  CHECK_MESSAGE(denied_wrong == 0,
                denied_wrong << " of " << kRaceTries << " runs, e.g. " << example);
}
