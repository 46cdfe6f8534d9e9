#include "daemon/server/log_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

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
  const auto watch_file = [&] {
    return ::inotify_add_watch(fd_.native_handle(), path.c_str(),
                               IN_MODIFY | IN_CLOSE_WRITE | IN_DONT_FOLLOW);
  };
  int wd = watch_file();
  if (wd < 0 && errno == ENOENT) {
    if (await_creation(path, w)) return Error{Errc::kNotFound, "no log yet"};
    wd = watch_file();  // Created since the first try.
  }
  if (wd < 0) {
    if (errno == ENOENT) return Error{Errc::kNotFound, "no log yet"};  // Deleted again.
    spdlog::warn("cannot watch '{}': {}", path, ::strerror(errno));
    return Error{Errc::kBusy, "cannot watch the log now"};
  }
  drop_creation(w);
  waiters_of_[wd].push_back(&w);
  wd_of_[&w] = wd;
  arm();
  return {};
}

bool LogWatcher::await_creation(const std::string& path, Waiter& w) {
  if (creating_wd_of_.contains(&w)) return true;
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1);
  // One watch per directory inode, shared by every follower waiting in it.
  const int wd = ::inotify_add_watch(fd_.native_handle(), dir.c_str(),
                                     IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW);
  if (wd < 0) return true;  // Not watchable: the task's end still wakes the follower.
  creating_[wd].emplace_back(&w, name);
  creating_wd_of_[&w] = wd;
  arm();
  // Created between the failed watch of the file and the watch of the directory: no event
  // will say so.
  if (::access(path.c_str(), F_OK) == 0) {
    drop_creation(w);
    return false;
  }
  return true;
}

void LogWatcher::drop_creation(const Waiter& w) {
  auto it = creating_wd_of_.find(&w);
  if (it == creating_wd_of_.end()) return;
  const int wd = it->second;
  creating_wd_of_.erase(it);
  auto& list = creating_[wd];
  std::erase_if(list, [&](const auto& entry) { return entry.first == &w; });
  if (list.empty()) {
    creating_.erase(wd);
    // The same inode's watch may serve modifications too (a log in the directory itself: never
    // in practice); only a watch nobody uses goes.
    if (!waiters_of_.contains(wd)) (void)::inotify_rm_watch(fd_.native_handle(), wd);
  }
}

void LogWatcher::remove(Waiter& w) {
  drop_creation(w);
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
  if (waiters_of_.empty() && creating_.empty()) {
    // Nothing left to wake: stop waiting, so an idle watcher does not keep the loop running.
    boost::system::error_code ignored;
    (void)fd_.cancel(ignored);
  }
}

void LogWatcher::arm() {
  if (armed_ || (waiters_of_.empty() && creating_.empty()) || !fd_.is_open()) return;
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
        for (auto& [wd, list] : creating_) {
          for (auto& [w, name] : list) w->wake();
        }
        continue;
      }
      if (auto dir = creating_.find(ev->wd); dir != creating_.end() && ev->len > 0) {
        const std::string_view created(ev->name);  // NUL-padded to ev->len.
        std::vector<Waiter*> woken;
        for (auto& [w, name] : dir->second) {
          if (name == created) woken.push_back(w);
        }
        for (Waiter* w : woken) {
          drop_creation(*w);  // add() watches the file itself now.
          w->wake();
        }
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
