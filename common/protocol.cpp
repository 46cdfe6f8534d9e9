#include "common/protocol.h"

#include <type_traits>

#include "common/signal_name.h"

namespace tg::proto {

std::string_view to_string(TaskState s) {
  switch (s) {
    case TaskState::kInvalid:
      return "invalid";
    case TaskState::kQueued:
      return "queued";
    case TaskState::kRunning:
      return "running";
    case TaskState::kSucceeded:
      return "succeeded";
    case TaskState::kFailed:
      return "failed";
    case TaskState::kTimedOut:
      return "timed_out";
    case TaskState::kCancelled:
      return "cancelled";
    case TaskState::kInterrupted:
      return "interrupted";
    case TaskState::kLost:
      return "lost";
  }
  return "invalid";
}

TaskState task_state_from_string(std::string_view s) {
  for (TaskState st :
       {TaskState::kQueued, TaskState::kRunning, TaskState::kSucceeded, TaskState::kFailed,
        TaskState::kTimedOut, TaskState::kCancelled, TaskState::kInterrupted, TaskState::kLost}) {
    if (to_string(st) == s) return st;
  }
  return TaskState::kInvalid;
}

bool is_terminal(TaskState s) {
  switch (s) {
    case TaskState::kInvalid:
    case TaskState::kQueued:
    case TaskState::kRunning:
      return false;
    case TaskState::kSucceeded:
    case TaskState::kFailed:
    case TaskState::kTimedOut:
    case TaskState::kCancelled:
    case TaskState::kInterrupted:
    case TaskState::kLost:
      return true;
  }
  return false;
}

bool is_valid_group_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxGroupNameBytes) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_valid_label_key(std::string_view key) {
  // The characters of group names: safe in a shell word, a file name and `key=value`.
  if (key.empty() || key.size() > kMaxLabelKeyBytes) return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void StateCounts::add(TaskState s, std::int64_t n) {
  switch (s) {
    case TaskState::kInvalid:
      return;
    case TaskState::kQueued:
      queued += n;
      return;
    case TaskState::kRunning:
      running += n;
      return;
    case TaskState::kSucceeded:
      succeeded += n;
      return;
    case TaskState::kFailed:
      failed += n;
      return;
    case TaskState::kTimedOut:
      timed_out += n;
      return;
    case TaskState::kCancelled:
      cancelled += n;
      return;
    case TaskState::kInterrupted:
      interrupted += n;
      return;
    case TaskState::kLost:
      lost += n;
      return;
  }
}

std::int64_t StateCounts::total() const {
  return queued + running + succeeded + failed + timed_out + cancelled + interrupted + lost;
}

namespace {

struct MethodName {
  std::string_view operator()(const Hello&) const { return "hello"; }
  std::string_view operator()(const Status&) const { return "status"; }
  std::string_view operator()(const Submit&) const { return "submit"; }
  std::string_view operator()(const List&) const { return "list"; }
  std::string_view operator()(const Show&) const { return "show"; }
  std::string_view operator()(const Cancel&) const { return "cancel"; }
  std::string_view operator()(const Wait&) const { return "wait"; }
  std::string_view operator()(const Logs&) const { return "logs"; }
  std::string_view operator()(const Groups&) const { return "groups"; }
  std::string_view operator()(const GroupSet&) const { return "group.set"; }
  std::string_view operator()(const Pause&) const { return "pause"; }
  std::string_view operator()(const Resume&) const { return "resume"; }
  std::string_view operator()(const Reload&) const { return "reload"; }
  std::string_view operator()(const Reexec&) const { return "reexec"; }
  std::string_view operator()(const Kill&) const { return "kill"; }
  std::string_view operator()(const Restart&) const { return "restart"; }
  std::string_view operator()(const Watch&) const { return "watch"; }
};

template <class T>
void put(nlohmann::json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

void put_group(nlohmann::json& j, const GroupRef& g) {
  j["group"] = g.name;
  put(j, "user", g.user);
}

void put_spec(nlohmann::json& j, const TaskSpec& t) {
  if (!t.argv.empty()) j["argv"] = t.argv;
  put(j, "cwd", t.cwd);
  put(j, "env", t.env);
  put(j, "shell", t.shell);
  put(j, "priority", t.priority);
  put(j, "timeout_ms", t.timeout_ms);
  put(j, "requeue", t.requeue);
  put(j, "max_log_bytes", t.max_log_bytes);
  if (!t.after.empty()) j["after"] = t.after;
  if (!t.after_any.empty()) j["after_any"] = t.after_any;
  put(j, "after_group", t.after_group);
  put(j, "begin_at", t.begin_at);
  put(j, "delay_ms", t.delay_ms);
  put(j, "retries", t.retries);
  put(j, "retry_delay_ms", t.retry_delay_ms);
  put(j, "labels", t.labels);
}

nlohmann::json state_names(const std::vector<TaskState>& states) {
  nlohmann::json j = nlohmann::json::array();
  for (TaskState s : states) j.push_back(to_string(s));
  return j;
}

struct Params {
  nlohmann::json operator()(const Hello& r) const {
    return r.client.empty() ? nlohmann::json::object() : nlohmann::json{{"client", r.client}};
  }
  nlohmann::json operator()(const Status&) const { return nlohmann::json::object(); }
  nlohmann::json operator()(const Submit& r) const {
    nlohmann::json j = nlohmann::json::object();
    j["group"] = r.group;
    put_spec(j, r.defaults);
    if (r.tasks.size() == 1 && r.defaults.argv.empty()) {
      put_spec(j, r.tasks.front());
    } else {
      auto& tasks = j["tasks"] = nlohmann::json::array();
      for (const auto& t : r.tasks) {
        nlohmann::json one = nlohmann::json::object();
        put_spec(one, t);
        tasks.push_back(std::move(one));
      }
    }
    put(j, "key", r.key);
    return j;
  }
  nlohmann::json operator()(const List& r) const {
    nlohmann::json j = nlohmann::json::object();
    if (r.group) put_group(j, *r.group);
    // One state as a string: what daemons before the list form understand.
    if (r.states.size() == 1) j["state"] = to_string(r.states.front());
    if (r.states.size() > 1) j["state"] = state_names(r.states);
    put(j, "limit", r.limit);
    put(j, "user", r.user);
    put(j, "after_id", r.after_id);
    if (!r.labels.empty()) j["labels"] = r.labels;
    put(j, "since_ms", r.since_ms);
    return j;
  }
  nlohmann::json operator()(const Show& r) const { return {{"id", r.id}}; }
  nlohmann::json operator()(const Cancel& r) const {
    nlohmann::json j = nlohmann::json::object();
    if (r.group) put_group(j, *r.group);
    if (!r.ids.empty()) j["ids"] = r.ids;
    put(j, "grace_ms", r.grace_ms);
    if (r.force) j["force"] = true;
    return j;
  }
  nlohmann::json operator()(const Wait& r) const {
    nlohmann::json j = nlohmann::json::object();
    if (r.group) put_group(j, *r.group);
    if (!r.ids.empty()) j["ids"] = r.ids;
    if (r.progress) j["progress"] = true;
    return j;
  }
  nlohmann::json operator()(const Logs& r) const {
    nlohmann::json j = {{"id", r.id}};
    if (r.offset != 0) j["offset"] = r.offset;
    if (r.follow) j["follow"] = true;
    put(j, "attempt", r.attempt);
    return j;
  }
  nlohmann::json operator()(const Groups& r) const {
    nlohmann::json j = nlohmann::json::object();
    put(j, "user", r.user);
    return j;
  }
  nlohmann::json operator()(const GroupSet& r) const {
    nlohmann::json j = nlohmann::json::object();
    put_group(j, r.group);
    put(j, "limit", r.limit);
    put(j, "fail_fast", r.fail_fast);
    put(j, "first_success", r.first_success);
    put(j, "on_done", r.on_done);
    return j;
  }
  nlohmann::json operator()(const Pause& r) const {
    nlohmann::json j = nlohmann::json::object();
    put_group(j, r.group);
    return j;
  }
  nlohmann::json operator()(const Resume& r) const {
    nlohmann::json j = nlohmann::json::object();
    put_group(j, r.group);
    return j;
  }
  nlohmann::json operator()(const Reload&) const { return nlohmann::json::object(); }
  nlohmann::json operator()(const Reexec&) const { return nlohmann::json::object(); }
  nlohmann::json operator()(const Kill& r) const {
    nlohmann::json j = nlohmann::json::object();
    if (r.group) put_group(j, *r.group);
    if (!r.ids.empty()) j["ids"] = r.ids;
    j["signal"] = signal_text(r.signal);
    return j;
  }
  nlohmann::json operator()(const Restart& r) const {
    nlohmann::json j = nlohmann::json::object();
    if (r.group) put_group(j, *r.group);
    if (!r.ids.empty()) j["ids"] = r.ids;
    if (!r.states.empty()) j["states"] = state_names(r.states);
    return j;
  }
  nlohmann::json operator()(const Watch& r) const {
    nlohmann::json j = nlohmann::json::object();
    put(j, "user", r.user);
    return j;
  }
};

}  // namespace

std::string_view method_name(const Request& r) { return std::visit(MethodName{}, r); }

nlohmann::json to_params(const Request& r) { return std::visit(Params{}, r); }

}  // namespace tg::proto
