#pragma once

#include <unistd.h>

#include <utility>

namespace tg {

// Sole owner of a file descriptor; closes it on destruction. Move-only. Used by both binaries:
// the one POSIX header in common/, since both sides own fds and one wrapper beats two.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  // Gives up ownership, e.g. to an Asio object.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) (void)::close(fd_);  // close() errors on a read/pidfd carry no information.
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace tg
