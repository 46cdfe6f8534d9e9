#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/protocol.h"
#include "daemon/model/task.h"
#include "daemon/store/ledger.h"
#include "daemon/store/sqlite_util.h"

namespace tg::daemon {

// The SQLite database (WAL) in the state directory: the source of truth for tasks and groups.
// Memory is rebuilt from it at start; a submit is acknowledged only after its transaction is
// committed. Every write method is one transaction and either fully happens or not at all
// (disk full, read-only: an Errc::kIo error, the database unchanged). Owned by run(); used only
// on the event loop's thread; calls are synchronous and short (prepared statements).
class Store {
 public:
  struct Options {
    // Submits and cancels fsync before they are acknowledged (synchronous=FULL). Off: they
    // are safe against a daemon crash, not against a power cut.
    bool durable = true;
  };
  // The ledger beside a database on disk (ledger.h): what the database must at least hold.
  struct LedgerOptions {
    std::filesystem::path file;  // Empty: no ledger (in-memory databases).
    std::string boot_id;         // This boot's id; "" if unknown (then as after a reboot).
    // Start even though the database lacks commits the ledger recorded (--accept-lost-tasks):
    // said in the log; task ids continue above every id that may have been handed out.
    bool accept_lost = false;
  };
  static constexpr int kSchemaVersion = 9;
  // Task ids are reserved in the ledger this many at a time (or a batch's worth, if more).
  static constexpr TaskId kIdBlock = 10'000;

  // Opens or creates the database and migrates it. Refuses, leaving the file untouched, a file
  // that is not a database, is corrupt, or has a newer schema than this binary.
  [[nodiscard]] static Result<Store> open(const std::filesystem::path& file, Options options) {
    return open(file, options, LedgerOptions{});
  }
  // As above, checked against its ledger first: a database that lacks commits the ledger
  // recorded (its write-ahead log was deleted, truncated or damaged after a crash, or an older
  // copy was restored) is refused with an Errc::kIo error saying so, before anything is written
  // to it, unless `ledger.accept_lost`. Then raises the task id floor (sqlite_sequence) to the
  // ledger's reservation unless the database is proven complete, so that ids are never reused.
  // A missing or unreadable ledger is (re)created from the database (logged: nothing could be
  // checked).
  [[nodiscard]] static Result<Store> open(const std::filesystem::path& file, Options options,
                                          const LedgerOptions& ledger);
  // A clean stop: gives back the reserved ids that were not used, so that the next start goes
  // on from the highest id handed out. Durable, like a reservation.
  [[nodiscard]] Result<void> release_unused_ids();
  // Commits made in this database (schema 5 on), and the highest task id ever assigned.
  [[nodiscard]] std::int64_t commits() const { return commits_; }
  [[nodiscard]] TaskId highest_id() const { return highest_id_; }
  [[nodiscard]] const std::optional<Ledger>& ledger() const { return ledger_; }

  // A reload's `durable`: applies from the next transaction on.
  void set_durable(bool durable) { options_.durable = durable; }
  // PRAGMA synchronous as the last transaction ran (2: FULL, 1: NORMAL); for tests.
  [[nodiscard]] Result<std::int64_t> synchronous();

  // Why this Store refuses every write from now on, once a commit's fsync has failed (that
  // commit returned Errc::kOutcomeUnknown). After a failed fsync the kernel may have dropped
  // the pages it could not write while reporting success for later ones (PostgreSQL's
  // "fsyncgate"): nothing written by this process afterwards could be trusted to be on disk,
  // so nothing is. Reads go on. Only a new process, recovering from what the disk holds, writes
  // again. nullopt while all is well.
  [[nodiscard]] const std::optional<std::string>& write_failure() const { return write_failure_; }

  [[nodiscard]] Result<std::vector<Task>> load_tasks();
  [[nodiscard]] Result<std::vector<GroupRow>> load_groups();
  [[nodiscard]] Result<proto::Env> load_env(std::int64_t env_id);

  // Inserts new tasks, assigning increasing ids that are never reused, and writes `updates`
  // first, all in one transaction. envs[i] is task i's environment as a JSON object, or nullptr
  // for the default one; each distinct body is stored once. Ids and env_ids are set on the
  // tasks only after the commit succeeded.
  [[nodiscard]] Result<void> insert(std::vector<Task>& tasks,
                                    std::span<const std::string* const> envs,
                                    std::span<const Task* const> updates = {});
  // Writes the mutable fields (state, pid, exit, reason, times) of each task: one transaction.
  // `sync`: fsync before returning (if durable). Without it the commit survives a crash of the
  // daemon, and reaches the disk with the next synced commit or WAL checkpoint: task starts
  // and exits are not worth an fsync each, acknowledged requests are.
  [[nodiscard]] Result<void> update(std::span<const Task* const> tasks, bool sync = true) {
    return update(tasks, {}, {}, sync);
  }
  // The queued tasks of one group that a group cancel ended together: written with one
  // statement (a primary-key range scan), however many there are.
  struct QueuedCancel {
    uid_t uid = 0;
    std::string group;
    TaskId first = 0;  // Lowest and highest id cancelled; only rows still queued change.
    TaskId last = 0;
    std::string reason;
    TimeMs at = 0;
  };
  // As above, with the group cancels and group settings written first, in the same
  // transaction.
  [[nodiscard]] Result<void> update(std::span<const Task* const> tasks,
                                    std::span<const QueuedCancel> cancels,
                                    std::span<const GroupRow> groups, bool sync);
  // Where a prune pass stops: finished tasks that ended before `ended_at`, or at it with an id
  // up to `id`, go. Found once per pass, then deleted a slice at a time.
  struct PruneCutoff {
    TimeMs ended_at = 0;
    TaskId id = 0;
  };
  // The cutoff that drops finished tasks that ended before `ended_before` and the oldest beyond
  // the `keep` most recently ended: one walk of `keep` entries of the end-time index.
  [[nodiscard]] Result<PruneCutoff> prune_cutoff(TimeMs ended_before, std::int64_t keep);
  // Deletes at most `max_rows` (-1: all) finished tasks at or before `upto`, oldest first, in one
  // transaction, with the environments only they used; returns their ids (for their logs). An
  // index range scan from the oldest end: the cost follows max_rows, not the size of the table.
  [[nodiscard]] Result<std::vector<TaskId>> prune_slice(const PruneCutoff& upto,
                                                        std::int64_t max_rows);
  // prune_cutoff, then one prune_slice.
  [[nodiscard]] Result<std::vector<TaskId>> prune(TimeMs ended_before, std::int64_t keep,
                                                  std::int64_t max_rows = -1);
  // The SQLite VM steps the last prune_slice took: its cost, for debug logs and tests.
  [[nodiscard]] std::int64_t last_prune_steps() const { return last_prune_steps_; }

 private:
  // What the database holds by the ledger's measures, read before anything is written.
  struct DbMarks {
    std::int64_t commits = 0;
    TaskId seq = 0;  // sqlite_sequence's value for tasks: the highest id ever assigned.
  };
  // What open() found: the ledger (if readable) and the verdict on the database.
  struct LedgerCheck {
    std::optional<Ledger::Contents> found;
    DbMarks db;
    std::int64_t required = 0;  // Commits the database must hold.
    bool proven = false;        // It holds every commit the marks saw, in this boot.
    bool lost = false;          // It lacks some (accepted, or open() refused).
  };

  Store(DbPtr db, Options options) : db_(std::move(db)), options_(options) {}
  [[nodiscard]] static Result<DbMarks> read_db_marks(sqlite3* db);
  // The body of open(); `had_wal`: the WAL existed before SQLite opened the database.
  [[nodiscard]] static Result<Store> open_db(const std::filesystem::path& file, Options options,
                                             const LedgerOptions& ledger, bool had_wal);
  [[nodiscard]] static Result<LedgerCheck> check_ledger(sqlite3* db,
                                                        const std::filesystem::path& file,
                                                        const LedgerOptions& ledger, bool had_wal);
  // After migrations: sets the counters, raises the id floor if needed, writes the ledger.
  [[nodiscard]] Result<void> adopt_ledger(const LedgerCheck& check, const LedgerOptions& ledger);
  // Reserves ids in the ledger so that `count` more fit, before an insert uses them.
  [[nodiscard]] Result<void> reserve_ids(std::size_t count);
  // Sets PRAGMA synchronous for the next transaction (no I/O).
  [[nodiscard]] Result<void> set_sync(bool sync);
  // Every write transaction begins (with set_sync(sync)) and commits through these: they
  // refuse after a failed fsync, and note one.
  [[nodiscard]] Result<Txn> begin(bool sync);
  [[nodiscard]] Result<void> commit(Txn& txn);
  [[nodiscard]] Result<void> prepare();
  [[nodiscard]] Result<void> write_updates(std::span<const Task* const> tasks);
  [[nodiscard]] Result<std::int64_t> intern_env(const std::string& body);
  [[nodiscard]] Result<void> write_group(const GroupRow& group);
  // store_attempts.cpp: a task's earlier attempts, read into `tasks` (sorted by id), and
  // written (those not there yet) with its row.
  [[nodiscard]] Result<void> load_attempts(std::vector<Task>& tasks);
  [[nodiscard]] Result<void> write_attempts(const Task& t);
  // Dependencies as stored: a JSON array of ids, "" for none.
  [[nodiscard]] static std::string encode_ids(const std::vector<TaskId>& ids);
  [[nodiscard]] static std::optional<std::vector<TaskId>> decode_ids(const std::string& text);

  DbPtr db_;
  Options options_;
  bool synced_ = true;  // The current PRAGMA synchronous is FULL.
  Stmt insert_task_;
  Stmt update_task_;
  Stmt cancel_queued_;
  Stmt insert_env_;
  Stmt find_env_;
  Stmt save_group_;
  Stmt prune_slice_;
  Stmt drop_env_;
  Stmt count_commit_;
  Stmt insert_attempt_;
  std::int64_t last_prune_steps_ = 0;
  std::int64_t commits_ = 0;         // The database's commit counter (its `commits` table).
  std::int64_t synced_commits_ = 0;  // Its value at the last fsynced commit.
  TaskId highest_id_ = 0;            // sqlite_sequence for tasks.
  std::optional<Ledger> ledger_;     // Marked after each commit; reserves ids.
  std::optional<std::string> write_failure_;
};

}  // namespace tg::daemon
