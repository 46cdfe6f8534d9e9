// The wire form of `watch` (tgctl top) and of its frames.
#include <string>

#include <doctest/doctest.h>

#include "common/codec.h"

namespace tg::proto {

namespace {

using nlohmann::json;

IncomingRequest decode(const json& params) {
  const json line = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "watch"}, {"params", params}};
  return decode_request(line.dump());
}

}  // namespace

TEST_CASE("decode_request: watch takes an optional user and nothing else") {
  auto plain = decode(json::object());
  REQUIRE_FALSE(plain.request.has_error());
  CHECK_FALSE(std::get<Watch>(*plain.request).user.has_value());
  auto alice = decode({{"user", "alice"}});
  REQUIRE_FALSE(alice.request.has_error());
  CHECK(std::get<Watch>(*alice.request).user == "alice");
  CHECK(decode({{"group", "g"}}).request.has_error());
  CHECK(decode({{"user", 7}}).request.has_error());

  CHECK(method_name(Watch{}) == "watch");
  const auto back = decode(to_params(Watch{"bob"}));
  REQUIRE_FALSE(back.request.has_error());
  CHECK(std::get<Watch>(*back.request).user == "bob");
}

TEST_CASE("WatchFrame: every field on the wire, cpu_ms null until tasks have cgroups") {
  WatchFrame f;
  f.daemon.max_running = 4;
  f.groups.push_back({"g", 1000, "alice", 2, true, false, {}});
  f.running.emplace_back().id = 7;
  const json j = f;
  CHECK(j["daemon"]["max_running"] == 4);
  CHECK(j["groups"][0]["paused"] == true);
  CHECK(j["groups"][0]["counts"]["queued"] == 0);
  CHECK(j["running"][0]["cpu_ms"].is_null());
  CHECK(j["running"][0]["started_at"].is_null());
  CHECK(j.contains("groups_total"));
  CHECK(j.contains("running_total"));
  CHECK(j["ended"].is_array());
  const auto round = decode_result<WatchFrame>(j);
  REQUIRE_FALSE(round.has_error());
  CHECK(round->groups[0].user == "alice");
  CHECK(round->running[0].id == 7);
}

}  // namespace tg::proto
