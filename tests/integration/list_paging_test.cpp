// Integration tests of listing in pages (docs/protocol.md "list"): tgctl pages through more tasks
// than one page holds, as a table and as JSON, and an old client's list without a cursor still
// gets every task in one reply.

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/raw_client.h"
#include "support/task_helpers.h"
#include "support/test_daemon.h"

namespace {

using nlohmann::json;
using tg::test::RawClient;
using tg::test::TestDaemon;
using namespace tg::test::helpers;

constexpr std::int64_t kPage = 250;  // The daemon's page (kListPageTasks).

// Submits `n` queued tasks to the paused group `group` in one batch; returns their ids.
std::vector<std::int64_t> submit_queued(const TestDaemon& d, const std::string& group, int n) {
  tgctl_ok(d, {"pause", group});
  const std::string file = (d.dir() / ("batch-" + group)).string();
  {
    std::ofstream out(file);
    for (int i = 0; i < n; ++i) out << "true " << i << '\n';
  }
  auto ids = parse_ids(tgctl_ok(d, {"submit", "-g", group, "--batch", file}));
  REQUIRE(ids.size() == static_cast<std::size_t>(n));
  return ids;
}

std::vector<std::int64_t> json_ids(const std::string& out) {
  const json listed = parse_json(out);
  REQUIRE(listed.is_object());
  CHECK(listed.size() == 1);  // {"tasks": [...]}, as before pages.
  std::vector<std::int64_t> ids;
  for (const auto& t : listed.at("tasks")) ids.push_back(t.at("id").get<std::int64_t>());
  return ids;
}

// The ids of a task table: one header line, then one row per task that starts with its id.
std::vector<std::int64_t> table_ids(const std::string& out) {
  const auto lines = lines_of(out);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines[0].find("ID") != std::string::npos);
  CHECK(lines[0].find("COMMAND") != std::string::npos);
  std::vector<std::int64_t> ids;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    CAPTURE(lines[i]);
    REQUIRE(lines[i].find("ID") == std::string::npos);  // The header comes once.
    ids.push_back(std::stoll(lines[i]));
  }
  return ids;
}

// Each id of `expected` exactly once, in ascending order.
void check_exactly(const std::vector<std::int64_t>& got, std::vector<std::int64_t> expected) {
  std::sort(expected.begin(), expected.end());
  CHECK(std::set<std::int64_t>(got.begin(), got.end()).size() == got.size());  // No repeats.
  CHECK(got.size() == expected.size());
  CHECK(got == expected);
}

}  // namespace

TEST_CASE("tgctl list pages through more tasks than a page holds: every id exactly once") {
  TestDaemon d;
  const auto p = submit_queued(d, "p", 2 * kPage + 345);
  const auto q = submit_queued(d, "q", 300);
  std::vector<std::int64_t> all = p;
  all.insert(all.end(), q.begin(), q.end());

  SUBCASE("--json: one JSON document of the same shape as before pages") {
    check_exactly(json_ids(tgctl_ok(d, {"list", "--json"})), all);
    check_exactly(json_ids(tgctl_ok(d, {"list", "-g", "p", "--json"})), p);
    check_exactly(json_ids(tgctl_ok(d, {"list", "-g", "q", "--state", "queued", "--json"})), q);
    CHECK(json_ids(tgctl_ok(d, {"list", "--state", "running", "--json"})).empty());
  }
  SUBCASE("the table: one header, one row per task") {
    check_exactly(table_ids(tgctl_ok(d, {"list"})), all);
    check_exactly(table_ids(tgctl_ok(d, {"list", "-g", "q"})), q);
  }
  SUBCASE("--limit N: the newest N matches, oldest first, across pages") {
    const std::size_t n = 3 * kPage / 2;  // More than a page, less than all.
    REQUIRE(n < p.size());
    const std::vector<std::int64_t> newest(all.end() - n, all.end());
    const std::string limit = std::to_string(n);
    check_exactly(json_ids(tgctl_ok(d, {"list", "--limit", limit, "--json"})), newest);
    check_exactly(table_ids(tgctl_ok(d, {"list", "--limit", limit})), newest);
    const std::vector<std::int64_t> newest_p(p.end() - n, p.end());
    check_exactly(json_ids(tgctl_ok(d, {"list", "-g", "p", "--limit", limit, "--json"})), newest_p);
    check_exactly(json_ids(tgctl_ok(d, {"list", "--limit", "100000", "--json"})), all);
  }
}

TEST_CASE("list over the protocol: pages with a cursor, and every task without one") {
  TestDaemon d;
  const auto ids = submit_queued(d, "p", kPage + 10);
  RawClient raw(d.socket_path());

  // With after_id: one page, and where the next one starts.
  const json first = raw.call("list", {{"after_id", 0}});
  REQUIRE(first.contains("result"));
  CHECK(first.at("result").at("tasks").size() == static_cast<std::size_t>(kPage));
  CHECK(first.at("result").at("next_after_id") == ids[kPage - 1]);
  const json second = raw.call("list", {{"after_id", ids[kPage - 1]}}, 2);
  CHECK(second.at("result").at("tasks").size() == 10);
  CHECK(second.at("result").at("tasks").at(0).at("id") == ids[kPage]);
  CHECK(second.at("result").at("next_after_id").is_null());

  // Without after_id (an old client): every match in one reply line, sent a page at a time.
  const json whole = raw.call("list", nullptr, 3);
  REQUIRE(whole.contains("result"));
  CHECK(whole.at("id") == 3);
  std::vector<std::int64_t> got;
  for (const auto& t : whole.at("result").at("tasks")) got.push_back(t.at("id"));
  check_exactly(got, ids);
  const json newest = raw.call("list", {{"limit", 3}}, 4);
  CHECK(newest.at("result").at("tasks").size() == 3);
  CHECK(newest.at("result").at("tasks").at(0).at("id") == ids[ids.size() - 3]);

  // The connection still serves requests in order after a streamed reply.
  CHECK(raw.call("status", nullptr, 5).at("result").at("queued") == kPage + 10);
  const json missing = raw.call("list", {{"user", "nosuchuser"}}, 6);
  CHECK(missing.at("error").at("data").at("kind") == "not_found");
}

TEST_CASE("list refuses a negative or non-integer after_id") {
  TestDaemon d;
  RawClient raw(d.socket_path());
  for (const json& bad : {json(-1), json("5"), json(1.5)}) {
    CAPTURE(bad.dump());
    const json r = raw.call("list", {{"after_id", bad}});
    CHECK(r.at("error").at("data").at("kind") == "invalid_params");
  }
}
