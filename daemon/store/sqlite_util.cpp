#include "daemon/store/sqlite_util.h"

#include <cerrno>
#include <cstring>
#include <utility>

namespace tg::daemon {

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  const int err = errno;  // SQLite's I/O errors leave the system's reason here; keep it first.
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      detail = "disk full (" + detail + ")";
      break;
    case SQLITE_READONLY:
      detail = "state directory is read-only (" + detail + ")";
      break;
    case SQLITE_IOERR:
      if (err == EROFS) {
        detail = "state directory is read-only (" + detail + ")";
      } else if (err == ENOSPC) {
        detail = "disk full (" + detail + ")";
      } else if (err != 0) {
        detail += std::string(" (") + std::strerror(err) + ")";
      }
      break;
    default:
      break;
  }
  // The commit's frames were written but not made durable: the kernel may write them later,
  // or drop them (fsyncgate). SQLite itself reads them back after a restart.
  if (rc == SQLITE_IOERR_FSYNC || rc == SQLITE_IOERR_DIR_FSYNC) {
    return Error{Errc::kOutcomeUnknown, std::string(what) + ": fsync failed: " + detail};
  }
  return Error{Errc::kIo, std::string(what) + ": " + detail};
}

Result<Stmt> Stmt::prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, "prepare");
  return Stmt(db, s);
}

Stmt& Stmt::bind(int i, std::int64_t v) {
  (void)sqlite3_bind_int64(stmt_.get(), i, v);  // Only fails on a bad index: a bug step() reports.
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view v) {
  (void)sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::bind(int i, std::optional<std::int64_t> v) { return v ? bind(i, *v) : bind_null(i); }

Stmt& Stmt::bind_null(int i) {
  (void)sqlite3_bind_null(stmt_.get(), i);
  return *this;
}

Result<bool> Stmt::step() {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = sqlite_error(db_, rc, "step");
  reset();
  return e;
}

Result<void> Stmt::run() {
  auto r = step();
  reset();
  if (r.has_error()) return r.error();
  return {};
}

void Stmt::reset() {
  (void)sqlite3_reset(stmt_.get());  // Returns the last step's error, already reported.
  (void)sqlite3_clear_bindings(stmt_.get());
}

std::int64_t Stmt::take_vm_steps() {
  return sqlite3_stmt_status(stmt_.get(), SQLITE_STMTSTATUS_VM_STEP, /*resetFlg=*/1);
}

std::int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }

std::optional<std::int64_t> Stmt::opt_int64(int col) const {
  if (sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL) return std::nullopt;
  return int64(col);
}

std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_.get(), col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), col)))
           : std::string();
}

Result<void> exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  sqlite3_free(msg);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, sql);
  return {};
}

Result<Txn> Txn::begin(sqlite3* db) {
  // IMMEDIATE: take the write lock now, so commit cannot fail on a lock upgrade.
  if (auto r = exec(db, "BEGIN IMMEDIATE"); r.has_error()) return r.error();
  return Txn(db);
}

Txn::~Txn() {
  if (db_) (void)exec(db_, "ROLLBACK");  // Failure leaves SQLite to roll back on its own.
}

Result<void> Txn::commit() {
  auto r = exec(db_, "COMMIT");
  if (r.has_error()) return r.error();  // The destructor rolls back.
  db_ = nullptr;
  return {};
}

}  // namespace tg::daemon
