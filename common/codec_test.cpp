#include "common/codec.h"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

namespace tg::proto {

namespace {

using nlohmann::json;

std::string request_line(std::string_view method, std::string_view params) {
  return R"({"jsonrpc":"2.0","id":1,"method":")" + std::string(method) + R"(","params":)" +
         std::string(params) + "}";
}

// Decodes a well-formed request and returns its params as the expected alternative.
template <class T>
T decode_as(std::string_view method, std::string_view params) {
  const std::string line = request_line(method, params);
  CAPTURE(line);
  auto in = decode_request(line);
  if (in.request.has_error()) FAIL("unexpected error: " << in.request.error().message);
  REQUIRE(std::holds_alternative<T>(*in.request));
  CHECK(in.id == json(1));
  CHECK_FALSE(in.notification);
  return std::get<T>(*in.request);
}

// Decodes a request that must be refused with `code`; returns the error.
Error refused(std::string_view line, Errc code) {
  CAPTURE(line);
  auto in = decode_request(line);
  REQUIRE(in.request.has_error());
  CHECK(in.request.error().code == code);
  CHECK_FALSE(in.request.error().message.empty());
  return in.request.error();
}

// A params error must be kInvalidParams with a message that names the field.
void refused_params(std::string_view method, std::string_view params, std::string_view field) {
  const Error e = refused(request_line(method, params), Errc::kInvalidParams);
  CAPTURE(e.message);
  CHECK(e.message.find(field) != std::string::npos);
  CHECK(rpc_code(e.code) == -32602);
}

std::string without_newline(std::string s) {
  REQUIRE(!s.empty());
  CHECK(s.back() == '\n');
  s.pop_back();
  CHECK(s.find('\n') == std::string::npos);  // One line: embedded newlines are escaped.
  return s;
}

}  // namespace

// ------------------------------------------------------------------ valid requests

TEST_CASE("decode_request: hello, status and reload decode with or without params") {
  SUBCASE("hello with client and protocol") {
    const auto h = decode_as<Hello>("hello", R"({"client":"tgctl 0.1.0","protocol":1})");
    CHECK(h.client == "tgctl 0.1.0");
  }
  SUBCASE("hello with empty params") { CHECK(decode_as<Hello>("hello", "{}").client.empty()); }
  SUBCASE("status with null params") { (void)decode_as<Status>("status", "null"); }
  SUBCASE("reload") { (void)decode_as<Reload>("reload", "{}"); }
  SUBCASE("params may be left out entirely") {
    auto in = decode_request(R"({"jsonrpc":"2.0","id":"a","method":"status"})");
    REQUIRE(in.request.has_value());
    CHECK(std::holds_alternative<Status>(*in.request));
    CHECK(in.id == json("a"));
  }
}

TEST_CASE("decode_request: a single submit takes the group default and leaves unset fields unset") {
  const auto s = decode_as<Submit>("submit", R"({"argv":["make","-j4"]})");
  CHECK(s.group == "default");
  REQUIRE(s.tasks.size() == 1);
  const TaskSpec& t = s.tasks[0];
  CHECK(t.argv == std::vector<std::string>{"make", "-j4"});
  CHECK_FALSE(t.cwd.has_value());
  CHECK_FALSE(t.env.has_value());
  CHECK_FALSE(t.shell.has_value());
  CHECK_FALSE(t.priority.has_value());
  CHECK_FALSE(t.timeout_ms.has_value());
  CHECK_FALSE(t.requeue.has_value());
  // A single task's fields belong to the task, not to the batch defaults.
  CHECK(s.defaults.argv.empty());
  CHECK_FALSE(s.defaults.cwd.has_value());
}

TEST_CASE("decode_request: a single submit with every field") {
  const auto s = decode_as<Submit>(
      "submit",
      R"({"group":"nightly","argv":["sh"],"cwd":"/src","env":{"PATH":"/usr/bin","EMPTY":""},)"
      R"("shell":true,"priority":-1000,"timeout_ms":30000,"requeue":false,"max_log_bytes":1024})");
  CHECK(s.group == "nightly");
  REQUIRE(s.tasks.size() == 1);
  const TaskSpec& t = s.tasks[0];
  CHECK(t.argv == std::vector<std::string>{"sh"});
  CHECK(t.cwd == "/src");
  CHECK(t.env == Env{{"PATH", "/usr/bin"}, {"EMPTY", ""}});
  CHECK(t.shell == true);
  CHECK(t.priority == -1000);
  CHECK(t.timeout_ms == 30000);
  CHECK(t.requeue == false);
  CHECK(t.max_log_bytes == 1024);
}

TEST_CASE("decode_request: a batch submit keeps top-level fields as defaults for its tasks") {
  const auto s = decode_as<Submit>(
      "submit",
      R"({"group":"g1","cwd":"/src","env":{"A":"1"},"priority":3,"timeout_ms":0,)"
      R"("tasks":[{"argv":["a"]},{"argv":["b","c"],"cwd":"/tmp","priority":1000,"shell":true}]})");
  CHECK(s.group == "g1");
  CHECK(s.defaults.argv.empty());
  CHECK(s.defaults.cwd == "/src");
  CHECK(s.defaults.env == Env{{"A", "1"}});
  CHECK(s.defaults.priority == 3);
  CHECK(s.defaults.timeout_ms == 0);
  REQUIRE(s.tasks.size() == 2);
  CHECK(s.tasks[0].argv == std::vector<std::string>{"a"});
  CHECK_FALSE(s.tasks[0].cwd.has_value());
  CHECK_FALSE(s.tasks[0].priority.has_value());
  CHECK(s.tasks[1].argv == std::vector<std::string>{"b", "c"});
  CHECK(s.tasks[1].cwd == "/tmp");
  CHECK(s.tasks[1].priority == 1000);
  CHECK(s.tasks[1].shell == true);
}

TEST_CASE("decode_request: cancel by group or by ids") {
  SUBCASE("by group, with owner, grace and force") {
    const auto c = decode_as<Cancel>(
        "cancel", R"({"group":"nightly","user":"alice","grace_ms":5000,"force":true})");
    REQUIRE(c.group.has_value());
    CHECK(c.group->name == "nightly");
    CHECK(c.group->user == "alice");
    CHECK(c.ids.empty());
    CHECK(c.grace_ms == 5000);
    CHECK(c.force);
  }
  SUBCASE("by ids, with defaults") {
    const auto c = decode_as<Cancel>("cancel", R"({"ids":[3,1,2]})");
    CHECK_FALSE(c.group.has_value());
    CHECK(c.ids == std::vector<TaskId>{3, 1, 2});
    CHECK_FALSE(c.grace_ms.has_value());
    CHECK_FALSE(c.force);
  }
  SUBCASE("grace 0 is allowed") {
    CHECK(decode_as<Cancel>("cancel", R"({"group":"g","grace_ms":0})").grace_ms == 0);
  }
}

TEST_CASE("decode_request: wait by group or by ids") {
  SUBCASE("by group with progress") {
    const auto w = decode_as<Wait>("wait", R"({"group":"g","progress":true})");
    REQUIRE(w.group.has_value());
    CHECK(w.group->name == "g");
    CHECK_FALSE(w.group->user.has_value());
    CHECK(w.progress);
  }
  SUBCASE("by ids") {
    const auto w = decode_as<Wait>("wait", R"({"ids":[9223372036854775807]})");
    CHECK(w.ids == std::vector<TaskId>{9223372036854775807});
    CHECK_FALSE(w.progress);
  }
}

TEST_CASE("decode_request: logs, show, groups") {
  SUBCASE("logs with defaults") {
    const auto l = decode_as<Logs>("logs", R"({"id":5})");
    CHECK(l.id == 5);
    CHECK(l.offset == 0);
    CHECK_FALSE(l.follow);
  }
  SUBCASE("logs with offset and follow") {
    const auto l = decode_as<Logs>("logs", R"({"id":5,"offset":1024,"follow":true})");
    CHECK(l.offset == 1024);
    CHECK(l.follow);
  }
  SUBCASE("show") { CHECK(decode_as<Show>("show", R"({"id":42})").id == 42); }
  SUBCASE("groups of the caller") {
    CHECK_FALSE(decode_as<Groups>("groups", "{}").user.has_value());
  }
  SUBCASE("groups of a user") {
    CHECK(decode_as<Groups>("groups", R"({"user":"bob"})").user == "bob");
  }
}

TEST_CASE("decode_request: group.set, pause and resume name a group") {
  SUBCASE("group.set with limit and fail_fast") {
    const auto g = decode_as<GroupSet>("group.set", R"({"group":"g","limit":3,"fail_fast":true})");
    CHECK(g.group.name == "g");
    CHECK(g.limit == 3);
    CHECK(g.fail_fast == true);
  }
  SUBCASE("group.set with nothing to set leaves both unset; limit 0 is allowed") {
    const auto g = decode_as<GroupSet>("group.set", R"({"group":"g"})");
    CHECK_FALSE(g.limit.has_value());
    CHECK_FALSE(g.fail_fast.has_value());
    CHECK(decode_as<GroupSet>("group.set", R"({"group":"g","limit":0})").limit == 0);
  }
  SUBCASE("pause another user's group") {
    const auto p = decode_as<Pause>("pause", R"({"group":"a.b-c_D9","user":"1000"})");
    CHECK(p.group.name == "a.b-c_D9");
    CHECK(p.group.user == "1000");
  }
  SUBCASE("resume") { CHECK(decode_as<Resume>("resume", R"({"group":"g"})").group.name == "g"); }
}

TEST_CASE("decode_request: group.set's first_success and on_done") {
  const auto g = decode_as<GroupSet>(
      "group.set", R"({"group":"g","first_success":true,"on_done":"echo $TASKGROUPD_GROUP"})");
  CHECK(g.first_success == true);
  CHECK(g.on_done == "echo $TASKGROUPD_GROUP");
  CHECK(decode_as<GroupSet>("group.set", R"({"group":"g","on_done":""})").on_done == "");
  CHECK_FALSE(decode_as<GroupSet>("group.set", R"({"group":"g"})").on_done.has_value());
  refused_params("group.set", R"({"group":"g","first_success":"yes"})", "params.first_success");
  refused_params("group.set", R"({"group":"g","on_done":7})", "params.on_done");
  refused_params("group.set", R"({"group":"g","on_done":"a\u0000b"})", "params.on_done");
  const std::string big = R"({"group":"g","on_done":")" + std::string(4097, 'x') + R"("})";
  refused_params("group.set", big, "params.on_done");
}

TEST_CASE("decode_request: kill names a signal and a group or ids") {
  SUBCASE("a name, with or without SIG, or a number") {
    const auto k = decode_as<Kill>("kill", R"({"ids":[3,4],"signal":"USR1"})");
    CHECK(k.ids == std::vector<TaskId>{3, 4});
    CHECK(k.signal == 10);
    CHECK(decode_as<Kill>("kill", R"({"group":"g","signal":"SIGSTOP"})").signal == 19);
    CHECK(decode_as<Kill>("kill", R"({"group":"g","signal":"18"})").signal == 18);
    CHECK(decode_as<Kill>("kill", R"({"group":"g","user":"bob","signal":1})").signal == 1);
  }
  SUBCASE("refused: unknown signals, no signal, no selection, both selections") {
    refused_params("kill", R"({"ids":[1],"signal":"BOGUS"})", "params.signal");
    refused_params("kill", R"({"ids":[1],"signal":"usr1"})", "params.signal");
    refused_params("kill", R"({"ids":[1],"signal":0})", "params.signal");
    refused_params("kill", R"({"ids":[1],"signal":65})", "params.signal");
    refused_params("kill", R"({"ids":[1],"signal":-9})", "params.signal");
    refused_params("kill", R"({"ids":[1],"signal":18446744073709551615})", "params.signal");
    refused_params("kill", R"({"ids":[1],"signal":true})", "params.signal");
    refused_params("kill", R"({"ids":[1]})", "params.signal");
    refused_params("kill", R"({"signal":"USR1"})", "params");
    refused_params("kill", R"({"group":"g","ids":[1],"signal":"USR1"})", "params");
    refused_params("kill", R"({"ids":[1],"signal":"USR1","force":true})", "params.force");
  }
}

TEST_CASE("decode_request: list filters by group, state, limit and user") {
  SUBCASE("no filter") {
    const auto l = decode_as<List>("list", "{}");
    CHECK_FALSE(l.group.has_value());
    CHECK(l.states.empty());
    CHECK_FALSE(l.limit.has_value());
    CHECK_FALSE(l.user.has_value());
    CHECK_FALSE(l.after_id.has_value());
  }
  SUBCASE("a cursor: after_id, 0 for the first page") {
    CHECK(decode_as<List>("list", R"({"after_id":0})").after_id == 0);
    CHECK(decode_as<List>("list", R"({"after_id":41,"limit":3})").after_id == 41);
    CHECK_FALSE(decode_as<List>("list", R"({"after_id":null})").after_id.has_value());
  }
  SUBCASE("state, limit and user") {
    const auto l = decode_as<List>("list", R"({"state":"timed_out","limit":10,"user":"bob"})");
    CHECK_FALSE(l.group.has_value());
    CHECK(l.states == std::vector<TaskState>{TaskState::kTimedOut});
    CHECK(l.limit == 10);
    CHECK(l.user == "bob");
  }
  SUBCASE("with a group, user names the group's owner") {
    const auto l = decode_as<List>("list", R"({"group":"g","user":"alice"})");
    REQUIRE(l.group.has_value());
    CHECK(l.group->name == "g");
    CHECK(l.group->user == "alice");
    CHECK_FALSE(l.user.has_value());
  }
  SUBCASE("null optional params count as absent") {
    const auto l = decode_as<List>("list", R"({"state":null,"limit":null,"user":null})");
    CHECK(l.states.empty());
    CHECK_FALSE(l.limit.has_value());
    CHECK_FALSE(l.user.has_value());
  }
}

TEST_CASE(
    "decode_request: whitespace around the object, a trailing newline included, is accepted") {
  for (std::string_view line :
       {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n",
        " {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\r\n",
        "\t{ \"jsonrpc\" : \"2.0\" , \"id\" : 1 , \"method\" : \"status\" } "}) {
    CAPTURE(line);
    CHECK(decode_request(line).request.has_value());
  }
}

// ------------------------------------------------------------------ round trips

TEST_CASE("encode_request then decode_request gives back the same request") {
  std::vector<Request> requests;
  requests.emplace_back(Hello{"tgctl 0.1.0"});
  requests.emplace_back(Hello{});
  requests.emplace_back(Status{});
  {
    Submit s;
    TaskSpec& t = s.tasks.emplace_back();
    t.argv = {"make", "-j4"};
    t.cwd = "/src";
    t.env = Env{{"PATH", "/bin"}};
    t.shell = true;
    t.priority = 7;
    t.timeout_ms = 1500;
    t.requeue = true;
    t.max_log_bytes = 1 << 20;
    t.after = {1, 2};
    t.after_any = {3};
    t.after_group = "build";
    t.begin_at = "2026-12-24T17:00:00Z";
    t.delay_ms = 60'000;
    t.retries = 2;
    t.retry_delay_ms = 500;
    requests.emplace_back(s);
  }
  {
    Submit s;
    s.group = "nightly";
    s.defaults.cwd = "/work";
    s.defaults.env = Env{{"A", "1"}};
    s.defaults.priority = -3;
    s.tasks.emplace_back().argv = {"a"};
    TaskSpec& b = s.tasks.emplace_back();
    b.argv = {"b", "with space"};
    b.cwd = "/tmp";
    b.shell = false;
    b.priority = 1000;
    b.timeout_ms = 0;
    b.requeue = false;
    b.max_log_bytes = 0;
    requests.emplace_back(s);
  }
  requests.emplace_back(List{});
  {
    List l;
    l.group = GroupRef{"g", "alice"};
    l.states = {TaskState::kRunning};
    l.limit = 5;
    requests.emplace_back(l);
    l = List{};
    l.states = {TaskState::kLost};
    l.user = "bob";
    requests.emplace_back(l);
    l = List{};
    l.limit = 10;
    l.after_id = 0;
    requests.emplace_back(l);
    l = List{};
    l.after_id = 1234;
    requests.emplace_back(l);
  }
  requests.emplace_back(Show{42});
  requests.emplace_back(Cancel{GroupRef{"g", {}}, {}, 2000, true});
  requests.emplace_back(Cancel{{}, {1, 2, 3}, {}, false});
  requests.emplace_back(Wait{GroupRef{"g", "0"}, {}, true});
  requests.emplace_back(Wait{{}, {7}, false});
  requests.emplace_back(Logs{5, 0, false, {}});
  requests.emplace_back(Logs{5, 99, true, {}});
  requests.emplace_back(Logs{5, 0, false, 3});
  requests.emplace_back(Groups{});
  requests.emplace_back(Groups{"bob"});
  requests.emplace_back(GroupSet{GroupRef{"g", {}}, 4, false, true, "echo done"});
  requests.emplace_back(GroupSet{GroupRef{"g", "alice"}, {}, {}, {}, {}});
  requests.emplace_back(Pause{GroupRef{"g", {}}});
  requests.emplace_back(Resume{GroupRef{"g", "root"}});
  requests.emplace_back(Reload{});
  requests.emplace_back(Kill{GroupRef{"g", {}}, {}, 10});
  requests.emplace_back(Kill{{}, {4, 5}, 19});

  for (const Request& original : requests) {
    const std::string line = without_newline(encode_request(77, original));
    CAPTURE(line);
    auto in = decode_request(line);
    if (in.request.has_error()) FAIL("decode failed: " << in.request.error().message);
    CHECK(in.id == json(77));
    CHECK_FALSE(in.notification);
    CHECK(in.request->index() == original.index());
    CHECK(method_name(*in.request) == method_name(original));
    CHECK(to_params(*in.request) == to_params(original));
  }
}

TEST_CASE("method_name: every request has its wire name") {
  CHECK(method_name(Hello{}) == "hello");
  CHECK(method_name(Status{}) == "status");
  CHECK(method_name(Submit{}) == "submit");
  CHECK(method_name(List{}) == "list");
  CHECK(method_name(Show{}) == "show");
  CHECK(method_name(Cancel{}) == "cancel");
  CHECK(method_name(Wait{}) == "wait");
  CHECK(method_name(Logs{}) == "logs");
  CHECK(method_name(Groups{}) == "groups");
  CHECK(method_name(GroupSet{}) == "group.set");
  CHECK(method_name(Pause{}) == "pause");
  CHECK(method_name(Resume{}) == "resume");
  CHECK(method_name(Reload{}) == "reload");
  CHECK(method_name(Kill{}) == "kill");
}

TEST_CASE("to_params: unset optionals are left out") {
  Submit s;
  s.tasks.emplace_back().argv = {"true"};
  CHECK(to_params(s) == json{{"group", "default"}, {"argv", {"true"}}});
  CHECK(to_params(Logs{3, 0, false, {}}) == json{{"id", 3}});
  CHECK(to_params(Cancel{{}, {1}, {}, false}) == json{{"ids", {1}}});
  CHECK(to_params(Status{}) == json::object());
}

// ------------------------------------------------------------------ envelope errors

TEST_CASE("decode_request: a line that is not JSON is a parse error (-32700)") {
  for (std::string_view line : {"", "not json", "{", R"({"jsonrpc":"2.0",})", "{'a':1}",
                                R"({"jsonrpc":"2.0","id":1,"method":"status"} trailing)"}) {
    const Error e = refused(line, Errc::kParse);
    CHECK(rpc_code(e.code) == -32700);
  }
  auto in = decode_request("garbage");
  CHECK(in.id.is_null());
  CHECK_FALSE(in.notification);  // A parse error is always answered.
}

TEST_CASE(
    "decode_request: JSON that is not a JSON-RPC 2.0 request is an invalid request (-32600)") {
  SUBCASE("not an object") {
    for (std::string_view line : {"[1,2]", "42", "\"status\"", "null", "true", "[]"}) {
      CHECK(rpc_code(refused(line, Errc::kInvalidRequest).code) == -32600);
    }
  }
  SUBCASE("jsonrpc missing or wrong") {
    refused(R"({"id":1,"method":"status"})", Errc::kInvalidRequest);
    refused(R"({"jsonrpc":"1.0","id":1,"method":"status"})", Errc::kInvalidRequest);
    refused(R"({"jsonrpc":2.0,"id":1,"method":"status"})", Errc::kInvalidRequest);
    refused(R"({"jsonrpc":null,"id":1,"method":"status"})", Errc::kInvalidRequest);
  }
  SUBCASE("method missing or not a string") {
    refused(R"({"jsonrpc":"2.0","id":1})", Errc::kInvalidRequest);
    refused(R"({"jsonrpc":"2.0","id":1,"method":5})", Errc::kInvalidRequest);
    refused(R"({"jsonrpc":"2.0","id":1,"method":null})", Errc::kInvalidRequest);
    refused(R"({"jsonrpc":"2.0","id":1,"method":["status"]})", Errc::kInvalidRequest);
  }
  SUBCASE("unknown top-level member, named in the message") {
    const Error e =
        refused(R"({"jsonrpc":"2.0","id":1,"method":"status","extra":1})", Errc::kInvalidRequest);
    CHECK(e.message.find("extra") != std::string::npos);
  }
  SUBCASE("the id is kept so the error can be matched to its request") {
    auto in = decode_request(R"({"jsonrpc":"1.0","id":"x","method":"status"})");
    CHECK(in.id == json("x"));
    CHECK_FALSE(in.notification);
  }
  SUBCASE("a malformed request without an id is still answered") {
    auto in = decode_request(R"({"method":"status"})");
    REQUIRE(in.request.has_error());
    CHECK(in.request.error().code == Errc::kInvalidRequest);
    CHECK_FALSE(in.notification);
  }
}

TEST_CASE("decode_request: an unknown method is -32601 and named in the message") {
  for (std::string_view m : {"frobnicate", "Status", "group.get", "", "rpc.discover"}) {
    const Error e = refused(request_line(m, "{}"), Errc::kMethodNotFound);
    CHECK(rpc_code(e.code) == -32601);
    if (!m.empty()) CHECK(e.message.find(std::string(m)) != std::string::npos);
  }
}

TEST_CASE("decode_request: a key twice in one object is refused, at any depth, naming the key") {
  SUBCASE("in params") {
    const Error e = refused(request_line("submit", R"({"group":"a","group":"b","argv":["x"]})"),
                            Errc::kInvalidRequest);
    CHECK(e.message == "duplicate key 'group' in an object");
    CHECK(rpc_code(e.code) == -32600);
  }
  SUBCASE("deeper: an env, a task of a batch") {
    CHECK(refused(request_line("submit", R"({"argv":["x"],"env":{"A":"1","B":"2","A":"3"}})"),
                  Errc::kInvalidRequest)
              .message.find("'A'") != std::string::npos);
    CHECK(refused(request_line("submit", R"({"tasks":[{"argv":["x"]},{"argv":["y"],"argv":[]}]})"),
                  Errc::kInvalidRequest)
              .message.find("'argv'") != std::string::npos);
  }
  SUBCASE("in the request itself, where the id is still answered to") {
    auto in = decode_request(R"({"jsonrpc":"2.0","id":7,"method":"status","method":"reload"})");
    REQUIRE(in.request.has_error());
    CHECK(in.request.error().message.find("'method'") != std::string::npos);
    CHECK(in.id == json(7));
  }
  SUBCASE("a notification with one gets an answer too") {
    auto in = decode_request(R"({"jsonrpc":"2.0","method":"status","params":{},"params":{}})");
    REQUIRE(in.request.has_error());
    CHECK_FALSE(in.notification);
  }
  SUBCASE("two ids: answered with a null id") {
    auto in = decode_request(R"({"jsonrpc":"2.0","id":1,"id":2,"method":"status"})");
    REQUIRE(in.request.has_error());
    CHECK(in.request.error().code == Errc::kInvalidRequest);
    CHECK(in.id.is_null());
  }
  SUBCASE("a long key is quoted only in part") {
    const std::string key(100'000, 'k');
    const Error e = refused(R"({"jsonrpc":"2.0","id":1,"method":"status","params":{")" + key +
                                R"(":1,")" + key + R"(":2}})",
                            Errc::kInvalidRequest);
    CHECK(e.message.size() < 200);
  }
  SUBCASE("the same key in two objects, or as a value, is no duplicate") {
    const auto s = decode_as<Submit>(
        "submit", R"({"group":"group","tasks":[{"argv":["group"]},{"argv":["x"]}]})");
    CHECK(s.tasks.size() == 2);
    CHECK(s.group == "group");
  }
}

TEST_CASE("decode_request: ids may be strings, integers or null; anything else is refused") {
  SUBCASE("string") {
    auto in = decode_request(R"({"jsonrpc":"2.0","id":"req-1","method":"status"})");
    CHECK(in.request.has_value());
    CHECK(in.id == json("req-1"));
  }
  SUBCASE("integers, negative and large") {
    for (std::string_view id : {"0", "-5", "9223372036854775807", "18446744073709551615"}) {
      auto in =
          decode_request(R"({"jsonrpc":"2.0","id":)" + std::string(id) + R"(,"method":"status"})");
      CAPTURE(id);
      CHECK(in.request.has_value());
      CHECK(in.id == json::parse(id));
    }
  }
  SUBCASE("null is an id, not a notification") {
    auto in = decode_request(R"({"jsonrpc":"2.0","id":null,"method":"status"})");
    CHECK(in.request.has_value());
    CHECK(in.id.is_null());
    CHECK_FALSE(in.notification);
  }
  SUBCASE("object, array, float and bool ids are invalid requests") {
    for (std::string_view id : {R"({"a":1})", "[1]", "1.5", "true"}) {
      CAPTURE(id);
      auto in =
          decode_request(R"({"jsonrpc":"2.0","id":)" + std::string(id) + R"(,"method":"status"})");
      REQUIRE(in.request.has_error());
      CHECK(in.request.error().code == Errc::kInvalidRequest);
      CHECK(in.id.is_null());  // Answered with a null id.
      CHECK_FALSE(in.notification);
    }
  }
  SUBCASE("a request without an id is a notification") {
    auto in = decode_request(R"({"jsonrpc":"2.0","method":"status"})");
    CHECK(in.request.has_value());
    CHECK(in.notification);
    CHECK(in.id.is_null());
  }
  SUBCASE("a notification with an unknown method is still flagged, so it gets no reply") {
    auto in = decode_request(R"({"jsonrpc":"2.0","method":"nope"})");
    REQUIRE(in.request.has_error());
    CHECK(in.request.error().code == Errc::kMethodNotFound);
    CHECK(in.notification);
  }
}

// ------------------------------------------------------------------ params errors

TEST_CASE("decode_request: unknown params are refused, naming the param") {
  refused_params("submit", R"({"argv":["a"],"bogus":1})", "params.bogus");
  refused_params("status", R"({"verbose":true})", "params.verbose");
  refused_params("reload", R"({"x":null})", "params.x");
  refused_params("pause", R"({"group":"g","limit":1})", "params.limit");
  refused_params("show", R"({"id":1,"ids":[1]})", "params.ids");
  refused_params("submit", R"({"tasks":[{"argv":["a"]},{"argv":["b"],"x":1}]})",
                 "params.tasks[1].x");
  refused_params("submit", R"({"tasks":[{"argv":["a"],"group":"g"}]})", "params.tasks[0].group");
}

TEST_CASE("decode_request: params that are not an object are refused") {
  refused_params("submit", R"(["ls"])", "params");
  refused_params("status", R"("x")", "params");
  refused_params("show", "5", "params");
}

TEST_CASE("decode_request: submit's workflow fields are checked") {
  SUBCASE("negative retries") {
    refused_params("submit", R"({"argv":["a"],"retries":-1})", "params.retries");
  }
  SUBCASE("too many retries") {
    refused_params("submit", R"({"argv":["a"],"retries":101})", "params.retries");
  }
  SUBCASE("a dependency that is not a task id") {
    refused_params("submit", R"({"argv":["a"],"after":[0]})", "params.after");
  }
  SUBCASE("after_any not an array") {
    refused_params("submit", R"({"argv":["a"],"after_any":3})", "params.after_any");
  }
  SUBCASE("a begin time that is not RFC 3339 UTC") {
    refused_params("submit", R"({"argv":["a"],"begin_at":"22:00"})", "params.begin_at");
  }
  SUBCASE("a negative delay") {
    refused_params("submit", R"({"argv":["a"],"delay_ms":-5})", "params.delay_ms");
  }
  SUBCASE("a bad group name to wait for") {
    refused_params("submit", R"({"argv":["a"],"after_group":"a b"})", "params.after_group");
  }
  SUBCASE("a batch task's own") {
    refused_params("submit", R"({"tasks":[{"argv":["a"],"retry_delay_ms":"1s"}]})",
                   "params.tasks[0].retry_delay_ms");
  }
}

TEST_CASE("decode_request: submit argv must be present, a non-empty array of strings") {
  SUBCASE("missing") { refused_params("submit", "{}", "argv"); }
  SUBCASE("missing with only defaults") { refused_params("submit", R"({"cwd":"/"})", "argv"); }
  SUBCASE("empty") { refused_params("submit", R"({"argv":[]})", "params.argv"); }
  SUBCASE("not an array") { refused_params("submit", R"({"argv":"ls -l"})", "params.argv"); }
  SUBCASE("null") { refused_params("submit", R"({"argv":null})", "params.argv"); }
  SUBCASE("an element that is not a string") {
    refused_params("submit", R"({"argv":["ls",1]})", "params.argv[1]");
  }
  SUBCASE("argv and tasks both") {
    const Error e = refused(request_line("submit", R"({"argv":["a"],"tasks":[{"argv":["b"]}]})"),
                            Errc::kInvalidParams);
    CHECK(e.message.find("argv") != std::string::npos);
    CHECK(e.message.find("tasks") != std::string::npos);
  }
  SUBCASE("empty batch") { refused_params("submit", R"({"tasks":[]})", "params.tasks"); }
  SUBCASE("tasks not an array") { refused_params("submit", R"({"tasks":{}})", "params.tasks"); }
  SUBCASE("a batch task that is not an object") {
    refused_params("submit", R"({"tasks":[["ls"]]})", "params.tasks[0]");
  }
  SUBCASE("a batch task without argv") {
    refused_params("submit", R"({"tasks":[{"argv":["a"]},{"cwd":"/"}]})", "params.tasks[1].argv");
  }
  SUBCASE("a batch task with empty argv") {
    refused_params("submit", R"({"tasks":[{"argv":[]}]})", "params.tasks[0].argv");
  }
}

TEST_CASE("decode_request: NUL bytes in argv, env and cwd are refused") {
  refused_params("submit", R"({"argv":["a\u0000b"]})", "params.argv[0]");
  refused_params("submit", R"({"argv":["ok","\u0000"]})", "params.argv[1]");
  refused_params("submit", R"({"argv":["a"],"env":{"A":"x\u0000y"}})", "params.env.A");
  refused_params("submit", R"({"argv":["a"],"env":{"A\u0000B":"x"}})", "params.env.A");
  refused_params("submit", R"({"argv":["a"],"cwd":"/tmp\u0000/x"})", "params.cwd");
  refused_params("submit", R"({"tasks":[{"argv":["a\u0000"]}]})", "params.tasks[0].argv[0]");
  refused_params("submit", R"({"tasks":[{"argv":["a"],"cwd":"/\u0000"}]})", "params.tasks[0].cwd");
}

TEST_CASE("decode_request: cwd must be an absolute path") {
  refused_params("submit", R"({"argv":["a"],"cwd":"src"})", "params.cwd");
  refused_params("submit", R"({"argv":["a"],"cwd":""})", "params.cwd");
  refused_params("submit", R"({"argv":["a"],"cwd":"./x"})", "params.cwd");
  refused_params("submit", R"({"argv":["a"],"cwd":5})", "params.cwd");
  refused_params("submit", R"({"tasks":[{"argv":["a"],"cwd":"rel"}]})", "params.tasks[0].cwd");
}

TEST_CASE("decode_request: env must be an object of strings with valid names") {
  refused_params("submit", R"({"argv":["a"],"env":[]})", "params.env");
  refused_params("submit", R"({"argv":["a"],"env":"A=1"})", "params.env");
  refused_params("submit", R"({"argv":["a"],"env":{"A":1}})", "params.env.A");
  refused_params("submit", R"({"argv":["a"],"env":{"A":null}})", "params.env.A");
  refused_params("submit", R"({"argv":["a"],"env":{"":"x"}})", "params.env");
  refused_params("submit", R"({"argv":["a"],"env":{"A=B":"x"}})", "params.env.A=B");
}

TEST_CASE("decode_request: group names are 1-64 characters of A-Z a-z 0-9 _ . -") {
  SUBCASE("bad names are refused") {
    for (std::string_view name : {R"("")", R"("a/b")", R"("a b")", R"("gr\u00fcppe")",
                                  R"("grüppe")", R"("tab\t")", R"("..\/x")", R"("a\u0000")"}) {
      CAPTURE(name);
      refused_params("submit", R"({"argv":["a"],"group":)" + std::string(name) + "}",
                     "params.group");
    }
    refused_params("submit", R"({"argv":["a"],"group":")" + std::string(65, 'x') + R"("})",
                   "params.group");
    refused_params("submit", R"({"argv":["a"],"group":7})", "params.group");
    refused_params("submit", R"({"argv":["a"],"group":null})", "params.group");
  }
  SUBCASE("every method that names a group checks it") {
    refused_params("cancel", R"({"group":"a b"})", "params.group");
    refused_params("wait", R"({"group":"a/b"})", "params.group");
    refused_params("list", R"({"group":""})", "params.group");
    refused_params("group.set", R"({"group":"-/-"})", "params.group");
    refused_params("pause", R"({"group":"x y"})", "params.group");
    refused_params("resume", R"({"group":"é"})", "params.group");
  }
  SUBCASE("64 characters is the longest name") {
    const std::string name(64, 'x');
    CHECK(decode_as<Submit>("submit", R"({"argv":["a"],"group":")" + name + R"("})").group == name);
  }
  SUBCASE("group.set, pause and resume require a group") {
    refused_params("group.set", R"({"limit":1})", "params.group");
    refused_params("pause", "{}", "params.group");
    refused_params("resume", R"({"user":"bob"})", "params.group");
  }
}

TEST_CASE("decode_request: numbers out of range or of the wrong type are refused") {
  SUBCASE("priority is -1000..1000") {
    refused_params("submit", R"({"argv":["a"],"priority":1001})", "params.priority");
    refused_params("submit", R"({"argv":["a"],"priority":-1001})", "params.priority");
    refused_params("submit", R"({"argv":["a"],"priority":1.5})", "params.priority");
    refused_params("submit", R"({"argv":["a"],"priority":"1"})", "params.priority");
    refused_params("submit", R"({"argv":["a"],"priority":4294967296})", "params.priority");
    CHECK(decode_as<Submit>("submit", R"({"argv":["a"],"priority":1000})").tasks[0].priority ==
          1000);
  }
  SUBCASE("timeout_ms is 0..100 days") {
    refused_params("submit", R"({"argv":["a"],"timeout_ms":-1})", "params.timeout_ms");
    refused_params("submit", R"({"argv":["a"],"timeout_ms":8640000001})", "params.timeout_ms");
    refused_params("submit", R"({"argv":["a"],"timeout_ms":1e3})", "params.timeout_ms");
    CHECK(decode_as<Submit>("submit", R"({"argv":["a"],"timeout_ms":8640000000})")
              .tasks[0]
              .timeout_ms == 8'640'000'000);
  }
  SUBCASE("max_log_bytes is 0..1P") {
    refused_params("submit", R"({"argv":["a"],"max_log_bytes":-1})", "params.max_log_bytes");
    refused_params("submit", R"({"argv":["a"],"max_log_bytes":1125899906842625})",
                   "params.max_log_bytes");
    refused_params("submit", R"({"argv":["a"],"max_log_bytes":"1G"})", "params.max_log_bytes");
    refused_params("submit", R"({"tasks":[{"argv":["a"],"max_log_bytes":1.5}]})",
                   "params.tasks[0].max_log_bytes");
    CHECK(decode_as<Submit>("submit", R"({"argv":["a"],"max_log_bytes":1125899906842624})")
              .tasks[0]
              .max_log_bytes == 1'125'899'906'842'624);
  }
  SUBCASE("booleans must be true or false") {
    refused_params("submit", R"({"argv":["a"],"shell":"yes"})", "params.shell");
    refused_params("submit", R"({"argv":["a"],"requeue":1})", "params.requeue");
    refused_params("cancel", R"({"group":"g","force":"true"})", "params.force");
    refused_params("wait", R"({"group":"g","progress":0})", "params.progress");
    refused_params("logs", R"({"id":1,"follow":null})", "params.follow");
    refused_params("group.set", R"({"group":"g","fail_fast":1})", "params.fail_fast");
  }
  SUBCASE("task ids are positive 64-bit integers") {
    refused_params("show", "{}", "params.id");
    refused_params("show", R"({"id":0})", "params.id");
    refused_params("show", R"({"id":-1})", "params.id");
    refused_params("show", R"({"id":"1"})", "params.id");
    refused_params("show", R"({"id":18446744073709551615})", "params.id");
    refused_params("show", R"({"id":9223372036854775808})", "params.id");
    refused_params("show", R"({"id":1e30})", "params.id");
    refused_params("logs", R"({"offset":0})", "params.id");
    refused_params("cancel", R"({"ids":[0]})", "params.ids");
    refused_params("cancel", R"({"ids":[18446744073709551615]})", "params.ids");
    refused_params("cancel", R"({"ids":[1.0]})", "params.ids");
    refused_params("wait", R"({"ids":["1"]})", "params.ids");
    refused_params("wait", R"({"ids":5})", "params.ids");
  }
  SUBCASE("other limits") {
    refused_params("logs", R"({"id":1,"offset":-1})", "params.offset");
    refused_params("cancel", R"({"group":"g","grace_ms":-5})", "params.grace_ms");
    refused_params("cancel", R"({"group":"g","grace_ms":8640000001})", "params.grace_ms");
    refused_params("list", R"({"limit":0})", "params.limit");
    refused_params("list", R"({"limit":-1})", "params.limit");
    refused_params("list", R"({"after_id":-1})", "params.after_id");
    refused_params("list", R"({"after_id":"5"})", "params.after_id");
    refused_params("group.set", R"({"group":"g","limit":-1})", "params.limit");
    refused_params("group.set", R"({"group":"g","limit":1000001})", "params.limit");
    refused_params("hello", R"({"protocol":-1})", "params.protocol");
  }
  SUBCASE("strings must be strings") {
    refused_params("hello", R"({"client":5})", "params.client");
    refused_params("groups", R"({"user":1000})", "params.user");
    refused_params("list", R"({"state":"bogus"})", "params.state");
    refused_params("list", R"({"state":"invalid"})", "params.state");
    refused_params("list", R"({"state":1})", "params.state");
  }
}

TEST_CASE("decode_request: cancel and wait need exactly one of group and ids") {
  for (std::string_view method : {"cancel", "wait"}) {
    CAPTURE(method);
    refused_params(method, R"({"group":"g","ids":[1]})", "group");
    refused_params(method, "{}", "ids");
    refused_params(method, R"({"ids":[]})", "ids");
    // A user names a group's owner; without a group it would be silently ignored.
    refused_params(method, R"({"ids":[1],"user":"bob"})", "params.user");
  }
}

// ------------------------------------------------------------------ hostile input

TEST_CASE("decode_request: nesting deeper than kMaxJsonDepth is a parse error, not a crash") {
  SUBCASE("100000 open brackets") {
    const Error e = refused(std::string(100'000, '['), Errc::kParse);
    CHECK(e.message.find("nested") != std::string::npos);
  }
  SUBCASE("100000 open braces after a valid prefix") {
    refused(R"({"jsonrpc":"2.0","id":1,"method":"submit","params":{"argv":)" +
                std::string(100'000, '{'),
            Errc::kParse);
  }
  SUBCASE("balanced but one level too deep") {
    const std::string deep =
        std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
    refused(deep, Errc::kParse);
  }
  SUBCASE("exactly kMaxJsonDepth levels parse (and are then not a request)") {
    const std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
    refused(ok, Errc::kInvalidRequest);
  }
  SUBCASE("brackets inside strings, with escaped quotes, do not count") {
    const std::string argv = "\\\"" + std::string(1000, '[') + "\\\\";
    const auto s = decode_as<Submit>("submit", R"({"argv":[")" + argv + R"("]})");
    CHECK(s.tasks[0].argv[0] == "\"" + std::string(1000, '[') + "\\");
  }
}

TEST_CASE("decode_request: invalid UTF-8 is invalid params naming the byte, with the id kept") {
  for (std::string_view bad : {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf8\x88\x80\x80\x80",
                               "a\x80z", "\xf4\x90\x80\x80", "\xe0\x80\x80"}) {
    const std::string line = request_line("submit", "{\"argv\":[\"" + std::string(bad) + "\"]}");
    const IncomingRequest in = decode_request(line);
    REQUIRE(in.request.has_error());
    CHECK(in.request.error().code == Errc::kInvalidParams);
    CHECK(in.request.error().message.find("UTF-8") != std::string::npos);
    CHECK(in.id == 1);
  }
  SUBCASE("a line that is neither UTF-8 nor JSON has no id to keep") {
    const IncomingRequest in = decode_request("\xff\xfe garbage");
    REQUIRE(in.request.has_error());
    CHECK(in.request.error().code == Errc::kInvalidParams);
    CHECK(in.id.is_null());
  }
  SUBCASE("a lone surrogate escape is a JSON error") {
    refused(request_line("submit", R"({"argv":["\ud800"]})"), Errc::kParse);
  }
  SUBCASE("a raw control character inside a string is refused") {
    refused(request_line("submit", "{\"argv\":[\"a\tb\"]}"), Errc::kParse);
    refused(std::string(R"({"jsonrpc":"2.0","id":1,"method":"status","params":{"x":")") +
                std::string(1, '\0') + "\"}}",
            Errc::kParse);
  }
  SUBCASE("valid multi-byte UTF-8 in argv is kept as is") {
    const auto s = decode_as<Submit>("submit", R"({"argv":["echo","héllo ✓ 😀"]})");
    CHECK(s.tasks[0].argv[1] == "héllo ✓ 😀");
  }
}

// ------------------------------------------------------------------ encoding replies

TEST_CASE("encode_error carries the code, the message and data.kind") {
  for (Errc c : {Errc::kParse, Errc::kInvalidRequest, Errc::kMethodNotFound, Errc::kInvalidParams,
                 Errc::kInternal, Errc::kNotFound, Errc::kGroupCancelling, Errc::kDraining,
                 Errc::kPermissionDenied, Errc::kTooLarge, Errc::kBusy, Errc::kIo,
                 Errc::kOutcomeUnknown, Errc::kUnavailable, Errc::kRestarting}) {
    CAPTURE(kind_name(c));
    const std::string line = without_newline(encode_error(json(9), {c, "what happened"}));
    const json j = json::parse(line);
    CHECK(j.size() == 3);
    CHECK(j["jsonrpc"] == "2.0");
    CHECK(j["id"] == 9);
    CHECK(j["error"]["code"] == rpc_code(c));
    CHECK(j["error"]["message"] == "what happened");
    CHECK(j["error"]["data"]["kind"] == kind_name(c));

    // And the client maps it back.
    const auto reply = decode_reply(line);
    CHECK(reply.id == json(9));
    REQUIRE(reply.result.has_error());
    CHECK(reply.result.error().code == c);
    CHECK(reply.result.error().message == "what happened");
  }
}

TEST_CASE("error codes: JSON-RPC codes for protocol errors, -32000 for application errors") {
  CHECK(rpc_code(Errc::kParse) == -32700);
  CHECK(rpc_code(Errc::kInvalidRequest) == -32600);
  CHECK(rpc_code(Errc::kMethodNotFound) == -32601);
  CHECK(rpc_code(Errc::kInvalidParams) == -32602);
  CHECK(rpc_code(Errc::kInternal) == -32603);
  CHECK(rpc_code(Errc::kNotFound) == -32000);
  CHECK(rpc_code(Errc::kBusy) == -32000);
  CHECK(kind_name(Errc::kNotFound) == "not_found");
  CHECK(kind_name(Errc::kGroupCancelling) == "group_cancelling");
  CHECK(kind_name(Errc::kDraining) == "draining");
  CHECK(kind_name(Errc::kPermissionDenied) == "permission_denied");
  CHECK(kind_name(Errc::kTooLarge) == "too_large");
  CHECK(kind_name(Errc::kBusy) == "busy");
  CHECK(errc_from_kind("no_such_kind") == Errc::kInternal);
  CHECK(errc_from_rpc(-32000, "") == Errc::kInternal);
  CHECK(errc_from_rpc(-32602, "not_found") == Errc::kInvalidParams);  // The code wins.
}

TEST_CASE("encode_result, encode_notification and dump_json never throw on invalid UTF-8") {
  const std::string bad = std::string("a\xff") + "b\xc3";
  SUBCASE("encode_result replaces it with U+FFFD") {
    std::string line;
    CHECK_NOTHROW(line = encode_result(json("id"), json{{"data", bad}}));
    const json j = json::parse(without_newline(line));
    CHECK(j["result"]["data"] ==
          "a\xef\xbf\xbd"
          "b\xef\xbf\xbd");
    CHECK(j["id"] == "id");
  }
  SUBCASE("encode_error with a bad message") {
    std::string line;
    CHECK_NOTHROW(line = encode_error(nullptr, {Errc::kNotFound, bad}));
    CHECK(json::parse(without_newline(line))["error"]["message"] ==
          "a\xef\xbf\xbd"
          "b\xef\xbf\xbd");
  }
  SUBCASE("encode_notification") {
    std::string line;
    CHECK_NOTHROW(line = encode_notification(kLogsData, json{{"data", bad}}));
    const json j = json::parse(without_newline(line));
    CHECK(j["method"] == "logs.data");
    CHECK_FALSE(j.contains("id"));
  }
  SUBCASE("dump_json is compact and one line") {
    CHECK(dump_json(json{{"a", {1, 2}}, {"b", "x\ny"}}) == R"({"a":[1,2],"b":"x\ny"})");
    CHECK_NOTHROW((void)dump_json(json(bad)));
  }
}

TEST_CASE("encode_result of a wire struct is a one-line reply the client decodes") {
  const std::string line = encode_result(json(3), json(SubmitResult{{42, 43}}));
  CHECK(line == "{\"id\":3,\"jsonrpc\":\"2.0\",\"result\":{\"ids\":[42,43]}}\n");
  const auto reply = decode_reply(without_newline(line));
  CHECK(reply.id == json(3));
  CHECK(reply.method.empty());
  REQUIRE(reply.result.has_value());
  const auto r = decode_result<SubmitResult>(*reply.result);
  REQUIRE(r.has_value());
  CHECK(r->ids == std::vector<TaskId>{42, 43});
}

TEST_CASE("encode_result_frame: head, elements and tail make the reply encode_result would") {
  for (const json& id : {json(7), json("a \"tasks\":[] id"), json(nullptr)}) {
    CAPTURE(id.dump());
    const ResultFrame f = encode_result_frame(id, "tasks");
    CHECK(f.head + f.tail == encode_result(id, json{{"tasks", json::array()}}));
    CHECK(f.head + "1,{\"a\":[]}" + f.tail ==
          encode_result(id, json{{"tasks", json::array({1, json{{"a", json::array()}}})}}));
    CHECK(f.tail.back() == '\n');
  }
}

// ------------------------------------------------------------------ decode_reply

TEST_CASE("decode_reply: results, errors, notifications and garbage") {
  SUBCASE("a result") {
    const auto r = decode_reply(R"({"jsonrpc":"2.0","id":"k","result":{"ok":true}})");
    CHECK(r.id == json("k"));
    CHECK(r.method.empty());
    REQUIRE(r.result.has_value());
    CHECK(*r.result == json{{"ok", true}});
  }
  SUBCASE("a null result is still a result") {
    const auto r = decode_reply(R"({"jsonrpc":"2.0","id":1,"result":null})");
    REQUIRE(r.result.has_value());
    CHECK(r.result->is_null());
  }
  SUBCASE("an application error maps its kind back") {
    const auto r =
        decode_reply(R"({"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"no task 5",)"
                     R"("data":{"kind":"not_found"}}})");
    CHECK(r.id == json(2));
    REQUIRE(r.result.has_error());
    CHECK(r.result.error().code == Errc::kNotFound);
    CHECK(r.result.error().message == "no task 5");
  }
  SUBCASE("a JSON-RPC error without data maps its code") {
    const auto r =
        decode_reply(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"m"}})");
    REQUIRE(r.result.has_error());
    CHECK(r.result.error().code == Errc::kMethodNotFound);
  }
  SUBCASE("an error with missing pieces is still an error") {
    const auto r = decode_reply(R"({"jsonrpc":"2.0","id":1,"error":{}})");
    REQUIRE(r.result.has_error());
    CHECK(r.result.error().code == Errc::kInternal);
    CHECK_FALSE(r.result.error().message.empty());
  }
  SUBCASE("a notification gives its method and params") {
    const auto r =
        decode_reply(R"({"jsonrpc":"2.0","method":"wait.progress",)"
                     R"("params":{"counts":{"queued":1},"elapsed_ms":5,"all_succeeded":false}})");
    CHECK(r.method == "wait.progress");
    REQUIRE(r.result.has_value());
    const auto p = decode_result<WaitResult>(r.params);
    REQUIRE(p.has_value());
    CHECK(p->counts.queued == 1);
    CHECK(p->elapsed_ms == 5);
  }
  SUBCASE("garbage and replies with neither result nor error are errors") {
    for (std::string_view line : {"", "garbage", "[1]", "42", R"({"jsonrpc":"2.0","id":1})",
                                  R"({"jsonrpc":"2.0","id":1,"error":"boom"})"}) {
      CAPTURE(line);
      const auto r = decode_reply(line);
      REQUIRE(r.result.has_error());
      CHECK(r.result.error().code == Errc::kInternal);
      CHECK(r.method.empty());
    }
  }
}

TEST_CASE("decode_result: a body of the wrong shape is an internal error, not an exception") {
  const auto r = decode_result<SubmitResult>(json{{"ids", "not an array"}});
  REQUIRE(r.has_error());
  CHECK(r.error().code == Errc::kInternal);
  // Missing keys keep their defaults.
  const auto empty = decode_result<StatusResult>(json::object());
  REQUIRE(empty.has_value());
  CHECK(empty->version.empty());
  CHECK_FALSE(empty->config_path.has_value());
}

}  // namespace tg::proto
