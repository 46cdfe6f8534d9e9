#include "daemon/sys/handover.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"

extern char** environ;

namespace tg::daemon {

namespace {

using json = nlohmann::json;

constexpr const char* kHandoverEnv = "TASKGROUPD_HANDOVER_FD";
constexpr std::size_t kMaxHandoverBytes = 64 << 20;  // 10^6 running tasks fit many times.

Error sys_error(const std::string& what) {
  return Error{Errc::kInternal, what + ": " + ::strerror(errno)};
}

bool set_cloexec(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) return false;
  return ::fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) == 0;
}

// The environment of the exec: ours, with the handover's fd named and no stale one.
std::vector<std::string> exec_environment(int handover_fd) {
  std::vector<std::string> out;
  const std::string prefix = std::string(kHandoverEnv) + "=";
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) out.emplace_back(*e);
  }
  out.push_back(prefix + std::to_string(handover_fd));
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

sigset_t lifecycle_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&set, sig);
  return set;
}

}  // namespace

Result<int> write_handover(const Handover& h) {
  const json doc = {{"version", h.version},
                    {"listen_fd", h.listen_fd},
                    {"socket_path", h.socket_path},
                    {"owned_socket", h.owned_socket},
                    {"lock_fd", h.lock_fd},
                    {"task_umask", h.task_umask},
                    {"watchdog_usec", h.watchdog_usec},
                    {"tasks", h.tasks}};
  const std::string text = doc.dump();
  UniqueFd fd(::memfd_create("taskgroupd-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return sys_error("memfd_create");
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return sys_error("writing the handover");
    done += static_cast<std::size_t>(n);
  }
  // Sealed: what the next program reads is exactly what we wrote.
  (void)::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return sys_error("lseek");
  return fd.release();
}

Result<Handover> read_handover(int raw_fd) {
  UniqueFd fd(raw_fd);
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("reading the handover (fd " + std::to_string(raw_fd) + ")");
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxHandoverBytes) return Error{Errc::kInternal, "the handover is too large"};
  }
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return Error{Errc::kInternal, "the handover is not a JSON object"};
  Handover h;
  try {
    h.version = doc.at("version").get<int>();
    if (h.version != Handover::kVersion) {
      return Error{Errc::kInternal, "handover version " + std::to_string(h.version) +
                                        " is not ours (" + std::to_string(Handover::kVersion) +
                                        ")"};
    }
    h.listen_fd = doc.at("listen_fd").get<int>();
    h.socket_path = doc.at("socket_path").get<std::string>();
    h.owned_socket = doc.at("owned_socket").get<std::string>();
    h.lock_fd = doc.at("lock_fd").get<int>();
    h.task_umask = doc.at("task_umask").get<unsigned>();
    h.watchdog_usec = doc.at("watchdog_usec").get<std::int64_t>();
    h.tasks = doc.at("tasks").get<std::vector<std::int64_t>>();
  } catch (const json::exception& e) {
    return Error{Errc::kInternal, std::string("a damaged handover: ") + e.what()};
  }
  return h;
}

std::string reexec_check_line() { return "handover " + std::to_string(Handover::kVersion); }

Result<void> check_new_binary(const SelfExec& self, int timeout_ms) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return sys_error("pipe2");
  UniqueFd read_end(out[0]), write_end(out[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<std::string> args{self.exe};
  args.insert(args.end(), self.argv.begin() + (self.argv.empty() ? 0 : 1), self.argv.end());
  args.emplace_back("--check-reexec");
  auto argv = pointers(args);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  auto envp = pointers(env_strings);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, self.exe.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Error{Errc::kInternal, "cannot run " + self.exe + ": " + ::strerror(rc)};
  write_end.reset();
  // Read what it says until it closes its end or the time is up; then it must have exited 0.
  std::string said;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{read_end.get(), POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      ::kill(pid, SIGKILL);
      (void)::waitpid(pid, nullptr, 0);
      return Error{Errc::kInternal, self.exe + " --check-reexec did not answer within " +
                                        std::to_string(timeout_ms) + " ms"};
    }
    char buf[4096];
    const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (said.size() < 4096) said.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error{Errc::kInternal, self.exe + " cannot take over: " +
                                      (said.empty() ? "it exited without a word" : said)};
  }
  if (said != reexec_check_line()) {
    return Error{Errc::kInternal, self.exe + " speaks another handover ('" + said + "', we need '" +
                                      reexec_check_line() + "')"};
  }
  return {};
}

void hold_lifecycle_signals() {
  const sigset_t lifecycle = lifecycle_signals();
  (void)::sigprocmask(SIG_BLOCK, &lifecycle, nullptr);  // Cannot fail with valid arguments.
}

Error exec_handover(const SelfExec& self, const Handover& h) {
  hold_lifecycle_signals();
  auto memfd = write_handover(h);
  if (memfd.has_error()) return memfd.error();
  // Nothing of ours but the handover's files may reach the next program.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    ::close(*memfd);
    return sys_error("close_range");
  }
  const int keep[] = {h.listen_fd, h.lock_fd, *memfd};
  for (int fd : keep) {
    if (fd >= 0 && !set_cloexec(fd, false)) {
      ::close(*memfd);
      return sys_error("fcntl");
    }
  }
  auto env_strings = exec_environment(*memfd);
  auto envp = pointers(env_strings);
  std::vector<std::string> args{self.argv};
  if (args.empty()) args.push_back(self.exe);
  auto argv = pointers(args);
  ::execve(self.exe.c_str(), argv.data(), envp.data());
  const Error failed = sys_error("cannot execute " + self.exe);
  for (int fd : keep) {
    if (fd >= 0) (void)set_cloexec(fd, true);
  }
  ::close(*memfd);
  return failed;
}

}  // namespace tg::daemon
