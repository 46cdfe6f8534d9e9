#include "daemon/process_group.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "common/unique_fd.h"

namespace tg::daemon {

namespace {

struct StatFields {
  char state = '?';
  pid_t pgrp = -1;
};

// /proc/PID/stat is "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses,
// so the fields start after the last ')'.
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
  // " S ppid pgrp": skip the state and ppid.
  std::size_t pos = close + 3;
  for (int field = 0; field < 2; ++field) {
    pos = text.find(' ', pos + 1);
    if (pos == std::string_view::npos) return std::nullopt;
  }
  const char* begin = text.data() + pos + 1;
  const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), f.pgrp);
  if (ec != std::errc() || end == begin) return std::nullopt;
  return f;
}

}  // namespace

std::unordered_set<pid_t> process_groups_with_members(const std::vector<pid_t>& pgids) {
  std::unordered_set<pid_t> wanted(pgids.begin(), pgids.end());
  std::unordered_set<pid_t> found;
  DIR* proc = ::opendir("/proc");
  if (!proc) {
    return wanted;  // Cannot tell: assume they live on; the grace's SIGKILL still comes.
  }
  const int proc_fd = ::dirfd(proc);
  while (const dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;  // Not a process.
    pid_t pid = 0;
    const char* end = e->d_name + std::strlen(e->d_name);
    if (std::from_chars(e->d_name, end, pid).ptr != end) continue;
    if (wanted.contains(pid)) continue;  // A leader itself: the zombie we keep.
    const auto f = read_stat(proc_fd, e->d_name);
    if (!f || f->state == 'Z' || f->state == 'X' || !wanted.contains(f->pgrp)) continue;
    found.insert(f->pgrp);
    if (found.size() == wanted.size()) break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace tg::daemon
