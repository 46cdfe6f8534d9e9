#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/error.h"

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

  // Not a file key: the umask taskgroupd was started with, which tasks get back (the daemon
  // itself runs with 077 so its store and logs are private whatever it inherited).
  unsigned task_umask = 022;
};

// The command line, kept so that a reload can apply the same overrides to the new file.
struct Flags {
  std::optional<std::filesystem::path> config;
  std::optional<std::string> socket;
  std::optional<std::filesystem::path> state_dir;
  std::optional<std::int64_t> max_running;
  std::optional<milliseconds> drain_timeout;
  std::optional<milliseconds> kill_grace;
  std::optional<std::string> log_level;
};

// Facts about the environment that main() reads once (getenv lives only there).
struct Environment {
  bool root = false;
  std::string xdg_runtime_dir;  // Empty if unset.
  std::string xdg_state_home;
  std::string xdg_config_home;
  std::string home;
  std::string notify_socket;  // NOTIFY_SOCKET: systemd's, for readiness and the watchdog.
  std::int64_t cpus = 1;
};

// Parses argv; exits 2 on usage errors and 0 after --version / --help.
[[nodiscard]] Flags parse_args(int argc, char** argv);

// Defaults (DESIGN.md: user or system mode), then the file, then the flags. An unreadable or
// invalid file is an error naming the file, line and key.
[[nodiscard]] Result<Config> load_config(const Flags& flags, const Environment& env);

// Parses a signal name ("TERM", "SIGTERM", "15"); nullopt if unknown.
[[nodiscard]] std::optional<int> parse_signal(std::string_view text);

}  // namespace tg::daemon
