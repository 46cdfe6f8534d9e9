#include "daemon/exec/task_env.h"

#include <algorithm>

#include <doctest/doctest.h>

namespace tg::daemon {

namespace {

bool has(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}

}  // namespace

TEST_CASE("TaskEnvironment: the submitted environment, without reserved names, plus ours") {
  TaskEnvironment te;
  const proto::Env submitted = {
      {"PATH", "/opt/bin"},   {"NOTIFY_SOCKET", "/run/x"},    {"LISTEN_FDS", "1"},
      {"WATCHDOG_USEC", "5"}, {"TASKGROUPD_GROUP", "forged"}, {"HOME", "/home/a"}};
  LaunchSpec spec;
  spec.id = 7;
  spec.group = "g";
  spec.env = &submitted;
  spec.env_id = 3;
  const auto env = te.build(spec, std::nullopt, "/run/taskgroupd/control.sock");
  CHECK(env == std::vector<std::string>{"HOME=/home/a", "PATH=/opt/bin",
                                        "TASKGROUPD_SOCKET=/run/taskgroupd/control.sock",
                                        "TASKGROUPD_GROUP=g", "TASKGROUPD_TASK_ID=7"});
}

TEST_CASE("TaskEnvironment: no environment sent gives a minimal one for the user") {
  TaskEnvironment te;
  LaunchSpec spec;
  spec.id = 1;
  spec.uid = 1000;
  spec.group = "g";
  const auto env = te.build(spec, Account{1000, "alice", "/home/alice", {}}, "/s");
  CHECK(has(env, "HOME=/home/alice"));
  CHECK(has(env, "USER=alice"));
  CHECK(has(env, "PATH=/usr/local/bin:/usr/bin:/bin"));
  CHECK(has(env, "LANG=C.UTF-8"));
  const auto unknown = te.build(spec, std::nullopt, "/s");
  CHECK(has(unknown, "HOME=/"));
  CHECK(has(unknown, "USER=1000"));
}

TEST_CASE("TaskEnvironment: tasks of a batch share the built strings; the ids stay their own") {
  TaskEnvironment te;
  const proto::Env submitted = {{"A", "1"}};
  LaunchSpec spec;
  spec.env = &submitted;
  spec.env_id = 9;
  spec.id = 1;
  (void)te.build(spec, std::nullopt, "/s");
  const proto::Env other = {{"B", "2"}};
  spec.env = &other;  // Same env_id: the cached strings are used, as for a batch.
  spec.id = 2;
  const auto env = te.build(spec, std::nullopt, "/s");
  CHECK(has(env, "A=1"));
  CHECK(has(env, "TASKGROUPD_TASK_ID=2"));
}

}  // namespace tg::daemon
