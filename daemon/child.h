#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace tg::daemon {

// What to run and how. Paths and strings are used as given; nothing is looked up in the
// daemon's own environment.
struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is resolved against PATH in `env` if it has no '/'.
  std::string cwd;
  std::vector<std::string> env;  // "NAME=value".
  int log_fd = -1;               // Becomes stdout and stderr; stdin is /dev/null.
  unsigned umask = 022;          // The task's umask (not the daemon's private 077).
  // Credentials to switch to; unset: run as the daemon. Set only when the daemon is root.
  struct Credentials {
    uid_t uid;
    gid_t gid;
    std::vector<gid_t> groups;
  };
  std::optional<Credentials> credentials;
};

// A started child: the leader of its own session and process group (pgid == pid).
struct Spawned {
  pid_t pid = 0;
  UniqueFd pidfd;                // Readable once the child has exited; the caller reaps it.
  std::uint64_t start_time = 0;  // /proc/PID/stat starttime, to recognise the pid later.
};

// Starts the child without a shell. Only fds 0-2 reach it; its signal mask is empty and every
// signal has its default action. Any failure before exec (credentials, cwd, exec itself) is
// reported here as an Error, and no child is left behind.
[[nodiscard]] Result<Spawned> spawn_child(const SpawnSpec& spec);

// Resolves a command name like execvp would, but against the given PATH value.
[[nodiscard]] std::optional<std::string> find_executable(const std::string& name,
                                                         const std::string& path_value);

// /proc/PID/stat starttime; 0 if the process is gone.
[[nodiscard]] std::uint64_t process_start_time(pid_t pid);

}  // namespace tg::daemon
