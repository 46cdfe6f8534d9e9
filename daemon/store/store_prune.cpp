// The Store's pruning: finished tasks dropped by age and count, a bounded slice at a time.
#include <algorithm>
#include <limits>
#include <tuple>
#include <vector>

#include "daemon/store/store.h"

namespace tg::daemon {

Result<Store::PruneCutoff> Store::prune_cutoff(TimeMs ended_before, std::int64_t keep) {
  // By age: everything that ended before `ended_before` (nothing if that is not positive).
  PruneCutoff cut{ended_before > 0 ? ended_before - 1 : 0,
                  ended_before > 0 ? std::numeric_limits<TaskId>::max() : 0};
  // By count: the newest task beyond `keep`, and everything older.
  auto st = Stmt::prepare(db_.get(), R"sql(
      SELECT ended_at_ms, id FROM tasks WHERE ended_at_ms > 0
      ORDER BY ended_at_ms DESC, id DESC LIMIT 1 OFFSET ?1
  )sql");
  if (st.has_error()) return st.error();
  st->bind(1, keep);
  auto row = st->step();
  if (row.has_error()) return row.error();
  if (*row) {
    const PruneCutoff by_count{st->int64(0), st->int64(1)};
    if (std::tie(by_count.ended_at, by_count.id) > std::tie(cut.ended_at, cut.id)) cut = by_count;
  }
  st->reset();
  return cut;
}

Result<std::vector<TaskId>> Store::prune_slice(const PruneCutoff& upto, std::int64_t max_rows) {
  last_prune_steps_ = 0;
  auto txn = begin(false);
  if (txn.has_error()) return txn.error();
  if (txn.has_error()) return txn.error();
  prune_slice_.bind(1, upto.ended_at).bind(2, upto.id).bind(3, max_rows);
  std::vector<TaskId> ids;
  std::vector<std::int64_t> env_ids;
  for (;;) {
    auto row = prune_slice_.step();
    if (row.has_error()) return row.error();
    if (!*row) break;
    ids.push_back(prune_slice_.int64(0));
    if (const std::int64_t env = prune_slice_.int64(1); env > 0) env_ids.push_back(env);
  }
  last_prune_steps_ += prune_slice_.take_vm_steps();
  prune_slice_.reset();
  std::sort(env_ids.begin(), env_ids.end());
  env_ids.erase(std::unique(env_ids.begin(), env_ids.end()), env_ids.end());
  for (const std::int64_t env : env_ids) {
    if (auto r = drop_env_.bind(1, env).run(); r.has_error()) return r.error();
    last_prune_steps_ += drop_env_.take_vm_steps();
  }
  if (auto r = commit(*txn); r.has_error()) return r.error();
  return ids;
}

Result<std::vector<TaskId>> Store::prune(TimeMs ended_before, std::int64_t keep,
                                         std::int64_t max_rows) {
  auto upto = prune_cutoff(ended_before, keep);
  if (upto.has_error()) return upto.error();
  return prune_slice(*upto, max_rows);
}

}  // namespace tg::daemon
