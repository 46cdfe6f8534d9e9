#pragma once

#include <sys/types.h>

#include <unordered_set>
#include <vector>

namespace tg::daemon {

// Which of `pgids` still have a live member other than their leader (the process whose pid is
// the pgid). Zombies do not count: they have ended, only their parent has yet to reap them.
//
// Linux sends no event when a process group empties, and the members of a task's group that
// outlive its leader are not our children, so during a stop's grace this is how we learn that
// a task's whole tree is gone: one scan of /proc per poll, however many tasks are waiting.
[[nodiscard]] std::unordered_set<pid_t> process_groups_with_members(
    const std::vector<pid_t>& pgids);

}  // namespace tg::daemon
