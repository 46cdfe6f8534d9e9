#include "common/codec.h"

#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/param_reader.h"
#include "common/size.h"
#include "common/time_format.h"

namespace tg::proto {

namespace {

using nlohmann::json;
constexpr std::int64_t kMaxDurationMs = 100LL * 24 * 3600 * 1000;  // 100 days.
constexpr std::int64_t kMaxLimit = 1'000'000;
constexpr std::size_t kMaxHookBytes = 4096;  // An on-done command: a line of shell, not a script.

// Deep nesting costs recursion when the parsed value is destroyed; refuse it before parsing.
bool nesting_within(std::string_view line, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return true;
}

// The offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or npos.
std::size_t invalid_utf8_at(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // Allowed range of the second byte.
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    const auto second = static_cast<unsigned char>(s[i + 1]);
    if (second < lo || second > hi) return i;
    for (std::size_t k = 2; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// For a line that is not UTF-8: answer -32602 naming the byte, with the request's id when the
// rest of the line parses.
IncomingRequest refuse_bad_utf8(std::string_view line, std::size_t at) {
  std::string repaired(line);
  for (std::size_t i = at; i < repaired.size();) {
    const std::size_t bad = invalid_utf8_at(std::string_view(repaired).substr(i));
    if (bad == std::string_view::npos) break;
    repaired[i + bad] = '?';
    i += bad + 1;
  }
  IncomingRequest in{
      nullptr, false,
      Error{Errc::kInvalidParams, "request is not valid UTF-8 (byte " + std::to_string(at) + ")"}};
  json j = json::parse(repaired, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (auto id = j.find("id"); id != j.end() && (id->is_string() || id->is_number_integer())) {
      in.id = *id;
    }
  }
  return in;
}

// The first key that occurs twice in one object, at any depth. nlohmann keeps the last value,
// so {"group":"a","group":"b"} would be read as b by us and maybe as a by whatever checked the
// line before (a proxy, a log reader): a request that says two things is refused instead.
struct DuplicateKey {
  std::string key;
  bool top_level = false;  // In the request object itself.
};

// A SAX pass over the line that looks only at keys. Not the parser callback of json::parse,
// which does the same while building the value: measured on a 1000-task batch, that made
// decode_request 2.6 times slower; this pass adds about a quarter to the parse.
class KeyScan final : public nlohmann::json_sax<json> {
 public:
  std::optional<DuplicateKey> duplicate;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    open_.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    if (!open_.back().insert(k).second) {
      duplicate = DuplicateKey{k, open_.size() == 1};
      return false;  // The first one is enough: stop here.
    }
    return true;
  }
  bool end_object() override {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;  // json::parse, which runs next, reports it.
  }

 private:
  std::vector<std::set<std::string, std::less<>>> open_;  // The keys of each open object.
};

Error duplicate_key_error(const DuplicateKey& d) {
  constexpr std::size_t kShown = 64;  // The reply quotes it; a key may be a megabyte long.
  const std::string shown = d.key.size() > kShown ? d.key.substr(0, kShown) + "…" : d.key;
  return Error{Errc::kInvalidRequest, "duplicate key '" + shown + "' in an object"};
}

void read_group_ref(ParamReader& r, std::optional<GroupRef>& out, bool required) {
  GroupRef g;
  const bool present = r.has("group");
  r.group("group", g.name, required);
  r.string("user", g.user);
  if (!r.ok()) return;
  if (present) {
    out = std::move(g);
  } else if (g.user && required) {
    r.fail(r.where("group") + ": is required");
  }
}

void read_spec(ParamReader& r, TaskSpec& t, bool argv_required) {
  r.strings("argv", t.argv, argv_required);
  if (r.ok() && argv_required && t.argv.empty()) r.fail(r.where("argv") + ": must not be empty");
  r.string("cwd", t.cwd);
  if (r.ok() && t.cwd && (t.cwd->empty() || t.cwd->front() != '/')) {
    r.fail(r.where("cwd") + ": must be an absolute path");
  }
  r.env("env", t.env);
  r.boolean("shell", t.shell);
  r.integer("priority", t.priority, kMinPriority, kMaxPriority);
  r.integer("timeout_ms", t.timeout_ms, 0, kMaxDurationMs);
  r.boolean("requeue", t.requeue);
  r.integer("max_log_bytes", t.max_log_bytes, 0, kMaxSizeBytes);
  r.ids("after", t.after);
  r.ids("after_any", t.after_any);
  if (r.has("after_group")) {
    std::string group;
    r.group("after_group", group);
    if (r.ok()) t.after_group = std::move(group);
  }
  r.string("begin_at", t.begin_at);
  if (r.ok() && t.begin_at && !parse_rfc3339(*t.begin_at)) {
    r.fail(r.where("begin_at") + ": must be an RFC 3339 UTC time (2026-12-07T22:00:00Z)");
  }
  r.integer("delay_ms", t.delay_ms, 0, kMaxDurationMs);
  r.integer("retries", t.retries, 0, kMaxRetries);
  r.integer("retry_delay_ms", t.retry_delay_ms, 0, kMaxDurationMs);
  r.labels("labels", t.labels);
}

// A batch task's labels are merged with the batch's: the union is bounded too.
void check_merged_labels(ParamReader& r, const TaskSpec& defaults, const TaskSpec& t) {
  if (!r.ok() || !defaults.labels || !t.labels) return;
  std::size_t n = defaults.labels->size();
  for (const auto& [k, v] : *t.labels) n += defaults.labels->contains(k) ? 0 : 1;
  if (n > kMaxLabels) {
    r.fail(r.where("labels") + ": at most " + std::to_string(kMaxLabels) +
           " labels a task, with the batch's (got " + std::to_string(n) + ")");
  }
}

// The idempotency key belongs to one task: a batch that carried one would need a rule for which
// of its tasks it names, and a retried batch is made safe by its own ids instead.
void read_submit_key(ParamReader& r, std::optional<std::string>& key, bool single) {
  r.string("key", key);
  if (!r.ok() || !key) return;
  if (!single) {
    return r.fail(r.where("key") +
                  ": a batch cannot carry a key; only a single-task submit (argv) can");
  }
  if (key->empty() || key->size() > kMaxSubmitKeyBytes) {
    r.fail(r.where("key") + ": must be 1-" + std::to_string(kMaxSubmitKeyBytes) + " bytes (got " +
           std::to_string(key->size()) + ")");
  }
}

Result<Request> decode_submit(ParamReader& r) {
  Submit s;
  r.group("group", s.group);
  const bool single = r.has("argv");
  read_spec(r, s.defaults, single);
  read_submit_key(r, s.key, single);
  if (!r.ok()) return r.finish().error();
  if (const json* tasks = r.array("tasks")) {
    if (single) return Error{Errc::kInvalidParams, "params: give either argv or tasks, not both"};
    if (tasks->empty()) return Error{Errc::kInvalidParams, "params.tasks: must not be empty"};
    s.tasks.reserve(tasks->size());
    for (std::size_t i = 0; i < tasks->size(); ++i) {
      ParamReader one((*tasks)[i], "params.tasks[" + std::to_string(i) + "]");
      if (one.has("key")) {
        return Error{Errc::kInvalidParams,
                     one.where("key") +
                         ": a batch task cannot carry a key; only a single-task submit (argv) can"};
      }
      TaskSpec t;
      read_spec(one, t, true);
      check_merged_labels(one, s.defaults, t);
      if (auto done = one.finish(); done.has_error()) return done.error();
      s.tasks.push_back(std::move(t));
    }
  } else if (single) {
    s.tasks.push_back(std::exchange(s.defaults, TaskSpec{}));
  } else if (r.ok()) {
    return Error{Errc::kInvalidParams, "params: argv or tasks is required"};
  }
  if (auto done = r.finish(); done.has_error()) return done.error();
  return Request{std::move(s)};
}

// Cancel, wait and restart act on a group or on task ids, never both.
void read_selection(ParamReader& r, std::optional<GroupRef>& group, std::vector<TaskId>& ids) {
  read_group_ref(r, group, false);
  if (r.ok() && !group && r.has("user")) r.fail(r.where("user") + ": only names a group's owner");
  r.ids("ids", ids);
  if (r.ok() && group.has_value() == !ids.empty()) {
    r.fail("params: give exactly one of group and ids");
  }
}

template <class T>
Result<Request> finish_with(ParamReader& r, T value) {
  if (auto done = r.finish(); done.has_error()) return done.error();
  return Request{std::move(value)};
}

Result<Request> decode_restart(ParamReader& r) {
  Restart x;
  read_selection(r, x.group, x.ids);
  r.states("states", x.states);
  if (r.ok() && x.group && x.states.empty()) {
    r.fail(r.where("states") + ": is required with group, e.g. [\"failed\"]");
  }
  if (r.ok() && !x.group && !x.states.empty()) {
    r.fail(r.where("states") + ": only with group (ids name their tasks)");
  }
  for (TaskState st : x.states) {
    if (r.ok() && !is_terminal(st)) {
      r.fail(r.where("states") + ": only ended tasks can be restarted, not " +
             std::string(to_string(st)) + " ones");
    }
  }
  return finish_with(r, std::move(x));
}

Result<Request> decode_params(std::string_view method, ParamReader& r) {
  if (method == "hello") {
    Hello h;
    r.string("client", h.client);
    std::optional<std::int64_t> protocol;  // Accepted for forward compatibility; unused.
    r.integer("protocol", protocol, 0, 1'000'000);
    return finish_with(r, std::move(h));
  }
  if (method == "status") return finish_with(r, Status{});
  if (method == "reload") return finish_with(r, Reload{});
  if (method == "reexec") return finish_with(r, Reexec{});
  if (method == "submit") return decode_submit(r);
  if (method == "list") {
    List l;
    read_group_ref(r, l.group, false);
    if (!l.group) r.string("user", l.user);
    r.states("state", l.states);
    r.integer("limit", l.limit, 1, std::numeric_limits<std::int64_t>::max());
    r.integer("after_id", l.after_id, 0, std::numeric_limits<std::int64_t>::max());
    std::optional<Labels> labels;
    r.labels("labels", labels);
    if (labels) l.labels = std::move(*labels);
    r.integer("since_ms", l.since_ms, 0, kMaxDurationMs);
    return finish_with(r, std::move(l));
  }
  if (method == "restart") return decode_restart(r);
  if (method == "show") {
    Show s;
    r.integer("id", s.id, 1, std::numeric_limits<std::int64_t>::max(), true);
    return finish_with(r, s);
  }
  if (method == "cancel") {
    Cancel c;
    read_selection(r, c.group, c.ids);
    r.integer("grace_ms", c.grace_ms, 0, kMaxDurationMs);
    r.boolean("force", c.force);
    return finish_with(r, std::move(c));
  }
  if (method == "wait") {
    Wait w;
    read_selection(r, w.group, w.ids);
    r.boolean("progress", w.progress);
    return finish_with(r, std::move(w));
  }
  if (method == "logs") {
    Logs l;
    r.integer("id", l.id, 1, std::numeric_limits<std::int64_t>::max(), true);
    r.integer("offset", l.offset, 0, std::numeric_limits<std::int64_t>::max());
    r.boolean("follow", l.follow);
    r.integer("attempt", l.attempt, 1, kMaxRetries + 1);
    return finish_with(r, l);
  }
  if (method == "watch") {
    Watch w;
    r.string("user", w.user);
    return finish_with(r, std::move(w));
  }
  if (method == "groups") {
    Groups g;
    r.string("user", g.user);
    return finish_with(r, std::move(g));
  }
  if (method == "group.set" || method == "pause" || method == "resume") {
    std::optional<GroupRef> ref;
    read_group_ref(r, ref, true);
    if (!r.ok()) return r.finish().error();
    if (method == "pause") return finish_with(r, Pause{std::move(*ref)});
    if (method == "resume") return finish_with(r, Resume{std::move(*ref)});
    GroupSet g;
    g.group = std::move(*ref);
    r.integer("limit", g.limit, 0, kMaxLimit);
    r.boolean("fail_fast", g.fail_fast);
    r.boolean("first_success", g.first_success);
    r.string("on_done", g.on_done);
    if (r.ok() && g.on_done && g.on_done->size() > kMaxHookBytes) {
      r.fail(r.where("on_done") + ": is over " + std::to_string(kMaxHookBytes) + " bytes");
    }
    return finish_with(r, std::move(g));
  }
  if (method == "kill") {
    Kill k;
    read_selection(r, k.group, k.ids);
    r.signal("signal", k.signal, true);
    return finish_with(r, std::move(k));
  }
  return Error{Errc::kMethodNotFound, "unknown method '" + std::string(method) + "'"};
}

json error_body(const Error& e) {
  return {
      {"code", rpc_code(e.code)}, {"message", e.message}, {"data", {{"kind", kind_name(e.code)}}}};
}

}  // namespace

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

IncomingRequest decode_request(std::string_view line) {
  IncomingRequest in{nullptr, false, Error{Errc::kInternal, ""}};
  if (!nesting_within(line, kMaxJsonDepth)) {
    in.request = Error{Errc::kParse, "nested deeper than " + std::to_string(kMaxJsonDepth)};
    return in;
  }
  if (const std::size_t bad = invalid_utf8_at(line); bad != std::string_view::npos) {
    return refuse_bad_utf8(line, bad);
  }
  KeyScan keys;
  (void)json::sax_parse(line, &keys);  // False for a duplicate, or for what parse() refuses.
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    in.request = Error{Errc::kParse, "not valid JSON"};
    return in;
  }
  if (!j.is_object()) {
    in.request = Error{Errc::kInvalidRequest, "a request must be a JSON object"};
    return in;
  }
  if (keys.duplicate && keys.duplicate->top_level && keys.duplicate->key == "id") {
    in.request = duplicate_key_error(*keys.duplicate);  // Which id to answer to? Neither.
    return in;
  }
  if (auto id = j.find("id"); id != j.end()) {
    if (id->is_string() || id->is_number_integer() || id->is_null()) {
      in.id = *id;
    } else {
      in.request = Error{Errc::kInvalidRequest, "id must be a string, an integer or null"};
      return in;
    }
  } else {
    in.notification = true;
  }
  if (keys.duplicate) {
    in.notification = false;  // A malformed request always gets an answer.
    in.request = duplicate_key_error(*keys.duplicate);
    return in;
  }
  auto version = j.find("jsonrpc");
  if (version == j.end() || *version != "2.0") {
    in.notification = false;  // A malformed request always gets an answer.
    in.request = Error{Errc::kInvalidRequest, "jsonrpc must be \"2.0\""};
    return in;
  }
  auto method = j.find("method");
  if (method == j.end() || !method->is_string()) {
    in.notification = false;
    in.request = Error{Errc::kInvalidRequest, "method must be a string"};
    return in;
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "jsonrpc" && key != "id" && key != "method" && key != "params") {
      in.notification = false;
      in.request = Error{Errc::kInvalidRequest, "unknown member '" + key + "'"};
      return in;
    }
  }
  static const json kEmpty = json::object();
  auto params = j.find("params");
  const json& p = (params == j.end() || params->is_null()) ? kEmpty : *params;
  ParamReader reader(p, "params");
  in.request = decode_params(method->get_ref<const std::string&>(), reader);
  return in;
}

std::string encode_result(const json& id, const json& result) {
  json j = {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}};
  return dump_json(j) + '\n';
}

ResultFrame encode_result_frame(const json& id, std::string_view key) {
  json body = json::object();
  body[std::string(key)] = json::array();
  const std::string whole = encode_result(id, body);
  // "result" is the envelope's last key and `key` the body's only one: the last "[]" is ours.
  const std::size_t at = whole.rfind("[]");
  return {whole.substr(0, at + 1), whole.substr(at + 1)};
}

std::string encode_error(const json& id, const Error& error) {
  json j = {{"jsonrpc", "2.0"}, {"id", id}, {"error", error_body(error)}};
  return dump_json(j) + '\n';
}

std::string encode_notification(std::string_view method, const json& params) {
  json j = {{"jsonrpc", "2.0"}, {"method", method}, {"params", params}};
  return dump_json(j) + '\n';
}

std::string encode_request(std::int64_t id, const Request& request) {
  json j = {{"jsonrpc", "2.0"},
            {"id", id},
            {"method", method_name(request)},
            {"params", to_params(request)}};
  return dump_json(j) + '\n';
}

IncomingReply decode_reply(std::string_view line) {
  IncomingReply in{nullptr, {}, nullptr, Error{Errc::kInternal, "malformed reply from daemon"}};
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return in;
  if (auto m = j.find("method"); m != j.end() && m->is_string()) {
    in.method = m->get<std::string>();
    if (auto p = j.find("params"); p != j.end()) in.params = *p;
    in.result = Result<json>(boost::system::in_place_value, nullptr);
    return in;
  }
  if (auto id = j.find("id"); id != j.end()) in.id = *id;
  if (auto r = j.find("result"); r != j.end()) {
    in.result = Result<json>(boost::system::in_place_value, *r);
  } else if (auto e = j.find("error"); e != j.end() && e->is_object()) {
    const auto code = e->find("code");
    const auto message = e->find("message");
    const auto data = e->find("data");
    std::string kind;
    if (data != e->end() && data->is_object()) {
      if (auto k = data->find("kind"); k != data->end() && k->is_string())
        kind = k->get<std::string>();
    }
    in.result =
        Error{errc_from_rpc(
                  code != e->end() && code->is_number_integer() ? code->get<int>() : -32603, kind),
              message != e->end() && message->is_string() ? message->get<std::string>()
                                                          : "unknown error"};
  }
  return in;
}

}  // namespace tg::proto
