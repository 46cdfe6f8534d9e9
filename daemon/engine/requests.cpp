// Engine: queries, group settings, status, waits and reload.
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "common/version.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"
#include "daemon/log/printable.h"

namespace tg::daemon {

Result<proto::ShowResult> Engine::show(const Peer& peer, const proto::Show& req) const {
  auto it = tasks_.find(req.id);
  // Another user's task is reported as missing: its existence is not theirs to learn.
  if (it == tasks_.end() || !visible(peer, it->second)) {
    return Error{Errc::kNotFound, "no task " + std::to_string(req.id)};
  }
  return proto::ShowResult{info(it->second)};
}

Result<proto::GroupsResult> Engine::groups(const Peer& peer, const proto::Groups& req) const {
  std::optional<uid_t> owner;
  if (req.user) {
    auto u = resolve_user(peer, *req.user);
    if (u.has_error()) return u.error();
    owner = *u;
  } else if (!peer.root()) {
    owner = peer.uid;
  }
  proto::GroupsResult out;
  for (const auto& [key, id] : group_ids_) {
    if (!owner || key.uid == *owner) out.groups.push_back(info(*groups_by_id_.at(id)));
  }
  return out;
}

Result<proto::GroupInfo> Engine::group_set(const Peer& peer, const proto::GroupSet& req) {
  auto key = resolve(peer, req.group);
  if (key.has_error()) return key.error();
  // Groups are created on first use or explicitly, like this.
  Group& g = group_for(*key);
  if (req.limit) g.limit = *req.limit;
  if (req.fail_fast) g.fail_fast = *req.fail_fast;
  if (req.first_success) g.first_success = *req.first_success;
  if (req.on_done) g.on_done = *req.on_done;
  scheduler_.set_group_limit(g.id, g.limit);
  log_for(g).info("group '{}' uid={} set limit={} fail_fast={} first_success={} on_done={}",
                  g.key.name, g.key.uid, g.limit, g.fail_fast, g.first_success,
                  g.on_done.empty() ? "none" : "set");
  if (req.on_done && !req.on_done->empty()) {  // A command, like argv: at debug only.
    log_for(g).debug("group '{}' uid={} on_done '{}'", g.key.name, g.key.uid,
                     printable(*req.on_done));
  }
  request_turn();  // A raised limit starts more at once.
  notify_watches(g.key.uid);
  if (auto r = save(g); r.has_error()) {
    return not_saved("the settings of group '" + g.key.name + "'", r.error());
  }
  return info(g);
}

Result<proto::GroupInfo> Engine::set_paused(const Peer& peer, const proto::GroupRef& ref,
                                            bool paused) {
  auto key = resolve(peer, ref);
  if (key.has_error()) return key.error();
  Group& g = group_for(*key);
  g.paused = paused;
  scheduler_.set_paused(g.id, paused);
  log_for(g).info("group '{}' uid={} {}", g.key.name, g.key.uid, paused ? "paused" : "resumed");
  request_turn();
  notify_watches(g.key.uid);
  if (auto r = save(g); r.has_error()) {
    return not_saved(std::string(paused ? "pausing" : "resuming") + " group '" + g.key.name + "'",
                     r.error());
  }
  return info(g);
}

proto::StatusResult Engine::status() const {
  proto::StatusResult s;
  s.version = kVersion;
  s.protocol = kProtocolVersion;
  s.pid = ::getpid();
  s.uptime_ms = now_ms() - started_at_;
  s.max_running = config_.max_running;
  s.running = static_cast<std::int64_t>(running_.size());
  s.queued = static_cast<std::int64_t>(scheduler_.queued());
  s.draining = draining();
  s.socket = config_.socket;
  s.state_dir = config_.state_dir.string();
  if (!config_.config_path.empty()) s.config_path = config_.config_path.string();
  s.config_error = config_error_;
  s.store_error = store_.write_failure();
  s.isolation = executor_.capabilities().isolation;
  return s;
}

Result<void> Engine::prepare_wait(const Peer& peer, const proto::Wait& req, Waiter& w) {
  if (req.group) {
    auto key = resolve(peer, *req.group);
    if (key.has_error()) return key.error();
    const Group* g = find_group(*key);
    if (!g) return Error{Errc::kNotFound, "no group '" + req.group->name + "'"};
    w.group = g->id;
    return {};
  }
  for (proto::TaskId id : req.ids) {
    auto it = tasks_.find(id);
    if (it == tasks_.end() || !visible(peer, it->second)) {
      return Error{Errc::kNotFound, "no task " + std::to_string(id)};
    }
  }
  w.ids = req.ids;
  std::sort(w.ids.begin(), w.ids.end());
  w.ids.erase(std::unique(w.ids.begin(), w.ids.end()), w.ids.end());
  return {};
}

proto::WaitResult Engine::wait_progress(const Waiter& w, TimeMs started_at) const {
  proto::WaitResult out;
  out.elapsed_ms = now_ms() - started_at;
  if (w.group) {
    // A group's wait covers its current run: the tasks since it last went from idle to busy.
    out.counts = groups_by_id_.at(*w.group)->run_counts;
  } else {
    for (proto::TaskId id : w.ids) {
      if (auto it = tasks_.find(id); it != tasks_.end()) out.counts.add(it->second.state);
    }
  }
  out.all_succeeded = out.counts.succeeded == out.counts.total();
  return out;
}

Result<Engine::LogSource> Engine::log_source(const Peer& peer, proto::TaskId id,
                                             std::optional<std::int64_t> attempt) const {
  auto it = tasks_.find(id);
  if (it == tasks_.end() || !visible(peer, it->second)) {
    return Error{Errc::kNotFound, "no task " + std::to_string(id)};
  }
  const Task& t = it->second;
  LogSource src;
  src.path = log_path(id);
  src.ended = proto::is_terminal(t.state) || (t.state == TaskState::kQueued && draining());
  if (!attempt) return src;
  const auto n = static_cast<std::size_t>(*attempt);
  if (n > t.attempts.size() + 1 || (n == t.attempts.size() + 1 && t.state == TaskState::kQueued)) {
    return Error{Errc::kNotFound, "task " + std::to_string(id) + " has no attempt " +
                                      std::to_string(n) + " yet (it is at attempt " +
                                      std::to_string(t.attempt) + ")"};
  }
  src.begin = n == 1 ? 0 : t.attempts[n - 2].log_end;
  if (n <= t.attempts.size()) {
    src.end = t.attempts[n - 1].log_end;
    src.ended = true;  // An earlier attempt writes no more.
  }
  return src;
}

void Engine::apply_config(const Config& config) {
  if (config.socket != config_.socket || config.state_dir != config_.state_dir ||
      config.cgroup != config_.cgroup) {
    spdlog::warn("reload: socket, state_dir and cgroup changes take effect only after a restart");
  }
  const std::string socket = config_.socket;
  const auto state_dir = config_.state_dir;
  const unsigned task_umask = config_.task_umask;
  const std::string cgroup = config_.cgroup;
  const bool retention_changed =
      config.retention != config_.retention || config.retention_count != config_.retention_count;
  config_ = config;
  config_.socket = socket;
  config_.state_dir = state_dir;
  config_.task_umask = task_umask;
  config_.cgroup = cgroup;
  scheduler_.set_max_running(config_.max_running);
  store_.set_durable(config_.durable);
  spdlog::info(
      "config applied: max_running={} drain_timeout={}ms kill_grace={}ms durable={} "
      "no_new_privs={} max_log_size={}",
      config_.max_running, config_.drain_timeout.count(), config_.kill_grace.count(),
      config_.durable, config_.no_new_privs, config_.max_log_size);
  request_turn();           // Raising max_running starts more at once; lowering only defers.
  if (retention_changed) {  // Not an hour later: whoever lowered it wants the space now.
    boost::asio::post(ex_, [this] {
      if (!stopped_) prune();
    });
  }
}

}  // namespace tg::daemon
