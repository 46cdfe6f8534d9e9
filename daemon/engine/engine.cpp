// Engine: the coordinator. The task and group tables, transitions, the turn of the loop that
// starts what may start and commits the burst, and what follows a task's end.
#include "daemon/engine/engine.h"

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/log/log_fields.h"

namespace tg::daemon {

namespace asio = boost::asio;

Engine::Engine(asio::any_io_executor ex, Store& store, Executor& executor, UserDirectory& users,
               Clock& clock, Config config)
    : ex_(ex),
      store_(store),
      executor_(executor),
      users_(users),
      clock_(clock),
      config_(std::move(config)),
      started_at_(now_ms()),
      scheduler_(config_.max_running),
      begin_timer_(clock.make_timer()),
      retry_timer_(clock.make_timer()),
      drain_timer_(clock.make_timer()),
      prune_timer_(clock.make_timer()) {
  executor_.bind(*this);
  executor_.set_socket_path(config_.socket);
}

Engine::~Engine() {
  for (Waiter* w : waiters_) w->abort();
}

std::string Engine::log_path(proto::TaskId id) const {
  return (config_.state_dir / "logs" / (std::to_string(id) + ".log")).string();
}

void Engine::set_socket_path(std::string path) {
  config_.socket = std::move(path);
  executor_.set_socket_path(config_.socket);
}

Group* Engine::find_group(const GroupKey& key) {
  auto it = group_ids_.find(key);
  return it == group_ids_.end() ? nullptr : groups_by_id_.at(it->second).get();
}

const Group* Engine::find_group(const GroupKey& key) const {
  auto it = group_ids_.find(key);
  return it == group_ids_.end() ? nullptr : groups_by_id_.at(it->second).get();
}

Group& Engine::group_for(const GroupKey& key) {
  if (Group* g = find_group(key)) return *g;
  auto g = std::make_unique<Group>();
  g->id = next_group_id_++;
  g->key = key;
  Group& ref = *g;
  group_ids_.emplace(key, g->id);
  groups_by_id_.emplace(g->id, std::move(g));
  return ref;
}

void Engine::transition(Task& t, TaskEvent event, bool persist) {
  auto next = next_state(t.state, event);
  // The callers only send events their own bookkeeping allows: a refusal is a bug.
  assert(next.has_value());
  if (next.has_error()) {
    spdlog::critical("task {}: {}", t.id, next.error().message);
    return;
  }
  Group& g = group_of(t);
  g.counts.add(t.state, -1);
  g.counts.add(*next, +1);
  if (t.id >= g.run_start) {
    g.run_counts.add(t.state, -1);
    g.run_counts.add(*next, +1);
  }
  t.state = *next;
  if (proto::is_terminal(t.state)) {
    t.ended_at = now_ms();
    note_ended(t);
  }
  if (persist) mark_dirty(t);
  notify(t);
}

void Engine::mark_dirty(const Task& t) {
  dirty_.insert(t.id);
  request_turn();
}

void Engine::request_turn() {
  if (turn_posted_) return;
  turn_posted_ = true;
  asio::post(ex_, [this] { turn(); });
}

void Engine::turn() {
  turn_posted_ = false;
  // While draining, queued tasks wait for the next start; once saving has stopped, for the
  // next process (a start it cannot record could run twice).
  if (!draining() && !saving_stopped() && !starts_held_) {
    while (auto next = scheduler_.next()) start(tasks_.at(next->second));
  }
  // Starts and exits of this burst in one commit; a started child is on disk as running
  // before the loop does anything else.
  (void)flush(false);  // A failure is logged and retried by flush().
  const std::pair<std::int64_t, std::size_t> counts{scheduler_.running(), scheduler_.queued()};
  if (on_counts_changed_ && counts != last_counts_) {
    last_counts_ = counts;
    on_counts_changed_(status());
  }
}

Result<const proto::Env*> Engine::environment_of(const Task& t) {
  if (t.env_id == 0) return nullptr;
  if (t.env_id != cached_env_id_) {  // A batch shares one environment: load it once.
    auto loaded = store_.load_env(t.env_id);
    if (loaded.has_error()) return loaded.error();
    cached_env_ = std::move(*loaded);
    cached_env_id_ = t.env_id;
  }
  return &cached_env_;
}

void Engine::start(Task& t) {
  LaunchSpec spec;
  spec.id = t.id;
  spec.uid = t.uid;
  spec.gid = t.gid;
  spec.group = t.group;
  spec.argv = t.argv;
  spec.shell = t.shell;
  spec.cwd = t.cwd;
  spec.env_id = t.env_id;
  spec.log_path = log_path(t.id);
  spec.no_new_privs = config_.no_new_privs;  // As configured when the task starts.
  spec.max_log_bytes = log_cap(t);
  spec.log_keep = log_start(t);
  if (t.retries > 0) {  // Each attempt's output under its own header.
    spec.log_header = "=== taskgroupd: attempt " + std::to_string(t.attempt) + " of " +
                      std::to_string(t.retries + 1) + ", started " +
                      format_rfc3339(now_ms()).value_or("") + " ===\n";
  }
  group_of(t).run_ran = true;  // Its run has run a task: its end runs the on-done hook.
  auto env = environment_of(t);
  if (env.has_error()) return on_start_failed(t.id, env.error().message);
  spec.env = *env;
  executor_.start(spec);  // Reports on_started or on_start_failed.
}

std::int64_t Engine::log_cap(const Task& t) const {
  const std::int64_t mine = t.max_log_bytes, daemon = config_.max_log_size;
  const std::int64_t cap =
      mine == 0 || daemon == 0 ? std::max(mine, daemon) : std::min(mine, daemon);
  // Per attempt: the earlier attempts' output, kept in the same file, does not count.
  return cap == 0 ? 0 : cap + log_start(t);
}

void Engine::notify(const Task& t) {
  if (waiters_.empty()) return;
  const GroupId gid = group_ids_.at({t.uid, t.group});
  for (Waiter* w : waiters_) {
    if ((w->group && *w->group == gid) || w->log_task == t.id ||
        std::binary_search(w->ids.begin(), w->ids.end(), t.id) ||
        (w->watch && (!w->owner || *w->owner == t.uid))) {
      w->wake();
    }
  }
}

void Engine::notify_watches(std::optional<uid_t> uid) {
  for (Waiter* w : waiters_) {
    if (w->watch && (!uid || !w->owner || *w->owner == *uid)) w->wake();
  }
}

void Engine::watch(Waiter& w) { waiters_.push_back(&w); }

void Engine::unwatch(Waiter& w) { waiters_.remove(&w); }

void Engine::abort_waiters() {
  for (Waiter* w : waiters_) w->abort(handed_over_);
}

void Engine::after_end(Task& t, Group& g) {
  const bool failed = t.state == TaskState::kFailed || t.state == TaskState::kTimedOut;
  if (failed && g.fail_fast && !g.cancelling && !draining()) {
    proto::CancelResult ignored;
    log_for(t).info("task {} {}: fail-fast cancels group '{}'", t.id, proto::to_string(t.state),
                    g.key.name);
    cancel_group(g, t.uid, "cancelled: fail-fast after task " + std::to_string(t.id) + " failed",
                 config_.kill_grace, false, ignored);
  } else if (t.state == TaskState::kSucceeded && g.first_success && !g.cancelling && !draining()) {
    // The rest of the current tasks are not needed any more: stopped as by a group cancel
    // (their TERM cleanup runs within the grace), with the winner as the recorded cause.
    proto::CancelResult ignored;
    log_for(t).info("task {} succeeded: first-success cancels the rest of group '{}'", t.id,
                    g.key.name);
    cancel_group(g, t.uid, "goal reached: task " + std::to_string(t.id) + " succeeded",
                 config_.kill_grace, false, ignored);
  }
  settle_dependents(t);
  maybe_finish_cancel(g);
  maybe_run_hook(g);
  check_drained();
}

}  // namespace tg::daemon
