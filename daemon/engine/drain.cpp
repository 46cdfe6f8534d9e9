// Engine: the drain on SIGTERM/SIGINT and its escalation (DESIGN.md "Signals and lifecycle").
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "common/duration.h"
#include "daemon/engine/engine.h"

namespace tg::daemon {

namespace asio = boost::asio;

void Engine::drain(std::function<void()> on_idle) {
  ++drain_level_;
  notify_watches(std::nullopt);  // They show the daemon draining.
  if (drain_level_ == 1) {
    on_idle_ = std::move(on_idle);
    spdlog::info("draining: {} running get {} to finish; {} queued stay queued", running_.size(),
                 format_duration(config_.drain_timeout), scheduler_.queued());
    stop_hooks(false);  // Bounded by kill_grace: a hook does not hold the drain up for long.
    drain_timer_->arm(config_.drain_timeout, [this] {
      spdlog::info("drain timeout: stopping {} running task(s)", running_.size());
      stop_all(StopCause::kDrain, "interrupted: daemon drain timeout");
    });
  } else if (drain_level_ == 2) {
    spdlog::info("second signal: stopping {} running task(s) now", running_.size());
    drain_timer_->cancel();
    stop_hooks(false);
    stop_all(StopCause::kDrain, "interrupted: daemon stopped (second signal)");
  } else {
    spdlog::info("third signal: killing {} running task(s) now", running_.size());
    drain_timer_->cancel();
    std::vector<proto::TaskId> ids;
    for (auto& [id, r] : running_) {
      if (r.stop == StopCause::kNone) {
        r.stop = StopCause::kDrain;
        tasks_.at(id).reason = "interrupted: daemon killed (third signal)";
      }
      ids.push_back(id);
    }
    for (proto::TaskId id : ids) kill_now(tasks_.at(id));
    stop_hooks(true);
  }
  check_drained();
}

void Engine::stop_all(StopCause cause, const std::string& reason) {
  std::vector<proto::TaskId> ids;  // Not stop() while iterating: it may report an end at once.
  for (const auto& [id, r] : running_) {
    if (!r.stopped) ids.push_back(id);
  }
  for (proto::TaskId id : ids) {
    if (!running_.contains(id)) continue;
    Task& t = tasks_.at(id);
    t.reason = reason;
    stop(t, cause, config_.kill_grace);
  }
}

void Engine::check_drained() {
  if (drain_level_ == 0 && saving_stop_noted_ && running_.empty() && hooks_.empty() &&
      on_saving_stopped_) {
    stopped_ = true;  // As after a drain: nothing may keep the loop alive.
    executor_.shutdown();
    prune_timer_->cancel();
    begin_timer_->cancel();
    asio::post(ex_, std::exchange(on_saving_stopped_, nullptr));
    return;
  }
  if (drain_level_ == 0 || !running_.empty() || !hooks_.empty() || !on_idle_) return;
  drain_timer_->cancel();
  stopped_ = true;
  executor_.shutdown();    // Nothing may keep the loop alive once we are drained:
  prune_timer_->cancel();  // no timer of ours either.
  begin_timer_->cancel();
  retry_timer_->cancel();  // run() makes the last attempt to save.
  (void)flush();           // A failure is logged; run() tries once more and says so.
  auto done = std::exchange(on_idle_, nullptr);
  asio::post(ex_, std::move(done));
}

}  // namespace tg::daemon
