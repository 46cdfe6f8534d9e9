#pragma once

// Helpers shared by the security integration tests (security_*_test.cpp, issue 7): the two test
// users and a root daemon they may reach, tgctl as one of them, raw JSON-RPC requests and their
// replies, and what /proc says about a process. They need root (see test_users.h).

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/test_daemon.h"
#include "support/test_users.h"

namespace tg::test::security {

using nlohmann::json;

inline constexpr std::chrono::milliseconds kEventTimeout{10'000};
// Daemons stop at once even if a failed test left a task running.
inline const std::vector<std::string> kQuickStop = {"--drain-timeout", "1s", "--kill-grace", "1s"};

// ---------------------------------------------------------------- users and the fixture

struct Users {
  TestUser a;
  TestUser b;
};

Users users();  // tgtest_a and tgtest_b, created if absent (ensure_user).
TestUser root_user();
gid_t taskgroupd_gid();  // The group taskgroupd, created if absent.

// The fixture binds the socket itself (as systemd's taskgroupd.socket would), so it gets the
// test's umask, and its temp dir is 0700. Set what the system unit sets (SocketMode=0660,
// SocketGroup=taskgroupd) and let other users traverse the directory, as /run/taskgroupd
// (0755) lets them.
void open_to_group(const TestDaemon& d);

// A fresh client is answered: the daemon is alive and not stuck on anyone.
void require_served(const TestDaemon& d);

// A root daemon reachable by the test users.
struct SharedDaemon {
  explicit SharedDaemon(std::vector<std::string> extra = {});
  // Room for a few sleeping tasks of each user beside the ones a test waits for.
  static std::vector<std::string> with_defaults(std::vector<std::string> args);
  Users u;
  TestDaemon d;
};

// ---------------------------------------------------------------- tgctl as a user

// tgctl --socket SOCKET ARGS as `user` (root: the test process itself).
ProcessOutput tgctl_at(const TestUser& user, const std::string& socket,
                       const std::vector<std::string>& args, const RunOptions& opts = {});
// tgctl as `user`; must exit 0. Returns stdout.
std::string ok_at(const TestUser& user, const std::string& socket,
                  const std::vector<std::string>& args, const RunOptions& opts = {});
std::string ok_as(const TestUser& user, const TestDaemon& d, const std::vector<std::string>& args,
                  const RunOptions& opts = {});
// `submit ARGS` as `user`; REQUIREs one id printed, and returns it.
std::int64_t submit_as(const TestUser& user, const TestDaemon& d, std::vector<std::string> args,
                       const RunOptions& opts = {});

// The task's state, as root sees it.
std::string state_of(const TestDaemon& d, std::int64_t id);
void wait_state(const TestDaemon& d, std::int64_t id, const std::string& state);
bool is_terminal(const std::string& s);  // Neither queued nor running.
void wait_ended(const TestDaemon& d, std::int64_t id);

// ---------------------------------------------------------------- JSON-RPC

// One request line (without its '\n'); params null: none.
std::string request(std::string_view method, const json& params, const json& id = 1);
// REQUIREs a JSON-RPC error reply with `code` (and `kind`, `message_part` when given).
void expect_error(const json& reply, int code, std::string_view kind = {},
                  std::string_view message_part = {});
void expect_result(const json& reply);  // A result and no error.

// ---------------------------------------------------------------- /proc and files

std::string proc(pid_t pid, const std::string& file);  // /proc/PID/FILE ("" if gone).
// The value of "Key:" in /proc/PID/status, whitespace-separated fields.
std::vector<std::string> status_field(pid_t pid, const std::string& key);
std::size_t fd_count(pid_t pid);
// The daemon's fd count once it is done with the connections we have closed: each ends a turn
// of its loop after our close(), so take the lowest count over a quiet 200 ms. A baseline taken
// a moment too early includes a session that is going away (seen under ASan), and a wait for
// "baseline + N" then never ends.
std::size_t quiet_fd_count(pid_t pid);
// A sanitizer build keeps freed memory in quarantine: RSS says little about leaks there (LSan
// checks those at exit instead).
bool sanitized(pid_t pid);

struct stat stat_of(const std::filesystem::path& p);  // lstat(); REQUIREs success.
std::string octal(mode_t m);                          // The permission bits, "644".

}  // namespace tg::test::security
