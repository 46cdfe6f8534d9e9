#include "daemon/sys/handover.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include <doctest/doctest.h>

namespace tg::daemon {

namespace {

// A memfd holding `text`, as a damaged handover would arrive.
int memfd_with(const std::string& text) {
  const int fd = ::memfd_create("handover-test", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  return fd;
}

}  // namespace

TEST_CASE("Handover: what is written is read back, from a sealed memfd the exec keeps") {
  Handover h;
  h.listen_fd = 7;
  h.socket_path = "/run/taskgroupd/control.sock";
  h.owned_socket = h.socket_path;
  h.lock_fd = 8;
  h.task_umask = 027;
  h.watchdog_usec = 15'000'000;
  h.tasks = {3, 5, 8};
  auto fd = write_handover(h);
  REQUIRE_FALSE(fd.has_error());
  CHECK((::fcntl(*fd, F_GETFD) & FD_CLOEXEC) != 0);  // exec_handover() clears it at the end.
  const int seals = ::fcntl(*fd, F_GET_SEALS);
  CHECK((seals & F_SEAL_WRITE) != 0);
  CHECK(::write(*fd, "x", 1) < 0);  // Sealed: nothing can change it on the way.
  auto back = read_handover(*fd);   // Closes it.
  REQUIRE_FALSE(back.has_error());
  CHECK(back->listen_fd == 7);
  CHECK(back->socket_path == "/run/taskgroupd/control.sock");
  CHECK(back->owned_socket == h.socket_path);
  CHECK(back->lock_fd == 8);
  CHECK(back->task_umask == 027);
  CHECK(back->watchdog_usec == 15'000'000);
  CHECK(back->tasks == std::vector<std::int64_t>{3, 5, 8});
}

TEST_CASE("Handover: another version, a damaged one or a missing field is refused, saying why") {
  auto other = read_handover(memfd_with(R"({"version":2})"));
  REQUIRE(other.has_error());
  CHECK(other.error().message == "handover version 2 is not ours (1)");
  auto damaged = read_handover(memfd_with("{\"version\":1,"));
  REQUIRE(damaged.has_error());
  CHECK(damaged.error().message == "the handover is not a JSON object");
  auto missing = read_handover(memfd_with(R"({"version":1,"listen_fd":3})"));
  REQUIRE(missing.has_error());
  CHECK(missing.error().message.find("a damaged handover") == 0);
  auto closed = read_handover(-1);
  REQUIRE(closed.has_error());
  CHECK(closed.error().message.find("reading the handover (fd -1)") == 0);
}

TEST_CASE("check_new_binary: a program that is no taskgroupd, or none at all, is refused") {
  SelfExec self;
  self.exe = "/bin/false";
  self.argv = {"taskgroupd", "--socket", "/nonexistent"};
  auto refused = check_new_binary(self, 10'000);
  REQUIRE(refused.has_error());
  CHECK(refused.error().message == "/bin/false cannot take over: it exited without a word");
  self.exe = "/bin/echo";  // Runs, exits 0, but prints its arguments, not the handover line.
  auto other = check_new_binary(self, 10'000);
  REQUIRE(other.has_error());
  CHECK(other.error().message.find("/bin/echo speaks another handover") == 0);
  self.exe = "/nonexistent/taskgroupd";
  auto missing = check_new_binary(self, 10'000);
  REQUIRE(missing.has_error());
  CHECK(missing.error().message == "cannot run /nonexistent/taskgroupd: No such file or directory");
}

}  // namespace tg::daemon
