#include "support/test_daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include <doctest/doctest.h>

#include "support/test_status.h"

namespace tg::test {

namespace {

namespace fs = std::filesystem;

constexpr milliseconds kStopTimeout{5'000};
constexpr std::size_t kLogTailBytes = 16 * 1024;

Fd listen_on(const std::string& path) {
  sockaddr_un addr{};
  REQUIRE_MESSAGE(path.size() < sizeof addr.sun_path, "socket path too long: " << path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  (void)::unlink(path.c_str());  // Left by the previous daemon of a restart; ENOENT otherwise.
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE_MESSAGE(fd.valid(), "socket: " << last_error());
  REQUIRE_MESSAGE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0,
                  "bind " << path << ": " << last_error());
  REQUIRE_MESSAGE(::listen(fd.get(), SOMAXCONN) == 0, "listen: " << last_error());
  return fd;
}

// Writes `n` in decimal at `out` (no allocation: runs between fork and exec).
void format_pid(char* out, pid_t n) {
  char digits[16];
  int len = 0;
  do {
    digits[len++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0);
  while (len > 0) *out++ = digits[--len];
  *out = '\0';
}

// In the forked child: fd 3 is the listening socket, 0 is /dev/null, 1 and 2 the log.
[[noreturn]] void exec_daemon(pid_t parent, int listen_fd, int null_fd, int log_fd, char** argv,
                              char** envp, char* listen_pid_digits) {
  (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);  // A crashed test must not leave daemons behind.
  if (::getppid() != parent) ::_exit(126);   // The test died before prctl took effect.
  (void)::signal(SIGPIPE, SIG_DFL);
  format_pid(listen_pid_digits, ::getpid());  // LISTEN_PID: only known after fork.
  if (::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) ::_exit(126);
  if (listen_fd == 3) {
    if (::fcntl(3, F_SETFD, 0) != 0) ::_exit(126);  // Clear FD_CLOEXEC.
  } else if (::dup2(listen_fd, 3) < 0) {            // dup2 leaves FD_CLOEXEC clear on the copy.
    ::_exit(126);
  }
  (void)::syscall(SYS_close_range, 4U, ~0U, 0U);
  ::execve(argv[0], argv, envp);
  (void)!::write(2, "exec of taskgroupd failed\n", 26);
  ::_exit(127);
}

std::string tail(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "[... " + std::to_string(text.size() - max_bytes) + " bytes cut ...]\n" +
         text.substr(text.size() - max_bytes);
}

}  // namespace

TestDaemon::TestDaemon(DaemonOptions options) : options_(std::move(options)) {
  state_dir_ = options_.state_dir.value_or(dir() / "state");
  for (const char* sub : {"config", "run", "state-home"}) fs::create_directories(dir() / sub);
  // Defaults unless the test gives one; tests may rewrite it and reload.
  write_file(dir() / "taskgroupd.toml", options_.config);
  start();
}

TestDaemon::~TestDaemon() {
  if (pid_ > 0) {
    (void)::kill(pid_, SIGTERM);
    const ExitStatus st = wait_for_exit(pid_, kStopTimeout);
    if (st.timed_out) {
      (void)::kill(pid_, SIGKILL);
      (void)wait_for_exit(pid_, kStopTimeout);
    }
    pid_ = -1;
    CHECK_MESSAGE(st.clean(), "taskgroupd after SIGTERM: " << st.describe()
                                                           << " (want exit 0 within "
                                                           << kStopTimeout.count() << " ms)");
  }
  if (current_test_failed()) {
    std::cerr << "---- taskgroupd log (" << (dir() / "daemon.log").string() << ") ----\n"
              << tail(log(), kLogTailBytes) << "---- end of taskgroupd log ----\n";
  }
}

std::string TestDaemon::socket_path() const { return (dir() / "s").string(); }

void TestDaemon::start() {
  REQUIRE(pid_ < 0);
  Fd listener = listen_on(socket_path());
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Fd log_fd(
      ::open((dir() / "daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  REQUIRE(null_fd.valid());
  REQUIRE(log_fd.valid());

  std::vector<std::string> args = {options_.binary.value_or(TG_DAEMON_BIN).string(),
                                   "--socket",
                                   socket_path(),
                                   "--state-dir",
                                   state_dir_.string(),
                                   "--config",
                                   (dir() / "taskgroupd.toml").string(),
                                   "--log-level",
                                   "debug"};
  args.insert(args.end(), options_.args.begin(), options_.args.end());
  auto env = clean_environment();
  env["XDG_CONFIG_HOME"] = (dir() / "config").string();
  env["XDG_RUNTIME_DIR"] = (dir() / "run").string();
  env["XDG_STATE_HOME"] = (dir() / "state-home").string();
  env["LISTEN_FDS"] = "1";
  std::vector<std::string> env_list = env_strings(env);
  env_list.push_back("LISTEN_PID=" + std::string(16, ' '));  // Filled in by the child.
  char* listen_pid_digits = env_list.back().data() + std::strlen("LISTEN_PID=");

  std::vector<char*> c_args, c_env;
  for (auto& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  for (auto& e : env_list) c_env.push_back(e.data());
  c_env.push_back(nullptr);

  const std::string banner = "==== test: starting " + quote_argv(args) + "\n";
  (void)!::write(log_fd.get(), banner.data(), banner.size());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  REQUIRE_MESSAGE(pid >= 0, "fork: " << last_error());
  if (pid == 0) {
    exec_daemon(parent, listener.get(), null_fd.get(), log_fd.get(), c_args.data(), c_env.data(),
                listen_pid_digits);
  }
  pid_ = pid;
  // Our copy of the listening socket closes here: once the daemon is gone, connects fail
  // instead of hanging in a backlog that no one accepts from.
}

void TestDaemon::send_signal(int sig) {
  REQUIRE_MESSAGE(pid_ > 0, "taskgroupd is not running");
  REQUIRE_MESSAGE(::kill(pid_, sig) == 0, "kill: " << last_error());
}

void TestDaemon::crash() {
  send_signal(SIGKILL);
  const ExitStatus st = wait_exit(milliseconds(10'000));
  REQUIRE_MESSAGE(st.signal == SIGKILL, "taskgroupd after SIGKILL: " << st.describe());
}

ExitStatus TestDaemon::wait_exit(milliseconds timeout) {
  REQUIRE_MESSAGE(pid_ > 0, "taskgroupd is not running");
  const ExitStatus st = wait_for_exit(pid_, timeout);
  if (!st.timed_out) pid_ = -1;
  return st;
}

void TestDaemon::restart() {
  if (pid_ > 0) {
    send_signal(SIGTERM);
    const ExitStatus st = wait_exit(kStopTimeout);
    REQUIRE_MESSAGE(st.clean(), "taskgroupd after SIGTERM: " << st.describe());
  }
  start();
}

ProcessOutput TestDaemon::tgctl(const std::vector<std::string>& args,
                                const RunOptions& opts) const {
  return run_tgctl(socket_path(), args, opts);
}

std::string TestDaemon::log() const { return read_file(dir() / "daemon.log"); }

ProcessOutput run_tgctl(const std::string& socket, const std::vector<std::string>& args,
                        const RunOptions& opts) {
  std::vector<std::string> argv = {TG_CLIENT_BIN, "--socket", socket};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, opts);
}

}  // namespace tg::test
