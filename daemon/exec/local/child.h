#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace tg::daemon {

// What to run and how. Paths and strings are used as given; nothing is looked up in the
// daemon's own environment.
struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is resolved against PATH in `env` if it has no '/'.
  std::string cwd;
  std::vector<std::string> env;  // "NAME=value".
  // Created by the child (O_NOFOLLOW, must be a regular file, mode 0600, given to the
  // credentials' uid); becomes stdout and stderr. stdin is /dev/null.
  std::string log_path;
  std::int64_t log_keep = 0;  // Bytes of an existing log to keep (a retry's earlier attempts).
  std::string log_header;     // Written to the log before the command runs.
  unsigned umask = 022;       // The task's umask (not the daemon's private 077).
  // Credentials to switch to; unset: run as the daemon. Set only when the daemon is root.
  struct Credentials {
    uid_t uid;
    gid_t gid;
    std::vector<gid_t> groups;
  };
  std::optional<Credentials> credentials;
  // A StartGate's wait_fd(): the child's last step before exec is to wait until the gate is
  // released. -1: no gate, the child execs as soon as it is ready.
  int gate_fd = -1;
  // PR_SET_NO_NEW_PRIVS before exec: setuid, setgid and file capabilities grant nothing.
  bool no_new_privs = false;
  // The task's cgroup.procs, open for writing (CgroupTree::create), or -1: the child's first
  // step writes "0" there, so that its command and all it starts run in the task's cgroup.
  int cgroup_procs_fd = -1;
};

// Holds children just before their exec until the daemon has saved their start (exactly-once
// starts, docs/design.md "Spawning"). Every child given wait_fd() waits, set up and ready, for
// release(); if the gate goes away unreleased (the daemon died, or closed it), they exit 127
// without running their command. A pipe: released = one byte readable, never read; abandoned
// = hung up. So any number of children wait on one gate, and the kernel closes the daemon's
// end for it when it dies, kill -9 included.
class StartGate {
 public:
  [[nodiscard]] static Result<StartGate> open();
  [[nodiscard]] int wait_fd() const { return wait_.get(); }
  // Lets every child of this gate exec, and closes it: a gate is released once.
  void release();

 private:
  StartGate(UniqueFd wait, UniqueFd release)
      : wait_(std::move(wait)), release_(std::move(release)) {}
  UniqueFd wait_;     // Read end; children get a copy (above fd 2, close-on-exec).
  UniqueFd release_;  // Write end; children close their copy before they wait.
};

// A child between clone() and its exec: it runs on memory held here, shared with the daemon,
// until its exec (or its death) proves it is done with it. Free it only after poll() said
// the child exec'd, or after the child has exited.
class Launch {
 public:
  ~Launch();
  Launch(const Launch&) = delete;
  Launch& operator=(const Launch&) = delete;

  // Reads the child's report from `report_fd` (Spawned::report) without blocking. nullopt:
  // nothing yet. A value: exec'd (no error), or the step that failed.
  [[nodiscard]] std::optional<Result<void>> poll(int report_fd);

  struct Bundle;  // child.cpp

 private:
  friend struct LaunchAccess;
  Launch() = default;
  std::unique_ptr<Bundle> bundle_;
  std::optional<Result<void>> outcome_;
};

// A started child: the leader of its own session and process group (pgid == pid) once it
// has got as far as setsid(); before that it is in the daemon's process group.
struct Spawned {
  pid_t pid = 0;
  UniqueFd pidfd;                // Readable once the child has exited; the caller reaps it.
  std::uint64_t start_time = 0;  // /proc/PID/stat starttime, to recognise the pid later.
  std::unique_ptr<Launch> launch;
  // Non-blocking read end of the child's report pipe: EOF at its exec, a failure record if a
  // step before exec failed. Readable at the latest when the child has exited.
  UniqueFd report;
};

// Starts the child without a shell and without waiting for its exec: a failure in a step
// before exec (log, credentials, cwd, its gate abandoned, exec itself) arrives later through
// launch->poll(), and the child then exits 127. Only fds 0-2 reach the command; its
// signal mask is empty and every signal has its default action. An Error here means no
// child exists.
[[nodiscard]] Result<Spawned> spawn_child(const SpawnSpec& spec);

// Resolves a command name like execvp would, but against the given PATH value.
[[nodiscard]] std::optional<std::string> find_executable(const std::string& name,
                                                         const std::string& path_value);

// /proc/PID/stat starttime; 0 if the process is gone.
[[nodiscard]] std::uint64_t process_start_time(pid_t pid);
// How long ago a process with that start time started (0 if /proc/uptime cannot be read).
[[nodiscard]] std::chrono::nanoseconds process_age(std::uint64_t start_time);

// This boot's id (/proc/sys/kernel/random/boot_id, no newline); "" if it cannot be read.
// Start times count from boot: with the boot id, pid + start time name one process for good.
[[nodiscard]] std::string current_boot_id();

}  // namespace tg::daemon
