#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>

#include "common/error.h"

namespace tg::daemon {

// What tighten_state_dir() did, for its log line and for tests.
struct TightenStats {
  std::size_t tightened = 0;  // Files and directories whose mode was narrowed.
  std::size_t skipped = 0;    // Not a regular file / directory we could fix (logged).
  bool scanned_logs = false;  // The logs directory was open, so its files were checked.
};

// Closes a state directory made by an older build, which created its files with the umask it
// inherited: the store (`taskgroupd.db`, `-wal`, `-shm`) becomes 0600, `logs/` 0700 and the
// log files in it 0600 (group and other bits removed; owners are kept). Never follows a
// symlink (each entry is opened O_NOFOLLOW and fchmod()ed only if it is the regular file it
// was checked to be); skips and logs anything else. Called at start, before the store opens.
//
// The logs directory is narrowed last and only after its files, so once it is private the
// files were done (and are unreachable to others anyway): a start then checks three store files
// and one directory, and only the first start after an upgrade reads the whole logs directory.
// Best effort: failures are logged, never fatal.
TightenStats tighten_state_dir(const std::filesystem::path& dir);

// Refuses an existing directory that another user could change under us: one owned by
// someone other than us or root, or writable by its group or others. With `sticky_ok`, a
// sticky directory such as /tmp passes: others cannot remove or rename what we put in it.
// `what` names the directory in the error ("state directory").
[[nodiscard]] Result<void> check_dir_is_ours(const std::filesystem::path& dir,
                                             std::string_view what, bool sticky_ok);

}  // namespace tg::daemon
