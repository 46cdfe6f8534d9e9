#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tg::client {

// Splits a byte stream into '\n'-terminated lines. Owned by one Connection; single-threaded.
// A partial line longer than max_line_bytes makes overflowed() true: the stream can no longer be
// framed and the caller must give up on it.
class LineBuffer {
 public:
  explicit LineBuffer(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  void append(std::string_view bytes);
  // The next complete line without its '\n', or nullopt until one has arrived.
  [[nodiscard]] std::optional<std::string> next_line();
  // Meaningful after next_line() returned nullopt: the partial line is over the limit.
  [[nodiscard]] bool overflowed() const;
  // Forgets everything: a new stream begins.
  void clear() {
    buf_.clear();
    start_ = 0;
    scanned_ = 0;
  }

 private:
  // Constant after construction.
  const std::size_t max_line_bytes_;
  std::string buf_;
  std::size_t start_ = 0;  // Where the unconsumed bytes begin.
  std::size_t scanned_ =
      0;  // Bytes after start_ known to hold no '\n', so a long line is scanned once.
};

}  // namespace tg::client
