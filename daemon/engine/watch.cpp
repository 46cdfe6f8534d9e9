// Engine: what a watch (tgctl top) shows, bounded, and the recently ended tasks it lists.
#include <algorithm>
#include <tuple>

#include "common/version.h"
#include "daemon/engine/engine.h"

namespace tg::daemon {

namespace {

// Appends `id` to a list of the last kWatchMaxEnded ended tasks.
void push_ended(std::deque<proto::TaskId>& list, proto::TaskId id) {
  list.push_back(id);
  while (list.size() > proto::kWatchMaxEnded) list.pop_front();
}

// The command as one line of at most kWatchCommandBytes, cut on a UTF-8 boundary.
std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
    if (out.size() > proto::kWatchCommandBytes) break;
  }
  if (out.size() > proto::kWatchCommandBytes) {
    std::size_t cut = proto::kWatchCommandBytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;
    out.resize(cut);
  }
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return out;
}

}  // namespace

void Engine::note_ended(const Task& t) {
  push_ended(ended_, t.id);
  push_ended(ended_by_uid_[t.uid], t.id);
}

Result<void> Engine::prepare_watch(const Peer& peer, const proto::Watch& req, Waiter& w) {
  w.watch = true;
  if (req.user) {
    auto uid = resolve_user(peer, *req.user);
    if (uid.has_error()) return uid.error();
    w.owner = *uid;
  } else if (!peer.root()) {
    w.owner = peer.uid;
  }
  return {};
}

proto::WatchTask Engine::watch_task(const Task& t) const {
  proto::WatchTask out;
  out.id = t.id;
  out.group = t.group;
  out.uid = t.uid;
  out.user = user_name(t.uid);
  out.state = t.state;
  out.command = command_line(t.argv);
  out.started_at = format_rfc3339(t.started_at);
  out.ended_at = format_rfc3339(t.ended_at);
  out.exit_code = t.exit_code;
  out.signal = t.signal;
  if (!t.reason.empty()) out.reason = t.reason;
  // cpu_ms stays null: live usage of a running task (its cgroup's cpu.stat) is not read yet.
  return out;
}

proto::WatchFrame Engine::watch_frame(const Waiter& w) const {
  proto::WatchFrame f;
  f.daemon.version = kVersion;
  f.daemon.max_running = config_.max_running;
  f.daemon.running = static_cast<std::int64_t>(running_.size());
  f.daemon.queued = static_cast<std::int64_t>(scheduler_.queued());
  f.daemon.draining = draining();
  const auto sees = [&w](uid_t uid) { return !w.owner || *w.owner == uid; };

  // Groups: busy ones (or paused, or cancelling) first, then by owner and name; the first
  // kWatchMaxGroups of them.
  std::vector<const Group*> groups;
  for (const auto& [id, g] : groups_by_id_) {
    if (sees(g->key.uid)) groups.push_back(g.get());
  }
  f.groups_total = static_cast<std::int64_t>(groups.size());
  const auto order = [](const Group* g) {
    const bool active = g->busy() || g->paused || g->cancelling;
    return std::tuple<bool, uid_t, const std::string&>(!active, g->key.uid, g->key.name);
  };
  const std::size_t shown = std::min(groups.size(), proto::kWatchMaxGroups);
  std::partial_sort(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(shown),
                    groups.end(),
                    [&order](const Group* a, const Group* b) { return order(a) < order(b); });
  for (std::size_t i = 0; i < shown; ++i) {
    const Group& g = *groups[i];
    f.groups.push_back({g.key.name, g.key.uid, user_name(g.key.uid), g.limit, g.paused,
                        g.cancelling.has_value(), g.run_counts});
  }

  // Running tasks: at most max_running of them; the oldest kWatchMaxRunning.
  std::vector<proto::TaskId> running;
  for (const auto& [id, r] : running_) {
    if (sees(tasks_.at(id).uid)) running.push_back(id);
  }
  std::sort(running.begin(), running.end());
  f.running_total = static_cast<std::int64_t>(running.size());
  if (running.size() > proto::kWatchMaxRunning) running.resize(proto::kWatchMaxRunning);
  for (proto::TaskId id : running) f.running.push_back(watch_task(tasks_.at(id)));

  const std::deque<proto::TaskId>* ended = &ended_;
  if (w.owner) {
    auto it = ended_by_uid_.find(*w.owner);
    if (it == ended_by_uid_.end()) return f;
    ended = &it->second;
  }
  for (auto it = ended->rbegin(); it != ended->rend(); ++it) {
    if (auto t = tasks_.find(*it); t != tasks_.end()) f.ended.push_back(watch_task(t->second));
  }
  return f;
}

}  // namespace tg::daemon
