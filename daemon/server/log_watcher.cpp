#include "daemon/server/log_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace tg::daemon {

namespace asio = boost::asio;

LogWatcher::LogWatcher(const asio::any_io_executor& ex) : fd_(ex) { (void)open(); }

LogWatcher::~LogWatcher() {
  boost::system::error_code ignored;
  (void)fd_.close(ignored);  // Removes every watch with the instance.
}

bool LogWatcher::open() {
  if (fd_.is_open()) return true;
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    spdlog::warn("cannot create an inotify instance for logs -f: {}", ::strerror(errno));
    return false;
  }
  fd_.assign(fd);
  return true;
}

Result<void> LogWatcher::begin_follow(uid_t uid) {
  int& n = follows_[uid];
  if (n >= kMaxFollowsPerUid) {
    return Error{Errc::kBusy, "too many logs -f of this user (" +
                                  std::to_string(kMaxFollowsPerUid) + "); try again later"};
  }
  ++n;
  return {};
}

void LogWatcher::end_follow(uid_t uid) {
  auto it = follows_.find(uid);
  if (it != follows_.end() && --it->second <= 0) follows_.erase(it);
}

Result<void> LogWatcher::add(const std::string& path, Waiter& w) {
  if (watching(w)) return {};
  if (!open()) return Error{Errc::kBusy, "cannot watch the log now"};
  // One watch per inode: adding the same file again returns the watch it already has.
  const int wd = ::inotify_add_watch(fd_.native_handle(), path.c_str(),
                                     IN_MODIFY | IN_CLOSE_WRITE | IN_DONT_FOLLOW);
  if (wd < 0) {
    if (errno == ENOENT) return Error{Errc::kNotFound, "no log yet"};
    spdlog::warn("cannot watch '{}': {}", path, ::strerror(errno));
    return Error{Errc::kBusy, "cannot watch the log now"};
  }
  waiters_of_[wd].push_back(&w);
  wd_of_[&w] = wd;
  arm();
  return {};
}

void LogWatcher::remove(Waiter& w) {
  auto it = wd_of_.find(&w);
  if (it == wd_of_.end()) return;
  const int wd = it->second;
  wd_of_.erase(it);
  auto& list = waiters_of_[wd];
  std::erase(list, &w);
  if (list.empty()) {
    waiters_of_.erase(wd);
    (void)::inotify_rm_watch(fd_.native_handle(), wd);  // Gone already if the file was deleted.
  }
  if (waiters_of_.empty()) {
    // Nothing left to wake: stop waiting, so an idle watcher does not keep the loop running.
    boost::system::error_code ignored;
    (void)fd_.cancel(ignored);
  }
}

void LogWatcher::arm() {
  if (armed_ || waiters_of_.empty() || !fd_.is_open()) return;
  armed_ = true;
  fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                 [this](const boost::system::error_code& ec) { on_readable(ec); });
}

void LogWatcher::on_readable(const boost::system::error_code& ec) {
  armed_ = false;
  if (ec == asio::error::operation_aborted) {
    arm();  // Cancelled by remove(); an add() since then needs the wait back.
    return;
  }
  if (ec) {
    // Followers still wake when their task starts or ends, and re-read the log then.
    spdlog::error("inotify wait failed: {}; logs -f wakes only on task state changes",
                  ec.message());
    return;
  }
  alignas(inotify_event) char buf[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd_.native_handle(), buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: read it all.
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->mask & IN_Q_OVERFLOW) {
        for (auto& [wd, list] : waiters_of_) {
          for (Waiter* w : list) w->wake();
        }
        continue;
      }
      auto it = waiters_of_.find(ev->wd);
      if (it == waiters_of_.end()) continue;  // A watch removed since the event was queued.
      for (Waiter* w : it->second) w->wake();
      if (ev->mask & IN_IGNORED) forget(ev->wd);  // The file was deleted: the watch is gone.
    }
  }
  arm();
}

void LogWatcher::forget(int wd) {
  auto it = waiters_of_.find(wd);
  if (it == waiters_of_.end()) return;
  for (Waiter* w : it->second) wd_of_.erase(w);
  waiters_of_.erase(it);
}

}  // namespace tg::daemon
