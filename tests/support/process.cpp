#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <doctest/doctest.h>

extern char** environ;

namespace tg::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

ExitStatus decode(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) s.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

struct Pipe {
  Fd read_end;
  Fd write_end;
};

Pipe make_pipe() {
  int fds[2];
  REQUIRE_MESSAGE(::pipe2(fds, O_CLOEXEC) == 0, "pipe2: " << last_error());
  return {Fd(fds[0]), Fd(fds[1])};
}

// In the forked child: wire up stdio, close everything else, exec. Never returns.
[[noreturn]] void exec_child(const char* cwd, int in, int out, int err, char** argv, char** envp) {
  (void)::signal(SIGPIPE, SIG_DFL);  // We ignore it in the test process; the child must not.
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

// Moves stdin text in and output out until both output pipes close or the deadline passes.
// Returns false on timeout.
bool pump(Fd& in, Fd& out, Fd& err, std::string_view stdin_text, ProcessOutput& result,
          Clock::time_point deadline) {
  std::size_t written = 0;
  if (stdin_text.empty()) in.reset();
  while (out.valid() || err.valid()) {
    pollfd fds[3] = {{in.get(), POLLOUT, 0}, {out.get(), POLLIN, 0}, {err.get(), POLLIN, 0}};
    const int n = ::poll(fds, 3, remaining_ms(deadline));
    if (n == 0) return false;
    if (n < 0) {
      REQUIRE_MESSAGE(errno == EINTR, "poll: " << last_error());
      continue;
    }
    if (fds[0].revents != 0) {
      const ssize_t w = ::write(in.get(), stdin_text.data() + written, stdin_text.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if (w < 0 || written == stdin_text.size()) in.reset();  // EPIPE: it stopped reading.
    }
    for (int i = 1; i <= 2; ++i) {
      if (fds[i].revents == 0) continue;
      Fd& fd = i == 1 ? out : err;
      char buf[65536];
      const ssize_t r = ::read(fd.get(), buf, sizeof buf);
      if (r > 0) {
        (i == 1 ? result.out : result.err).append(buf, static_cast<std::size_t>(r));
      } else {
        fd.reset();
      }
    }
  }
  return true;
}

}  // namespace

std::string last_error() { return std::strerror(errno); }

void Fd::reset() {
  if (fd_ >= 0) (void)::close(fd_);  // Nothing useful to do about a close error in a test.
  fd_ = -1;
}

std::string ExitStatus::describe() const {
  if (timed_out) return "still running";
  if (signal != 0) return "signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  return "exit " + std::to_string(code);
}

ExitStatus wait_for_exit(pid_t pid, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  int status = 0;
  for (;;) {
    const pid_t got = ::waitpid(pid, &status, WNOHANG);
    if (got == pid) return decode(status);
    REQUIRE_MESSAGE(got == 0, "waitpid(" << pid << "): " << last_error());
    if (Clock::now() >= deadline) return ExitStatus{true, -1, 0};
    if (pidfd.valid()) {
      pollfd p{pidfd.get(), POLLIN, 0};
      (void)::poll(&p, 1, remaining_ms(deadline));  // EINTR or timeout: the loop re-checks.
    } else {
      std::this_thread::sleep_for(milliseconds(5));  // No pidfd (old kernel): poll gently.
    }
  }
}

std::map<std::string, std::string> clean_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string name(kv.substr(0, eq));
    if (name.starts_with("TASKGROUPD_") || name.starts_with("LISTEN_") || name == "NOTIFY_SOCKET" ||
        name == "JOURNAL_STREAM") {
      continue;
    }
    env[name] = std::string(kv.substr(eq + 1));
  }
  return env;
}

std::vector<std::string> env_strings(const std::map<std::string, std::string>& env) {
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::string quote_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_of(" \t\n'\"$\\;&|<>*?()") == std::string::npos;
    out += plain ? a : "'" + a + "'";
  }
  return out;
}

ProcessOutput run_process(const std::vector<std::string>& argv, const RunOptions& opts) {
  REQUIRE(!argv.empty());
  (void)::signal(SIGPIPE, SIG_IGN);  // A child that exits early must not kill us via stdin.
  auto env = clean_environment();
  if (!opts.cwd.empty()) env["PWD"] = opts.cwd.string();
  for (const auto& [k, v] : opts.env_extra) env[k] = v;
  std::vector<std::string> args = argv, env_list = env_strings(env);
  std::vector<char*> c_argv = c_strings(args), c_env = c_strings(env_list);
  const std::string cwd = opts.cwd.string();

  Pipe in = make_pipe(), out = make_pipe(), err = make_pipe();
  const pid_t pid = ::fork();
  REQUIRE_MESSAGE(pid >= 0, "fork: " << last_error());
  if (pid == 0) {
    exec_child(cwd.empty() ? nullptr : cwd.c_str(), in.read_end.get(), out.write_end.get(),
               err.write_end.get(), c_argv.data(), c_env.data());
  }
  in.read_end.reset();
  out.write_end.reset();
  err.write_end.reset();

  ProcessOutput result;
  const auto deadline = Clock::now() + opts.timeout;
  const bool done =
      pump(in.write_end, out.read_end, err.read_end, opts.stdin_text, result, deadline);
  ExitStatus status = wait_for_exit(pid, milliseconds(done ? remaining_ms(deadline) : 0));
  if (status.timed_out) {
    (void)::kill(pid, SIGKILL);
    (void)wait_for_exit(pid, milliseconds(5'000));
    FAIL(quote_argv(argv) << " did not finish within " << opts.timeout.count()
                          << " ms; killed it.\nstdout so far:\n"
                          << result.out << "\nstderr so far:\n"
                          << result.err);
  }
  result.exit_code = status.signal == 0 ? status.code : -1;
  return result;
}

}  // namespace tg::test
