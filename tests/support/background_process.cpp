#include "support/background_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <doctest/doctest.h>

namespace tg::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// In the forked child: wire up stdio, close everything else, exec. Never returns.
[[noreturn]] void exec_child(const char* cwd, int in, int out, int err, char** argv, char** envp) {
  (void)::signal(SIGPIPE, SIG_DFL);  // The test process may ignore it; the child must not.
  if (cwd != nullptr && ::chdir(cwd) != 0) {
    (void)!::write(err, "chdir failed\n", 13);
    ::_exit(126);
  }
  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
  (void)::syscall(SYS_close_range, 3U, ~0U, 0U);
  ::execve(argv[0], argv, envp);
  (void)!::write(2, "exec failed\n", 12);
  ::_exit(127);
}

}  // namespace

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, const RunOptions& opts)
    : argv_(argv) {
  REQUIRE(!argv.empty());
  REQUIRE_MESSAGE(opts.stdin_text.empty(), "a BackgroundProcess reads /dev/null");
  auto env = clean_environment();
  if (!opts.cwd.empty()) env["PWD"] = opts.cwd.string();
  for (const auto& [k, v] : opts.env_extra) env[k] = v;
  std::vector<std::string> args = argv, env_list = env_strings(env);
  std::vector<char*> c_argv, c_env;
  for (auto& a : args) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  for (auto& e : env_list) c_env.push_back(e.data());
  c_env.push_back(nullptr);
  const std::string cwd = opts.cwd.string();

  int out[2], err[2];
  REQUIRE_MESSAGE(::pipe2(out, O_CLOEXEC) == 0, "pipe2: " << last_error());
  Fd out_read(out[0]), out_write(out[1]);
  REQUIRE_MESSAGE(::pipe2(err, O_CLOEXEC) == 0, "pipe2: " << last_error());
  Fd err_read(err[0]), err_write(err[1]);
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE_MESSAGE(null_fd.valid(), "open /dev/null: " << last_error());

  const pid_t pid = ::fork();
  REQUIRE_MESSAGE(pid >= 0, "fork: " << last_error());
  if (pid == 0) {
    exec_child(cwd.empty() ? nullptr : cwd.c_str(), null_fd.get(), out_write.get(), err_write.get(),
               c_argv.data(), c_env.data());
  }
  pid_ = pid;
  out_fd_ = std::move(out_read);
  err_fd_ = std::move(err_read);
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0) {
    (void)::kill(pid_, SIGKILL);  // Still running: the test is over (or failed) without it.
    (void)wait_for_exit(pid_, milliseconds(5'000));
  }
}

bool BackgroundProcess::pump(int timeout_ms) {
  if (!out_fd_.valid() && !err_fd_.valid()) return false;
  pollfd fds[2] = {{out_fd_.get(), POLLIN, 0}, {err_fd_.get(), POLLIN, 0}};
  const int n = ::poll(fds, 2, timeout_ms);
  if (n < 0) {
    REQUIRE_MESSAGE(errno == EINTR, "poll: " << last_error());
    return true;
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i].revents == 0) continue;
    Fd& fd = i == 0 ? out_fd_ : err_fd_;
    char buf[65536];
    const ssize_t r = ::read(fd.get(), buf, sizeof buf);
    if (r > 0) {
      (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(r));
    } else if (r == 0 || errno != EINTR) {
      fd.reset();
    }
  }
  return out_fd_.valid() || err_fd_.valid();
}

bool BackgroundProcess::wait_for_output(std::string_view needle, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (out_.find(needle) == std::string::npos) {
    if (Clock::now() >= deadline || !pump(remaining_ms(deadline))) {
      return out_.find(needle) != std::string::npos;
    }
  }
  return true;
}

bool BackgroundProcess::running() {
  (void)pump(0);  // Take what is there now, without blocking.
  if (pid_ < 0) return false;
  siginfo_t info{};
  // WNOWAIT: look, but leave the reaping to wait().
  REQUIRE_MESSAGE(::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
                  "waitid(" << pid_ << "): " << last_error());
  return info.si_pid == 0;
}

ExitStatus BackgroundProcess::wait(milliseconds timeout) {
  REQUIRE_MESSAGE(pid_ > 0, quote_argv(argv_) << " was already reaped");
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && pump(remaining_ms(deadline))) {
  }
  const ExitStatus st = wait_for_exit(pid_, milliseconds(remaining_ms(deadline)));
  if (!st.timed_out) pid_ = -1;
  return st;
}

}  // namespace tg::test
