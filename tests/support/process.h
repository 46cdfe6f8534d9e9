#pragma once

// Running the real binaries from tests: a child with captured output, always bounded in time.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace tg::test {

using std::chrono::milliseconds;

// strerror(errno) as a std::string: doctest messages print a plain char* as a pointer.
[[nodiscard]] std::string last_error();

// An owned file descriptor, closed on destruction. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset();

 private:
  int fd_ = -1;
};

// How a child ended, as reaped by wait_for_exit().
struct ExitStatus {
  bool timed_out = false;  // Still running when the wait gave up (not reaped).
  int code = -1;           // Exit code, if it exited.
  int signal = 0;          // Signal number, if a signal killed it.

  [[nodiscard]] bool clean() const { return !timed_out && signal == 0 && code == 0; }
  [[nodiscard]] std::string describe() const;  // "exit 0", "signal 9", "still running".
};

// Waits up to `timeout` for the child `pid` to end (a pidfd in poll(), no busy loop) and
// reaps it. On timeout the child is left alone and `timed_out` is set.
[[nodiscard]] ExitStatus wait_for_exit(pid_t pid, milliseconds timeout);

struct RunOptions {
  std::string stdin_text;                        // Fed to the child's stdin, then EOF.
  std::map<std::string, std::string> env_extra;  // Set in (or replaced in) the test's env.
  std::filesystem::path cwd;                     // Empty: the test's own; else also $PWD.
  milliseconds timeout{15'000};                  // Then the child is killed and the test fails.
};

struct ProcessOutput {
  int exit_code = -1;  // -1 if it did not exit normally.
  std::string out;     // Everything it wrote to stdout.
  std::string err;     // Everything it wrote to stderr.
};

// The test process's environment, without anything that would make a child talk to a real
// daemon or to systemd (TASKGROUPD_*, LISTEN_*, NOTIFY_SOCKET, JOURNAL_STREAM).
[[nodiscard]] std::map<std::string, std::string> clean_environment();

// The environment as execve() wants it.
[[nodiscard]] std::vector<std::string> env_strings(const std::map<std::string, std::string>& env);

// Runs argv[0] (a path) to completion with only fds 0-2 open, capturing its output. A child
// that outlives opts.timeout is SIGKILLed, and the test fails with what it printed so far.
[[nodiscard]] ProcessOutput run_process(const std::vector<std::string>& argv,
                                        const RunOptions& opts = {});

// "a b 'c d'": for failure messages.
[[nodiscard]] std::string quote_argv(const std::vector<std::string>& argv);

}  // namespace tg::test
