// Engine: what reaches the store when (flush), group settings, and pruning finished tasks.
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "daemon/engine/engine.h"

namespace tg::daemon {

namespace asio = boost::asio;

Result<void> Engine::flush(bool sync) {
  if (dirty_.empty() && cancelled_queued_.empty() && dirty_groups_.empty()) {
    executor_.release_started();  // Nothing is pending: every start is saved.
    return {};
  }
  std::vector<const Task*> changed;
  changed.reserve(dirty_.size());
  for (proto::TaskId id : dirty_) {
    if (auto it = tasks_.find(id); it != tasks_.end()) changed.push_back(&it->second);
  }
  std::vector<GroupRow> groups;
  for (GroupId gid : dirty_groups_) {
    const Group& g = *groups_by_id_.at(gid);
    groups.push_back({g.key.uid, g.key.name, g.limit, g.fail_fast, g.paused, g.last_cancel,
                      g.first_success, g.on_done});
  }
  if (saving_stopped()) return Error{Errc::kIo, *store_.write_failure()};  // Said once.
  if (auto r = store_.update(changed, cancelled_queued_, groups, sync); r.has_error()) {
    if (saving_stopped()) {
      note_saving_stopped();
      return r.error();
    }
    // Memory stays ahead; everything still dirty is retried in a second.
    spdlog::error("saving {} task and {} group change(s) failed: {}; will retry", changed.size(),
                  groups.size(), r.error().message);
    flush_failed_ = true;
    if (!retry_timer_->armed() && !stopped_) {  // After the drain, run() makes the last try.
      retry_timer_->arm(std::chrono::seconds(1), [this] {
        (void)flush();  // Logs, and arms the next retry, if it fails again.
      });
    }
    return r.error();
  }
  if (std::exchange(flush_failed_, false)) {
    spdlog::info("saved {} task and {} group change(s) after the earlier failure", changed.size(),
                 groups.size());
  }
  dirty_.clear();
  cancelled_queued_.clear();
  dirty_groups_.clear();
  executor_.release_started();  // Their starts are saved: the tasks may run their commands.
  return {};
}

Error Engine::not_saved(const std::string& what, const Error& why) const {
  if (saving_stopped()) {
    // kOutcomeUnknown for the request whose commit met the failed fsync, kIo after it.
    return Error{why.code == Errc::kOutcomeUnknown ? Errc::kOutcomeUnknown : Errc::kIo,
                 what + " took effect in this run of the daemon, but saving has stopped (" +
                     *store_.write_failure() +
                     "): after the restart it may be as if it never happened"};
  }
  return Error{Errc::kIo,
               what + " took effect but is not yet saved: " + why.message + "; will retry"};
}

void Engine::note_saving_stopped() {
  if (std::exchange(saving_stop_noted_, true)) return;
  retry_timer_->cancel();
  // Tasks started in the failed commit's turn wait for a save that will not come: they end
  // without running (failed in memory; queued still on disk, so the next process runs them).
  executor_.abandon_started();
  spdlog::critical(
      "saving stopped: {}. Nothing more is saved or started in this run of the daemon; {} "
      "running task(s) go on, and the daemon exits (status 75) for a restart once none is left",
      *store_.write_failure(), running_.size());
  if (on_counts_changed_) on_counts_changed_(status());  // systemd's STATUS= says so.
  check_drained();
}

void Engine::prune() {
  // Finding the cutoff walks retention_count index entries: once per pass, not per slice.
  auto upto = store_.prune_cutoff(now_ms() - config_.retention.count(), config_.retention_count);
  if (upto.has_error()) {
    spdlog::error("pruning finished tasks failed: {}", upto.error().message);
    return arm_prune_timer();
  }
  prune_upto_ = *upto;  // A pass still in progress goes on to the new cutoff.
  if (!prune_posted_) prune_slice();
}

void Engine::prune_slice() {
  // Rows, and log unlinks, per turn of the loop: a millisecond or so between requests.
  constexpr std::int64_t kSlice = 256;
  prune_posted_ = false;
  if (stopped_ || !prune_upto_) return;
  auto pruned = store_.prune_slice(*prune_upto_, kSlice);
  if (pruned.has_error()) {
    spdlog::error("pruning finished tasks failed: {}", pruned.error().message);
    prune_upto_.reset();
    return arm_prune_timer();
  }
  for (proto::TaskId id : *pruned) forget(id);
  pruned_in_pass_ += static_cast<std::int64_t>(pruned->size());
  spdlog::debug("prune slice: {} task(s), {} sqlite steps", pruned->size(),
                store_.last_prune_steps());
  if (static_cast<std::int64_t>(pruned->size()) == kSlice) {
    prune_posted_ = true;
    asio::post(ex_, [this] { prune_slice(); });  // More to do: yield to requests first.
    return;
  }
  if (pruned_in_pass_ > 0) spdlog::info("pruned {} finished task(s)", pruned_in_pass_);
  pruned_in_pass_ = 0;
  prune_upto_.reset();
  arm_prune_timer();
}

void Engine::arm_prune_timer() {
  if (stopped_) return;
  prune_timer_->arm(std::chrono::hours(1), [this] {  // Replaces one already armed.
    if (!stopped_) prune();
  });
}

void Engine::forget(proto::TaskId id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  Group& g = group_of(it->second);
  g.counts.add(it->second.state, -1);
  if (id >= g.run_start) g.run_counts.add(it->second.state, -1);
  unindex_task(it->second);              // Its key may be used again.
  (void)::unlink(log_path(id).c_str());  // Already gone is fine.
  tasks_.erase(it);
}

Result<void> Engine::save(const Group& g) {
  dirty_groups_.insert(g.id);
  return flush();
}

}  // namespace tg::daemon
