#include "daemon/exec/task_env.h"

namespace tg::daemon {

bool reserved_env_name(const std::string& name) {
  // Another service manager's (a task must not talk to systemd as if it were us), and ours.
  return name == "NOTIFY_SOCKET" || name.starts_with("LISTEN_") || name.starts_with("WATCHDOG_") ||
         name.starts_with("TASKGROUPD_");
}

std::vector<std::string> TaskEnvironment::build(const LaunchSpec& spec,
                                                const std::optional<Account>& user,
                                                const std::string& socket) {
  // With no env_id nothing identifies the minimal environment's user: build it each time.
  if (spec.env_id == 0 || spec.env_id != cached_id_) {
    proto::Env env;
    if (spec.env) {
      env = *spec.env;
    } else {
      // No environment sent: a minimal one for the submitter, like a login would give.
      env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
             {"HOME", user ? user->home : "/"},
             {"USER", user ? user->name : std::to_string(spec.uid)},
             {"LANG", "C.UTF-8"}};
    }
    cached_.clear();
    for (const auto& [k, v] : env) {
      if (!reserved_env_name(k)) cached_.push_back(k + "=" + v);
    }
    cached_id_ = spec.env_id;
  }
  std::vector<std::string> out;
  out.reserve(cached_.size() + 3);
  out = cached_;
  out.push_back("TASKGROUPD_SOCKET=" + socket);
  out.push_back("TASKGROUPD_GROUP=" + spec.group);
  out.push_back("TASKGROUPD_TASK_ID=" + std::to_string(spec.id));
  return out;
}

}  // namespace tg::daemon
