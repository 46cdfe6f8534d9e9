// Integration tests of issue 7 (DESIGN.md "Protocol"), part 3 of 4: a catalog of hostile input
// on the raw socket (garbage, oversized and deeply nested frames, bad params), after each of
// which the daemon must serve others and give back its fds and memory. The others:
// security_users_test.cpp, security_files_test.cpp, security_limits_test.cpp.
//
// They need root: they create two real users, tgtest_a and tgtest_b (members of the group
// taskgroupd, so they may use a root daemon's 0660 socket), and act as them. Without root they
// fail with a message saying so; they never skip. Daemons get --drain-timeout 1s so that a test
// that fails with a task still running cannot stall its teardown. Shared helpers are in
// support/security_helpers.h.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/peer_client.h"
#include "support/raw_client.h"
#include "support/security_helpers.h"
#include "support/task_helpers.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::connect_unix;
using tg::test::PeerClient;
using tg::test::RawClient;
using tg::test::TestDaemon;
using tg::test::wait_until;
using tg::test::helpers::parse_json;
using namespace tg::test::security;

long rss_kib(pid_t pid) { return std::stol(status_field(pid, "VmRSS").at(0)); }

}  // namespace

// ================================================================ hostile input

namespace {

struct Hostile {
  std::string name;
  std::function<void(const TestDaemon&)> run;
  bool keeps_state = false;  // Creates tasks: run once, its memory is legitimately kept.
};

constexpr std::size_t kMaxFrame = 1 << 20;  // max_message_bytes by default.

// `line` padded with spaces before its final '}' to exactly `size` bytes.
std::string padded(std::string line, std::size_t size) {
  REQUIRE(line.size() <= size);
  line.insert(line.size() - 1, std::string(size - line.size(), ' '));
  return line;
}

void usable(RawClient& c) { expect_result(c.call("hello", {{"client", "t"}}, 99)); }

// One request line on a fresh connection; the reply must be an error with `code`, the
// connection must stay usable.
void one(const TestDaemon& d, const std::string& line, int code, std::string_view part = {}) {
  RawClient c(d.socket_path());
  c.send_line(line);
  expect_error(c.read_json(), code, {}, part);
  usable(c);
}

std::string sub(const json& params) { return request("submit", params, 7); }

std::string task_state(RawClient& c, std::int64_t id) {
  return c.call("show", {{"id", id}}).at("result").at("task").at("state").get<std::string>();
}

std::vector<Hostile> hostile_inputs() {
  std::vector<Hostile> h;
  h.push_back({"binary garbage", [](const TestDaemon& d) {
                 std::string g;
                 for (int i = 0; i < 4096; ++i) {
                   const char c = static_cast<char>((i * 131 + 7) % 256);
                   g += c == '\n' ? 'x' : c;
                 }
                 RawClient c(d.socket_path());
                 c.send_line(g);
                 const json r = c.read_json();
                 REQUIRE(r.contains("error"));
                 CHECK(r.at("id").is_null());
                 usable(c);
               }});
  h.push_back({"truncated JSON", [](const TestDaemon& d) {
                 one(d, R"({"jsonrpc":"2.0","id":1,"method":"status")", -32700);
                 one(d, R"({"jsonrpc":"2.0","id":1,"method":"submit","params":{"argv":["a)",
                     -32700);
               }});
  h.push_back({"a request with trailing garbage", [](const TestDaemon& d) {
                 one(d, R"({"jsonrpc":"2.0","id":1,"method":"status"} {"x":1})", -32700);
               }});
  h.push_back({"2 MiB without a newline", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 (void)c.send_raw(std::string(2 << 20, 'x'));  // It may hang up before the end.
                 const auto line = c.read_line();
                 REQUIRE_MESSAGE(line.has_value(), "closed without saying why");
                 expect_error(parse_json(*line), -32000, "too_large");
                 CHECK_FALSE(c.read_line().has_value());
               }});
  h.push_back({"a line of exactly max_message_bytes", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 c.send_line(padded(request("status", nullptr, 3), kMaxFrame));
                 expect_result(c.read_json());
               }});
  h.push_back({"a line one byte over max_message_bytes", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 (void)c.send_raw(padded(request("status", nullptr, 3), kMaxFrame + 1) + "\n");
                 const auto line = c.read_line();
                 REQUIRE(line.has_value());
                 expect_error(parse_json(*line), -32000, "too_large");
                 CHECK_FALSE(c.read_line().has_value());
               }});
  h.push_back({"100 000 nested arrays",
               [](const TestDaemon& d) { one(d, std::string(100'000, '['), -32700, "nested"); }});
  h.push_back({"nesting one past the limit inside params", [](const TestDaemon& d) {
                 std::string deep = "1";
                 for (int i = 0; i < 32; ++i) deep = "{\"a\":" + deep + "}";
                 one(d, R"({"jsonrpc":"2.0","id":1,"method":"status","params":)" + deep + "}",
                     -32700, "nested");
               }});
  h.push_back({"invalid UTF-8 in argv keeps the id", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 c.send_line(
                     "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"submit\",\"params\":"
                     "{\"argv\":[\"\xff\xfe\"]}}");
                 const json r = c.read_json();
                 expect_error(r, -32602, {}, "UTF-8");
                 CHECK(r.at("id") == 5);
                 usable(c);
               }});
  h.push_back({"overlong, surrogate and truncated UTF-8 sequences", [](const TestDaemon& d) {
                 for (const char* bad :
                      {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
                   one(d,
                       "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"list\",\"params\":{\"group\":"
                       "\"" +
                           std::string(bad) + "\"}}",
                       -32602, "UTF-8");
                 }
               }});
  h.push_back({"a lone surrogate escape", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 c.send_line(
                     R"({"jsonrpc":"2.0","id":1,"method":"submit","params":{"argv":["\ud800"]}})");
                 const json r = c.read_json();
                 REQUIRE(r.contains("error"));
                 CHECK((r.at("error").at("code") == -32700 || r.at("error").at("code") == -32602));
                 usable(c);
               }});
  h.push_back({"NUL in argv, env names, env values and cwd", [](const TestDaemon& d) {
                 const std::string nul("a\0b", 3);
                 one(d, sub({{"argv", {"true", nul}}}), -32602, "NUL");
                 one(d, sub({{"argv", {"true"}}, {"env", {{nul, "x"}}}}), -32602, "NUL");
                 one(d, sub({{"argv", {"true"}}, {"env", {{"X", nul}}}}), -32602, "NUL");
                 one(d, sub({{"argv", {"true"}}, {"cwd", "/tmp/" + nul}}), -32602, "NUL");
                 one(d, sub({{"tasks", {{{"argv", {nul}}}}}}), -32602, "NUL");
               }});
  h.push_back({"a raw NUL byte in the line", [](const TestDaemon& d) {
                 one(d, std::string("{\"jsonrpc\":\"2.0\",\0\"id\":1,\"method\":\"status\"}", 41),
                     -32700);
               }});
  h.push_back({"group names outside [A-Za-z0-9_.-]{1,64}", [](const TestDaemon& d) {
                 for (const std::string& g :
                      {std::string(), std::string(".."), std::string("../etc"), std::string("a b"),
                       std::string(65, 'g'), std::string("gr\xc3\xbcppe"), std::string("a/b"),
                       std::string("x\ny"), std::string("$(id)")}) {
                   CAPTURE(g);
                   if (g == "..") continue;  // Dots are allowed characters; ".." is just a name.
                   one(d, sub({{"group", g}, {"argv", {"true"}}}), -32602, "group");
                   one(d, request("cancel", {{"group", g}}), -32602, "group");
                 }
               }});
  h.push_back(
      {"huge and non-integer numbers", [](const TestDaemon& d) {
         const std::string s = R"({"jsonrpc":"2.0","id":1,"method":)";
         one(d, s + R"("submit","params":{"argv":["true"],"priority":1e400}})", -32700);  // inf
         one(d, s + R"("submit","params":{"argv":["true"],"priority":1.5}})", -32602);
         one(d, s + R"("submit","params":{"argv":["true"],"priority":1001}})", -32602);
         one(d, s + R"("submit","params":{"argv":["true"],"timeout_ms":9223372036854775807}})",
             -32602);
         one(d, s + R"("group.set","params":{"group":"g","limit":18446744073709551616}})", -32602);
         one(d, s + R"("group.set","params":{"group":"g","limit":-1}})", -32602);
         one(d, s + R"("show","params":{"id":18446744073709551615}})", -32602, "range");
         one(d, s + R"("show","params":{"id":9223372036854775807}})", -32000, "no task");
         one(d, s + R"("cancel","params":{"group":"g","grace_ms":-1}})", -32602);
         one(d, s + R"("cancel","params":{"ids":[18446744073709551615]}})", -32602);
         one(d, R"({"jsonrpc":"2.0","id":1e400,"method":"status"})", -32700);
         one(d, R"({"jsonrpc":"2.0","id":1.5,"method":"status"})", -32600);
       }});
  h.push_back({"wrong types everywhere", [](const TestDaemon& d) {
                 one(d, sub({{"argv", "ls -l"}}), -32602, "argv");
                 one(d, sub({{"argv", {"ls", 1}}}), -32602, "argv");
                 one(d, sub({{"argv", {"true"}}, {"env", {"A=1"}}}), -32602, "env");
                 one(d, sub({{"argv", {"true"}}, {"env", {{"A", 1}}}}), -32602, "env");
                 one(d, sub({{"argv", {"true"}}, {"cwd", 5}}), -32602, "cwd");
                 one(d, sub({{"argv", {"true"}}, {"cwd", "relative/dir"}}), -32602, "cwd");
                 one(d, sub({{"argv", {"true"}}, {"shell", "yes"}}), -32602, "shell");
                 one(d, sub({{"argv", {"true"}}, {"priority", "1"}}), -32602, "priority");
                 one(d, request("submit", json::array({"true"})), -32602);
                 one(d, request("status", "all"), -32602);
                 one(d, request("list", {{"state", "exploded"}}), -32602, "state");
                 one(d, request("wait", {{"ids", "1"}}), -32602, "ids");
                 one(d, request("wait", {{"ids", {true}}}), -32602, "ids");
                 one(d, R"({"jsonrpc":"2.0","id":1,"method":5})", -32600);
                 one(d, R"({"jsonrpc":2.0,"id":1,"method":"status"})", -32600);
               }});
  h.push_back({"unknown methods, long and odd", [](const TestDaemon& d) {
                 one(d, request("no.such.method", nullptr), -32601);
                 one(d, request("", nullptr), -32601);
                 one(d, request("__proto__", nullptr), -32601);
                 one(d, request("submit ", nullptr), -32601);
                 one(d, request(std::string(500'000, 'm'), nullptr), -32601);
               }});
  h.push_back({"unknown params", [](const TestDaemon& d) {
                 one(d, request("status", {{"verbose", true}}), -32602, "verbose");
                 one(d, sub({{"argv", {"true"}}, {"uid", 0}}), -32602, "uid");
                 one(d, sub({{"tasks", {{{"argv", {"true"}}, {"gid", 0}}}}}), -32602, "gid");
               }});
  h.push_back({"an id that is an object, an array or a boolean", [](const TestDaemon& d) {
                 for (const char* id : {R"({"a":1})", "[1]", "true"}) {
                   RawClient c(d.socket_path());
                   c.send_line(std::string(R"({"jsonrpc":"2.0","method":"status","id":)") + id +
                               "}");
                   const json r = c.read_json();
                   expect_error(r, -32600);
                   CHECK(r.at("id").is_null());
                   usable(c);
                 }
               }});
  h.push_back({"a 500 KB id is echoed, not choked on", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 const std::string id(500'000, 'i');
                 c.send_line(request("status", nullptr, id));
                 const json r = c.read_json();
                 expect_result(r);
                 CHECK(r.at("id") == id);
               }});
  h.push_back({"a batch of no tasks, of empty tasks, and argv with tasks", [](const TestDaemon& d) {
                 one(d, sub({{"tasks", json::array()}}), -32602, "tasks");
                 one(d, sub({{"tasks", {json::object()}}}), -32602, "argv");
                 one(d, sub({{"tasks", {json::array()}}}), -32602);
                 one(d, sub({{"argv", json::array()}}), -32602, "argv");
                 one(d, sub({{"argv", {"true"}}, {"tasks", {{{"argv", {"true"}}}}}}), -32602);
                 one(d, sub(json::object()), -32602);
               }});
  h.push_back({"argv of 100 000 elements within the frame limit",
               [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 expect_result(c.call("pause", {{"group", "huge"}}));
                 json argv = json::array({"true"});
                 for (int i = 0; i < 99'999; ++i) argv.push_back("a");
                 const std::string line = sub({{"group", "huge"}, {"argv", argv}});
                 REQUIRE(line.size() < kMaxFrame);
                 c.send_line(line);
                 const json r = c.read_json();
                 expect_result(r);
                 const auto id = r.at("result").at("ids").at(0).get<std::int64_t>();
                 const json shown = c.call("show", {{"id", id}});
                 CHECK(shown.at("result").at("task").at("argv").size() == 100'000);
               },
               true});
  h.push_back({"a batch of 10 000 tasks in one line",
               [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 expect_result(c.call("pause", {{"group", "many"}}));
                 json tasks = json::array();
                 for (int i = 0; i < 10'000; ++i) tasks.push_back({{"argv", {"true"}}});
                 c.send_line(sub({{"group", "many"}, {"tasks", tasks}}));
                 const json r = c.read_json(milliseconds(15'000));
                 expect_result(r);
                 CHECK(r.at("result").at("ids").size() == 10'000);
               },
               true});
  h.push_back({"env names with '=' or empty", [](const TestDaemon& d) {
                 one(d, sub({{"argv", {"true"}}, {"env", {{"A=B", "c"}}}}), -32602, "name");
                 one(d, sub({{"argv", {"true"}}, {"env", {{"", "c"}}}}), -32602, "name");
                 one(d, sub({{"argv", {"true"}}, {"env", {{"=", ""}}}}), -32602, "name");
               }});
  h.push_back({"negative and zero ids", [](const TestDaemon& d) {
                 one(d, request("show", {{"id", -1}}), -32602);
                 one(d, request("show", {{"id", 0}}), -32602);
                 one(d, request("cancel", {{"ids", {-5}}}), -32602);
                 one(d, request("wait", {{"ids", {0}}}), -32602);
                 one(d, request("logs", {{"id", -1}}), -32602);
                 one(d, request("logs", {{"id", 1}, {"offset", -1}}), -32602);
               }});
  h.push_back({"notifications get no reply, good or bad", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 c.send_line(R"({"jsonrpc":"2.0","method":"status"})");
                 c.send_line(R"({"jsonrpc":"2.0","method":"no.such"})");
                 c.send_line(R"({"jsonrpc":"2.0","method":"submit","params":{"argv":[]}})");
                 c.send_line(R"({"jsonrpc":"2.0","method":"wait","params":{"group":"nope"}})");
                 c.send_line(R"({"jsonrpc":"2.0","id":"after","method":"hello"})");
                 const json r = c.read_json();
                 CHECK(r.at("id") == "after");
                 expect_result(r);
               }});
  h.push_back({"a request split across a write per byte", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 const std::string line = request("status", nullptr, 11) + "\n";
                 for (char ch : line) REQUIRE(c.send_raw(std::string(1, ch)));
                 const json r = c.read_json();
                 CHECK(r.at("id") == 11);
                 expect_result(r);
               }});
  h.push_back({"500 requests in one write are answered in order", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 std::string all;
                 for (int i = 0; i < 500; ++i) all += request("hello", nullptr, i) + "\n";
                 REQUIRE(c.send_raw(all));
                 for (int i = 0; i < 500; ++i) REQUIRE(c.read_json().at("id") == i);
               }});
  h.push_back({"a request then a half-close is still answered", [](const TestDaemon& d) {
                 PeerClient c(connect_unix(d.socket_path()));
                 c.send_line(request("status", nullptr, 12));
                 c.shutdown_write();
                 const json r = c.read_json();
                 CHECK(r.at("id") == 12);
                 CHECK(c.closed_by_peer(milliseconds(5'000)));
               }});
  h.push_back({"half a request then a half-close", [](const TestDaemon& d) {
                 PeerClient c(connect_unix(d.socket_path()));
                 REQUIRE(c.send_raw(R"({"jsonrpc":"2.0","id":1,"meth)"));
                 c.shutdown_write();
                 CHECK_FALSE(c.read_line().has_value());
               }});
  h.push_back({"a JSON-RPC batch and requests that are not objects", [](const TestDaemon& d) {
                 one(d, "[" + request("status", nullptr) + "]", -32600);
                 for (const char* line : {"42", "\"status\"", "null", "true", "[]", "{}"}) {
                   one(d, line, -32600);
                 }
               }});
  h.push_back({"a wrong jsonrpc version and extra members", [](const TestDaemon& d) {
                 one(d, R"({"jsonrpc":"1.0","id":1,"method":"status"})", -32600);
                 one(d, R"({"id":1,"method":"status"})", -32600);
                 one(d, R"({"jsonrpc":"2.0","id":1,"method":"status","uid":0})", -32600);
               }});
  h.push_back({"CRLF endings and blank lines", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 REQUIRE(c.send_raw("\n\r\n\n" + request("status", nullptr, 13) + "\r\n"));
                 const json r = c.read_json();
                 CHECK(r.at("id") == 13);
                 expect_result(r);
               }});
  h.push_back({"wait and follow on what does not exist", [](const TestDaemon& d) {
                 one(d, request("wait", {{"ids", {987654321}}}), -32000, "no task");
                 one(d, request("wait", {{"group", "nope"}}), -32000, "no group");
                 one(d, request("logs", {{"id", 987654321}, {"follow", true}}), -32000, "no task");
               }});
  h.push_back({"hanging up while parked in a wait or a log follow", [](const TestDaemon& d) {
                 RawClient setup(d.socket_path());
                 expect_result(setup.call("pause", {{"group", "park"}}));
                 const json r = setup.call("submit", {{"group", "park"}, {"argv", {"true"}}});
                 const auto id = r.at("result").at("ids").at(0).get<std::int64_t>();
                 for (int i = 0; i < 20; ++i) {
                   RawClient w(d.socket_path());
                   w.send_line(request("wait", {{"group", "park"}, {"progress", true}}));
                   RawClient f(d.socket_path());
                   f.send_line(request("logs", {{"id", id}, {"follow", true}}));
                 }
                 usable(setup);
               }});
  h.push_back({"hanging up while following a running task's log",
               [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 const json r = c.call("submit", {{"group", "runf"}, {"argv", {"sleep", "30"}}});
                 const auto id = r.at("result").at("ids").at(0).get<std::int64_t>();
                 wait_until([&] { return task_state(c, id) == "running"; }, kEventTimeout,
                            "the task running");
                 for (int i = 0; i < 20; ++i) {
                   RawClient f(d.socket_path());
                   f.send_line(request("logs", {{"id", id}, {"follow", true}}));
                 }
                 expect_result(c.call("cancel", {{"ids", {id}}, {"force", true}}));
                 wait_until([&] { return is_terminal(task_state(c, id)); }, kEventTimeout,
                            "the task cancelled");
               },
               true});
  h.push_back({"a log of invalid UTF-8 is served as valid JSON",
               [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 const json r = c.call(
                     "submit",
                     {{"group", "bin"},
                      {"argv", {"sh", "-c", "printf 'ok\\377\\376\\300\\257\\355\\240\\200'"}}});
                 const auto id = r.at("result").at("ids").at(0).get<std::int64_t>();
                 wait_until([&] { return is_terminal(task_state(c, id)); }, kEventTimeout,
                            "the task ended");
                 const json logs = c.call("logs", {{"id", id}});
                 expect_result(logs);
                 CHECK(logs.at("result").at("data").get<std::string>().starts_with("ok"));
                 c.send_line(request("logs", {{"id", id}, {"follow", true}}, 2));
                 json line;
                 do {
                   line = c.read_json();  // Notifications with the data, then the result.
                 } while (!line.contains("id"));
                 expect_result(line);
                 const json shown = c.call("show", {{"id", id}});
                 CHECK(shown.at("result").at("task").at("state") == "succeeded");
               },
               true});
  h.push_back({"logs at an absurd offset", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 expect_result(c.call("pause", {{"group", "park"}}));
                 const json s = c.call("submit", {{"group", "park"}, {"argv", {"true"}}});
                 const auto id = s.at("result").at("ids").at(0).get<std::int64_t>();
                 const json r = c.call(
                     "logs", {{"id", id}, {"offset", std::numeric_limits<std::int64_t>::max()}});
                 CHECK((r.contains("result") || r.contains("error")));
                 usable(c);
               }});
  h.push_back({"user names that are no user", [](const TestDaemon& d) {
                 for (const char* u :
                      {"no-such-user-tg", "-1", "4294967296", "../../etc/passwd", "", "root\n"}) {
                   one(d, request("list", {{"user", u}}), -32000, "no user");
                 }
               }});
  h.push_back({"a client that floods requests and never reads", [](const TestDaemon& d) {
                 RawClient c(d.socket_path());
                 std::string all;
                 // ~100 KB of requests, ~700 KB of replies: the daemon blocks writing to us.
                 for (int i = 0; i < 2'000; ++i) all += request("status", nullptr, i) + "\n";
                 REQUIRE(c.send_raw(all));
                 require_served(d);
               }});
  return h;
}

}  // namespace

TEST_CASE(
    "Security: after each hostile input of the catalog the daemon serves others, fds and memory "
    "return") {
  TestDaemon d({.args = kQuickStop});
  const pid_t pid = d.pid();
  require_served(d);
  const bool asan = sanitized(pid);
  // Headroom for a 1 MiB frame, a parsed 100 000-element argv and allocator slack; with ASan,
  // also its quarantine of freed memory (256 MiB by default).
  const long margin_kib = asan ? 768 * 1024 : 64 * 1024;
  const std::size_t base_fds = quiet_fd_count(pid);
  const long base_rss = rss_kib(pid);
  const auto hostile = hostile_inputs();
  REQUIRE(hostile.size() >= 25);
  long after_first_pass = 0;
  for (int pass = 1; pass <= 2; ++pass) {
    for (const auto& h : hostile) {
      if (pass == 2 && h.keeps_state) continue;
      CAPTURE(pass);
      CAPTURE(h.name);
      h.run(d);
      require_served(d);
      wait_until([&] { return fd_count(pid) <= base_fds; }, kEventTimeout,
                 "the daemon's fds back to " + std::to_string(base_fds) + " after: " + h.name);
      const long rss = rss_kib(pid);
      CHECK_MESSAGE(rss <= base_rss + margin_kib, "RSS " << rss << " KiB after " << h.name
                                                         << "; baseline " << base_rss << " KiB");
    }
    if (pass == 1) after_first_pass = rss_kib(pid);
  }
  // The same inputs again cost no more memory: nothing leaks per request.
  if (!asan) {
    CHECK_MESSAGE(rss_kib(pid) <= after_first_pass + 16 * 1024,
                  "RSS grew from " << after_first_pass << " to " << rss_kib(pid) << " KiB");
  }
  MESSAGE("RSS baseline " << base_rss << " KiB, after pass 1 " << after_first_pass
                          << " KiB, after pass 2 " << rss_kib(pid) << " KiB; fds " << base_fds);
  CHECK(d.log().find("critical") == std::string::npos);
}

TEST_CASE(
    "Security: a request with a duplicate key is refused naming the key, and the daemon serves "
    "on") {
  TestDaemon d({.args = kQuickStop});
  RawClient c(d.socket_path());
  // Last-wins would submit to group b, which a reader of the line (or a proxy that checked
  // "group":"a") would not expect.
  c.send_line(R"({"jsonrpc":"2.0","id":1,"method":"submit",)"
              R"("params":{"group":"a","group":"b","argv":["true"]}})");
  json r = c.read_json();
  expect_error(r, -32600, "invalid_request", "duplicate key 'group'");
  CHECK(r.at("id") == 1);
  // At any depth: an env of the submit, and the request object itself.
  c.send_line(R"({"jsonrpc":"2.0","id":2,"method":"submit",)"
              R"("params":{"argv":["true"],"env":{"PATH":"/bin","PATH":"/tmp/evil"}}})");
  expect_error(c.read_json(), -32600, "invalid_request", "duplicate key 'PATH'");
  c.send_line(R"({"jsonrpc":"2.0","id":3,"method":"status","method":"reload"})");
  expect_error(c.read_json(), -32600, "invalid_request", "duplicate key 'method'");
  // The same key in two objects is no duplicate.
  c.send_line(R"({"jsonrpc":"2.0","id":4,"method":"submit","params":{"group":"a",)"
              R"("tasks":[{"argv":["true"]},{"argv":["true"]}]}})");
  expect_result(c.read_json());
  // Nothing was submitted by the refused ones, and the connection still works.
  const json listed = c.call("list", json::object(), 5);
  expect_result(listed);
  CHECK(listed.at("result").at("tasks").size() == 2);
  require_served(d);
}
