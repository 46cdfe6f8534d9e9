#include "daemon/exec/local/task_session.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string_view>

#include "common/unique_fd.h"
#include "daemon/exec/local/sys_compat.h"

namespace tg::daemon {

namespace {

struct StatFields {
  char state = '?';
  pid_t pgrp = -1;
  pid_t session = -1;
};

bool ended(const StatFields& f) { return f.state == 'Z' || f.state == 'X'; }

// /proc/PID/stat is "pid (comm) state ppid pgrp session ...": comm may hold spaces and
// parentheses, so the fields start after the last ')'. `pid` is relative to `proc_fd`.
std::optional<StatFields> read_stat(int proc_fd, const char* pid) {
  char path[32];
  std::snprintf(path, sizeof path, "%s/stat", pid);
  UniqueFd fd(::openat(proc_fd, path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;  // Gone meanwhile.
  char buf[512];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return std::nullopt;
  const std::string_view text(buf, static_cast<std::size_t>(n));
  const auto close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= text.size()) return std::nullopt;
  StatFields f;
  f.state = text[close + 2];
  // After ") S ": ppid, pgrp, session, each followed by one space.
  const char* p = text.data() + close + 3;
  const char* const end = text.data() + text.size();
  pid_t ppid = 0;
  for (pid_t* field : {&ppid, &f.pgrp, &f.session}) {
    if (p >= end || *p != ' ') return std::nullopt;
    const auto [next, ec] = std::from_chars(p + 1, end, *field);
    if (ec != std::errc() || next == p + 1) return std::nullopt;
    p = next;
  }
  return f;
}

// Which pids a scan reads: all, or those handed out after `after` up to `upto`, cyclically.
struct PidRange {
  pid_t after = 0;
  pid_t upto = 0;
  bool all = true;
  pid_t pid_max = 0;  // Where pids wrap around, for a range that crosses it.
  const std::unordered_set<pid_t>* skip = nullptr;  // Known not to be members.
  [[nodiscard]] bool contains(pid_t pid) const {
    if (skip && skip->contains(pid)) return false;
    if (all) return true;
    return after <= upto ? (pid > after && pid <= upto) : (pid > after || pid <= upto);
  }
  // How many pids it holds; 0 for `all`.
  [[nodiscard]] std::int64_t size() const {
    if (all) return 0;
    return after <= upto ? upto - after : (pid_max - after - 1) + upto + 1;
  }
};

// A range this small is read pid by pid (an open of a missing /proc/PID/stat fails at once)
// instead of listing /proc, which costs a getdents over every process on the machine.
constexpr std::int64_t kDirectPids = 8;  // Measured: a missing pid costs ~4 us, a listing ~50.

// Calls `visit(pid, name, fields)` for every live process of /proc in `range` whose session is
// in `sids`, except the leaders themselves, until it returns false.
void scan(int proc_fd, DIR* proc, const std::unordered_set<pid_t>& sids, const PidRange& range,
          const std::function<bool(pid_t, const char*, const StatFields&)>& visit) {
  if (!range.all && range.size() <= kDirectPids) {
    for (std::int64_t i = 1; i <= range.size(); ++i) {
      const auto pid = static_cast<pid_t>((range.after + i) % range.pid_max);
      if (pid <= 0 || sids.contains(pid) || !range.contains(pid)) continue;
      char name[16];
      std::snprintf(name, sizeof name, "%d", static_cast<int>(pid));
      const auto f = read_stat(proc_fd, name);
      if (!f || ended(*f) || !sids.contains(f->session)) continue;
      if (!visit(pid, name, *f)) return;
    }
    return;
  }
  ::rewinddir(proc);
  while (const dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;  // Not a process.
    pid_t pid = 0;
    const char* end = e->d_name + std::strlen(e->d_name);
    if (std::from_chars(e->d_name, end, pid).ptr != end) continue;
    if (!range.contains(pid)) continue;
    if (sids.contains(pid)) continue;  // A leader itself (a zombie we keep, or still running).
    const auto f = read_stat(proc_fd, e->d_name);
    if (!f || ended(*f) || !sids.contains(f->session)) continue;
    if (!visit(pid, e->d_name, *f)) break;
  }
}

struct ProcDir {
  ProcDir() : dir(::opendir("/proc")) {}
  ~ProcDir() {
    if (dir) ::closedir(dir);
  }
  ProcDir(const ProcDir&) = delete;
  ProcDir& operator=(const ProcDir&) = delete;
  DIR* dir;
};

}  // namespace

std::unordered_set<pid_t> sessions_with_members(const std::vector<pid_t>& sids) {
  const std::unordered_set<pid_t> wanted(sids.begin(), sids.end());
  std::unordered_set<pid_t> found;
  if (wanted.empty()) return found;
  ProcDir proc;
  if (!proc.dir) return wanted;  // Cannot tell: assume they live on; the grace's SIGKILL comes.
  scan(::dirfd(proc.dir), proc.dir, wanted, PidRange{},
       [&](pid_t, const char*, const StatFields& f) {
         found.insert(f.session);
         return found.size() < wanted.size();
       });
  return found;
}

namespace {

// A small integer file of /proc/sys; nullopt if it cannot be read.
std::optional<long> read_sysctl(const char* path) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  char buf[32];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf);
  long value = 0;
  if (n <= 0 || std::from_chars(buf, buf + n, value).ec != std::errc()) return std::nullopt;
  return value;
}

std::size_t signal_in(const std::vector<pid_t>& sids, int sig, PidRange range,
                      bool then_cont = true) {
  const std::unordered_set<pid_t> wanted(sids.begin(), sids.end());
  // As systemd does: a stopped process only queues the stop signal, so each target gets
  // SIGCONT right after it (a process that was running ignores that CONT by default).
  const bool cont = then_cont && sig != SIGKILL && sig != SIGCONT;
  for (pid_t sid : wanted) {
    // The leader's group: the usual whole task, in one call. ESRCH: the child has not yet
    // made its group (between clone and setsid); its pending signal is delivered once it can.
    pid_t target = -sid;
    if (::kill(target, sig) != 0 && errno == ESRCH) {
      target = sid;
      (void)::kill(target, sig);
    }
    if (cont) (void)::kill(target, SIGCONT);  // Failed above: fails the same way.
  }
  ProcDir proc;
  if (wanted.empty() || !proc.dir) return 0;
  const int proc_fd = ::dirfd(proc.dir);
  std::unordered_set<pid_t> signalled;
  // SIGKILL must leave nothing: a member may have forked while the scan passed it.
  const int passes = sig == SIGKILL ? 4 : 1;
  for (int pass = 0; pass < passes; ++pass) {
    if (pass > 0 && !range.all) {  // Members forked since the last pass have newer pids.
      if (const auto last = read_sysctl("/proc/sys/kernel/ns_last_pid")) {
        range.upto = static_cast<pid_t>(*last);
      }
    }
    std::size_t fresh = 0;
    scan(proc_fd, proc.dir, wanted, range, [&](pid_t pid, const char* name, const StatFields& f) {
      if (wanted.contains(f.pgrp) || signalled.contains(pid)) return true;  // Done above.
      // Hold the process, then check that the pid still names a member: a pid recycled since
      // the read above belongs to another process, which the pidfd does not refer to.
      UniqueFd pidfd(::pidfd_open(pid, 0));
      if (!pidfd.valid()) return true;  // Gone meanwhile.
      const auto again = read_stat(proc_fd, name);
      if (!again || ended(*again) || !wanted.contains(again->session)) return true;
      if (::pidfd_send_signal(pidfd.get(), sig, nullptr, 0) == 0) {
        if (cont) (void)::pidfd_send_signal(pidfd.get(), SIGCONT, nullptr, 0);
        signalled.insert(pid);
        ++fresh;
      }
      return true;
    });
    if (fresh == 0) break;
  }
  return signalled.size();
}

}  // namespace

std::size_t signal_sessions(const std::vector<pid_t>& sids, int sig, bool then_cont) {
  return signal_in(sids, sig, PidRange{}, then_cont);
}

std::size_t kill_session_remains(pid_t sid, std::chrono::nanoseconds lived,
                                 const std::unordered_set<pid_t>& others) {
  // Linux forks at most a few hundred thousand processes a second system-wide (every fork
  // takes the tasklist lock); 10^5 a second sustained is already a fork bomb.
  constexpr double kMaxForksPerSecond = 1e5;
  PidRange range;
  const auto pid_max = read_sysctl("/proc/sys/kernel/pid_max");
  const auto last = read_sysctl("/proc/sys/kernel/ns_last_pid");
  if (pid_max && last &&
      std::chrono::duration<double>(lived).count() * kMaxForksPerSecond < double(*pid_max)) {
    range = {sid, static_cast<pid_t>(*last), false, static_cast<pid_t>(*pid_max), &others};
  }
  return signal_in({sid}, SIGKILL, range);
}

}  // namespace tg::daemon
