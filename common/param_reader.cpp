#include "common/param_reader.h"

#include <limits>

#include "common/signal_name.h"

namespace tg::proto {

ParamReader::ParamReader(const nlohmann::json& object, std::string path)
    : object_(object), path_(std::move(path)) {
  if (!object_.is_object()) fail(path_ + ": must be an object");
}

void ParamReader::fail(std::string message) {
  if (!error_) error_ = Error{Errc::kInvalidParams, std::move(message)};
}

bool ParamReader::has(std::string_view key) const {
  return object_.is_object() && object_.contains(key);
}

std::string ParamReader::where(std::string_view key) const {
  return path_ + "." + std::string(key);
}

const nlohmann::json* ParamReader::find(std::string_view key) {
  if (error_ || !object_.is_object()) return nullptr;
  auto it = object_.find(key);
  if (it == object_.end()) return nullptr;
  seen_.emplace(key);
  return &*it;
}

bool ParamReader::text_ok(std::string_view key, const std::string& s) {
  if (s.find('\0') != std::string::npos) {
    fail(where(key) + ": must not contain NUL bytes");
    return false;
  }
  return true;
}

void ParamReader::string(std::string_view key, std::string& out, bool required) {
  const auto* j = find(key);
  if (!j) {
    if (required && !error_) fail(where(key) + ": is required");
    return;
  }
  if (!j->is_string()) return fail(where(key) + ": must be a string");
  if (text_ok(key, j->get_ref<const std::string&>())) out = j->get<std::string>();
}

void ParamReader::signal(std::string_view key, int& out, bool required) {
  const auto* j = find(key);
  if (!j) {
    if (required && !error_) fail(where(key) + ": is required");
    return;
  }
  std::optional<int> sig;
  if (j->is_string()) {
    sig = signal_from_text(j->get_ref<const std::string&>());
  } else if (j->is_number_integer()) {
    const bool small = j->is_number_unsigned()
                           ? j->get<std::uint64_t>() <= 64
                           : j->get<std::int64_t>() >= 1 && j->get<std::int64_t>() <= 64;
    if (small) sig = signal_from_text(std::to_string(j->get<std::int64_t>()));
  } else {
    return fail(where(key) + ": must be a signal name or number");
  }
  if (!sig) {
    // Quoted only when short: the reply repeats it.
    const std::string shown = j->is_string() && j->get_ref<const std::string&>().size() <= 32
                                  ? " '" + j->get<std::string>() + "'"
                                  : "";
    return fail(where(key) + ": unknown signal" + shown +
                " (a name such as USR1, SIGUSR1, HUP, STOP, CONT, or a number 1-64)");
  }
  out = *sig;
}

void ParamReader::string(std::string_view key, std::optional<std::string>& out) {
  if (!has(key) || (object_.is_object() && object_.at(key).is_null())) {
    (void)find(key);  // Mark null as seen.
    return;
  }
  std::string s;
  string(key, s);
  if (ok()) out = std::move(s);
}

void ParamReader::integer(std::string_view key, std::int64_t& out, std::int64_t min,
                          std::int64_t max, bool required) {
  const auto* j = find(key);
  if (!j) {
    if (required && !error_) fail(where(key) + ": is required");
    return;
  }
  std::int64_t v = 0;
  if (j->is_number_integer()) {
    if (j->is_number_unsigned() &&
        j->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return fail(where(key) + ": out of range");
    }
    v = j->get<std::int64_t>();
  } else {
    return fail(where(key) + ": must be an integer");
  }
  if (v < min || v > max) {
    return fail(where(key) + ": must be between " + std::to_string(min) + " and " +
                std::to_string(max));
  }
  out = v;
}

void ParamReader::integer(std::string_view key, std::optional<std::int64_t>& out, std::int64_t min,
                          std::int64_t max) {
  if (!has(key)) return;
  if (object_.at(key).is_null()) {
    (void)find(key);
    return;
  }
  std::int64_t v = 0;
  integer(key, v, min, max, true);
  if (ok()) out = v;
}

void ParamReader::integer(std::string_view key, std::optional<int>& out, int min, int max) {
  std::optional<std::int64_t> v;
  integer(key, v, min, max);
  if (ok() && v) out = static_cast<int>(*v);
}

void ParamReader::boolean(std::string_view key, bool& out) {
  const auto* j = find(key);
  if (!j) return;
  if (!j->is_boolean()) return fail(where(key) + ": must be true or false");
  out = j->get<bool>();
}

void ParamReader::boolean(std::string_view key, std::optional<bool>& out) {
  if (!has(key)) return;
  if (object_.at(key).is_null()) {
    (void)find(key);
    return;
  }
  bool v = false;
  boolean(key, v);
  if (ok()) out = v;
}

void ParamReader::strings(std::string_view key, std::vector<std::string>& out, bool required) {
  const auto* j = find(key);
  if (!j) {
    if (required && !error_) fail(where(key) + ": is required");
    return;
  }
  if (!j->is_array()) return fail(where(key) + ": must be an array of strings");
  std::vector<std::string> v;
  v.reserve(j->size());
  for (std::size_t i = 0; i < j->size(); ++i) {
    const auto& e = (*j)[i];
    const std::string at = std::string(key) + "[" + std::to_string(i) + "]";
    if (!e.is_string()) return fail(where(at) + ": must be a string");
    if (!text_ok(at, e.get_ref<const std::string&>())) return;
    v.push_back(e.get<std::string>());
  }
  out = std::move(v);
}

void ParamReader::env(std::string_view key, std::optional<Env>& out) {
  const auto* j = find(key);
  if (!j || j->is_null()) return;
  if (!j->is_object()) return fail(where(key) + ": must be an object of strings");
  Env env;
  for (const auto& [name, value] : j->items()) {
    const std::string at = std::string(key) + "." + name;
    if (name.empty() || name.find('=') != std::string::npos) {
      return fail(where(at) + ": invalid variable name");
    }
    if (!text_ok(at, name)) return;
    if (!value.is_string()) return fail(where(at) + ": must be a string");
    if (!text_ok(at, value.get_ref<const std::string&>())) return;
    env.emplace(name, value.get<std::string>());
  }
  out = std::move(env);
}

void ParamReader::ids(std::string_view key, std::vector<TaskId>& out) {
  const auto* j = find(key);
  if (!j) return;
  if (!j->is_array()) return fail(where(key) + ": must be an array of task ids");
  for (const auto& e : *j) {
    if (!e.is_number_integer() || e.get<std::int64_t>() <= 0) {
      return fail(where(key) + ": task ids are positive integers");
    }
    out.push_back(e.get<TaskId>());
  }
}

void ParamReader::states(std::string_view key, std::vector<TaskState>& out) {
  const auto* j = find(key);
  if (!j || j->is_null()) return;
  const auto add = [&](const nlohmann::json& e) {
    if (!e.is_string()) return fail(where(key) + ": must be a state name or an array of them");
    const std::string& name = e.get_ref<const std::string&>();
    const TaskState st = task_state_from_string(name);
    if (st == TaskState::kInvalid) {
      constexpr std::size_t kShown = 32;  // The reply quotes it; it may be a megabyte long.
      return fail(where(key) + ": unknown state '" +
                  (name.size() > kShown ? name.substr(0, kShown) + "…" : name) + "'");
    }
    out.push_back(st);
  };
  if (!j->is_array()) return add(*j);
  if (j->empty()) return fail(where(key) + ": must not be empty");
  for (const auto& e : *j) {
    add(e);
    if (!ok()) return;
  }
}

void ParamReader::labels(std::string_view key, std::optional<Labels>& out) {
  const auto* j = find(key);
  if (!j || j->is_null()) return;
  if (!j->is_object()) return fail(where(key) + ": must be an object of strings");
  if (j->size() > kMaxLabels) {
    return fail(where(key) + ": at most " + std::to_string(kMaxLabels) + " labels a task (got " +
                std::to_string(j->size()) + ")");
  }
  Labels labels;
  for (const auto& [name, value] : j->items()) {
    if (!is_valid_label_key(name)) {
      const std::string shown = name.size() <= kMaxLabelKeyBytes
                                    ? "'" + name + "'"
                                    : std::to_string(name.size()) + " bytes";
      return fail(where(key) + ": label keys are 1-64 characters of A-Z a-z 0-9 _ . - (got " +
                  shown + ")");
    }
    const std::string at = std::string(key) + "." + name;
    if (!value.is_string()) return fail(where(at) + ": must be a string");
    const std::string& v = value.get_ref<const std::string&>();
    if (!text_ok(at, v)) return;
    if (v.size() > kMaxLabelValueBytes) {
      return fail(where(at) + ": label values are at most " + std::to_string(kMaxLabelValueBytes) +
                  " bytes (got " + std::to_string(v.size()) + ")");
    }
    labels.emplace(name, v);
  }
  out = std::move(labels);
}

void ParamReader::group(std::string_view key, std::string& out, bool required) {
  std::string name;
  const bool present = has(key);
  string(key, name, required);
  if (!ok() || !present) return;
  if (!is_valid_group_name(name)) {
    return fail(where(key) + ": group names are 1-64 characters of A-Z a-z 0-9 _ . -");
  }
  out = std::move(name);
}

const nlohmann::json* ParamReader::object(std::string_view key) {
  const auto* j = find(key);
  if (j && !j->is_object()) {
    fail(where(key) + ": must be an object");
    return nullptr;
  }
  return j;
}

const nlohmann::json* ParamReader::array(std::string_view key) {
  const auto* j = find(key);
  if (j && !j->is_array()) {
    fail(where(key) + ": must be an array");
    return nullptr;
  }
  return j;
}

Result<void> ParamReader::finish() {
  if (!error_ && object_.is_object()) {
    for (const auto& [key, value] : object_.items()) {
      if (!seen_.contains(key)) {
        fail(where(key) + ": unknown parameter");
        break;
      }
    }
  }
  if (error_) return *error_;
  return {};
}

}  // namespace tg::proto
