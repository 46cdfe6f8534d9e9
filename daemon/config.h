#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "common/error.h"
#include "daemon/model/config.h"
#include "daemon/sys/handover.h"

namespace tg::daemon {

using std::chrono::milliseconds;

// The command line, kept so that a reload can apply the same overrides to the new file.
struct Flags {
  std::optional<std::filesystem::path> config;
  std::optional<std::string> socket;
  std::optional<std::filesystem::path> state_dir;
  std::optional<std::int64_t> max_running;
  std::optional<milliseconds> drain_timeout;
  std::optional<milliseconds> kill_grace;
  std::optional<std::string> log_level;
  // Load the config as a start would, print the handover version and exit: the check a
  // re-exec runs on the new binary before it hands anything over (sys/handover.h).
  bool check_reexec = false;
  // Start even though the store lacks commits its ledger recorded (a deleted or damaged WAL):
  // a one-off decision for this start, so a command-line flag only, never a config key.
  bool accept_lost_tasks = false;
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
  SelfExec self;         // What a re-exec runs: our binary's path and arguments.
  int handover_fd = -1;  // TASKGROUPD_HANDOVER_FD: we are a re-exec, adopting this handover.
};

// Parses argv; exits 2 on usage errors and 0 after --version / --help.
[[nodiscard]] Flags parse_args(int argc, char** argv);

// Defaults (DESIGN.md: user or system mode), then the file, then the flags. An unreadable or
// invalid file is an error naming the file, line and key.
[[nodiscard]] Result<Config> load_config(const Flags& flags, const Environment& env);

// Every key a config file may hold (taskgroupd.toml(5) documents each one).
[[nodiscard]] std::span<const char* const> config_keys();

// Parses a signal name ("TERM", "SIGTERM", "15"); nullopt if unknown.
[[nodiscard]] std::optional<int> parse_signal(std::string_view text);

}  // namespace tg::daemon
