#include "daemon/exec/local/task_session.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <doctest/doctest.h>

namespace tg::daemon {

namespace {

// Polls (there is no event for it) until session `sid` has no live member, for at most 5 s.
bool empties(pid_t sid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (sessions_with_members({sid}).contains(sid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Waits for its children, then exits 5. A leader that exited first would orphan its member's
// stopped process group, and the kernel would end the member with SIGHUP before we signal it.
void reap_then_exit_5(int) {
  while (::wait(nullptr) > 0) {
  }
  ::_exit(5);
}

// Polls until `pid` shows as stopped in /proc/PID/stat, for at most 5 s.
bool stops(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  for (;;) {
    std::ifstream in(path);
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'T') {
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

TEST_CASE("sessions_with_members: a session outlives its leader until its last member ends") {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  // The leader: its own session and group, a child that waits forever, then it exits.
  const pid_t leader = ::fork();
  REQUIRE(leader >= 0);
  if (leader == 0) {
    ::setsid();
    if (::fork() == 0) {
      ::close(ready[0]);
      ::close(ready[1]);  // Tells the test the member exists.
      ::pause();
      ::_exit(0);
    }
    ::_exit(7);
  }
  ::close(ready[1]);
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 0);  // EOF: both the leader and the member closed it.
  ::close(ready[0]);
  // The leader is our zombie (unreaped) from here on, like a lingering task's.
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(leader), &info, WEXITED | WNOWAIT) == 0);
  CHECK(info.si_status == 7);

  CHECK(sessions_with_members({leader}).contains(leader));
  CHECK(sessions_with_members({}).empty());

  REQUIRE(::kill(-leader, SIGKILL) == 0);  // The member (and the zombie, which ignores it).
  CHECK(empties(leader));
  REQUIRE(::waitpid(leader, nullptr, 0) == leader);
}

TEST_CASE("sessions_with_members: a session whose members are all zombies is empty") {
  const pid_t leader = ::fork();
  REQUIRE(leader >= 0);
  if (leader == 0) {
    ::setsid();
    const pid_t member = ::fork();
    if (member == 0) ::_exit(0);  // A zombie of the leader's, never reaped while it lives...
    ::pause();                    // ...and the leader lives, so the group has no live member
    ::_exit(0);                   // except the leader itself, which does not count.
  }
  siginfo_t info{};
  // Nothing but the leader (not counted) and, soon, a zombie member.
  CHECK(empties(leader));
  REQUIRE(::kill(leader, SIGKILL) == 0);
  REQUIRE(::waitid(P_PID, static_cast<id_t>(leader), &info, WEXITED) == 0);
}

TEST_CASE(
    "signal_sessions reaches members that left the leader's process group, and only those count") {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  // The leader: its own session, and a member that moves to a process group of its own (as
  // bash's job control does) and ignores TERM.
  const pid_t leader = ::fork();
  REQUIRE(leader >= 0);
  if (leader == 0) {
    ::signal(SIGTERM, SIG_DFL);  // Not doctest's crash handler, which would report a failure.
    ::setsid();
    if (::fork() == 0) {
      ::setpgid(0, 0);
      ::signal(SIGTERM, SIG_IGN);
      ::close(ready[0]);
      ::close(ready[1]);
      ::pause();
      ::_exit(0);
    }
    ::close(ready[0]);
    ::close(ready[1]);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 0);  // Both set up.
  ::close(ready[0]);
  CHECK(sessions_with_members({leader}).contains(leader));

  // TERM: the leader dies of it (its group), the member in its own group gets it and ignores it.
  CHECK(signal_sessions({leader}, SIGTERM) == 1);
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(leader), &info, WEXITED | WNOWAIT) == 0);
  CHECK(info.si_status == SIGTERM);
  CHECK(sessions_with_members({leader}).contains(leader));  // The member lives on.

  // SIGKILL reaches it although the leader is a zombie and its group holds nobody else.
  CHECK(signal_sessions({leader}, SIGKILL) == 1);
  CHECK(empties(leader));
  CHECK(signal_sessions({leader}, SIGKILL) == 0);  // Nothing left to signal.
  REQUIRE(::waitpid(leader, nullptr, 0) == leader);
}

TEST_CASE("kill_session_remains kills a short task's leftovers in other process groups") {
  for (const auto lived : {std::chrono::milliseconds(1), std::chrono::milliseconds(3'600'000)}) {
    CAPTURE(lived.count());  // The pid-range shortcut, then the whole scan.
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t leader = ::fork();
    REQUIRE(leader >= 0);
    if (leader == 0) {
      ::setsid();
      if (::fork() == 0) {
        ::setpgid(0, 0);
        ::close(ready[0]);
        ::close(ready[1]);
        ::pause();
        ::_exit(0);
      }
      ::_exit(0);  // Exits on its own, leaving the member behind.
    }
    ::close(ready[1]);
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 0);
    ::close(ready[0]);
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(leader), &info, WEXITED | WNOWAIT) == 0);
    CHECK(sessions_with_members({leader}).contains(leader));
    CHECK(kill_session_remains(leader, lived) == 1);
    CHECK(empties(leader));
    REQUIRE(::waitpid(leader, nullptr, 0) == leader);
  }
}

TEST_CASE("signal_sessions continues stopped processes after the stop signal, so they act on it") {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  // The leader and a member in a process group of its own, both exiting 5 from a TERM handler
  // (as a shell's TERM trap would), both stopped by SIGSTOP before the stop signal comes.
  const pid_t leader = ::fork();
  REQUIRE(leader >= 0);
  if (leader == 0) {
    ::signal(SIGTERM, reap_then_exit_5);
    ::setsid();
    const pid_t member = ::fork();
    if (member == 0) {
      ::setpgid(0, 0);
      ::close(ready[0]);
      ::close(ready[1]);
      ::raise(SIGSTOP);
      ::_exit(0);
    }
    ::close(ready[0]);
    (void)!::write(ready[1], &member, sizeof member);
    ::close(ready[1]);
    ::raise(SIGSTOP);
    ::_exit(0);
  }
  ::close(ready[1]);
  pid_t member = 0;
  REQUIRE(::read(ready[0], &member, sizeof member) == sizeof member);
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 0);  // Both set up.
  ::close(ready[0]);
  REQUIRE(stops(leader));
  REQUIRE(stops(member));

  CHECK(signal_sessions({leader}, SIGTERM) == 1);  // The member, outside the leader's group.
  siginfo_t info{};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (::waitid(P_PID, static_cast<id_t>(leader), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK_MESSAGE(info.si_pid == leader, "the stopped leader did not act on its TERM");
  CHECK(info.si_status == 5);  // Its handler ran: continued, not killed.
  CHECK_MESSAGE(empties(leader), "the stopped member did not act on its TERM");
  (void)signal_sessions({leader}, SIGKILL);  // Whatever is left after a failure.
  REQUIRE(::waitpid(leader, nullptr, 0) == leader);
}

}  // namespace tg::daemon
