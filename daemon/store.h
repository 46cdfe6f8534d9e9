#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/protocol.h"
#include "daemon/sqlite_util.h"
#include "daemon/task.h"

namespace tg::daemon {

// The SQLite database (WAL) in the state directory: the source of truth for tasks and groups.
// Memory is rebuilt from it at start; a submit is acknowledged only after its transaction is
// committed. Every write method is one transaction and either fully happens or not at all
// (disk full, read-only: an Errc::kIo error, the database unchanged). Owned by run(); used only
// on the event loop's thread; calls are synchronous and short (prepared statements).
class Store {
 public:
  struct Options {
    bool durable = true;  // synchronous=FULL (fsync per commit); false: NORMAL.
  };
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the database and migrates it. Refuses, leaving the file untouched, a file
  // that is not a database, is corrupt, or has a newer schema than this binary.
  [[nodiscard]] static Result<Store> open(const std::filesystem::path& file, Options options);

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
  [[nodiscard]] Result<void> update(std::span<const Task* const> tasks);
  [[nodiscard]] Result<void> save_group(const GroupRow& group);
  // Deletes finished tasks that ended before `ended_before`, and the oldest finished ones beyond
  // `keep`, at most `max_rows` of them (-1: all), so a big prune can be spread over several
  // short transactions; returns their ids (for their logs). Unused environments go too.
  [[nodiscard]] Result<std::vector<TaskId>> prune(TimeMs ended_before, std::int64_t keep,
                                                  std::int64_t max_rows = -1);

 private:
  Store(DbPtr db) : db_(std::move(db)) {}
  [[nodiscard]] Result<void> prepare();
  [[nodiscard]] Result<void> write_updates(std::span<const Task* const> tasks);
  [[nodiscard]] Result<std::int64_t> intern_env(const std::string& body);

  DbPtr db_;
  Stmt insert_task_;
  Stmt update_task_;
  Stmt insert_env_;
  Stmt find_env_;
};

}  // namespace tg::daemon
