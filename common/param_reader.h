#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/protocol.h"

namespace tg::proto {

// Reads the fields of one JSON object strictly, without exceptions: the first problem is kept
// as an Error naming the field ("params.argv[2]: must be a string"), and finish() refuses keys
// that were never read. Every reader is a no-op once an error is recorded.
class ParamReader {
 public:
  ParamReader(const nlohmann::json& object, std::string path);

  void string(std::string_view key, std::string& out, bool required = false);
  void string(std::string_view key, std::optional<std::string>& out);
  void integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max,
               bool required = false);
  void integer(std::string_view key, std::optional<std::int64_t>& out, std::int64_t min,
               std::int64_t max);
  void integer(std::string_view key, std::optional<int>& out, int min, int max);
  void boolean(std::string_view key, bool& out);
  void boolean(std::string_view key, std::optional<bool>& out);
  void strings(std::string_view key, std::vector<std::string>& out, bool required = false);
  void env(std::string_view key, std::optional<Env>& out);
  void ids(std::string_view key, std::vector<TaskId>& out);
  void state(std::string_view key, std::optional<TaskState>& out);
  // A signal: a name ("USR1", "SIGUSR1"), or its number as a string or an integer (1..64).
  void signal(std::string_view key, int& out, bool required = false);
  // A state name, or an array of them (at least one); appended to `out`.
  void states(std::string_view key, std::vector<TaskState>& out);
  // An object of label values (kMaxLabels at most, keys is_valid_label_key, values up to
  // kMaxLabelValueBytes); null or absent leaves `out` as it is.
  void labels(std::string_view key, std::optional<Labels>& out);
  // A group name, validated against [A-Za-z0-9_.-]{1,64}.
  void group(std::string_view key, std::string& out, bool required = false);

  // The sub-object at key, or nullptr if absent (an error if present but not an object).
  const nlohmann::json* object(std::string_view key);
  // The array at key, or nullptr if absent.
  const nlohmann::json* array(std::string_view key);

  void fail(std::string message);
  [[nodiscard]] bool has(std::string_view key) const;
  [[nodiscard]] std::string where(std::string_view key) const;
  [[nodiscard]] bool ok() const { return !error_; }
  // Refuses unread keys; returns the first error, if any.
  [[nodiscard]] Result<void> finish();

 private:
  const nlohmann::json* find(std::string_view key);
  bool text_ok(std::string_view key, const std::string& s);

  const nlohmann::json& object_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
  std::optional<Error> error_;
};

}  // namespace tg::proto
