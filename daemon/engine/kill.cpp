// Engine: tgctl kill, a user's signal to running tasks (docs/usage.md "Signals to running
// tasks"). Not a stop: the tasks' state, reasons and timers stay as they are.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/signal_name.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"

namespace tg::daemon {

Result<proto::KillResult> Engine::kill(const Peer& peer, const proto::Kill& req) {
  proto::KillResult out;
  out.signal = signal_text(req.signal);
  if (req.group) {
    auto key = resolve(peer, *req.group);  // Another user's group: root only.
    if (key.has_error()) return key.error();
    const Group* g = find_group(*key);
    if (!g) return Error{Errc::kNotFound, "no group '" + req.group->name + "'"};
    out.group = g->key.name;
    for (const auto& [id, r] : running_) {
      const Task& t = tasks_.at(id);
      if (t.uid == g->key.uid && t.group == g->key.name) out.ids.push_back(id);
    }
  } else {
    // All or nothing, as cancel: another user's task is reported missing, not signalled.
    for (proto::TaskId id : req.ids) {
      auto it = tasks_.find(id);
      if (it == tasks_.end() || !visible(peer, it->second)) {
        return Error{Errc::kNotFound, "no task " + std::to_string(id)};
      }
    }
    for (proto::TaskId id : req.ids) {
      auto& list = running_.contains(id) ? out.ids : out.skipped;
      if (std::find(list.begin(), list.end(), id) == list.end()) list.push_back(id);
    }
  }
  std::sort(out.ids.begin(), out.ids.end());
  for (proto::TaskId id : out.ids) {
    log_for(tasks_.at(id)).info("task {} signal {} by uid={}", id, out.signal, peer.uid);
    executor_.deliver(id, req.signal);  // Its end, if it dies of it, is reported later.
  }
  return out;
}

}  // namespace tg::daemon
