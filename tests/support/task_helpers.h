#pragma once

// Helpers shared by the integration tests: tgctl round trips that must succeed, tasks that leave
// evidence of their processes in a work dir, and checks on those processes. In their own
// namespace so that other test files' helpers of the same names cannot clash with them.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/test_daemon.h"

namespace tg::test::helpers {

using nlohmann::json;

std::vector<std::string> lines_of(const std::string& text);
// One positive task id a line, as `tgctl submit` prints them; REQUIREs nothing else.
std::vector<std::int64_t> parse_ids(const std::string& out);
json parse_json(const std::string& text);  // REQUIREs valid JSON.
std::string id_str(std::int64_t id);       // std::to_string, for argv and file names.
// "exit N\nstdout: ...\nstderr: ...": a tgctl run, for failure messages.
std::string describe(const ProcessOutput& r);

// `tgctl ARGS` must exit 0; returns its stdout.
std::string tgctl_ok(const TestDaemon& d, const std::vector<std::string>& args,
                     const RunOptions& opts = {});
// `tgctl submit ARGS...` (ARGS includes "--" and the command); returns the one id printed.
std::int64_t submit(const TestDaemon& d, std::vector<std::string> args,
                    const RunOptions& opts = {});
json show(const TestDaemon& d, std::int64_t id);  // The task object of `show --json`.
json status(const TestDaemon& d);                 // `status --json`.
// The ids of `tgctl list ARGS --json`, in the order listed.
std::vector<std::int64_t> listed_ids(const TestDaemon& d, std::vector<std::string> args);
std::map<std::int64_t, json> list_all(const TestDaemon& d);  // Every task, by id.
// Blocks until the tasks end; returns tgctl wait's exit code (0: all succeeded).
int wait_tasks(const TestDaemon& d, const std::vector<std::int64_t>& ids,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(30'000));
// Blocks until the group's current run has ended; returns tgctl wait's exit code. The default
// bound is tgctl's usual one (RunOptions::timeout).
int wait_group(const TestDaemon& d, const std::string& group,
               std::chrono::milliseconds timeout = RunOptions{}.timeout);
// The group's object in `groups --json`; REQUIREs it to be there.
json group_info(const TestDaemon& d, const std::string& name);
// The daemon's log since it was last started (the fixture writes a banner before each start).
std::string log_of_last_start(const TestDaemon& d);
// How many times the daemon has logged a request `method` from us (its debug log has one line
// per request): lets a test know that a long request (wait, logs -f) has reached the daemon.
std::size_t requests_logged(const TestDaemon& d, const std::string& method);

// A task's RFC 3339 time as milliseconds since the epoch; REQUIREs a time.
std::int64_t time_ms(const json& rfc3339);
std::int64_t wall_now_ms();  // The system clock, as the daemon records times.

// True while `pid` exists and is not a zombie.
bool process_alive(pid_t pid);
// Every pid in a file of whitespace-separated pids ("" or a missing file: none).
std::vector<pid_t> read_pids(const std::filesystem::path& file);
// The pids of `pids` that are still alive.
std::vector<pid_t> alive_of(const std::vector<pid_t>& pids);

// A file that blocked tasks wait for. Opened by open() or, so that a failing test never leaves
// tasks waiting, by the destructor.
class Gate {
 public:
  // wait_shell() gives up after `max_polls` checks 10 ms apart (2000: ~20 s).
  explicit Gate(std::filesystem::path path, int max_polls = 2000)
      : path_(std::move(path)), max_polls_(max_polls) {}
  ~Gate() { open(); }
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  void open() const;
  [[nodiscard]] bool is_open() const;
  // A shell loop that returns once the gate is open; bounded: after max_polls checks it exits 99.
  [[nodiscard]] std::string wait_shell() const;

 private:
  std::filesystem::path path_;
  int max_polls_;
};

// Evidence a tracked task leaves in `work` (ID is $TASKGROUPD_TASK_ID):
//   pids-ID     "LEADER GRANDCHILD", written atomically once both run;
//   started-ID  after that; term-ID when the leader's TERM trap ran (trap_term only).
// The grandchild sleeps `grandchild_s` seconds in the task's process group; with
// ignore_term_grandchild it ignores SIGTERM. `body` then runs in the leader.
struct TrackedTask {
  std::string body = "true";
  bool trap_term = false;               // Leader records TERM in term-ID and keeps going.
  bool ignore_term_grandchild = false;  // The grandchild survives SIGTERM.
  int grandchild_s = 30;
};
std::string tracked_script(const std::filesystem::path& work, const TrackedTask& task);
// A loop of short sleeps for `seconds` in all, then exit 0: a leader that outlives a TERM
// which it traps (each sleep dies of the TERM; the loop goes on).
std::string busy_loop(int seconds);

// <test dir>/work, created if absent: where tasks leave their evidence.
std::filesystem::path make_work_dir(const TestDaemon& d);

// The pids a tracked task recorded (leader first); REQUIREs the file.
std::vector<pid_t> task_pids(const std::filesystem::path& work, std::int64_t id);
// Waits until every tracked task in `ids` has written started-ID.
void wait_started(const std::filesystem::path& work, const std::vector<std::int64_t>& ids,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(20'000));
std::size_t count_started(const std::filesystem::path& work);

// Every live process whose environment holds `entry` exactly ("TASKGROUPD_SOCKET=/tmp/..."):
// with the socket of one test's daemon, every process of its tasks, grandchildren included.
std::vector<pid_t> processes_with_env(const std::string& entry);

// A child running `/bin/sh -c script` in the test's clean environment, stdin /dev/null, stdout
// and stderr appended to `log`. The destructor SIGKILLs and reaps it if it still runs. For
// clients that must run while the test does something else (crash or signal the daemon).
class BackgroundShell {
 public:
  BackgroundShell(const std::string& script, const std::filesystem::path& log);
  ~BackgroundShell();
  BackgroundShell(const BackgroundShell&) = delete;
  BackgroundShell& operator=(const BackgroundShell&) = delete;

  // Waits for it to exit and reaps it; on timeout it is left running (timed_out set).
  [[nodiscard]] ExitStatus wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;  // -1 once reaped.
};

}  // namespace tg::test::helpers
