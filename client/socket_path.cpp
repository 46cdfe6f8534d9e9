#include "client/socket_path.h"

#include <sys/stat.h>

#include <string_view>

namespace tg::client {

namespace {

std::optional<std::string> non_empty(const proto::Env& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace

std::string discover_socket(const std::optional<std::string>& flag, const proto::Env& env,
                            const PathExists& exists) {
  if (flag && !flag->empty()) return *flag;
  if (auto s = non_empty(env, "TASKGROUPD_SOCKET")) return *s;
  if (auto runtime = non_empty(env, "XDG_RUNTIME_DIR")) {
    std::string user_socket = *runtime + "/taskgroupd/control.sock";
    if (exists(user_socket)) return user_socket;
  }
  return kSystemSocket;
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

proto::Env environment_from(const char* const* envp) {
  proto::Env env;
  for (; envp && *envp; ++envp) {
    const std::string_view entry(*envp);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));  // emplace keeps the first.
  }
  return env;
}

}  // namespace tg::client
