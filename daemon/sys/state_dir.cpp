#include "daemon/sys/state_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"

namespace tg::daemon {

namespace {

constexpr mode_t kOpenBits = 0077;
constexpr std::size_t kMaxSkipLines = 10;  // A planted directory of junk must not flood the log.

// Narrows `name` under `dirfd` to `mode` if it is a file of type `type` (S_IFREG/S_IFDIR) with
// group or other bits. Opens it O_NOFOLLOW (a symlink fails with ELOOP) and O_NONBLOCK (a FIFO
// swapped in meanwhile does not block us), and fchmod()s what it opened after checking it.
void tighten(int dirfd, const char* name, mode_t type, mode_t mode, const std::string& shown,
             TightenStats& stats) {
  struct stat st {};
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) spdlog::warn("cannot check '{}': {}", shown, ::strerror(errno));
    return;
  }
  if ((st.st_mode & S_IFMT) == type && (st.st_mode & kOpenBits) == 0) return;  // Already fine.
  auto skip = [&](const std::string& why) {
    if (++stats.skipped <= kMaxSkipLines) spdlog::warn("not tightening '{}': {}", shown, why);
  };
  if ((st.st_mode & S_IFMT) != type) return skip("unexpected file type");
  const int flags = (type == S_IFDIR ? O_DIRECTORY : 0) | O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                    O_NOCTTY | O_CLOEXEC;
  UniqueFd fd(::openat(dirfd, name, flags));
  if (!fd.valid()) return skip(std::string("open: ") + ::strerror(errno));
  if (::fstat(fd.get(), &st) != 0 || (st.st_mode & S_IFMT) != type) {
    return skip("changed while being checked");
  }
  if (::geteuid() != 0 && st.st_uid != ::geteuid()) return skip("owned by another user");
  if (::fchmod(fd.get(), mode) != 0) return skip(std::string("fchmod: ") + ::strerror(errno));
  ++stats.tightened;
}

// The regular files in the logs directory, which `fd` has open.
void tighten_logs(int fd, const std::string& shown, TightenStats& stats) {
  const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);  // closedir() closes the fd it is given.
  DIR* dir = dup >= 0 ? ::fdopendir(dup) : nullptr;
  if (dir == nullptr) {
    if (dup >= 0) (void)::close(dup);  // fdopendir failed: the fd is still ours.
    spdlog::warn("cannot read '{}': {}", shown, ::strerror(errno));
    return;
  }
  stats.scanned_logs = true;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    tighten(fd, e->d_name, S_IFREG, 0600, shown + "/" + e->d_name, stats);
  }
  (void)::closedir(dir);  // Read-only: nothing to lose.
}

}  // namespace

TightenStats tighten_state_dir(const std::filesystem::path& dir) {
  TightenStats stats;
  UniqueFd state(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!state.valid()) {
    spdlog::warn("cannot check the modes in '{}': {}", dir.string(), ::strerror(errno));
    return stats;
  }
  for (const char* name : {"taskgroupd.db", "taskgroupd.db-wal", "taskgroupd.db-shm"}) {
    tighten(state.get(), name, S_IFREG, 0600, (dir / name).string(), stats);
  }
  const std::string logs_shown = (dir / "logs").string();
  struct stat st {};
  if (::fstatat(state.get(), "logs", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
      (st.st_mode & kOpenBits) != 0) {
    UniqueFd logs(::openat(state.get(), "logs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (logs.valid()) tighten_logs(logs.get(), logs_shown, stats);
  }
  tighten(state.get(), "logs", S_IFDIR, 0700, logs_shown, stats);  // Last: marks the files done.
  if (stats.skipped > kMaxSkipLines) {
    spdlog::warn("not tightening {} more entries of '{}'", stats.skipped - kMaxSkipLines,
                 dir.string());
  }
  if (stats.tightened > 0) {
    spdlog::info("closed {} file(s) of '{}' left open by an older version", stats.tightened,
                 dir.string());
  }
  return stats;
}

Result<void> check_dir_is_ours(const std::filesystem::path& dir, std::string_view what,
                               bool sticky_ok) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return Error{Errc::kIo, "cannot check " + std::string(what) + " '" + dir.string() +
                                "': " + ::strerror(errno)};
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error{Errc::kIo, std::string(what) + " '" + dir.string() + "' is not a directory"};
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return Error{Errc::kIo, std::string(what) + " '" + dir.string() + "' belongs to uid " +
                                std::to_string(st.st_uid) + ", not to us or root"};
  }
  const bool shared = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (shared && !(sticky_ok && (st.st_mode & S_ISVTX))) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error{Errc::kIo, std::string(what) + " '" + dir.string() + "' (mode " + mode +
                                ") is writable by other users; use a directory only we can write"};
  }
  return {};
}

}  // namespace tg::daemon
