#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace tg::daemon {

using std::chrono::milliseconds;

// Everything the daemon can be told. Built once by load_config() from defaults, then the TOML
// file, then command-line flags; rebuilt the same way on SIGHUP. Passed down as const Config&.
struct Config {
  // Where things live. Fixed for the life of the process (a reload that changes them warns).
  std::filesystem::path config_path;  // Empty when no file was read.
  std::string socket;
  std::filesystem::path state_dir;

  // Limits and timeouts; a reload applies them at once.
  std::int64_t max_running = 1;
  milliseconds drain_timeout{30'000};
  milliseconds kill_grace{10'000};
  int stop_signal = 15;  // SIGTERM.
  std::string log_level = "info";
  std::size_t max_message_bytes = 1 << 20;
  std::int64_t max_connections = 1024;
  std::int64_t max_connections_per_uid = 256;
  milliseconds idle_timeout{300'000};  // A connection with no request for this long is closed.
  milliseconds retention{7LL * 24 * 3600 * 1000};
  std::int64_t retention_count = 100'000;  // Finished tasks kept at most.
  bool durable = true;  // fsync each commit (SQLite synchronous=FULL); false: NORMAL.
  // Tasks start with PR_SET_NO_NEW_PRIVS: a setuid program runs without its owner's rights.
  // Off by default: a task may do what its submitter's login shell may (docs/security.md).
  bool no_new_privs = false;
  // A task whose log grows past this many bytes is stopped (0: no cap). Also the most a task's
  // own --max-log may ask for. A reload applies to tasks started after it.
  std::int64_t max_log_size = std::int64_t{1} << 30;
  // Where tasks' cgroups are made (docs/usage.md "Isolation"): "auto" (the cgroup systemd
  // delegated to the service, if any), "off" (none: process groups only), or the path of a
  // writable cgroup2 directory. Fixed for the life of the process.
  std::string cgroup = "auto";

  // Not a file key: the umask taskgroupd was started with, which tasks get back (the daemon
  // itself runs with 077 so its store and logs are private whatever it inherited).
  unsigned task_umask = 022;
};

}  // namespace tg::daemon
