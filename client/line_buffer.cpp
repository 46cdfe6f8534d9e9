#include "client/line_buffer.h"

namespace tg::client {

void LineBuffer::append(std::string_view bytes) {
  // Drop consumed bytes before growing, so the buffer holds at most one partial line plus a read.
  if (start_ > 0) {
    buf_.erase(0, start_);
    start_ = 0;
  }
  buf_.append(bytes);
}

std::optional<std::string> LineBuffer::next_line() {
  const std::size_t nl = buf_.find('\n', start_ + scanned_);
  if (nl == std::string::npos) {
    scanned_ = buf_.size() - start_;
    return std::nullopt;
  }
  std::string line = buf_.substr(start_, nl - start_);
  start_ = nl + 1;
  scanned_ = 0;
  return line;
}

bool LineBuffer::overflowed() const { return buf_.size() - start_ > max_line_bytes_; }

}  // namespace tg::client
