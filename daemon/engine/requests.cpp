// Engine: queries, group settings, identity checks and the JSON views of tasks and groups.
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "common/version.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"

namespace tg::daemon {

const std::string& Engine::user_name(uid_t uid) const {
  // Cached: listing 100 000 tasks must not read /etc/passwd 100 000 times.
  auto it = user_names_.find(uid);
  if (it != user_names_.end()) return it->second;
  std::string name = std::to_string(uid);
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found) name = pw.pw_name;
  return user_names_.emplace(uid, std::move(name)).first->second;
}

Result<uid_t> Engine::resolve_user(const Peer& peer, const std::string& user) const {
  uid_t uid = 0;
  const char* end = user.data() + user.size();
  if (auto [p, ec] = std::from_chars(user.data(), end, uid); ec != std::errc() || p != end) {
    std::vector<char> buf(16384);
    struct passwd pw {};
    struct passwd* found = nullptr;
    if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
      return Error{Errc::kNotFound, "no user '" + user + "'"};
    }
    uid = pw.pw_uid;
  }
  if (!peer.root() && uid != peer.uid) {
    return Error{Errc::kPermissionDenied, "only root may act on another user's groups"};
  }
  return uid;
}

Result<GroupKey> Engine::resolve(const Peer& peer, const proto::GroupRef& ref) const {
  uid_t uid = peer.uid;
  if (ref.user) {
    auto u = resolve_user(peer, *ref.user);
    if (u.has_error()) return u.error();
    uid = *u;
  }
  return GroupKey{uid, ref.name};
}

proto::TaskInfo Engine::info(const Task& t) const {
  proto::TaskInfo i;
  i.id = t.id;
  i.group = t.group;
  i.uid = t.uid;
  i.user = user_name(t.uid);
  i.state = t.state;
  i.argv = t.argv;
  i.cwd = t.cwd;
  i.shell = t.shell;
  i.priority = t.priority;
  i.timeout_ms = t.timeout.count();
  i.requeue = t.requeue;
  if (t.pid != 0) i.pid = t.pid;
  i.exit_code = t.exit_code;
  i.signal = t.signal;
  if (!t.reason.empty()) i.reason = t.reason;
  i.submitted_at = format_rfc3339(t.submitted_at);
  i.started_at = format_rfc3339(t.started_at);
  i.ended_at = format_rfc3339(t.ended_at);
  i.log_path = log_path(t.id);
  return i;
}

proto::GroupInfo Engine::info(const Group& g) const {
  proto::GroupInfo i;
  i.name = g.key.name;
  i.uid = g.key.uid;
  i.user = user_name(g.key.uid);
  i.limit = g.limit;
  i.fail_fast = g.fail_fast;
  i.paused = g.paused;
  i.cancelling = g.cancelling.has_value();
  i.counts = g.counts;
  i.last_cancel = g.last_cancel;
  return i;
}

Result<void> Engine::save(const Group& g) {
  dirty_groups_.insert(g.id);
  return flush();
}

Result<proto::ListResult> Engine::list(const Peer& peer, const proto::List& req) const {
  std::optional<GroupKey> key;
  std::optional<uid_t> owner;
  if (req.group) {
    auto k = resolve(peer, *req.group);
    if (k.has_error()) return k.error();
    key = *k;
  } else if (req.user) {
    auto u = resolve_user(peer, *req.user);
    if (u.has_error()) return u.error();
    owner = *u;
  } else if (!peer.root()) {
    owner = peer.uid;
  }
  proto::ListResult out;
  const auto matches = [&](const Task& t) {
    if (key && (t.uid != key->uid || t.group != key->name)) return false;
    if (owner && t.uid != *owner) return false;
    return !req.state || t.state == *req.state;
  };
  // With a limit, the newest matches (walking back from the highest id), shown oldest first.
  if (req.limit) {
    for (auto it = tasks_.rbegin(); it != tasks_.rend(); ++it) {
      if (static_cast<std::int64_t>(out.tasks.size()) >= *req.limit) break;
      if (matches(it->second)) out.tasks.push_back(info(it->second));
    }
    std::reverse(out.tasks.begin(), out.tasks.end());
  } else {
    for (const auto& [id, t] : tasks_) {
      if (matches(t)) out.tasks.push_back(info(t));
    }
  }
  return out;
}

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
  scheduler_.set_group_limit(g.id, g.limit);
  log_for(g).info("group '{}' uid={} set limit={} fail_fast={}", g.key.name, g.key.uid, g.limit,
                  g.fail_fast);
  request_turn();  // A raised limit starts more at once.
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

Result<Engine::LogSource> Engine::log_source(const Peer& peer, proto::TaskId id) const {
  auto it = tasks_.find(id);
  if (it == tasks_.end() || !visible(peer, it->second)) {
    return Error{Errc::kNotFound, "no task " + std::to_string(id)};
  }
  const Task& t = it->second;
  return LogSource{log_path(id),
                   proto::is_terminal(t.state) || (t.state == TaskState::kQueued && draining())};
}

void Engine::apply_config(const Config& config) {
  if (config.socket != config_.socket || config.state_dir != config_.state_dir) {
    spdlog::warn("reload: socket and state_dir changes take effect only after a restart");
  }
  const std::string socket = config_.socket;
  const auto state_dir = config_.state_dir;
  const unsigned task_umask = config_.task_umask;
  const bool retention_changed =
      config.retention != config_.retention || config.retention_count != config_.retention_count;
  config_ = config;
  config_.socket = socket;
  config_.state_dir = state_dir;
  config_.task_umask = task_umask;
  scheduler_.set_max_running(config_.max_running);
  store_.set_durable(config_.durable);
  spdlog::info("config applied: max_running={} drain_timeout={}ms kill_grace={}ms durable={}",
               config_.max_running, config_.drain_timeout.count(), config_.kill_grace.count(),
               config_.durable);
  request_turn();           // Raising max_running starts more at once; lowering only defers.
  if (retention_changed) {  // Not an hour later: whoever lowered it wants the space now.
    boost::asio::post(ex_, [this] {
      if (!stopped_) prune();
    });
  }
}

}  // namespace tg::daemon
