// Engine: a group's on-done hook, run once a run of the group has ended (docs/usage.md
// "On-done hooks"). The executor runs it; the engine decides when, and bounds it.
#include <signal.h>

#include <spdlog/spdlog.h>

#include "common/duration.h"
#include "daemon/engine/engine.h"
#include "daemon/log/log_fields.h"
#include "daemon/log/printable.h"

namespace tg::daemon {

void Engine::maybe_run_hook(Group& g) {
  if (g.on_done.empty() || !g.run_ran || g.busy()) return;
  g.run_ran = false;  // Once per run, whatever happens next.
  const proto::StateCounts& c = g.run_counts;
  if (draining() || stopped_ || handed_over_) {
    // The daemon is stopping: the hook would get SIGTERM at once.
    log_for(g).warn("group '{}' uid={} run ended while the daemon stops: on-done hook not run",
                    g.key.name, g.key.uid);
    return;
  }
  const HookId id = next_hook_id_++;
  HookSpec spec;
  spec.id = id;
  spec.uid = g.key.uid;
  spec.gid = g.owner_gid;
  spec.group = g.key.name;
  spec.command = g.on_done;
  spec.env = {
      {"TASKGROUPD_GROUP", g.key.name},
      {"TASKGROUPD_SUCCEEDED", std::to_string(c.succeeded)},
      // Every other end but a cancel counts as a failure: the run did not do its job.
      {"TASKGROUPD_FAILED", std::to_string(c.failed + c.timed_out + c.interrupted + c.lost)},
      {"TASKGROUPD_CANCELLED", std::to_string(c.cancelled)},
      {"TASKGROUPD_SOCKET", config_.socket}};
  spec.output_path =
      (config_.state_dir / "logs" / ("hook-" + std::to_string(id) + ".out")).string();
  spec.no_new_privs = config_.no_new_privs;
  HookRun& h = hooks_[id];
  h.group = g.key;
  h.timer = clock_.make_timer();
  h.timer->arm(config_.kill_grace, [this, id] { stop_hook(id); });
  log_for(g).info(
      "group '{}' uid={} run ended: on-done hook {} started (succeeded={} failed={} "
      "cancelled={})",
      g.key.name, g.key.uid, id, spec.env["TASKGROUPD_SUCCEEDED"], spec.env["TASKGROUPD_FAILED"],
      spec.env["TASKGROUPD_CANCELLED"]);
  executor_.run_hook(spec);  // May report on_hook_done (a failed start) before it returns.
}

void Engine::stop_hook(HookId id) {
  auto it = hooks_.find(id);
  if (it == hooks_.end() || it->second.termed) return;
  HookRun& h = it->second;
  h.termed = true;
  spdlog::info("on-done hook {} of group '{}' uid={}: SIGTERM, SIGKILL after {}", id, h.group.name,
               h.group.uid, format_duration(config_.kill_grace));
  h.timer->arm(config_.kill_grace, [this, id] { kill_hook(id); });
  executor_.signal_hook(id, SIGTERM);  // May report its end before it returns.
}

void Engine::kill_hook(HookId id) {
  auto it = hooks_.find(id);
  if (it == hooks_.end() || it->second.killed) return;
  HookRun& h = it->second;
  h.termed = h.killed = true;
  spdlog::info("on-done hook {} of group '{}' uid={}: SIGKILL", id, h.group.name, h.group.uid);
  h.timer->arm(kKillWait, [this, id] {
    auto found = hooks_.find(id);
    if (found == hooks_.end()) return;
    spdlog::error(
        "on-done hook {} of group '{}' uid={} still alive {} after SIGKILL; no longer "
        "waiting for it",
        id, found->second.group.name, found->second.group.uid, format_duration(kKillWait));
    hooks_.erase(found);
    check_drained();
  });
  executor_.signal_hook(id, SIGKILL);
}

void Engine::stop_hooks(bool kill) {
  std::vector<HookId> ids;  // Not while iterating: a signal may report an end at once.
  for (const auto& [id, h] : hooks_) ids.push_back(id);
  for (HookId id : ids) {
    if (kill) {
      kill_hook(id);
    } else {
      stop_hook(id);
    }
  }
}

void Engine::on_hook_done(HookId id, const HookOutcome& out) {
  auto it = hooks_.find(id);
  if (it == hooks_.end()) {  // Given up on after SIGKILL: it ended after all.
    spdlog::info("on-done hook {} ended after all", id);
    return;
  }
  const GroupKey key = it->second.group;
  hooks_.erase(it);  // Cancels its timer.
  const FieldLogger log(LogFields{std::nullopt, key.name, key.uid});
  if (out.start_error) {
    log.error("group '{}' uid={} on-done hook {} could not start: {}", key.name, key.uid, id,
              printable(*out.start_error));
  } else {
    const bool ok = out.status.exit_code == 0;
    const std::string how = out.status.exit_code ? "exit=" + std::to_string(*out.status.exit_code)
                                                 : "signal=" + std::to_string(*out.status.signal);
    const std::string shown = printable(out.output, kMaxHookOutput);
    const std::string more = out.output_bytes > static_cast<std::int64_t>(out.output.size())
                                 ? " (first " + std::to_string(out.output.size()) + " of " +
                                       std::to_string(out.output_bytes) + " bytes)"
                                 : "";
    if (ok) {
      log.info("group '{}' uid={} on-done hook {} ended {} output{}: \"{}\"", key.name, key.uid, id,
               how, more, shown);
    } else {
      log.warn("group '{}' uid={} on-done hook {} ended {} output{}: \"{}\"", key.name, key.uid, id,
               how, more, shown);
    }
  }
  check_drained();
}

}  // namespace tg::daemon
