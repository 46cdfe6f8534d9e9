// Engine: handing running tasks over to the next program of this pid (a re-exec).
#include <algorithm>

#include <spdlog/spdlog.h>

#include "daemon/engine/engine.h"

namespace tg::daemon {

void Engine::hold_starts(bool held) {
  starts_held_ = held;
  if (!held) request_turn();  // What waited may start now.
}

bool Engine::ready_to_hand_over() const {
  // A stop in progress lives in memory only (its grace, its cause): let it end first. Each
  // is bounded by its grace and kKillWait.
  for (const auto& [id, r] : running_) {
    if (r.stop != StopCause::kNone) return false;
  }
  if (!hooks_.empty()) return false;  // A hook is a child of this program: bounded, let it end.
  return executor_.settled();
}

std::vector<proto::TaskId> Engine::hand_over() {
  handed_over_ = true;
  stopped_ = true;  // No timer may re-arm.
  for (auto& [id, r] : running_) {
    if (r.timeout) r.timeout->cancel();  // The next program arms it again from the start time.
  }
  retry_timer_->cancel();
  drain_timer_->cancel();
  prune_timer_->cancel();
  begin_timer_->cancel();  // Begin times are stored: the next program arms it again.  // A pass cut
                           // short starts again after the exec.
  executor_.hand_over();
  std::vector<proto::TaskId> ids;
  ids.reserve(running_.size());
  for (const auto& [id, r] : running_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  spdlog::info("handing {} running task(s) over to the re-executed program", ids.size());
  return ids;
}

}  // namespace tg::daemon
