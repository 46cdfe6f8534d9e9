#include "daemon/exec/local/child.h"

#include <fcntl.h>
#include <linux/prctl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "daemon/exec/local/raw_syscall.h"
#include "daemon/exec/local/sys_compat.h"
#include "daemon/log/printable.h"

namespace tg::daemon {

namespace {

using raw::arg;
using raw::kRawSyscalls;
using raw::raw_syscall;

// The kernel's struct sigaction (rt_sigaction), not glibc's: same field order on x86-64 and
// arm64.
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  unsigned long mask;
};

// The pre-exec steps, in order; the one that failed is reported to the parent.
enum class Step : int {
  kNone,
  kCgroup,
  kSignals,
  kSetsid,
  kOpenLog,
  kLogNotRegular,
  kChownLog,
  kSetgroups,
  kSetgid,
  kSetuid,
  kNoNewPrivs,
  kChdir,
  kDevNull,
  kDup,
  kCloseRange,
  kGateAbandoned,
  kExec,
};

struct FailureRecord {
  Step step;
  int err;
};

constexpr std::size_t kChildStack = 32 * 1024;  // The child calls no library code.

}  // namespace

// Everything the child reads before exec, owned by its Launch so that the loop cannot free it
// under the child's feet.
struct Launch::Bundle {
  std::string path;
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string cwd;
  std::string log_path;
  long log_keep = 0;
  std::string log_header;
  unsigned umask = 022;
  bool switch_user = false;
  bool no_new_privs = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  int report_fd = -1;  // The write end, in the child's copy of the fd table.
  int gate_fd = -1;    // SpawnSpec::gate_fd.
  int cgroup_fd = -1;  // SpawnSpec::cgroup_procs_fd.
  std::unique_ptr<char[]> stack;

  // What the child reads: plain pointers into the fields above, so that it calls no function
  // (not even an accessor; unoptimised builds do not inline them).
  struct Raw {
    const char* path;
    char* const* argv;
    char* const* envp;
    const char* cwd;
    const char* log_path;
    long log_keep;
    const char* log_header;
    long log_header_size;
    long umask;
    bool switch_user;
    bool no_new_privs;
    long uid;
    long gid;
    long ngroups;
    const gid_t* groups;
    long report_fd;
    long gate_fd;
    long cgroup_fd;
  } raw{};
};

struct LaunchAccess {
  static Launch* make() { return new Launch(); }
  static std::unique_ptr<Launch::Bundle>& bundle(Launch& l) { return l.bundle_; }
};

Launch::~Launch() = default;

namespace {

[[gnu::always_inline, noreturn]] inline void report_and_exit(long report_fd, Step step, long ret) {
  FailureRecord rec;
  rec.step = step;
  rec.err = static_cast<int>(-ret);
  (void)raw_syscall(SYS_write, report_fd, arg(&rec), sizeof rec);
  for (;;) (void)raw_syscall(SYS_exit_group, 127);
}

// Runs in the child on the bundle's stack: raw system calls only, no allocation, no function
// call, no sanitizer instrumentation (its runtime keeps state in the TLS we share).
[[gnu::noinline, gnu::no_sanitize("address", "undefined"), noreturn]] void exec_child(
    const Launch::Bundle::Raw& b) {
  long r = 0;
  // Into the task's cgroup before anything else: whatever this process becomes, and whatever it
  // starts, is then inside it (writing "0" moves the writer).
  if (b.cgroup_fd >= 0 && (r = raw_syscall(SYS_write, b.cgroup_fd, arg("0"), 1)) < 0) {
    report_and_exit(b.report_fd, Step::kCgroup, r);
  }
  KernelSigaction dfl;
  dfl.handler = nullptr;  // SIG_DFL
  dfl.flags = 0;
  dfl.restorer = nullptr;
  dfl.mask = 0;
  for (long sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    (void)raw_syscall(SYS_rt_sigaction, sig, arg(&dfl), 0, sizeof dfl.mask);  // 32-33: EINVAL.
  }
  const unsigned long none = 0;
  if ((r = raw_syscall(SYS_rt_sigprocmask, SIG_SETMASK, arg(&none), 0, sizeof none)) < 0) {
    report_and_exit(b.report_fd, Step::kSignals, r);
  }
  if ((r = raw_syscall(SYS_setsid)) < 0) report_and_exit(b.report_fd, Step::kSetsid, r);

  // The log first, while we may still be root: O_NOFOLLOW so that a symlink planted in the
  // log directory cannot redirect our writes; O_NONBLOCK and the S_ISREG check so that a
  // planted FIFO fails the task instead of hanging it; 0600 because it is the submitter's.
  // A retry keeps the earlier attempts' output (and drops whatever a crash left after it).
  long log = raw_syscall(SYS_openat, AT_FDCWD, arg(b.log_path),
                         O_WRONLY | O_CREAT | (b.log_keep > 0 ? 0 : O_TRUNC) | O_NOFOLLOW |
                             O_CLOEXEC | O_APPEND | O_NONBLOCK,
                         0600);
  if (log < 0) report_and_exit(b.report_fd, Step::kOpenLog, log);
  struct stat st;
  if ((r = raw_syscall(SYS_fstat, log, arg(&st))) < 0)
    report_and_exit(b.report_fd, Step::kOpenLog, r);
  if (!S_ISREG(st.st_mode)) report_and_exit(b.report_fd, Step::kLogNotRegular, -EINVAL);
  (void)raw_syscall(SYS_fcntl, log, F_SETFL, O_WRONLY | O_APPEND);  // The task blocks.
  if (b.log_keep > 0 && st.st_size > b.log_keep &&
      (r = raw_syscall(SYS_ftruncate, log, b.log_keep)) < 0) {
    report_and_exit(b.report_fd, Step::kOpenLog, r);
  }
  if (b.log_header_size > 0)
    (void)raw_syscall(SYS_write, log, arg(b.log_header), b.log_header_size);
  if (b.switch_user) {
    if ((r = raw_syscall(SYS_fchown, log, b.uid, b.gid)) < 0)
      report_and_exit(b.report_fd, Step::kChownLog, r);
    if ((r = raw_syscall(SYS_setgroups, b.ngroups, arg(b.groups))) < 0) {
      report_and_exit(b.report_fd, Step::kSetgroups, r);
    }
    if ((r = raw_syscall(SYS_setresgid, b.gid, b.gid, b.gid)) < 0)
      report_and_exit(b.report_fd, Step::kSetgid, r);
    if ((r = raw_syscall(SYS_setresuid, b.uid, b.uid, b.uid)) < 0)
      report_and_exit(b.report_fd, Step::kSetuid, r);
  }
  // Kept across the exec: a setuid or setcap program runs without its extra rights.
  if (b.no_new_privs && (r = raw_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) < 0) {
    report_and_exit(b.report_fd, Step::kNoNewPrivs, r);
  }
  (void)raw_syscall(SYS_umask, b.umask);
  if ((r = raw_syscall(SYS_chdir, arg(b.cwd))) < 0) report_and_exit(b.report_fd, Step::kChdir, r);
  long devnull = raw_syscall(SYS_openat, AT_FDCWD, arg("/dev/null"), O_RDONLY | O_CLOEXEC);
  if (devnull < 0) report_and_exit(b.report_fd, Step::kDevNull, devnull);
  // Move both above 2 first (the daemon may have been started with 0-2 closed), then place
  // them; dup3 clears close-on-exec on the copies.
  if (log < 3 && (log = raw_syscall(SYS_fcntl, log, F_DUPFD_CLOEXEC, 3)) < 0)
    report_and_exit(b.report_fd, Step::kDup, log);
  if (devnull < 3 && (devnull = raw_syscall(SYS_fcntl, devnull, F_DUPFD_CLOEXEC, 3)) < 0) {
    report_and_exit(b.report_fd, Step::kDup, devnull);
  }
  if ((r = raw_syscall(SYS_dup3, devnull, 0, 0)) < 0 ||
      (r = raw_syscall(SYS_dup3, log, 1, 0)) < 0 || (r = raw_syscall(SYS_dup3, log, 2, 0)) < 0) {
    report_and_exit(b.report_fd, Step::kDup, r);
  }
  // Everything from 3 up is closed, except the report pipe and the gate: close-on-exec closes
  // them at exec, which is how the parent learns that we no longer use its memory. Closed with
  // the rest: our copies of the write ends of every gate, ours included, so that only the
  // daemon's own keeps a gate from hanging up.
  const long lo = b.gate_fd >= 0 && b.gate_fd < b.report_fd ? b.gate_fd : b.report_fd;
  const long hi = b.gate_fd > b.report_fd ? b.gate_fd : b.report_fd;
  if (lo > 3 && (r = raw_syscall(SYS_close_range, 3, lo - 1, 0)) < 0)
    report_and_exit(b.report_fd, Step::kCloseRange, r);
  if (hi > lo + 1 && (r = raw_syscall(SYS_close_range, lo + 1, hi - 1, 0)) < 0)
    report_and_exit(b.report_fd, Step::kCloseRange, r);
  if ((r = raw_syscall(SYS_close_range, hi + 1, ~0U, 0)) < 0)
    report_and_exit(b.report_fd, Step::kCloseRange, r);
  // Ready: wait until the daemon has saved our start (StartGate). Readable means released;
  // a hang-up alone means the daemon died, or gave up on us, first.
  if (b.gate_fd >= 0) {
    struct pollfd gate;
    gate.fd = static_cast<int>(b.gate_fd);
    gate.events = POLLIN;
    gate.revents = 0;
    while ((r = raw_syscall(SYS_ppoll, arg(&gate), 1, 0, 0)) == -EINTR) {
    }
    if (r < 0) report_and_exit(b.report_fd, Step::kGateAbandoned, r);
    if ((gate.revents & POLLIN) == 0) report_and_exit(b.report_fd, Step::kGateAbandoned, 0);
  }
  r = raw_syscall(SYS_execve, arg(b.path), arg(b.argv), arg(b.envp));
  report_and_exit(b.report_fd, Step::kExec, r);
}

[[gnu::no_sanitize("address", "undefined")]] int clone_entry(void* raw) {
  exec_child(*static_cast<const Launch::Bundle::Raw*>(raw));
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

Error describe(const Launch::Bundle& b, const FailureRecord& rec) {
  const std::string why = ::strerrordesc_np(rec.err) ? ::strerrordesc_np(rec.err) : "?";
  auto invalid = [](std::string m) { return Error{Errc::kInvalidParams, std::move(m)}; };
  switch (rec.step) {
    case Step::kOpenLog:
      return invalid("cannot open log '" + b.log_path + "': " + why);
    case Step::kLogNotRegular:
      return invalid("log '" + b.log_path + "' is not a regular file");
    case Step::kChownLog:
      return invalid("cannot give the log to uid " + std::to_string(b.uid) + ": " + why);
    case Step::kSetgroups:
      return invalid("setgroups failed: " + why);
    case Step::kSetgid:
      return invalid("setgid failed: " + why);
    case Step::kSetuid:
      return invalid("setuid failed: " + why);
    case Step::kNoNewPrivs:
      return invalid("setting no_new_privs failed: " + why);
    case Step::kChdir:  // The user's strings are logged and shown: escaped and capped.
      return invalid("cannot enter '" + printable(b.cwd) + "': " + why);
    case Step::kExec:
      return invalid("cannot execute '" + printable(b.path) + "': " + why);
    case Step::kCgroup:
      return invalid("cannot enter the task's cgroup: " + why);
    case Step::kSignals:
      return invalid("resetting signals failed: " + why);
    case Step::kSetsid:
      return invalid("setsid failed: " + why);
    case Step::kDevNull:
      return invalid("cannot open /dev/null: " + why);
    case Step::kDup:
      return invalid("dup3 failed: " + why);
    case Step::kCloseRange:
      return invalid("close_range failed: " + why);
    case Step::kGateAbandoned:
      return invalid(rec.err == 0 ? "the daemon stopped before the task's start was saved"
                                  : "waiting for the start to be saved failed: " + why);
    case Step::kNone:
      break;
  }
  return invalid("the child died before exec");
}

}  // namespace

Result<StartGate> StartGate::open() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Error{Errc::kBusy, std::string("pipe failed: ") + ::strerrordesc_np(errno)};
  }
  UniqueFd wait(fds[0]);
  UniqueFd release(fds[1]);
  if (wait.get() < 3) {  // The child puts its stdio at 0-2: keep the gate out of the way.
    wait = UniqueFd(::fcntl(wait.get(), F_DUPFD_CLOEXEC, 3));
    if (!wait.valid()) {
      return Error{Errc::kBusy, std::string("fcntl failed: ") + ::strerrordesc_np(errno)};
    }
  }
  return StartGate(std::move(wait), std::move(release));
}

void StartGate::release() {
  if (!release_.valid()) return;
  const char go = 1;
  // Cannot block or fail: an empty pipe whose read end we still hold.
  [[maybe_unused]] const ssize_t n = ::write(release_.get(), &go, 1);
  release_.reset();
  wait_.reset();
}

std::optional<Result<void>> Launch::poll(int report_fd) {
  if (outcome_) return outcome_;
  FailureRecord rec{};
  const ssize_t n = ::read(report_fd, &rec, sizeof rec);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;
  if (n == 0) {
    outcome_ = Result<void>{};  // EOF: close-on-exec closed the last write end.
  } else if (n == static_cast<ssize_t>(sizeof rec)) {
    outcome_ = Result<void>{describe(*bundle_, rec)};
  } else {
    outcome_ = Result<void>{Error{Errc::kInternal, "unreadable report from the child"}};
  }
  return outcome_;
}

std::optional<std::string> find_executable(const std::string& name, const std::string& path_value) {
  if (name.find('/') != std::string::npos) return name;
  std::string_view dirs = path_value;
  if (dirs.empty()) dirs = "/usr/local/bin:/usr/bin:/bin";
  for (bool last = false; !last;) {
    const auto colon = dirs.find(':');
    last = colon == std::string_view::npos;
    const std::string_view dir = dirs.substr(0, colon);
    if (!last) dirs.remove_prefix(colon + 1);
    const std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + name;
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

std::chrono::nanoseconds process_age(std::uint64_t start_time) {
  UniqueFd fd(::open("/proc/uptime", O_RDONLY | O_CLOEXEC));
  char buf[64];
  const ssize_t n = fd.valid() ? ::read(fd.get(), buf, sizeof buf - 1) : -1;
  if (n <= 0) return {};
  buf[n] = '\0';
  const double uptime_s = std::strtod(buf, nullptr);
  const double started_s = double(start_time) / double(::sysconf(_SC_CLK_TCK));
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(std::max(0.0, uptime_s - started_s)));
}

std::string current_boot_id() {
  UniqueFd fd(::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return {};
  char buf[64];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0) return {};
  std::string id(buf, static_cast<std::size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

namespace {

// Everything the child reads, in a bundle its Launch owns, built before the clone.
std::unique_ptr<Launch> make_launch(const SpawnSpec& spec, std::string path) {
  std::unique_ptr<Launch> launch(LaunchAccess::make());
  auto& b = *(LaunchAccess::bundle(*launch) = std::make_unique<Launch::Bundle>());
  b.path = std::move(path);
  b.argv_storage = spec.argv;
  b.env_storage = spec.env;
  for (auto& a : b.argv_storage) b.argv.push_back(a.data());
  b.argv.push_back(nullptr);
  for (auto& e : b.env_storage) b.envp.push_back(e.data());
  b.envp.push_back(nullptr);
  b.cwd = spec.cwd;
  b.log_path = spec.log_path;
  b.log_keep = static_cast<long>(spec.log_keep);
  b.log_header = spec.log_header;
  b.umask = spec.umask;
  b.gate_fd = spec.gate_fd;
  b.cgroup_fd = spec.cgroup_procs_fd;
  b.no_new_privs = spec.no_new_privs;
  if (spec.credentials) {
    b.switch_user = true;
    b.uid = spec.credentials->uid;
    b.gid = spec.credentials->gid;
    b.groups = spec.credentials->groups;
  }
  b.stack.reset(new char[kChildStack]);
  return launch;
}

}  // namespace

Result<Spawned> spawn_child(const SpawnSpec& spec) {
  if (spec.argv.empty()) return Error{Errc::kInvalidParams, "empty command"};
  const auto path = find_executable(spec.argv[0], env_value(spec.env, "PATH"));
  if (!path) return Error{Errc::kNotFound, "command not found: " + printable(spec.argv[0])};
  std::unique_ptr<Launch> launch = make_launch(spec, *path);
  auto& b = *LaunchAccess::bundle(*launch);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Error{Errc::kBusy, std::string("pipe failed: ") + ::strerrordesc_np(errno)};
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  (void)::fcntl(write_end.get(), F_SETFL, 0);  // The child's end blocks (the record is tiny).
  if (write_end.get() < 3) {  // The child puts its stdio at 0-2: keep the pipe out of the way.
    write_end = UniqueFd(::fcntl(write_end.get(), F_DUPFD_CLOEXEC, 3));
    if (!write_end.valid()) {
      return Error{Errc::kBusy, std::string("fcntl failed: ") + ::strerrordesc_np(errno)};
    }
  }
  b.report_fd = write_end.get();
  b.raw = {b.path.c_str(),
           b.argv.data(),
           b.envp.data(),
           b.cwd.c_str(),
           b.log_path.c_str(),
           b.log_keep,
           b.log_header.c_str(),
           static_cast<long>(b.log_header.size()),
           static_cast<long>(b.umask),
           b.switch_user,
           b.no_new_privs,
           static_cast<long>(b.uid),
           static_cast<long>(b.gid),
           static_cast<long>(b.groups.size()),
           b.groups.data(),
           b.report_fd,
           b.gate_fd,
           b.cgroup_fd};

  // Block every signal so no handler of ours runs in the child before it resets them.
  sigset_t all, old;
  sigfillset(&all);
  (void)::pthread_sigmask(SIG_SETMASK, &all, &old);  // Cannot fail with a valid how.
  int pidfd = -1;
  // Sharing our memory saves copying the page tables, and is safe only with raw system calls
  // (raw_syscall.h). Without them the child gets a copy, as after fork(): suspending the loop
  // until the child's exec (CLONE_VFORK) would deadlock against the gate it waits on.
  const int flags = (kRawSyscalls ? CLONE_VM : 0) | CLONE_PIDFD | SIGCHLD;
  char* stack_top = b.stack.get() + kChildStack;
  stack_top -= reinterpret_cast<std::uintptr_t>(stack_top) % 16;
  const pid_t pid = ::clone(clone_entry, stack_top, flags, &b.raw, &pidfd);
  const int clone_errno = errno;
  (void)::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  write_end.reset();  // Only the child's copy is left: EOF at its exec or death.
  if (pid < 0) {
    return Error{Errc::kBusy, std::string("clone failed: ") + ::strerrordesc_np(clone_errno)};
  }
  Spawned s;
  s.pid = pid;
  s.pidfd = UniqueFd(pidfd);  // CLONE_PIDFD makes it close-on-exec.
  s.start_time = process_start_time(pid);
  s.launch = std::move(launch);
  s.report = std::move(read_end);
  return s;
}

}  // namespace tg::daemon
