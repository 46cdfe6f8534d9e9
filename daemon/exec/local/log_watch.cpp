#include "daemon/exec/local/log_watch.h"

#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include <spdlog/spdlog.h>

namespace tg::daemon {

namespace asio = boost::asio;

std::chrono::milliseconds LogWatch::next_check_delay(std::int64_t cap, std::int64_t size,
                                                     std::int64_t grown,
                                                     std::chrono::nanoseconds over) {
  if (size > cap) return kMinDelay;
  if (grown <= 0) return kMaxDelay;
  if (over.count() <= 0) return kMinDelay;  // Growing at a rate not yet known.
  // In double: a cap of 2^50 bytes times an hour in ns would overflow 64 bits.
  const double eta_ms = static_cast<double>(cap - size) * static_cast<double>(over.count()) /
                        static_cast<double>(grown) / 1e6;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::clamp(
      eta_ms, static_cast<double>(kMinDelay.count()), static_cast<double>(kMaxDelay.count()))));
}

LogWatch::LogWatch(asio::any_io_executor ex, OverCap over_cap)
    : over_cap_(std::move(over_cap)), inotify_(ex), timer_(ex) {}

LogWatch::~LogWatch() = default;

void LogWatch::add(proto::TaskId id, std::string path, std::int64_t cap) {
  if (cap <= 0 || stopped_) return;
  Log& log = logs_[id];
  log.path = std::move(path);
  log.cap = cap;
  log.checked_at = Clock::now();
  check(id, /*woken_by_write=*/true);  // It may have written since its exec: rate unknown.
}

void LogWatch::remove(proto::TaskId id) {
  auto it = logs_.find(id);
  if (it == logs_.end()) return;
  forget_watch(it->second);
  if (it->second.due) due_.erase({*it->second.due, id});
  logs_.erase(it);
  if (due_.empty() && timer_at_) {  // No wakeup for nothing.
    timer_.cancel();
    timer_at_.reset();
  }
  if (logs_.empty() && inotify_.is_open()) {
    // Nor an fd, nor an instance of root's inotify limit: an idle daemon holds none of ours.
    boost::system::error_code ignored;
    (void)inotify_.close(ignored);
    wds_.clear();
  }
}

void LogWatch::shutdown() {
  stopped_ = true;
  timer_.cancel();
  timer_at_.reset();
  if (inotify_.is_open()) inotify_.cancel();
}

void LogWatch::check(proto::TaskId id, bool woken_by_write) {
  auto it = logs_.find(id);
  if (it == logs_.end()) return;
  Log& log = it->second;
  struct stat st {};
  if (::lstat(log.path.c_str(), &st) != 0) {
    // Renamed or deleted by the task itself (it runs as the daemon's user): nothing is left at
    // the path to watch. The cap is against runaway output, not against a task that means to
    // fill the disk, which any other file would let it do.
    spdlog::warn("task {}: log '{}' is gone ({}); no longer watching its size", id, log.path,
                 ::strerror(errno));
    return remove(id);
  }
  const Clock::time_point now = Clock::now();
  const std::int64_t size = st.st_size;
  const std::int64_t grown = size - log.size;
  const auto over = woken_by_write ? Clock::duration::zero() : now - log.checked_at;
  log.size = size;
  log.checked_at = now;
  if (size > log.cap && size > log.reported) {
    log.reported = size;
    over_cap_(id, size);
    if (!logs_.contains(id)) return;  // Not by LocalExecutor, but the callback could.
  }
  if (grown == 0 && arm(id, log)) return;  // Quiet: its next write wakes us.
  poll_at(id, log,
          now + (inotify_.is_open() ? next_check_delay(log.cap, size, grown, over) : kMaxDelay));
}

bool LogWatch::arm(proto::TaskId id, Log& log) {
  if (!open_inotify()) return false;
  const int wd = ::inotify_add_watch(inotify_.native_handle(), log.path.c_str(),
                                     IN_MODIFY | IN_ONESHOT | IN_DONT_FOLLOW);
  if (wd < 0) {
    if (!watches_exhausted_logged_) {
      watches_exhausted_logged_ = true;
      spdlog::warn("inotify_add_watch '{}' failed: {}; such logs are polled every {}ms", log.path,
                   ::strerror(errno), kMaxDelay.count());
    }
    return false;
  }
  log.wd = wd;
  wds_[wd] = id;
  struct stat st {};
  return ::lstat(log.path.c_str(), &st) == 0 && st.st_size == log.size;
}

void LogWatch::forget_watch(Log& log) {
  if (log.wd < 0) return;
  // EINVAL if its one-shot has fired meanwhile: the watch is gone either way.
  (void)::inotify_rm_watch(inotify_.native_handle(), log.wd);
  wds_.erase(log.wd);
  log.wd = -1;
}

void LogWatch::poll_at(proto::TaskId id, Log& log, Clock::time_point at) {
  if (log.due) due_.erase({*log.due, id});
  log.due = at;
  due_.insert({at, id});
  arm_timer();
}

bool LogWatch::open_inotify() {
  if (inotify_.is_open()) return true;
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {  // Out of fds or instances: poll, and try again with the next log.
    if (!watches_exhausted_logged_) {
      watches_exhausted_logged_ = true;
      spdlog::warn("inotify_init1 failed: {}; task logs are polled every {}ms", ::strerror(errno),
                   kMaxDelay.count());
    }
    return false;
  }
  inotify_.assign(fd);
  await_events();
  return true;
}

void LogWatch::await_events() {
  inotify_.async_wait(asio::posix::descriptor_base::wait_read,
                      [this](boost::system::error_code ec) {
                        if (!ec) on_events();
                      });
}

void LogWatch::on_events() {
  std::vector<proto::TaskId> written;
  bool overflow = false;
  alignas(inotify_event) char buf[4096];
  for (;;) {
    const ssize_t n = ::read(inotify_.native_handle(), buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: every queued event is read.
    for (const char* p = buf; p < buf + n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) overflow = true;
      auto w = wds_.find(e->wd);
      if (w == wds_.end()) continue;  // IN_IGNORED after IN_MODIFY, or a removed log's.
      const proto::TaskId id = w->second;
      wds_.erase(w);  // One-shot: the watch is gone.
      auto l = logs_.find(id);
      if (l == logs_.end() || l->second.wd != e->wd) continue;
      l->second.wd = -1;
      if (!l->second.due) written.push_back(id);  // A polled log is checked when due.
    }
  }
  if (overflow) {  // Events were lost: check every log that waits for one.
    for (auto& [id, log] : logs_) {
      if (log.due) continue;
      forget_watch(log);
      written.push_back(id);
    }
  }
  for (proto::TaskId id : written) check(id, /*woken_by_write=*/true);
  if (!stopped_) await_events();
}

void LogWatch::arm_timer() {
  if (due_.empty() || stopped_) return;
  const Clock::time_point first = due_.begin()->first;
  if (timer_at_ && *timer_at_ <= first) return;
  timer_at_ = first;
  timer_.expires_at(first);  // Cancels a later wait, whose handler then does nothing.
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_timer();
  });
}

void LogWatch::on_timer() {
  timer_at_.reset();
  const Clock::time_point now = Clock::now();
  std::vector<proto::TaskId> due;
  while (!due_.empty() && due_.begin()->first <= now) {
    const proto::TaskId id = due_.begin()->second;
    due_.erase(due_.begin());
    logs_.at(id).due.reset();
    due.push_back(id);
  }
  for (proto::TaskId id : due) check(id, /*woken_by_write=*/false);
  arm_timer();
}

}  // namespace tg::daemon
