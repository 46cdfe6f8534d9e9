#pragma once

// Real local users for tests of per-user isolation (DESIGN.md "Who may do what"): created on
// demand, members of the group `taskgroupd` (so they may use a root daemon's 0660 socket), and
// ways to act as them: run a program, or connect to a socket, with their uid, gid and
// supplementary groups. Needs root; without it the calling test fails with a clear message.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.h"

namespace tg::test {

struct TestUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;              // Primary group, from the passwd entry.
  std::vector<gid_t> groups;  // getgrouplist(name, gid), sorted: what `id -G` prints.
  std::string home;           // pw_dir, which may not exist (useradd -M).
};

// FAILs the test (REQUIRE) unless the test process is root, saying why the test needs it.
void require_root(std::string_view why);

// The group `name`, created with groupadd if absent (idempotent); its gid.
gid_t ensure_group(const std::string& name);

// The user `name`, created with `useradd -M -N -s /usr/sbin/nologin` if absent and added to
// `extra_group` (created if absent) if not already a member. Idempotent.
TestUser ensure_user(const std::string& name, const std::string& extra_group = "taskgroupd");

// argv prefixed with setpriv so that it runs with `user`'s real and effective uid and gid and
// their supplementary groups (initgroups). For run_process() or BackgroundProcess.
[[nodiscard]] std::vector<std::string> as_user(const TestUser& user,
                                               const std::vector<std::string>& argv);

// run_process(as_user(user, argv), opts); opts.cwd defaults to "/" (the test's cwd may be
// closed to the user, and tgctl sends its cwd with a submit).
[[nodiscard]] ProcessOutput run_as(const TestUser& user, const std::vector<std::string>& argv,
                                   RunOptions opts = {});

// `tgctl --socket SOCKET ARGS...` as `user` (cwd "/" unless opts.cwd is set).
[[nodiscard]] ProcessOutput tgctl_as(const TestUser& user, const std::string& socket,
                                     const std::vector<std::string>& args, RunOptions opts = {});

// Opens `count` connections to the Unix socket `path` with `user`'s credentials: a forked
// child drops to them (setgroups, setresgid, setresuid), connects, and hands the sockets back
// over SCM_RIGHTS, so the daemon sees `user` in SO_PEERCRED and the file mode is checked
// against `user`. The sockets are blocking and close-on-exec. If a connect fails, returns
// the sockets opened before it and sets `*error` to its errno (with `error` null, REQUIREs
// that every connect succeeds).
[[nodiscard]] std::vector<Fd> connect_as(const TestUser& user, const std::string& path, int count,
                                         int* error = nullptr);

}  // namespace tg::test
