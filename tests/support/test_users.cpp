#include "support/test_users.h"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <doctest/doctest.h>

#include "support/wait_until.h"

namespace tg::test {

namespace {

constexpr milliseconds kAdminTimeout{20'000};
constexpr int kFdsPerMessage = 200;  // Under SCM_MAX_FD (253).

bool has_group(const std::string& name) { return ::getgrnam(name.c_str()) != nullptr; }

bool user_in_group(const std::string& user, const std::string& group) {
  const struct group* g = ::getgrnam(group.c_str());
  if (g == nullptr) return false;
  for (char** m = g->gr_mem; *m != nullptr; ++m) {
    if (user == *m) return true;
  }
  return false;
}

// Runs an account tool until `done` holds. Two test processes (ctest -j) may race to create
// the same account, and the tools refuse while another holds /etc/passwd's lock: retry then.
void administer(const std::vector<std::string>& argv, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kAdminTimeout;
  for (;;) {
    if (done()) return;
    const ProcessOutput r = run_process(argv);
    if (done()) return;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                    quote_argv(argv) << " failed (exit " << r.exit_code << "): " << r.err);
    std::this_thread::sleep_for(milliseconds(100));  // Someone else holds the lock.
  }
}

struct Message {
  int code = 0;  // kChunk: sockets attached; kDone; kFailed: `err` is the connect errno.
  int err = 0;
};
constexpr int kChunk = 0, kDone = 1, kFailed = 2;

void send_message(int channel, Message m, const std::vector<int>& fds) {
  iovec iov{&m, sizeof m};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdsPerMessage)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  if (::sendmsg(channel, &msg, MSG_NOSIGNAL) < 0) ::_exit(3);
}

// In the forked child: become `user`, connect `count` times, send the sockets to the parent.
[[noreturn]] void connect_child(const TestUser& user, const sockaddr_un& addr, int count,
                                int channel) {
  if (::setgroups(user.groups.size(), user.groups.data()) != 0 ||
      ::setresgid(user.gid, user.gid, user.gid) != 0 ||
      ::setresuid(user.uid, user.uid, user.uid) != 0) {
    send_message(channel, {kFailed, errno}, {});
    ::_exit(2);
  }
  std::vector<int> chunk;
  for (int i = 0; i < count; ++i) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      const int err = errno;
      send_message(channel, {kChunk, 0}, chunk);
      send_message(channel, {kFailed, err}, {});
      ::_exit(0);
    }
    chunk.push_back(fd);
    if (static_cast<int>(chunk.size()) == kFdsPerMessage) {
      send_message(channel, {kChunk, 0}, chunk);
      for (int c : chunk) (void)::close(c);
      chunk.clear();
    }
  }
  send_message(channel, {kChunk, 0}, chunk);
  send_message(channel, {kDone, 0}, {});
  ::_exit(0);
}

}  // namespace

void require_root(std::string_view why) {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test must run as root (it "
                                        << why
                                        << "); CI and the dev machines run tests as "
                                           "root. It fails rather than skip, so a "
                                           "green run always means it was checked.");
}

gid_t ensure_group(const std::string& name) {
  require_root("creates the group '" + name + "'");
  administer({"/usr/sbin/groupadd", name}, [&] { return has_group(name); });
  return ::getgrnam(name.c_str())->gr_gid;
}

TestUser ensure_user(const std::string& name, const std::string& extra_group) {
  require_root("creates the user '" + name + "'");
  ensure_group(extra_group);
  administer({"/usr/sbin/useradd", "-M", "-N", "-s", "/usr/sbin/nologin", "-G", extra_group, name},
             [&] { return ::getpwnam(name.c_str()) != nullptr; });
  administer({"/usr/sbin/usermod", "-a", "-G", extra_group, name},
             [&] { return user_in_group(name, extra_group); });
  const struct passwd* pw = ::getpwnam(name.c_str());
  REQUIRE(pw != nullptr);
  TestUser u{name, pw->pw_uid, pw->pw_gid, {}, pw->pw_dir};
  std::vector<gid_t> groups(64);
  int n = static_cast<int>(groups.size());
  while (::getgrouplist(name.c_str(), u.gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n) + 16);
    n = static_cast<int>(groups.size());
  }
  groups.resize(static_cast<std::size_t>(n));
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  u.groups = std::move(groups);
  return u;
}

std::vector<std::string> as_user(const TestUser& user, const std::vector<std::string>& argv) {
  std::vector<std::string> out = {"/usr/bin/setpriv", "--reuid=" + std::to_string(user.uid),
                                  "--regid=" + std::to_string(user.gid), "--init-groups", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

ProcessOutput run_as(const TestUser& user, const std::vector<std::string>& argv, RunOptions opts) {
  if (opts.cwd.empty()) opts.cwd = "/";
  return run_process(as_user(user, argv), opts);
}

ProcessOutput tgctl_as(const TestUser& user, const std::string& socket,
                       const std::vector<std::string>& args, RunOptions opts) {
  std::vector<std::string> argv = {TG_CLIENT_BIN, "--socket", socket};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_as(user, argv, std::move(opts));
}

std::vector<Fd> connect_as(const TestUser& user, const std::string& path, int count, int* error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int pair[2];
  REQUIRE_MESSAGE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0,
                  "socketpair: " << last_error());
  Fd parent_end(pair[0]), child_end(pair[1]);
  const pid_t pid = ::fork();
  REQUIRE_MESSAGE(pid >= 0, "fork: " << last_error());
  if (pid == 0) {
    parent_end.release();  // The child only writes; exit closes everything.
    connect_child(user, addr, count, child_end.get());
  }
  child_end.reset();

  std::vector<Fd> out;
  int failed = 0;
  for (bool done = false; !done;) {
    pollfd p{parent_end.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(kAdminTimeout.count())) == 0) {
      (void)::kill(pid, SIGKILL);
      (void)wait_for_exit(pid, milliseconds(5'000));
      FAIL("connecting as " << user.name << " to " << path << " hung after " << out.size()
                            << " connections");
    }
    Message m;
    iovec iov{&m, sizeof m};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdsPerMessage)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(parent_end.get(), &msg, MSG_CMSG_CLOEXEC);
    REQUIRE_MESSAGE(n == static_cast<ssize_t>(sizeof m),
                    "the connecting child as " << user.name << " died (" << n << ")");
    REQUIRE_MESSAGE((msg.msg_flags & MSG_CTRUNC) == 0, "sockets lost in transfer (fd limit?)");
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < fds; ++i) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        out.emplace_back(fd);
      }
    }
    if (m.code == kFailed) failed = m.err;
    done = m.code != kChunk;
  }
  const ExitStatus st = wait_for_exit(pid, milliseconds(5'000));
  CHECK_MESSAGE(!st.timed_out, "the connecting child did not exit");
  if (error != nullptr) {
    *error = failed;
  } else {
    REQUIRE_MESSAGE(failed == 0, "connect as " << user.name << " to " << path << " failed after "
                                               << out.size()
                                               << " connections: " << std::strerror(failed));
  }
  return out;
}

}  // namespace tg::test
