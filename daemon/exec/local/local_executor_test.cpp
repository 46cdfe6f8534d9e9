// LocalExecutor's side of a re-exec (docs/design.md "Re-exec"): adopt() takes over a child of
// this process that the previous program started, and only such a child.
#include "daemon/exec/local/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <doctest/doctest.h>

#include "daemon/exec/local/child.h"
#include "daemon/exec/local/sys_compat.h"

namespace tg::daemon {

namespace {

// Records what the executor reports.
class Recorder final : public ExecutorEvents {
 public:
  void on_started(proto::TaskId id, const RunHandle&) override {
    events.push_back("started " + s(id));
  }
  void on_start_failed(proto::TaskId id, const std::string&) override {
    events.push_back("start_failed " + s(id));
  }
  void on_exited(proto::TaskId id, const ExitStatus& st) override {
    events.push_back("exited " + s(id) + " " +
                     (st.exit_code ? "code " + s(*st.exit_code) : "signal " + s(*st.signal)));
  }
  void on_tree_gone(proto::TaskId id, const ResourceUsage&) override {
    events.push_back("gone " + s(id));
  }
  void on_log_limit(proto::TaskId id, std::int64_t) override {
    events.push_back("log_limit " + s(id));
  }
  void on_hook_done(HookId id, const HookOutcome&) override {
    events.push_back("hook_done " + s(static_cast<std::int64_t>(id)));
  }
  std::vector<std::string> events;

 private:
  static std::string s(std::int64_t v) { return std::to_string(v); }
};

// Runs the loop until `n` events have come, for at most 10 s.
void run_until(boost::asio::io_context& ioc, const Recorder& r, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (r.events.size() < n && std::chrono::steady_clock::now() < deadline) {
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(20));
  }
}

// An executor on a loop of its own, reporting to a Recorder.
struct Rig {
  Rig() { exec.bind(events); }
  boost::asio::io_context ioc;
  CachedUsers users;
  LocalExecutor exec{ioc.get_executor(), users, 022};
  Recorder events;
};

// A child in a session of its own that pauses until signalled; returns once it is set up.
pid_t start_pausing_child() {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGTERM, SIG_DFL);  // Not the test framework's handler.
    ::setsid();                  // A task leads its own session, as spawn_child() makes it.
    ::close(ready[0]);
    ::close(ready[1]);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 0);
  ::close(ready[0]);
  return child;
}

}  // namespace

TEST_CASE("LocalExecutor::adopt: a child that ended during the exec reports its exit code") {
  Rig rig;
  auto& [ioc, users, exec, events] = rig;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(5);
  siginfo_t info{};  // Ended, not reaped: what the exec leaves for the next program.
  REQUIRE(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == 0);
  const RunHandle run{child, process_start_time(child), current_boot_id()};
  REQUIRE(run.start_time != 0);

  CHECK(exec.adopt(7, run, "/nonexistent/7.log", 0));
  run_until(ioc, events, 2);
  CHECK(events.events == std::vector<std::string>{"exited 7 code 5", "gone 7"});
  CHECK(::waitpid(child, nullptr, WNOHANG) < 0);  // Reaped by the executor.
}

TEST_CASE("LocalExecutor::adopt: a running child is watched until it ends; others are refused") {
  Rig rig;
  auto& [ioc, users, exec, events] = rig;
  const pid_t child = start_pausing_child();
  const RunHandle run{child, process_start_time(child), current_boot_id()};
  REQUIRE(run.start_time != 0);

  // Not this process: another start time, another boot, or not our child at all.
  CHECK_FALSE(exec.adopt(1, RunHandle{child, run.start_time + 1, run.boot_id}, "", 0));
  CHECK_FALSE(exec.adopt(1, RunHandle{child, run.start_time, "another-boot"}, "", 0));
  const pid_t parent = ::getppid();
  CHECK_FALSE(exec.adopt(1, RunHandle{parent, process_start_time(parent), run.boot_id}, "", 0));
  CHECK(events.events.empty());

  REQUIRE(exec.adopt(2, run, "/nonexistent/2.log", 0));
  CHECK(exec.settled());
  exec.signal(2, SIGTERM);  // Stopped as any task: through its session.
  run_until(ioc, events, 2);
  CHECK(events.events == std::vector<std::string>{"exited 2 signal 15", "gone 2"});
}

namespace {

// Kills the child if the test ends while it is still ours to reap (a failed REQUIRE): a paused
// child holding the test's output open would keep its runner waiting.
struct ChildGuard {
  ~ChildGuard() {
    if (::waitpid(pid, nullptr, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      (void)::waitpid(pid, nullptr, 0);
    }
  }
  pid_t pid;
};

// Makes the loop report a descriptor ready that is not: `a` and `b` become readable together,
// so one epoll_wait hands the loop both; `a`'s handler closes `b` and calls `reuse`, whose
// first new descriptor takes `b`'s freed reactor slot, with the readiness still queued in it.
// (Boost.Asio 1.81's epoll reactor; in the daemon, a task's exit handler that closed a
// connection and started an on-done hook did the same.)
class QueuedReadiness {
 public:
  explicit QueuedReadiness(boost::asio::io_context& ioc) : a_(ioc) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    a_.assign(fds[0]);
    a_write_ = fds[1];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    b_.emplace(ioc, fds[0]);
    b_write_ = fds[1];
  }
  ~QueuedReadiness() {
    ::close(a_write_);
    ::close(b_write_);
  }
  void fire(std::function<void()> reuse) {
    a_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                  [this, reuse = std::move(reuse)](boost::system::error_code) {
                    b_.reset();
                    reuse();
                  });
    b_->async_wait(boost::asio::posix::descriptor_base::wait_read, [](auto) {});
    REQUIRE(::write(a_write_, "x", 1) == 1);
    REQUIRE(::write(b_write_, "x", 1) == 1);
  }

 private:
  boost::asio::posix::stream_descriptor a_;
  std::optional<boost::asio::posix::stream_descriptor> b_;
  int a_write_ = -1;
  int b_write_ = -1;
};

// Runs the loop until nothing is ready (both pipes' events have been handled).
void run_ready(boost::asio::io_context& ioc) {
  for (int i = 0; i < 5; ++i) {
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

TEST_CASE("LocalExecutor: a pidfd reported readable before its child exited is waited on again") {
  Rig rig;
  auto& [ioc, users, exec, events] = rig;
  const pid_t child = start_pausing_child();
  const ChildGuard guard{child};

  // The premise, on a bare descriptor: the queued readiness completes a running child's wait.
  {
    std::optional<boost::asio::posix::stream_descriptor> pidfd;
    bool woken = false;
    QueuedReadiness ready(ioc);
    ready.fire([&] {
      pidfd.emplace(ioc, ::pidfd_open(child, 0));
      pidfd->async_wait(boost::asio::posix::descriptor_base::wait_read,
                        [&](boost::system::error_code ec) { woken = !ec; });
    });
    run_ready(ioc);
    REQUIRE_MESSAGE(woken, "the loop no longer reports such readiness: provoke it another way");
  }

  // The executor, starting to watch the same running child at that moment.
  QueuedReadiness ready(ioc);
  ready.fire([&] {
    CHECK(exec.adopt(3, RunHandle{child, process_start_time(child), current_boot_id()},
                     "/nonexistent/3.log", 0));
  });
  run_ready(ioc);
  CHECK(events.events.empty());  // Not taken for an exit...
  CHECK(::kill(child, 0) == 0);  // ...nor killed as one.
  exec.signal(3, SIGTERM);
  run_until(ioc, events, 2);
  CHECK(events.events == std::vector<std::string>{"exited 3 signal 15", "gone 3"});
}

}  // namespace tg::daemon
