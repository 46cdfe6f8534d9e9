#pragma once

// Fixtures of the Store's unit tests (store_test.cpp, store_prune_test.cpp): an in-memory store,
// tasks, and a shared in-memory database a second connection can see.

#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "common/codec.h"
#include "daemon/store/store.h"

namespace tg::daemon::store_testing {

using Envs = std::vector<const std::string*>;
using Updates = std::vector<const Task*>;

inline Store open_memory() {
  auto store = Store::open(":memory:", {});
  if (store.has_error()) FAIL("open failed: " << store.error().message);
  return std::move(*store);
}

inline Task make_task(std::string group, std::vector<std::string> argv, int priority = 0) {
  Task t;
  t.uid = 1000;
  t.gid = 100;
  t.group = std::move(group);
  t.argv = std::move(argv);
  t.priority = priority;
  t.submitted_at = 1'700'000'000'000;
  return t;
}

inline std::vector<Task> make_tasks(int n, const std::string& group = "g") {
  std::vector<Task> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back(make_task(group, {"task", std::to_string(i)}));
  return tasks;
}

inline std::string env_body(const proto::Env& env) { return proto::dump_json(nlohmann::json(env)); }

inline std::vector<Task> load(Store& store) {
  auto tasks = store.load_tasks();
  if (tasks.has_error()) FAIL("load_tasks failed: " << tasks.error().message);
  return std::move(*tasks);
}

inline std::vector<TaskId> ids_of(const std::vector<Task>& tasks) {
  std::vector<TaskId> ids;
  for (const Task& t : tasks) ids.push_back(t.id);
  return ids;
}

inline std::vector<TaskId> sorted(std::vector<TaskId> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Ends a task as the Engine would, for prune tests.
inline void finish(Task& t, TimeMs ended_at) {
  t.state = TaskState::kSucceeded;
  t.started_at = ended_at - 1;
  t.ended_at = ended_at;
  t.exit_code = 0;
}

// A private in-memory database that a second, raw connection can see: lets a test read the
// schema version or plant a trigger without touching the file system. Needs URI filenames in
// Store::open, which Debian's SQLite enables (SQLITE_USE_URI=1); elsewhere the tests using it
// fail saying so, rather than pass without having checked anything.
class SharedMemoryDb {
 public:
  SharedMemoryDb() {
    REQUIRE_MESSAGE(sqlite3_compileoption_used("USE_URI") == 1,
                    "this SQLite is built without SQLITE_USE_URI, which these tests need");
    static int counter = 0;  // Each test gets its own database.
    name_ = "file:tg_store_test_" + std::to_string(++counter) + "?mode=memory&cache=shared";
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(
        name_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, nullptr);
    db_.reset(raw);
    REQUIRE(rc == SQLITE_OK);
  }
  const std::string& name() const { return name_; }
  void exec(const std::string& sql) {
    auto r = daemon::exec(db_.get(), sql.c_str());
    if (r.has_error()) FAIL(r.error().message);
  }
  std::int64_t user_version() {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_.get(), "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const std::int64_t v = sqlite3_column_int64(st, 0);
    (void)sqlite3_finalize(st);  // Read-only statement: nothing to report.
    return v;
  }

 private:
  std::string name_;
  DbPtr db_;
};

}  // namespace tg::daemon::store_testing
