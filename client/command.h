#pragma once

// What the user asked tgctl to do, as parse_args (cli.h) leaves it: one plain struct per
// subcommand, holding the request to send where the command line alone decides it.

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "client/completions.h"
#include "common/protocol.h"

namespace tg::client {

// Exit codes (DESIGN.md, tgctl).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // The daemon refused or failed it, or a wait saw a failure.
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitWaitTimeout = 124;  // wait --timeout ran out, like timeout(1).

struct SubmitCommand {
  std::string group = "default";
  proto::TaskSpec options;           // All but argv; cwd and env are filled in at run time.
  std::vector<std::string> argv;     // Empty with --batch.
  std::optional<std::string> batch;  // A file of commands, or "-" for stdin.
  std::optional<std::string> key;    // Single task only: its idempotency key.
};
struct ListCommand {
  proto::List request;
  bool json = false;
  bool wide = false;  // REASON and COMMAND in full.
};
struct ShowCommand {
  proto::TaskId id = 0;
  bool json = false;
};
struct LogsCommand {
  proto::TaskId id = 0;
  bool follow = false;
  std::optional<int> attempt;  // Only this attempt's output; not with follow.
};
struct GroupsCommand {
  proto::Groups request;
  bool json = false;
};
struct GroupSetCommand {
  proto::GroupSet request;
};
struct PauseCommand {
  proto::Pause request;
};
struct ResumeCommand {
  proto::Resume request;
};
struct CancelCommand {
  proto::Cancel request;
  bool wait = false;  // Then wait for the same selection.
};
struct WaitCommand {
  proto::Wait request;  // progress is decided at run time: only for a terminal.
  // --timeout: give up after this long (exit kExitWaitTimeout), leaving the tasks running.
  std::optional<std::chrono::milliseconds> timeout;
};
struct StatusCommand {
  bool json = false;
};
struct ReloadCommand {};
struct ReexecCommand {};
struct KillCommand {
  proto::Kill request;
  bool json = false;
};
struct RestartCommand {
  proto::Restart request;
};
// tgctl top: a live view (or one frame with --once) of the daemon's groups and tasks.
struct TopCommand {
  proto::Watch request;
  bool once = false;
  std::string filter;  // -g: only the groups whose name contains it.
};
// tgctl __complete groups|tasks (hidden): the completion scripts' source of names.
struct CompleteCommand {
  ValueKind kind = ValueKind::kGroup;  // kGroup or kTask.
};

using Command = std::variant<SubmitCommand, ListCommand, ShowCommand, LogsCommand, GroupsCommand,
                             GroupSetCommand, PauseCommand, ResumeCommand, CancelCommand,
                             WaitCommand, StatusCommand, ReloadCommand, ReexecCommand, KillCommand,
                             RestartCommand, CompleteCommand, TopCommand>;

struct Invocation {
  std::optional<std::string> socket;  // --socket.
  Command command;
};

}  // namespace tg::client
