#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/protocol.h"
#include "common/unique_fd.h"

namespace tg::daemon {

// What a task's cgroup used, read when it has ended. Each value is absent where the kernel does
// not account it (memory.peak needs the memory controller, and Linux 5.19).
struct CgroupUsage {
  std::optional<std::int64_t> cpu_user_us;
  std::optional<std::int64_t> cpu_system_us;
  std::optional<std::int64_t> memory_peak_bytes;
};

// The cgroup2 directory taskgroupd runs its tasks in (docs/usage.md "Isolation"): one child
// cgroup per task, `task-ID`, directly under root(). Found once at start by open(); every
// method is a few small reads or writes of cgroupfs files, cheap enough for the loop. Owned by
// LocalExecutor; used on the loop's thread only. Methods about a task whose cgroup is gone
// return an error or nothing; none throws.
class CgroupTree {
 public:
  // The tree the config's `cgroup` setting names:
  // - "off": none (nullopt): tasks are kept together by sessions only.
  // - "auto": the cgroup systemd delegated to this service (Delegate=yes: the unit's cgroup
  //   carries the trusted.delegate or user.delegate attribute), if any; the daemon then moves
  //   itself into the leaf `daemon` of it (cgroup2 allows processes only in leaves once
  //   controllers are enabled). No delegation: nullopt.
  // - "/path": that directory, which must be a writable cgroup2 directory (else an error).
  [[nodiscard]] static Result<std::optional<CgroupTree>> open(const std::string& setting);
  // `root` used as it is (the tests' own directory): must be a writable cgroup2 directory.
  [[nodiscard]] static Result<CgroupTree> at(std::filesystem::path root);

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  [[nodiscard]] std::filesystem::path path(proto::TaskId id) const;

  // Makes the task's cgroup (an existing one is reused) and opens its cgroup.procs for writing:
  // the child writes "0" there before anything else, so that its command, and everything the
  // command starts, runs inside.
  [[nodiscard]] Result<UniqueFd> create(proto::TaskId id) const;
  // Sends `sig` to every process in the task's cgroup (sub-cgroups included), each followed by
  // SIGCONT when `then_cont` (and sig is not SIGKILL or SIGCONT), repeating while a pass finds
  // processes the last one did not (a fork as the signal lands). A pid is signalled only
  // through a pidfd opened while it was listed and confirmed listed after: never a process that
  // merely reused a pid. Returns how many processes it signalled.
  std::size_t signal(proto::TaskId id, int sig, bool then_cont = true) const;
  // SIGKILL to every process in the cgroup, forks racing it included (cgroup.kill).
  [[nodiscard]] Result<void> kill(proto::TaskId id) const;
  // Whether any process lives in it (cgroup.events "populated"); nullopt if it cannot be read
  // (the cgroup is gone). Zombies do not count.
  [[nodiscard]] std::optional<bool> populated(proto::TaskId id) const;
  [[nodiscard]] CgroupUsage usage(proto::TaskId id) const;
  // Removes the (empty) cgroup. An error if it still has processes (EBUSY) or is gone.
  [[nodiscard]] Result<void> remove(proto::TaskId id) const;
  // The task cgroups that exist now (an earlier daemon's leftovers at start).
  [[nodiscard]] std::vector<proto::TaskId> tasks() const;
  // Kills everything in the task's cgroup, waits up to `wait` for it to empty, and removes it.
  // True if it had processes to kill; false if it had none, or there was no such cgroup. An
  // error if it did not empty in time (it is left in place).
  [[nodiscard]] Result<bool> kill_and_remove(proto::TaskId id,
                                             std::chrono::milliseconds wait) const;

 private:
  explicit CgroupTree(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;  // Constant after construction.
};

// Whether `dir` is a directory of a cgroup2 file system.
[[nodiscard]] bool is_cgroup2(const std::filesystem::path& dir);

}  // namespace tg::daemon
