#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/unique_fd.h"
#include "daemon/exec/executor.h"
#include "daemon/exec/local/child.h"
#include "daemon/exec/users.h"

namespace tg::daemon {

// Runs the on-done hooks of LocalExecutor (Executor::run_hook): each is a child spawned like a
// task (its own session, its owner's credentials, only fds 0-2, no waiting for its exec) with
// `/bin/sh -c COMMAND`, cwd "/", stdin /dev/null and its output in a file, watched through its
// pidfd on the loop. When its shell exits, what it left in its session is killed, its output
// read back (the first kMaxHookOutput bytes) and its file removed; then `done` is called. It
// decides nothing: the engine bounds each hook with its own timers (signal()). Owned by
// LocalExecutor; used on the loop's thread only.
class HookRunner {
 public:
  using Done = std::function<void(HookId, const HookOutcome&)>;

  HookRunner(boost::asio::any_io_executor ex, UserDirectory& users, unsigned umask, Done done);
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;
  ~HookRunner();

  // Starts the hook; a failure to start is reported through `done` before this returns.
  void run(const HookSpec& spec);
  // `sig` to every process of the hook's session (followed by SIGCONT, as a task's stop).
  void signal(HookId id, int sig);
  // Stops watching the hooks that still run (the loop must be able to end); reports nothing
  // more.
  void shutdown();

 private:
  struct Hook {
    Hook(const boost::asio::any_io_executor& ex, int fd) : pidfd(ex, fd) {}
    boost::asio::posix::stream_descriptor pidfd;
    std::unique_ptr<Launch> launch;  // Until it has exited: the memory it ran on before exec.
    UniqueFd report;                 // Its report pipe: why it failed before exec, if it did.
    pid_t pid = 0;                   // Its session's id.
    std::chrono::steady_clock::time_point spawned_at;
    std::string output_path;
  };

  void await_exit(HookId id, Hook& h);
  void on_exit(HookId id);

  boost::asio::any_io_executor ex_;
  UserDirectory& users_;
  const unsigned umask_;
  Done done_;
  std::unordered_map<HookId, std::unique_ptr<Hook>> hooks_;
};

// The first `max_bytes` of the file and its whole size; removes it. Empty for a missing file.
[[nodiscard]] std::pair<std::string, std::int64_t> take_output(const std::string& path,
                                                               std::size_t max_bytes);

}  // namespace tg::daemon
