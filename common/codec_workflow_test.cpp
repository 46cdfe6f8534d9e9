// The wire forms of issue 13's labels, list filters, submit keys and restart: what is accepted,
// what is refused with which message, and that the client's encoding decodes to the same.
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "common/codec.h"

namespace tg::proto {

namespace {

using nlohmann::json;

std::string request_line(std::string_view method, const json& params) {
  return dump_json(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}});
}

template <class T>
T decode_as(std::string_view method, const json& params) {
  const std::string line = request_line(method, params);
  CAPTURE(line);
  auto in = decode_request(line);
  if (in.request.has_error()) FAIL("unexpected error: " << in.request.error().message);
  REQUIRE(std::holds_alternative<T>(*in.request));
  return std::get<T>(*in.request);
}

// The message of a refused request; REQUIREs invalid params.
std::string refusal(std::string_view method, const json& params) {
  const std::string line = request_line(method, params);
  CAPTURE(line);
  auto in = decode_request(line);
  REQUIRE(in.request.has_error());
  CHECK(in.request.error().code == Errc::kInvalidParams);
  return in.request.error().message;
}

bool has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

json many_labels(int n, const std::string& prefix = "k") {
  json j = json::object();
  for (int i = 0; i < n; ++i) j[prefix + std::to_string(i)] = "v";
  return j;
}

Request round_trip(const Request& original) {
  std::string line = encode_request(5, original);
  line.pop_back();  // '\n'
  CAPTURE(line);
  auto in = decode_request(line);
  if (in.request.has_error()) FAIL("decode failed: " << in.request.error().message);
  return *in.request;
}

}  // namespace

TEST_CASE("decode_request: submit labels are an object of bounded strings") {
  SUBCASE("single form") {
    const auto s = decode_as<Submit>(
        "submit", {{"argv", {"true"}}, {"labels", {{"env", "prod"}, {"team.ml-2_x", ""}}}});
    REQUIRE(s.tasks.size() == 1);
    CHECK(s.tasks[0].labels == Labels{{"env", "prod"}, {"team.ml-2_x", ""}});
  }
  SUBCASE("batch: top-level defaults and a task's own") {
    const auto s = decode_as<Submit>(
        "submit",
        {{"labels", {{"env", "prod"}}},
         {"tasks", {{{"argv", {"a"}}}, {{"argv", {"b"}}, {"labels", {{"env", "dev"}}}}}}});
    CHECK(s.defaults.labels == Labels{{"env", "prod"}});
    CHECK_FALSE(s.tasks[0].labels.has_value());
    CHECK(s.tasks[1].labels == Labels{{"env", "dev"}});
  }
  SUBCASE("bounds: 32 labels, a 64-byte key and a 256-byte value are fine") {
    json labels = many_labels(31);
    labels[std::string(64, 'k')] = std::string(256, 'v');
    CHECK(decode_as<Submit>("submit", {{"argv", {"x"}}, {"labels", labels}})
              .tasks[0]
              .labels->size() == 32);
  }
  SUBCASE("refused") {
    const json argv = {"x"};
    CHECK(has(refusal("submit", {{"argv", argv}, {"labels", many_labels(33)}}),
              "params.labels: at most 32 labels"));
    CHECK(has(refusal("submit", {{"argv", argv}, {"labels", {{"", "v"}}}}), "label keys are 1-64"));
    CHECK(has(refusal("submit", {{"argv", argv}, {"labels", {{"a b", "v"}}}}), "(got 'a b')"));
    CHECK(has(refusal("submit", {{"argv", argv}, {"labels", {{std::string(65, 'k'), "v"}}}}),
              "(got 65 bytes)"));
    CHECK(has(refusal("submit", {{"argv", argv}, {"labels", {{"k", std::string(257, 'v')}}}}),
              "params.labels.k: label values are at most 256 bytes (got 257)"));
    CHECK(has(refusal("submit", {{"argv", argv}, {"labels", {{"k", 1}}}}),
              "params.labels.k: must be a string"));
    CHECK(has(refusal("submit", {{"argv", argv}, {"labels", {"k=v"}}}), "must be an object"));
    CHECK(has(refusal("submit", {{"argv", argv}, {"labels", {{"k", std::string("a\0b", 3)}}}}),
              "NUL"));
  }
  SUBCASE("a batch task's labels with the batch's are bounded too") {
    const json task = {{"argv", {"a"}}, {"labels", many_labels(2, "own")}};
    CHECK(has(refusal("submit", {{"labels", many_labels(31)}, {"tasks", {task}}}),
              "params.tasks[0].labels: at most 32 labels a task, with the batch's (got 33)"));
    // Overriding a batch label does not count twice.
    const json same = {{"argv", {"a"}}, {"labels", many_labels(2)}};
    CHECK(decode_as<Submit>("submit", {{"labels", many_labels(32)}, {"tasks", {same}}})
              .tasks.size() == 1);
  }
}

TEST_CASE("decode_request: a submit key is 1-256 bytes, for a single task only") {
  CHECK(decode_as<Submit>("submit", {{"argv", {"x"}}, {"key", "nightly-2026-12-07"}}).key ==
        "nightly-2026-12-07");
  CHECK(decode_as<Submit>("submit", {{"argv", {"x"}}, {"key", std::string(256, 'k')}}).key);
  CHECK_FALSE(decode_as<Submit>("submit", {{"argv", {"x"}}, {"key", nullptr}}).key);
  CHECK(has(refusal("submit", {{"argv", {"x"}}, {"key", std::string(257, 'k')}}),
            "params.key: must be 1-256 bytes (got 257)"));
  CHECK(has(refusal("submit", {{"argv", {"x"}}, {"key", ""}}), "must be 1-256 bytes (got 0)"));
  CHECK(has(refusal("submit", {{"argv", {"x"}}, {"key", 7}}), "params.key: must be a string"));
  CHECK(has(refusal("submit", {{"key", "k"}, {"tasks", {{{"argv", {"a"}}}}}}),
            "params.key: a batch cannot carry a key"));
  CHECK(has(refusal("submit", {{"tasks", {{{"argv", {"a"}}, {"key", "k"}}}}}),
            "params.tasks[0].key: a batch task cannot carry a key"));
}

TEST_CASE("decode_request: list takes one state or several, labels and since_ms") {
  CHECK(decode_as<List>("list", {{"state", "failed"}}).states ==
        std::vector<TaskState>{TaskState::kFailed});
  CHECK(decode_as<List>("list", {{"state", {"failed", "timed_out"}}}).states ==
        std::vector<TaskState>{TaskState::kFailed, TaskState::kTimedOut});
  const auto l = decode_as<List>("list", {{"labels", {{"env", "prod"}}}, {"since_ms", 60000}});
  CHECK(l.labels == Labels{{"env", "prod"}});
  CHECK(l.since_ms == 60000);
  CHECK(has(refusal("list", {{"state", json::array()}}), "params.state: must not be empty"));
  CHECK(has(refusal("list", {{"state", {"failed", "bogus"}}}), "unknown state 'bogus'"));
  CHECK(has(refusal("list", {{"state", {1}}}), "must be a state name or an array of them"));
  CHECK(has(refusal("list", {{"since_ms", -1}}), "params.since_ms"));
  CHECK(has(refusal("list", {{"labels", {{"a b", "v"}}}}), "label keys"));
}

TEST_CASE("decode_request: restart names ids, or a group with ended states") {
  CHECK(decode_as<Restart>("restart", {{"ids", {3, 1}}}).ids == std::vector<TaskId>{3, 1});
  const auto r = decode_as<Restart>(
      "restart", {{"group", "g"}, {"user", "alice"}, {"states", {"failed", "lost"}}});
  REQUIRE(r.group.has_value());
  CHECK(r.group->name == "g");
  CHECK(r.group->user == "alice");
  CHECK(r.states == std::vector<TaskState>{TaskState::kFailed, TaskState::kLost});
  CHECK(has(refusal("restart", json::object()), "give exactly one of group and ids"));
  CHECK(has(refusal("restart", {{"group", "g"}, {"ids", {1}}, {"states", {"failed"}}}),
            "give exactly one of group and ids"));
  CHECK(has(refusal("restart", {{"group", "g"}}), "params.states: is required with group"));
  CHECK(has(refusal("restart", {{"ids", {1}}, {"states", {"failed"}}}), "only with group"));
  CHECK(has(refusal("restart", {{"group", "g"}, {"states", {"running"}}}),
            "only ended tasks can be restarted, not running ones"));
  CHECK(has(refusal("restart", {{"ids", {1}}, {"key", "k"}}), "params.key: unknown parameter"));
}

TEST_CASE("encode_request: labels, keys, list filters and restarts decode to the same") {
  Submit s;
  TaskSpec t;
  t.argv = {"make"};
  t.labels = Labels{{"env", "prod"}};
  s.tasks.push_back(t);
  s.key = "k1";
  Submit batch;
  batch.defaults.labels = Labels{{"team", "ml"}};
  batch.tasks = {t, t};
  List l;
  l.states = {TaskState::kFailed, TaskState::kCancelled};
  l.labels = Labels{{"env", "prod"}};
  l.since_ms = 3'600'000;
  Restart by_ids;
  by_ids.ids = {4, 2};
  Restart by_group;
  by_group.group = GroupRef{"g", "bob"};
  by_group.states = {TaskState::kFailed};
  for (const Request& original :
       {Request{s}, Request{batch}, Request{l}, Request{by_ids}, Request{by_group}}) {
    const Request back = round_trip(original);
    CHECK(method_name(back) == method_name(original));
    CHECK(to_params(back) == to_params(original));
  }
  CHECK(method_name(Restart{}) == "restart");
  SUBCASE("one state goes as a string, which daemons before the list form understand") {
    List one;
    one.states = {TaskState::kQueued};
    CHECK(to_params(one) == json{{"state", "queued"}});
    CHECK(to_params(l).at("state") == json{"failed", "cancelled"});
  }
}

TEST_CASE("is_valid_label_key: the characters of group names, 1-64 of them") {
  CHECK(is_valid_label_key("a"));
  CHECK(is_valid_label_key("app.kubernetes-io_name9"));
  CHECK(is_valid_label_key(std::string(64, 'x')));
  CHECK_FALSE(is_valid_label_key(""));
  CHECK_FALSE(is_valid_label_key(std::string(65, 'x')));
  CHECK_FALSE(is_valid_label_key("a=b"));
  CHECK_FALSE(is_valid_label_key("a/b"));
  CHECK_FALSE(is_valid_label_key("é"));
}

}  // namespace tg::proto
