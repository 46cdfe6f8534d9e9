#include "client/socket_path.h"

#include <set>

#include <doctest/doctest.h>

namespace tg::client {

namespace {

PathExists existing(std::set<std::string> paths) {
  return [paths = std::move(paths)](const std::string& p) { return paths.contains(p); };
}

}  // namespace

TEST_CASE("discover_socket: --socket wins over everything") {
  const proto::Env env{{"TASKGROUPD_SOCKET", "/env.sock"}, {"XDG_RUNTIME_DIR", "/run/user/1000"}};
  CHECK(discover_socket("/flag.sock", env, existing({"/run/user/1000/taskgroupd/control.sock"})) ==
        "/flag.sock");
}

TEST_CASE("discover_socket: $TASKGROUPD_SOCKET comes before the user socket") {
  const proto::Env env{{"TASKGROUPD_SOCKET", "/env.sock"}, {"XDG_RUNTIME_DIR", "/run/user/1000"}};
  CHECK(discover_socket(std::nullopt, env, existing({"/run/user/1000/taskgroupd/control.sock"})) ==
        "/env.sock");
}

TEST_CASE("discover_socket: the user socket is used only if it exists") {
  const proto::Env env{{"XDG_RUNTIME_DIR", "/run/user/1000"}};
  SUBCASE("it exists") {
    CHECK(
        discover_socket(std::nullopt, env, existing({"/run/user/1000/taskgroupd/control.sock"})) ==
        "/run/user/1000/taskgroupd/control.sock");
  }
  SUBCASE("it does not") {
    CHECK(discover_socket(std::nullopt, env, existing({})) == "/run/taskgroupd/control.sock");
  }
}

TEST_CASE("discover_socket: empty values count as unset") {
  const proto::Env env{{"TASKGROUPD_SOCKET", ""}, {"XDG_RUNTIME_DIR", ""}};
  CHECK(discover_socket(std::string(), env, existing({"/taskgroupd/control.sock"})) ==
        "/run/taskgroupd/control.sock");
}

TEST_CASE("environment_from: splits at the first '=' and keeps the first of a repeated name") {
  const char* envp[] = {"A=1", "B=x=y", "EMPTY=", "NOEQUALS", "=bad", "A=2", nullptr};
  const proto::Env env = environment_from(envp);
  CHECK(env == proto::Env{{"A", "1"}, {"B", "x=y"}, {"EMPTY", ""}});
  CHECK(environment_from(nullptr).empty());
}

}  // namespace tg::client
