#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace tg::daemon {

struct CloseDb {
  void operator()(sqlite3* db) const { (void)sqlite3_close_v2(db); }  // Nothing to do on failure.
};
struct FinalizeStmt {
  void operator()(sqlite3_stmt* s) const { (void)sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, CloseDb>;

// The Error for a failed SQLite call: kIo, with "disk full" / "read-only" spelled out.
[[nodiscard]] Error sqlite_error(sqlite3* db, int rc, std::string_view what);

// A prepared statement, reset after each use. Binds are 1-based like SQLite's ?1.
class Stmt {
 public:
  Stmt() = default;
  static Result<Stmt> prepare(sqlite3* db, std::string_view sql);

  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, std::optional<std::int64_t> v);
  Stmt& bind_null(int i);
  // Steps once: true if a row is ready, false when done; an Error on failure (then reset).
  [[nodiscard]] Result<bool> step();
  // Runs to completion (for writes) and resets.
  [[nodiscard]] Result<void> run();
  void reset();
  // The VM steps run since the last call (the statement's cost), and starts counting again.
  [[nodiscard]] std::int64_t take_vm_steps();

  [[nodiscard]] std::int64_t int64(int col) const;
  [[nodiscard]] std::optional<std::int64_t> opt_int64(int col) const;
  [[nodiscard]] std::string text(int col) const;

 private:
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), stmt_(s) {}
  sqlite3* db_ = nullptr;
  std::unique_ptr<sqlite3_stmt, FinalizeStmt> stmt_;
};

// A transaction; its destructor rolls back unless commit() succeeded.
class Txn {
 public:
  static Result<Txn> begin(sqlite3* db);
  Txn(Txn&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
  Txn& operator=(Txn&&) = delete;
  ~Txn();
  [[nodiscard]] Result<void> commit();

 private:
  explicit Txn(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Runs SQL with no results (schema, pragmas).
[[nodiscard]] Result<void> exec(sqlite3* db, const char* sql);

}  // namespace tg::daemon
