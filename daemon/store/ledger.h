#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/unique_fd.h"
#include "daemon/model/task.h"

namespace tg::daemon {

// The state directory's ledger (`taskgroupd.ledger`): what the database must at least hold,
// kept outside SQLite, where a deleted or damaged write-ahead log cannot take it back.
//
// - `reserved`: the highest task id the daemon may have handed out. Ids are reserved in blocks
//   (Store::kIdBlock) before an insert may use them, and the file is replaced atomically and
//   durably for each block (written, fsynced, renamed, directory fsynced): a rare write, never
//   one per submit. A clean stop gives back what it did not use.
// - `marks`: the number of commits the database had when the daemon last committed, and when
//   it last committed with an fsync, with the boot they were made in. Rewritten in place after
//   every commit, without an fsync (one pwrite into the page cache): a crash of the daemon
//   cannot lose it, a power cut can only make it older, so it never claims a commit the disk
//   may not hold.
//
// Owned by the Store; used on the event loop's thread. The text format is fixed-width, so that
// the marks line is rewritten at a fixed offset; `cat` shows it.
class Ledger {
 public:
  struct Marks {
    std::int64_t commits = 0;  // Every commit, fsynced or not.
    std::int64_t synced = 0;   // The commit count of the last fsynced commit.
    std::string boot_id;       // The boot both were counted in; "" if unknown.
  };
  struct Contents {
    TaskId reserved = 0;
    // nullopt: the marks line was unreadable (torn by a power cut, or edited), so nothing can
    // be checked this time.
    std::optional<Marks> marks;
  };

  // Reads `file`: nullopt if it does not exist, an Error if it exists but is not a ledger.
  [[nodiscard]] static Result<std::optional<Contents>> read(const std::filesystem::path& file);

  // Creates `file`, or replaces it atomically and durably, and keeps it open for marks.
  [[nodiscard]] static Result<Ledger> create(const std::filesystem::path& file,
                                             const Contents& contents);

  // Durably replaces the reservation (raised for a new block, or lowered to what a clean stop
  // used), keeping the marks. On failure the old file is still in place.
  [[nodiscard]] Result<void> reserve(TaskId reserved);
  // Rewrites the marks in place, without an fsync.
  [[nodiscard]] Result<void> mark(std::int64_t commits, std::int64_t synced);

  [[nodiscard]] TaskId reserved() const { return contents_.reserved; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  Ledger(std::filesystem::path path, UniqueFd fd, Contents contents)
      : path_(std::move(path)), fd_(std::move(fd)), contents_(std::move(contents)) {}

  std::filesystem::path path_;
  UniqueFd fd_;  // The current file (replacing it moves to the new one).
  Contents contents_;
};

// How many commits the database must hold by the ledger's marks: all of them if they were made
// in this boot (the kernel still has everything the crashed daemon wrote), after a reboot only
// the fsynced ones (a power cut may take back what was not: by design, not a loss to report).
[[nodiscard]] std::int64_t required_commits(const Ledger::Marks& marks, std::string_view boot_id);

// The text of a ledger; exposed for tests.
[[nodiscard]] std::string format_ledger(const Ledger::Contents& contents);

}  // namespace tg::daemon
