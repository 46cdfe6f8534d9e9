// The Store's side of workflows: dependencies as stored, and the attempts of retried tasks.

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "common/codec.h"
#include "daemon/store/store.h"

namespace tg::daemon {

std::string Store::encode_ids(const std::vector<TaskId>& ids) {
  // "" rather than "[]": nearly every task has no dependency, and the empty text costs nothing.
  return ids.empty() ? std::string() : proto::dump_json(nlohmann::json(ids));
}

std::optional<std::vector<TaskId>> Store::decode_ids(const std::string& text) {
  if (text.empty()) return std::vector<TaskId>{};
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return std::nullopt;
  std::vector<TaskId> ids;
  ids.reserve(j.size());
  for (const auto& e : j) {
    if (!e.is_number_integer()) return std::nullopt;
    ids.push_back(e.get<TaskId>());
  }
  return ids;
}

Result<void> Store::load_attempts(std::vector<Task>& tasks) {
  auto st = Stmt::prepare(db_.get(), R"sql(
      SELECT task_id, n, state, exit_code, signal, reason, started_at_ms, ended_at_ms, log_end
      FROM attempts ORDER BY task_id, n
  )sql");
  if (st.has_error()) return st.error();
  for (;;) {
    auto row = st->step();
    if (row.has_error()) return row.error();
    if (!*row) break;
    const TaskId id = st->int64(0);
    auto it = std::lower_bound(tasks.begin(), tasks.end(), id,
                               [](const Task& t, TaskId want) { return t.id < want; });
    if (it == tasks.end() || it->id != id) continue;  // Its task is gone; the trigger missed it.
    Attempt a;
    a.n = static_cast<int>(st->int64(1));
    a.state = proto::task_state_from_string(st->text(2));
    if (a.state == TaskState::kInvalid) {
      return Error{Errc::kIo, "task " + std::to_string(id) + ": attempt " + std::to_string(a.n) +
                                  " has an unknown state"};
    }
    if (auto v = st->opt_int64(3)) a.exit_code = static_cast<int>(*v);
    if (auto v = st->opt_int64(4)) a.signal = static_cast<int>(*v);
    a.reason = st->text(5);
    a.started_at = st->int64(6);
    a.ended_at = st->int64(7);
    a.log_end = st->int64(8);
    it->attempts.push_back(std::move(a));
  }
  return {};
}

Result<void> Store::write_attempts(const Task& t) {
  // A task has at most kMaxRetries earlier attempts, and only retried tasks have any: writing
  // them all again (INSERT OR IGNORE) is cheaper than tracking which are new.
  for (const Attempt& a : t.attempts) {
    insert_attempt_.bind(1, t.id)
        .bind(2, std::int64_t{a.n})
        .bind(3, proto::to_string(a.state))
        .bind(4, a.exit_code ? std::optional<std::int64_t>(*a.exit_code) : std::nullopt)
        .bind(5, a.signal ? std::optional<std::int64_t>(*a.signal) : std::nullopt)
        .bind(6, a.reason)
        .bind(7, a.started_at)
        .bind(8, a.ended_at)
        .bind(9, a.log_end);
    if (auto r = insert_attempt_.run(); r.has_error()) return r.error();
  }
  return {};
}

}  // namespace tg::daemon
