// Listing in pages: bounded pages, a cursor that goes on exactly where the last page ended
// (whatever is submitted or pruned between pages), and the newest-N limit.
#include <doctest/doctest.h>

#include "daemon/engine/engine_rig_test.h"

namespace tg::daemon::testing {

namespace {

using Ids = std::vector<proto::TaskId>;

ListBounds bounds(std::size_t tasks, std::size_t visits = 1000,
                  std::size_t bytes = std::size_t{1} << 20) {
  ListBounds b;
  b.max_tasks = tasks;
  b.max_visits = visits;
  b.max_bytes = bytes;
  return b;
}

proto::List list_request(std::optional<std::string> group = std::nullopt,
                         std::optional<std::int64_t> limit = std::nullopt) {
  proto::List req;
  if (group) req.group = proto::GroupRef{*group, std::nullopt};
  req.limit = limit;
  req.after_id = 0;
  return req;
}

Ids ids_of(const std::vector<proto::TaskInfo>& tasks) {
  Ids out;
  for (const auto& t : tasks) out.push_back(t.id);
  return out;
}

// One paged request, REQUIREd to succeed.
proto::ListResult page(EngineRig& rig, const proto::List& req, const ListBounds& b,
                       const Peer& peer = kRoot) {
  auto r = rig.engine->list(peer, req, b);
  REQUIRE_MESSAGE(!r.has_error(), r.error().message);
  CHECK(r->tasks.size() <= b.max_tasks);
  return *r;
}

// Every page of a paged listing, as a client walks it: the limit goes with the first request.
std::vector<Ids> all_pages(EngineRig& rig, proto::List req, const ListBounds& b,
                           const Peer& peer = kRoot) {
  std::vector<Ids> pages;
  for (int guard = 0; guard < 10'000; ++guard) {
    const proto::ListResult r = page(rig, req, b, peer);
    pages.push_back(ids_of(r.tasks));
    if (!r.next_after_id) return pages;
    REQUIRE(*r.next_after_id > req.after_id.value_or(0));
    req.after_id = r.next_after_id;
    req.limit.reset();
  }
  FAIL("the cursor never ended");
  return pages;
}

Ids joined(const std::vector<Ids>& pages) {
  Ids out;
  for (const auto& p : pages) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Ids range(proto::TaskId first, proto::TaskId last) {
  Ids out;
  for (proto::TaskId id = first; id <= last; ++id) out.push_back(id);
  return out;
}

}  // namespace

TEST_CASE("Engine::list: pages are bounded, and the cursor ends with the last one") {
  EngineRig rig;
  rig.submit("g", 25);
  const auto pages = all_pages(rig, list_request(), bounds(10));
  CHECK(pages == std::vector<Ids>{range(1, 10), range(11, 20), range(21, 25)});

  SUBCASE("a page that ends with the last task is the last page") {
    CHECK(all_pages(rig, list_request(), bounds(5)).size() == 5);
    CHECK(all_pages(rig, list_request(), bounds(25)) == std::vector<Ids>{range(1, 25)});
  }
  SUBCASE("the default bounds: kListPageTasks a page") {
    rig.submit("g", static_cast<int>(kListPageTasks));
    const auto r = page(rig, list_request(), ListBounds{});
    CHECK(r.tasks.size() == kListPageTasks);
    REQUIRE(r.next_after_id.has_value());
    CHECK(*r.next_after_id == static_cast<proto::TaskId>(kListPageTasks));
  }
  SUBCASE("a page stops at its byte budget, but always holds one task") {
    proto::Submit big;
    big.group = "big";
    for (int i = 0; i < 3; ++i) big.tasks.push_back(argv_spec({"x", std::string(5000, 'a')}));
    REQUIRE_FALSE(rig.engine->submit(kRoot, big).has_error());
    rig.settle();
    CHECK(all_pages(rig, list_request("big"), bounds(100, 1000, 7000)) ==
          std::vector<Ids>{{26, 27}, {28}});
    CHECK(all_pages(rig, list_request("big"), bounds(100, 1000, 1)) ==
          std::vector<Ids>{{26}, {27}, {28}});
  }
}

TEST_CASE("Engine::list: few matches among many tasks: short pages bounded by tasks looked at") {
  EngineRig rig;
  for (int i = 0; i < 10; ++i) {
    rig.submit("other", 9);
    rig.submit("mine", 1);
  }
  const auto pages = all_pages(rig, list_request("mine"), bounds(100, 15));
  // 100 tasks, 15 looked at a page: 7 pages, some of them empty, every match once in order.
  CHECK(pages.size() == 7);
  CHECK(joined(pages) == Ids{10, 20, 30, 40, 50, 60, 70, 80, 90, 100});
  for (const auto& p : pages) CHECK(p.size() <= 2);
}

TEST_CASE("Engine::list: the cursor goes on exactly after the last page, with new tasks") {
  EngineRig rig;
  rig.submit("g", 10);
  proto::List req = list_request();
  const auto first = page(rig, req, bounds(4));
  CHECK(ids_of(first.tasks) == range(1, 4));
  REQUIRE(first.next_after_id == 4);

  rig.submit("g", 5);  // 11..15, between the pages.
  req.after_id = first.next_after_id;
  const Ids rest = joined(all_pages(rig, req, bounds(4)));
  CHECK(rest == range(5, 15));  // None missed, none repeated.
}

TEST_CASE("Engine::list: a task pruned between pages is left out, the others are not repeated") {
  Config config = rig_config(10);
  EngineRig rig(config);
  rig.submit("g", 10);
  for (proto::TaskId id = 1; id <= 10; ++id) rig.exec.finish(id, exit_code(0));
  rig.settle();
  proto::List req = list_request();
  const auto first = page(rig, req, bounds(3));
  REQUIRE(first.next_after_id == 3);

  config.retention_count = 5;  // Keeps 6..10: 4 and 5, next on the cursor, go.
  rig.engine->apply_config(config);
  rig.settle();
  req.after_id = first.next_after_id;
  CHECK(joined(all_pages(rig, req, bounds(3))) == range(6, 10));
}

TEST_CASE("Engine::list: limit keeps the newest N matches, in id order, across pages") {
  EngineRig rig;
  for (int i = 0; i < 5; ++i) {
    rig.submit("a", 2);
    rig.submit("b", 1);
  }
  // a: 1 2 4 5 7 8 10 11 13 14; b: 3 6 9 12 15.
  CHECK(joined(all_pages(rig, list_request(std::nullopt, 4), bounds(3))) == range(12, 15));
  CHECK(joined(all_pages(rig, list_request("a", 5), bounds(2))) == Ids{8, 10, 11, 13, 14});
  CHECK(joined(all_pages(rig, list_request("b", 100), bounds(2))) == Ids{3, 6, 9, 12, 15});
  CHECK(all_pages(rig, list_request("nobody", 3), bounds(2)) == std::vector<Ids>{{}});

  SUBCASE("after_id and limit: the newest N of the tasks after the cursor") {
    proto::List req = list_request("a", 3);
    req.after_id = 12;
    CHECK(joined(all_pages(rig, req, bounds(10))) == Ids{13, 14});
  }
  SUBCASE("a walk with a limit ends at the newest task of its start") {
    auto walk = rig.engine->begin_list(kRoot, list_request(std::nullopt, 4));
    REQUIRE_FALSE(walk.has_error());
    CHECK(ids_of(rig.engine->list_page(*walk, bounds(2))) == Ids{12, 13});
    rig.submit("a", 3);  // 16..18: newer than the newest 4 of the start.
    CHECK(ids_of(rig.engine->list_page(*walk, bounds(2))) == Ids{14, 15});
    CHECK(rig.engine->list_page(*walk, bounds(2)).empty());
    CHECK(walk->done);
  }
}

TEST_CASE("Engine::list: each user pages through their own tasks only") {
  EngineRig rig;
  rig.submit("g", 3, {}, kAlice);
  rig.submit("g", 3, {}, kRoot);
  rig.submit("g", 3, {}, kAlice);
  CHECK(joined(all_pages(rig, list_request(), bounds(2), kAlice)) == Ids{1, 2, 3, 7, 8, 9});
  CHECK(joined(all_pages(rig, list_request(), bounds(2), kRoot)) == range(1, 9));
  CHECK(joined(all_pages(rig, list_request("g"), bounds(2), kRoot)) == Ids{4, 5, 6});
}

}  // namespace tg::daemon::testing
