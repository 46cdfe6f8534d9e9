// The Store's side of the ledger (ledger.h): the check at open, the id floor, reservations.

#include <sys/stat.h>

#include <algorithm>
#include <string>

#include <spdlog/spdlog.h>

#include "daemon/store/store.h"

namespace tg::daemon {

namespace {

namespace fs = std::filesystem;

Result<bool> table_exists(sqlite3* db, const char* name) {
  auto st = Stmt::prepare(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1");
  if (st.has_error()) return st.error();
  st->bind(1, std::string_view(name));
  auto row = st->step();
  if (row.has_error()) return row.error();
  return *row;
}

Result<std::int64_t> single_int(sqlite3* db, const char* sql) {
  auto st = Stmt::prepare(db, sql);
  if (st.has_error()) return st.error();
  auto row = st->step();
  if (row.has_error()) return row.error();
  return *row ? st->int64(0) : 0;
}

// "missing" or "N bytes": what a reader of the refusal wants to know about the WAL first.
std::string wal_state(const fs::path& db_file, bool had_wal) {
  const std::string wal = db_file.string() + "-wal";
  struct stat st {};
  if (!had_wal || ::stat(wal.c_str(), &st) != 0) return "'" + wal + "' is missing";
  return "'" + wal + "' has " + std::to_string(st.st_size) + " bytes";
}

}  // namespace

Result<Store::DbMarks> Store::read_db_marks(sqlite3* db) {
  DbMarks marks;
  // An empty or older database has neither table: then it holds no commit we counted.
  auto has_seq = table_exists(db, "sqlite_sequence");
  if (has_seq.has_error()) return has_seq.error();
  if (*has_seq) {
    auto seq = single_int(db, "SELECT seq FROM sqlite_sequence WHERE name = 'tasks'");
    if (seq.has_error()) return seq.error();
    marks.seq = *seq;
  }
  auto has_commits = table_exists(db, "commits");
  if (has_commits.has_error()) return has_commits.error();
  if (*has_commits) {
    auto n = single_int(db, "SELECT n FROM commits");
    if (n.has_error()) return n.error();
    marks.commits = *n;
  }
  return marks;
}

Result<Store::LedgerCheck> Store::check_ledger(sqlite3* db, const fs::path& file,
                                               const LedgerOptions& ledger, bool had_wal) {
  LedgerCheck check;
  auto db_marks = read_db_marks(db);
  if (db_marks.has_error()) return db_marks.error();
  check.db = *db_marks;
  auto found = Ledger::read(ledger.file);
  if (found.has_error()) {
    spdlog::warn("{}; replacing it from the database: lost commits cannot be detected this time",
                 found.error().message);
    return check;
  }
  check.found = *found;
  if (!check.found) return check;  // First start, or one after an upgrade: nothing to compare.
  if (!check.found->marks) {
    spdlog::warn(
        "ledger '{}' has an unreadable marks line (torn or edited); lost commits cannot "
        "be detected this time",
        ledger.file.string());
    return check;
  }
  const Ledger::Marks& marks = *check.found->marks;
  check.required = required_commits(marks, ledger.boot_id);
  check.lost = check.db.commits < check.required;
  check.proven = !check.lost && !ledger.boot_id.empty() && marks.boot_id == ledger.boot_id &&
                 check.db.commits >= marks.commits;
  if (!check.lost) return check;
  const std::string what =
      "database '" + file.string() + "' lacks commits recorded in '" + ledger.file.string() +
      "': it holds " + std::to_string(check.db.commits) + " of the " +
      std::to_string(check.required) + " commits made before the daemon stopped (its highest " +
      "task id is " + std::to_string(check.db.seq) + "; ids up to " +
      std::to_string(check.found->reserved) + " may have been handed out). " +
      wal_state(file, had_wal) +
      ": the write-ahead log was deleted, truncated or damaged after the daemon stopped (or an "
      "older copy of the database was restored), so acknowledged tasks or changes are lost";
  if (!ledger.accept_lost) {
    return Error{Errc::kIo, what +
                                ". Refusing to start; nothing was changed. Put the missing file "
                                "back if you have it, or start taskgroupd once with "
                                "--accept-lost-tasks to go on with what the database holds (new "
                                "task ids continue above " +
                                std::to_string(check.found->reserved) + ")"};
  }
  spdlog::error("{}. Starting anyway (--accept-lost-tasks); new task ids continue above {}", what,
                check.found->reserved);
  return check;
}

Result<void> Store::adopt_ledger(const LedgerCheck& check, const LedgerOptions& ledger) {
  const TaskId reserved = check.found ? check.found->reserved : 0;
  // Only what an fsync proved is counted as synced: the previous process's last commits may
  // still be in the page cache alone. This start's own commit below fsyncs them all (if durable).
  const bool marked = check.found && check.found->marks;
  synced_commits_ = marked ? std::min(commits_, check.found->marks->synced) : 0;
  // After an accepted loss the counter goes on from the ledger's, so that marks only grow.
  commits_ = std::max(commits_, check.required);
  auto txn = begin(true);
  if (txn.has_error()) return txn.error();
  const bool raise = highest_id_ < reserved && !check.proven;
  if (raise) {
    // Ids up to `reserved` may have been handed out in commits the database lacks: never again.
    auto update =
        Stmt::prepare(db_.get(), "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'tasks'");
    if (update.has_error()) return update.error();
    if (auto r = update->bind(1, reserved).run(); r.has_error()) return r.error();
    if (sqlite3_changes(db_.get()) == 0) {
      auto add =
          Stmt::prepare(db_.get(), "INSERT INTO sqlite_sequence (name, seq) VALUES ('tasks', ?1)");
      if (add.has_error()) return add.error();
      if (auto r = add->bind(1, reserved).run(); r.has_error()) return r.error();
    }
  }
  if (auto r = commit(*txn); r.has_error()) return r.error();
  if (raise) {
    spdlog::info("task ids continue above {}, reserved before an unclean stop", reserved);
    highest_id_ = reserved;
  }
  // The first block now: a submit then needs no new file (nor a free fd) for 10 000 ids.
  Ledger::Contents contents{std::max(reserved, highest_id_ + kIdBlock),
                            Ledger::Marks{commits_, synced_commits_, ledger.boot_id}};
  auto created = Ledger::create(ledger.file, contents);
  if (created.has_error()) return created.error();
  if (!check.found) spdlog::info("created ledger '{}'", ledger.file.string());
  ledger_ = std::move(*created);
  return {};
}

Result<void> Store::reserve_ids(std::size_t count) {
  const auto need = highest_id_ + static_cast<TaskId>(count);
  if (!ledger_ || need <= ledger_->reserved()) return {};
  if (auto r = ledger_->reserve(need + kIdBlock); r.has_error()) {
    return Error{Errc::kIo, "cannot reserve task ids: " + r.error().message};
  }
  return {};
}

Result<void> Store::release_unused_ids() {
  if (!ledger_ || write_failure_ || ledger_->reserved() == highest_id_) return {};
  return ledger_->reserve(highest_id_);
}

}  // namespace tg::daemon
