#include "daemon/store/schema.h"

#include <algorithm>
#include <iterator>
#include <string>

#include "daemon/store/sqlite_util.h"
#include "daemon/store/store.h"

namespace tg::daemon {

namespace {

namespace fs = std::filesystem;

// Ordered migrations: entry i moves the schema from version i to i + 1. Append, never edit.
constexpr const char* kMigrations[] = {
    R"sql(
      CREATE TABLE envs (
        id INTEGER PRIMARY KEY,
        body TEXT NOT NULL UNIQUE            -- JSON object of the environment.
      );
      CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused.
        uid INTEGER NOT NULL,
        gid INTEGER NOT NULL,
        grp TEXT NOT NULL,
        argv TEXT NOT NULL,                  -- JSON array.
        cwd TEXT NOT NULL,
        env_id INTEGER NOT NULL,             -- 0: the default environment.
        shell INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        timeout_ms INTEGER NOT NULL,
        requeue INTEGER NOT NULL,
        state TEXT NOT NULL,
        pid INTEGER NOT NULL,
        pid_start INTEGER NOT NULL,
        exit_code INTEGER,
        signal INTEGER,
        reason TEXT NOT NULL,
        submitted_at_ms INTEGER NOT NULL,
        started_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER NOT NULL
      );
      CREATE INDEX tasks_by_end ON tasks (ended_at_ms) WHERE ended_at_ms > 0;
      CREATE TABLE groups (
        uid INTEGER NOT NULL,
        name TEXT NOT NULL,
        lim INTEGER NOT NULL,
        fail_fast INTEGER NOT NULL,
        paused INTEGER NOT NULL,
        last_cancel TEXT,                    -- JSON of proto::CancelRecord.
        PRIMARY KEY (uid, name)
      );
    )sql",
    // Pruning drops an environment once no task uses it: found by index, not by a scan.
    R"sql(
      CREATE INDEX tasks_by_env ON tasks (env_id) WHERE env_id > 0;
    )sql",
    // pid_start counts from boot: after a reboot only the boot id tells two processes apart.
    R"sql(
      ALTER TABLE tasks ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';
    )sql",
    // A task's own cap on its log (0: the daemon's max_log_size, as for every older task).
    R"sql(
      ALTER TABLE tasks ADD COLUMN max_log_bytes INTEGER NOT NULL DEFAULT 0;
    )sql",
    // Every commit counts itself here, and the ledger outside SQLite remembers the count
    // (ledger.h): a start that finds fewer commits than that knows the WAL lost some.
    R"sql(
      CREATE TABLE commits (n INTEGER NOT NULL);
      INSERT INTO commits (n) VALUES (0);
    )sql",
    // Workflows: dependencies (JSON arrays of ids, '' for none), a begin time, retries and the
    // attempts before the current one, which go with their task when it is pruned.
    R"sql(
      ALTER TABLE tasks ADD COLUMN after_ok TEXT NOT NULL DEFAULT '';
      ALTER TABLE tasks ADD COLUMN after_any TEXT NOT NULL DEFAULT '';
      ALTER TABLE tasks ADD COLUMN begin_at_ms INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE tasks ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE tasks ADD COLUMN retry_delay_ms INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE tasks ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
      CREATE TABLE attempts (
        task_id INTEGER NOT NULL,
        n INTEGER NOT NULL,
        state TEXT NOT NULL,
        exit_code INTEGER,
        signal INTEGER,
        reason TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER NOT NULL,
        log_end INTEGER NOT NULL,
        PRIMARY KEY (task_id, n)
      ) WITHOUT ROWID;
      CREATE TRIGGER attempts_go_with_their_task AFTER DELETE ON tasks
      BEGIN DELETE FROM attempts WHERE task_id = OLD.id; END;
    )sql",
    // First-success groups and the on-done hook (issue 13 items 9 and 11).
    R"sql(
      ALTER TABLE groups ADD COLUMN first_success INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE groups ADD COLUMN on_done TEXT NOT NULL DEFAULT '';
    )sql",
    // Labels as a JSON object ('' for none) in the row itself: a batch of 100 000 stays one
    // INSERT a task, where a side table would add one a label and a join to every load. The
    // submit key, unique per user among the kept tasks (a partial index: most have none). The
    // task a restart copied.
    R"sql(
      ALTER TABLE tasks ADD COLUMN labels TEXT NOT NULL DEFAULT '';
      ALTER TABLE tasks ADD COLUMN submit_key TEXT;
      ALTER TABLE tasks ADD COLUMN restarted_from INTEGER NOT NULL DEFAULT 0;
      CREATE UNIQUE INDEX tasks_by_key ON tasks (uid, submit_key) WHERE submit_key IS NOT NULL;
    )sql",
    // What an ended task used (issue 14: its cgroup's cpu.stat and memory.peak); NULL where
    // it was not accounted.
    R"sql(
      ALTER TABLE tasks ADD COLUMN cpu_user_ms INTEGER;
      ALTER TABLE tasks ADD COLUMN cpu_system_ms INTEGER;
      ALTER TABLE tasks ADD COLUMN memory_peak_bytes INTEGER;
    )sql",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion, "one migration per version");

}  // namespace

Result<std::int64_t> user_version(sqlite3* db) {
  auto st = Stmt::prepare(db, "PRAGMA user_version");
  if (st.has_error()) return st.error();
  auto row = st->step();
  if (row.has_error()) return row.error();
  return *row ? st->int64(0) : 0;
}

Result<void> check_integrity(sqlite3* db, const fs::path& file) {
  auto st = Stmt::prepare(db, "PRAGMA quick_check");
  if (st.has_error()) {
    return Error{Errc::kIo, "'" + file.string() + "' is not a taskgroupd database (" +
                                st.error().message + "); refusing to start"};
  }
  auto row = st->step();
  if (row.has_error() || !*row || st->text(0) != "ok") {
    std::string why = row.has_error() ? row.error().message : (*row ? st->text(0) : "");
    std::replace(why.begin(), why.end(), '\n', ' ');  // One clear line in the log.
    return Error{Errc::kIo, "database '" + file.string() + "' is corrupt (" + why +
                                "); refusing to start, the file is left as it is"};
  }
  return {};
}

Result<void> migrate(sqlite3* db, const fs::path& file) {
  auto version = user_version(db);
  if (version.has_error()) return version.error();
  if (*version > Store::kSchemaVersion) {
    return Error{Errc::kIo, "database '" + file.string() + "' has schema version " +
                                std::to_string(*version) + ", newer than this taskgroupd (" +
                                std::to_string(Store::kSchemaVersion) + "); refusing to start"};
  }
  for (auto v = *version; v < Store::kSchemaVersion; ++v) {
    auto txn = Txn::begin(db);
    if (txn.has_error()) return txn.error();
    if (auto r = exec(db, kMigrations[v]); r.has_error()) return r.error();
    const std::string bump = "PRAGMA user_version = " + std::to_string(v + 1);
    if (auto r = exec(db, bump.c_str()); r.has_error()) return r.error();
    if (auto r = txn->commit(); r.has_error()) return r.error();
  }
  return {};
}

}  // namespace tg::daemon
