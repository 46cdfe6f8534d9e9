#include "daemon/exec/local/cgroup_watch.h"

#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <spdlog/spdlog.h>

namespace tg::daemon {

namespace asio = boost::asio;

CgroupWatch::CgroupWatch(asio::any_io_executor ex, Changed changed)
    : changed_(std::move(changed)), inotify_(ex), poll_(ex) {}

CgroupWatch::~CgroupWatch() = default;

void CgroupWatch::add(proto::TaskId id, const std::string& events_path) {
  if (stopped_ || ids_.contains(id)) return;
  int wd = -1;
  if (open_inotify()) {
    wd = ::inotify_add_watch(inotify_.native_handle(), events_path.c_str(), IN_MODIFY);
    if (wd < 0 && !failure_logged_) {
      failure_logged_ = true;
      spdlog::warn("inotify_add_watch '{}' failed: {}; such cgroups are checked every {}ms",
                   events_path, ::strerror(errno), kPollInterval.count());
    }
  }
  ids_[id] = wd;
  if (wd >= 0) {
    wds_[wd] = id;
  } else {
    arm_poll();
  }
}

void CgroupWatch::remove(proto::TaskId id) {
  auto it = ids_.find(id);
  if (it == ids_.end()) return;
  if (it->second >= 0) {
    // EINVAL if the cgroup is gone already: the watch went with it.
    (void)::inotify_rm_watch(inotify_.native_handle(), it->second);
    wds_.erase(it->second);
  }
  ids_.erase(it);
  if (ids_.empty() && inotify_.is_open()) {  // An idle daemon holds no instance of ours.
    boost::system::error_code ignored;
    (void)inotify_.close(ignored);
    wds_.clear();
    ++generation_;  // A wait still pending on the closed fd ends as a stale one.
    waiting_ = false;
  }
}

void CgroupWatch::shutdown() {
  stopped_ = true;
  poll_.cancel();
  if (inotify_.is_open()) inotify_.cancel();
}

bool CgroupWatch::open_inotify() {
  if (inotify_.is_open()) return true;
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    if (!failure_logged_) {
      failure_logged_ = true;
      spdlog::warn("inotify_init1 failed: {}; cgroups are checked every {}ms", ::strerror(errno),
                   kPollInterval.count());
    }
    return false;
  }
  inotify_.assign(fd);
  ++generation_;
  await_events();
  return true;
}

void CgroupWatch::await_events() {
  waiting_ = true;
  const unsigned generation = generation_;
  inotify_.async_wait(asio::posix::descriptor_base::wait_read,
                      [this, generation](boost::system::error_code ec) {
                        if (generation != generation_) return;  // For an fd since closed.
                        waiting_ = false;
                        if (!ec) on_events();
                      });
}

void CgroupWatch::on_events() {
  std::vector<proto::TaskId> changed;
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
      if (w != wds_.end()) changed.push_back(w->second);
    }
  }
  if (overflow) {  // Events were lost: every watched cgroup may have changed.
    changed.clear();
    for (const auto& [id, wd] : ids_) changed.push_back(id);
  }
  // The callee may remove any of them (or add others) meanwhile.
  for (proto::TaskId id : changed) {
    if (ids_.contains(id)) changed_(id);
  }
  // Unless the callee closed the instance, or closed it and opened another (already awaited).
  if (!stopped_ && inotify_.is_open() && !waiting_) await_events();
}

void CgroupWatch::arm_poll() {
  if (poll_armed_ || stopped_) return;
  poll_armed_ = true;
  poll_.expires_after(kPollInterval);
  poll_.async_wait([this](boost::system::error_code ec) {
    poll_armed_ = false;
    if (ec) return;
    std::vector<proto::TaskId> polled;
    for (const auto& [id, wd] : ids_) {
      if (wd < 0) polled.push_back(id);
    }
    for (proto::TaskId id : polled) {
      if (ids_.contains(id)) changed_(id);
    }
    for (const auto& [id, wd] : ids_) {
      if (wd < 0) return arm_poll();
    }
  });
}

}  // namespace tg::daemon
