#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <unordered_set>
#include <vector>

namespace tg::daemon {

// A task is its session. Its leader makes the session with setsid() before exec, and every
// process it starts stays in it unless it calls setsid() itself (the documented escape, which
// per-task cgroups close). Process groups are not enough: job control (bash's `set -m`) and any
// setpgid() make new ones, and a stop that reached only the leader's group left those running.
// So the stop signal, SIGKILL and the emptiness check all use this one rule: the live processes
// whose session id is the leader's pid. The session id stays reserved while any member lives,
// even after the leader is reaped, so it names the task's processes and nothing else.
//
// Linux has no call that signals a session and no event when one empties: both scan /proc,
// once per call however many sessions are asked about.

// Which of `sids` still have a live member other than their leader (the process whose pid is
// the sid). Zombies do not count: they have ended, only their parent has yet to reap them.
[[nodiscard]] std::unordered_set<pid_t> sessions_with_members(const std::vector<pid_t>& sids);

// Sends `sig` to every live process of the sessions `sids`, each followed by SIGCONT unless
// `sig` is SIGKILL or SIGCONT (so a stopped process acts on it, as under systemd): first to each
// leader's process group (or to the leader itself while it has not yet called setsid()), then to
// the members in other process groups, each held through a pidfd while its session is checked,
// so a recycled pid is never signalled. For SIGKILL the scan repeats while it finds new members
// (a process forking as the signal lands), a few times at most. Returns how many members were
// signalled outside the leaders' process groups. `then_cont` false: `sig` alone, as a user's
// `tgctl kill` asks (a SIGSTOP must stay in effect).
std::size_t signal_sessions(const std::vector<pid_t>& sids, int sig, bool then_cont = true);

// SIGKILLs what is left of session `sid` once its leader has exited on its own, `lived` after
// its clone. The same as signal_sessions({sid}, SIGKILL), made cheap for the usual case of a
// short task that left nothing: its members were all created after the leader, so while the
// kernel cannot have handed out every pid since (pid_max pids at no more than 10^5 forks a
// second), they hold pids between the leader's and the last one handed out; only those
// processes are read, pid by pid when they are few. A longer-lived task gets the whole scan.
// `others` are pids known not to be members (the leaders of other tasks: each leads a session
// of its own), which need not be read.
std::size_t kill_session_remains(pid_t sid, std::chrono::nanoseconds lived,
                                 const std::unordered_set<pid_t>& others = {});

}  // namespace tg::daemon
