#include "daemon/child.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "daemon/sys_compat.h"

namespace tg::daemon {

namespace {

// Where the vfork child reports how it failed; it shares our memory until it execs or exits.
struct ChildFailure {
  int err = 0;
  const char* step = nullptr;
};

// Runs in the vfork child: only raw system calls, no allocation, no locks. Raw setuid/setgid
// syscalls on purpose: glibc's wrappers broadcast to other threads (sanitizer threads included).
[[noreturn]] void exec_child(const SpawnSpec& spec, const char* path, char* const* argv,
                             char* const* envp, volatile ChildFailure* failure) {
  const auto fail = [&](const char* step) {
    failure->err = errno;
    failure->step = step;
    ::_exit(127);
  };
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) (void)::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail("sigprocmask");
  if (::setsid() < 0) fail("setsid");
  if (spec.credentials) {
    const auto& c = *spec.credentials;
    if (::syscall(SYS_setgroups, c.groups.size(), c.groups.data()) != 0) fail("setgroups");
    if (::syscall(SYS_setresgid, c.gid, c.gid, c.gid) != 0) fail("setgid");
    if (::syscall(SYS_setresuid, c.uid, c.uid, c.uid) != 0) fail("setuid");
  }
  ::umask(static_cast<mode_t>(spec.umask));
  if (::chdir(spec.cwd.c_str()) != 0) fail("chdir");
  const int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull < 0) fail("open /dev/null");
  if (::dup2(devnull, 0) < 0 || ::dup2(spec.log_fd, 1) < 0 || ::dup2(spec.log_fd, 2) < 0) {
    fail("dup2");
  }
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) fail("close_range");
  ::execve(path, argv, envp);
  fail("exec");
  ::_exit(127);  // fail() exits; this tells the compiler so.
}

std::string env_value(const std::vector<std::string>& env, std::string_view name) {
  for (const auto& kv : env) {
    if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 &&
        kv[name.size()] == '=') {
      return kv.substr(name.size() + 1);
    }
  }
  return {};
}

}  // namespace

std::optional<std::string> find_executable(const std::string& name, const std::string& path_value) {
  if (name.find('/') != std::string::npos) return name;
  std::stringstream dirs(path_value.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_value);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

std::uint64_t process_start_time(pid_t pid) {
  // Called for every spawn: plain read(2) into a buffer, no streams.
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return 0;
  char buf[1024];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // comm may contain spaces and parentheses.
  if (p == nullptr) return 0;
  ++p;
  // p is at the space before field 3; step to the one before field 22 (starttime).
  for (int field = 3; field < 22 && p != nullptr; ++field) p = std::strchr(p + 1, ' ');
  return p ? std::strtoull(p + 1, nullptr, 10) : 0;
}

Result<Spawned> spawn_child(const SpawnSpec& spec) {
  if (spec.argv.empty()) return Error{Errc::kInvalidParams, "empty command"};
  const auto path = find_executable(spec.argv[0], env_value(spec.env, "PATH"));
  if (!path) return Error{Errc::kNotFound, "command not found: " + spec.argv[0]};

  // Everything the child needs is built before vfork: it must not allocate.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // Block every signal so no handler of ours runs in the child before it resets them.
  sigset_t all, old;
  sigfillset(&all);
  (void)::pthread_sigmask(SIG_SETMASK, &all, &old);  // Cannot fail with a valid how.
  volatile ChildFailure failure;
  const pid_t pid = ::vfork();
  if (pid == 0) exec_child(spec, path->c_str(), argv.data(), envp.data(), &failure);
  const int vfork_errno = errno;
  (void)::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    return Error{Errc::kBusy, std::string("fork failed: ") + ::strerrordesc_np(vfork_errno)};
  }
  if (failure.step != nullptr) {
    int status = 0;
    (void)::waitpid(pid, &status, 0);  // Reap the failed child; it has exited already.
    const std::string_view step = failure.step;
    const std::string why = ::strerrordesc_np(failure.err);
    if (step == "exec")
      return Error{Errc::kInvalidParams, "cannot execute '" + *path + "': " + why};
    if (step == "chdir")
      return Error{Errc::kInvalidParams, "cannot enter '" + spec.cwd + "': " + why};
    return Error{Errc::kInvalidParams, std::string(step) + " failed: " + why};
  }
  Spawned s;
  s.pid = pid;
  s.pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!s.pidfd.valid()) {
    const int err = errno;
    (void)::kill(pid, SIGKILL);  // Unwatchable: do not leave it running unaccounted for.
    (void)::waitpid(pid, nullptr, 0);
    return Error{Errc::kBusy, std::string("pidfd_open failed: ") + ::strerrordesc_np(err)};
  }
  (void)::fcntl(s.pidfd.get(), F_SETFD, FD_CLOEXEC);  // pidfd_open sets it; keep it explicit.
  s.start_time = process_start_time(pid);
  return s;
}

}  // namespace tg::daemon
