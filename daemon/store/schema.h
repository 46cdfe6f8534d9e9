#pragma once

// The store's schema: its migrations, applied in order, each in a transaction that also records
// the new version (PRAGMA user_version), and the checks made before any of them runs.

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>

#include "common/error.h"

namespace tg::daemon {

// The schema version recorded in the database (0 for a new file).
[[nodiscard]] Result<std::int64_t> user_version(sqlite3* db);

// PRAGMA quick_check, reading without writing: a damaged or foreign file is refused untouched.
[[nodiscard]] Result<void> check_integrity(sqlite3* db, const std::filesystem::path& file);

// Brings the schema to Store::kSchemaVersion; refuses a database newer than this program.
[[nodiscard]] Result<void> migrate(sqlite3* db, const std::filesystem::path& file);

}  // namespace tg::daemon
