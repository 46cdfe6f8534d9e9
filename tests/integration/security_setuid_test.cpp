// Security integration test: the `no_new_privs` config switch (issue 18, item 11). With it, a
// task cannot gain privileges by exec'ing a setuid program; without it (the default) it can, as a
// login shell of its submitter could. Needs root (see test_users.h).

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/security_helpers.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/test_users.h"

namespace {

namespace fs = std::filesystem;
using tg::test::TestDaemon;
using tg::test::TestUser;
using namespace tg::test::security;

// A setuid-root copy of id(1) in the test's dir, which the test users can reach.
fs::path setuid_id(const TestDaemon& d) {
  const fs::path copy = d.dir() / "suid-id";
  fs::copy_file("/usr/bin/id", copy, fs::copy_options::overwrite_existing);
  REQUIRE(::chown(copy.c_str(), 0, 0) == 0);
  REQUIRE(::chmod(copy.c_str(), 04755) == 0);
  REQUIRE((stat_of(copy).st_mode & S_ISUID) != 0);
  return copy;
}

// The effective uid a task of `user` running the setuid copy had (`id -u`).
std::string euid_of_task(const TestUser& user, const TestDaemon& d, const fs::path& program) {
  const std::int64_t id = submit_as(user, d, {"-g", "suid", "--", program.string(), "-u"});
  ok_as(user, d, {"wait", "--task", std::to_string(id)});
  return ok_as(user, d, {"logs", std::to_string(id)});
}

void configure(const TestDaemon& d, const std::string& toml) {
  tg::test::write_file(d.dir() / "taskgroupd.toml", toml);
  ok_at(root_user(), d.socket_path(), {"reload"});
}

}  // namespace

TEST_CASE("Security: with no_new_privs a task's setuid program gains nothing, without it it does") {
  tg::test::require_root("tasks must run as another user and a file must be setuid root");
  SharedDaemon s;
  const TestUser& a = s.u.a;
  const TestDaemon& d = s.d;
  const fs::path program = setuid_id(d);
  const std::string own = std::to_string(a.uid) + "\n";

  SUBCASE("the default: setuid works, as in a login shell") {
    CHECK(euid_of_task(a, d, program) == "0\n");
  }
  SUBCASE("no_new_privs = true: the task keeps its submitter's uid") {
    configure(d, "no_new_privs = true\n");
    CHECK(euid_of_task(a, d, program) == own);
    // A reload switches it for the tasks started after it.
    configure(d, "no_new_privs = false\n");
    CHECK(euid_of_task(a, d, program) == "0\n");
  }
}
