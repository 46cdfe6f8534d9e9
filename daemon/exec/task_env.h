#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/exec/executor.h"
#include "daemon/exec/users.h"

namespace tg::daemon {

// The environment a task gets (docs/usage.md "What a task gets"): the one it was submitted
// with, or a minimal one for its user (PATH, HOME, USER, LANG); never the names that belong to
// a service manager or to us (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*, TASKGROUPD_*); then ours:
// TASKGROUPD_SOCKET, TASKGROUPD_GROUP and TASKGROUPD_TASK_ID. A batch shares one environment:
// the strings of the last env_id are kept and reused.
class TaskEnvironment {
 public:
  // "NAME=value" strings for `spec`; `user` is the submitter, if the user database knows them.
  [[nodiscard]] std::vector<std::string> build(const LaunchSpec& spec,
                                               const std::optional<Account>& user,
                                               const std::string& socket);

 private:
  std::int64_t cached_id_ = -1;
  std::vector<std::string> cached_;
};

// True for the names a task may not take from the submitted environment.
[[nodiscard]] bool reserved_env_name(const std::string& name);

}  // namespace tg::daemon
