// The ledger (ledger.h) and the Store's use of it: reservations, the id floor, and the check at
// open against a database that lost its WAL. Real files in a private temp dir: the point is
// what survives beside the database. A crash is simulated by copying the files of a Store that
// is still open (its last commits are in the WAL only), with or without the WAL.

#include "daemon/store/ledger.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "daemon/store/store.h"
#include "daemon/store/store_fixtures_test.h"

namespace tg::daemon {
namespace {

namespace fs = std::filesystem;
using store_testing::make_tasks;

constexpr const char* kBootA = "11111111-2222-3333-4444-555555555555";
constexpr const char* kBootB = "66666666-7777-8888-9999-000000000000";

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "tg_ledger_XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);  // Test teardown: best effort.
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] fs::path db() const { return path_ / "taskgroupd.db"; }
  [[nodiscard]] fs::path ledger() const { return path_ / "taskgroupd.ledger"; }

 private:
  fs::path path_;
};

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Store open_store(const ScratchDir& dir, const char* boot, bool durable = true,
                 bool accept_lost = false) {
  auto store =
      Store::open(dir.db(), {durable}, Store::LedgerOptions{dir.ledger(), boot, accept_lost});
  if (store.has_error()) FAIL("open failed: " << store.error().message);
  return std::move(*store);
}

Result<Store> try_open(const ScratchDir& dir, const char* boot, bool accept_lost = false) {
  return Store::open(dir.db(), {true}, Store::LedgerOptions{dir.ledger(), boot, accept_lost});
}

std::vector<TaskId> insert(Store& store, int n) {
  auto tasks = make_tasks(n);
  REQUIRE_FALSE(store.insert(tasks, {}).has_error());
  return store_testing::ids_of(tasks);
}

// What a kill -9 leaves while `live` is still open: the database, the ledger and (unless
// `with_wal`) the WAL, copied into `to`.
void copy_crashed(const ScratchDir& from, const ScratchDir& to, bool with_wal) {
  fs::copy_file(from.db(), to.db());
  fs::copy_file(from.ledger(), to.ledger());
  if (with_wal) fs::copy_file(from.db().string() + "-wal", to.db().string() + "-wal");
}

TEST_CASE("Ledger: what is written reads back; torn marks, foreign and missing files") {
  ScratchDir dir;
  auto absent = Ledger::read(dir.ledger());
  REQUIRE_FALSE(absent.has_error());
  CHECK_FALSE(absent->has_value());

  auto made = Ledger::create(dir.ledger(), {20'000, Ledger::Marks{7, 5, kBootA}});
  REQUIRE_FALSE(made.has_error());
  REQUIRE_FALSE(made->mark(9, 8).has_error());
  auto back = Ledger::read(dir.ledger());
  REQUIRE_FALSE(back.has_error());
  REQUIRE(back->has_value());
  CHECK((*back)->reserved == 20'000);
  REQUIRE((*back)->marks.has_value());
  CHECK((*back)->marks->commits == 9);
  CHECK((*back)->marks->synced == 8);
  CHECK((*back)->marks->boot_id == kBootA);

  SUBCASE("a reservation keeps the marks") {
    REQUIRE_FALSE(made->reserve(30'000).has_error());
    auto again = Ledger::read(dir.ledger());
    REQUIRE(again->has_value());
    CHECK((*again)->reserved == 30'000);
    CHECK((*again)->marks->commits == 9);
    CHECK_FALSE(fs::exists(dir.ledger().string() + ".tmp"));
  }
  SUBCASE("a changed digit in the marks line makes the marks unreadable, not the reservation") {
    std::string text = slurp(dir.ledger());
    const auto at = text.find("marks ") + 24;
    text[at] = text[at] == '9' ? '8' : '9';
    std::ofstream(dir.ledger(), std::ios::binary | std::ios::trunc) << text;
    auto torn = Ledger::read(dir.ledger());
    REQUIRE_FALSE(torn.has_error());
    CHECK((*torn)->reserved == 20'000);
    CHECK_FALSE((*torn)->marks.has_value());
  }
  SUBCASE("a file that is not a ledger is an error") {
    std::ofstream(dir.ledger(), std::ios::trunc) << "hello\n";
    CHECK(Ledger::read(dir.ledger()).has_error());
  }
}

TEST_CASE("required_commits: every mark in the same boot, only the fsynced ones after a reboot") {
  const Ledger::Marks marks{10, 6, kBootA};
  CHECK(required_commits(marks, kBootA) == 10);
  CHECK(required_commits(marks, kBootB) == 6);
  CHECK(required_commits(marks, "") == 6);  // Unknown boot: as after a reboot.
}

TEST_CASE("Store: task ids are reserved in the ledger a block at a time, not per insert") {
  ScratchDir dir;
  Store store = open_store(dir, kBootA);
  REQUIRE(store.ledger().has_value());
  CHECK(store.ledger()->reserved() == Store::kIdBlock);  // The first block, at open.
  CHECK(insert(store, 1) == std::vector<TaskId>{1});
  insert(store, 5);
  CHECK(store.ledger()->reserved() == Store::kIdBlock);
  insert(store, static_cast<int>(Store::kIdBlock));  // Past the block: a batch's worth more.
  CHECK(store.highest_id() == 6 + Store::kIdBlock);
  CHECK(store.ledger()->reserved() == 6 + 2 * Store::kIdBlock);
  auto on_disk = Ledger::read(dir.ledger());
  REQUIRE(on_disk->has_value());
  CHECK((*on_disk)->reserved == 6 + 2 * Store::kIdBlock);
  CHECK((*on_disk)->marks->commits == store.commits());
}

TEST_CASE("Store: after a clean stop the ids go on from the highest one used") {
  ScratchDir dir;
  {
    Store store = open_store(dir, kBootA);
    insert(store, 3);
    REQUIRE_FALSE(store.release_unused_ids().has_error());
    CHECK(store.ledger()->reserved() == 3);
  }
  SUBCASE("same boot") {
    Store store = open_store(dir, kBootA);
    CHECK(insert(store, 1) == std::vector<TaskId>{4});
  }
  SUBCASE("after a reboot") {
    Store store = open_store(dir, kBootB);
    CHECK(insert(store, 1) == std::vector<TaskId>{4});
  }
}

TEST_CASE("Store: a crash with the WAL intact opens without an alarm") {
  ScratchDir dir;
  ScratchDir crashed;
  Store live = open_store(dir, kBootA);
  insert(live, 3);
  copy_crashed(dir, crashed, /*with_wal=*/true);

  SUBCASE("same boot: proven complete, ids go on") {
    Store store = open_store(crashed, kBootA);
    CHECK(store.ledger()->reserved() == 3 + Store::kIdBlock);
    CHECK(insert(store, 1) == std::vector<TaskId>{4});
  }
  SUBCASE("another boot: ids skip to above the reservation") {
    Store store = open_store(crashed, kBootB);
    CHECK(insert(store, 1) == std::vector<TaskId>{1 + Store::kIdBlock});
  }
}

TEST_CASE("Store: a database whose WAL was lost after a crash is refused and left as it was") {
  ScratchDir dir;
  ScratchDir crashed;
  {
    Store first = open_store(dir, kBootA);
    insert(first, 3);
    REQUIRE_FALSE(first.release_unused_ids().has_error());
  }
  Store live = open_store(dir, kBootA);
  const auto acked = insert(live, 2);  // 4 and 5: in the WAL only.
  REQUIRE(acked == std::vector<TaskId>{4, 5});
  copy_crashed(dir, crashed, /*with_wal=*/false);
  const std::string db_before = slurp(crashed.db());
  const std::string ledger_before = slurp(crashed.ledger());

  auto refused = try_open(crashed, kBootA);
  REQUIRE(refused.has_error());
  const std::string& why = refused.error().message;
  CHECK(why.find("lacks commits") != std::string::npos);
  CHECK(why.find(crashed.ledger().string()) != std::string::npos);
  CHECK(why.find("taskgroupd.db-wal' is missing") != std::string::npos);
  CHECK(why.find("--accept-lost-tasks") != std::string::npos);
  CHECK(slurp(crashed.db()) == db_before);
  CHECK(slurp(crashed.ledger()) == ledger_before);
  CHECK_FALSE(fs::exists(crashed.db().string() + "-wal"));

  SUBCASE("after a reboot too: the lost commits had been fsynced") {
    CHECK(try_open(crashed, kBootB).has_error());
  }
  SUBCASE("accepted: it opens, and the next id is above every id handed out") {
    Store store = open_store(crashed, kBootA, /*durable=*/true, /*accept_lost=*/true);
    CHECK(store_testing::load(store).size() == 3);
    const auto next = insert(store, 1);
    CHECK(next.front() > 5);
    CHECK(next.front() == 4 + Store::kIdBlock);  // Above the block reserved at that start.
    // Accepted once: the next start finds a consistent ledger.
    REQUIRE_FALSE(store.release_unused_ids().has_error());
  }
}

TEST_CASE("Store: unsynced commits a reboot took back are no alarm; within one boot they are") {
  ScratchDir dir;
  ScratchDir crashed;
  Store live = open_store(dir, kBootA, /*durable=*/false);
  insert(live, 2);  // durable = false: in the WAL, never fsynced.
  copy_crashed(dir, crashed, /*with_wal=*/false);
  SUBCASE("another boot: as a power cut may, without an alarm; ids skip the reservation") {
    Store store = open_store(crashed, kBootB);
    CHECK(insert(store, 1).front() == 1 + Store::kIdBlock);
  }
  SUBCASE("same boot: the daemon crashed and the WAL was deleted") {
    CHECK(try_open(crashed, kBootA).has_error());
  }
}

}  // namespace
}  // namespace tg::daemon
