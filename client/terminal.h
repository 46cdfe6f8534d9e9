#pragma once

// The terminal while tgctl top runs: raw keys, the alternate screen, no cursor, and drawing
// that rewrites only the lines that changed, all of them in one write (no flicker).

#include <termios.h>

#include <cstddef>
#include <string>
#include <vector>

#include "common/error.h"

namespace tg::client {

// Owns the terminal's mode from open() to its destructor, which restores it whatever the way
// out: a return, an error, a signal turned into one by the caller (commands_top.cpp takes
// SIGINT, SIGTERM, SIGHUP through a signalfd), or the daemon going away. A crash (SIGSEGV) does
// not restore it (`reset` does). Used by one thread; not copyable.
class Terminal {
 public:
  // `in`, `out`: terminals (the caller checks isatty). Raw mode: no echo, no line editing, and
  // Ctrl+C arrives as a key (0x03), not SIGINT.
  [[nodiscard]] static Result<Terminal> open(int in, int out);
  Terminal(Terminal&& other) noexcept;
  Terminal& operator=(Terminal&&) = delete;
  Terminal(const Terminal&) = delete;
  ~Terminal();

  // Rows and columns now (after a SIGWINCH, the new ones); 24x80 if unknown.
  [[nodiscard]] std::size_t rows() const;
  [[nodiscard]] std::size_t cols() const;

  // Shows `lines` from the top row: rewrites the ones that differ from the last draw, in one
  // write. After a resize, call invalidate() first: everything is redrawn on a cleared screen.
  void draw(const std::vector<std::string>& lines);
  void invalidate() {
    shown_.clear();
    cleared_ = false;
  }

 private:
  Terminal(int in, int out, const termios& saved) : in_(in), out_(out), saved_(saved) {}
  void write_all(const std::string& bytes) const;

  int in_ = -1;
  int out_ = -1;
  termios saved_{};
  bool active_ = true;  // False once moved from.
  std::vector<std::string> shown_;
  bool cleared_ = false;
};

}  // namespace tg::client
