#include "client/terminal.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

namespace tg::client {

namespace {

// Alternate screen, cursor hidden; and back.
constexpr std::string_view kEnter = "\x1b[?1049h\x1b[?25l";
constexpr std::string_view kLeave = "\x1b[?25h\x1b[?1049l";

winsize size_of(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) {
    ws.ws_row = 24;
    ws.ws_col = 80;
  }
  return ws;
}

}  // namespace

Result<Terminal> Terminal::open(int in, int out) {
  termios saved{};
  if (::tcgetattr(in, &saved) != 0) {
    return Error{Errc::kIo, std::string("cannot read the terminal's mode: ") + ::strerror(errno)};
  }
  termios raw = saved;
  raw.c_iflag &= ~static_cast<tcflag_t>(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
  raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ICANON | IEXTEN | ISIG);
  raw.c_cc[VMIN] = 0;  // read() returns what is there; poll() says when.
  raw.c_cc[VTIME] = 0;
  if (::tcsetattr(in, TCSAFLUSH, &raw) != 0) {
    return Error{Errc::kIo, std::string("cannot set the terminal's mode: ") + ::strerror(errno)};
  }
  Terminal t(in, out, saved);
  t.write_all(std::string(kEnter));
  return t;
}

Terminal::Terminal(Terminal&& other) noexcept
    : in_(other.in_),
      out_(other.out_),
      saved_(other.saved_),
      shown_(std::move(other.shown_)),
      cleared_(other.cleared_) {
  other.active_ = false;
}

Terminal::~Terminal() {
  if (!active_) return;
  write_all(std::string(kLeave));
  (void)::tcsetattr(in_, TCSAFLUSH, &saved_);  // Nothing better to do if it fails.
}

std::size_t Terminal::rows() const { return size_of(out_).ws_row; }
std::size_t Terminal::cols() const { return size_of(out_).ws_col; }

void Terminal::draw(const std::vector<std::string>& lines) {
  std::string bytes;
  if (!cleared_) {
    bytes += "\x1b[H\x1b[2J";
    cleared_ = true;
  }
  const std::size_t n = std::max(lines.size(), shown_.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string* now = i < lines.size() ? &lines[i] : nullptr;
    const std::string* was = i < shown_.size() ? &shown_[i] : nullptr;
    if (now && was && *now == *was) continue;
    bytes += "\x1b[" + std::to_string(i + 1) + ";1H";
    if (now) bytes += *now;
    bytes += "\x1b[K";  // The rest of the old line.
  }
  shown_ = lines;
  if (bytes.empty()) return;
  // Synchronized output (DEC 2026) where the terminal knows it: the frame appears at once.
  write_all("\x1b[?2026h" + bytes + "\x1b[?2026l");
}

void Terminal::write_all(const std::string& bytes) const {
  std::string_view left = bytes;
  while (!left.empty()) {
    const ssize_t n = ::write(out_, left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // The terminal is gone: nothing to show it on.
    left.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace tg::client
