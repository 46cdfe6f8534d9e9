#include "client/format.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/duration.h"

namespace tg::client {

namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

void pad(std::string& out, std::size_t n) { out.append(n, ' '); }

bool is_shell_safe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("_@%+=:,./-").find(c) != std::string_view::npos;
}

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && std::all_of(arg.begin(), arg.end(), is_shell_safe)) return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string plural(std::int64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

}  // namespace

std::size_t display_width(std::string_view utf8) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    if (utf8[i] == '\x1b' && i + 1 < utf8.size() && utf8[i + 1] == '[') {
      // A colour code (color.h): up to its final byte, 0x40..0x7e, it takes no room.
      i += 2;
      while (i < utf8.size() && (utf8[i] < 0x40 || utf8[i] > 0x7e)) ++i;
      continue;
    }
    if (!is_continuation(utf8[i])) ++n;
  }
  return n;
}

std::string truncate_display(std::string_view utf8, std::size_t width) {
  if (display_width(utf8) <= width) return std::string(utf8);
  if (width == 0) return "";
  // Keep width - 1 code points and the ellipsis.
  std::size_t kept = 0;
  std::size_t i = 0;
  for (; i < utf8.size(); ++i) {
    if (!is_continuation(utf8[i]) && kept++ == width - 1) break;
  }
  return std::string(utf8.substr(0, i)) + "\u2026";
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string command_line(const std::vector<std::string>& argv, bool shell) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    out += shell ? arg : shell_quote(arg);
  }
  return out;
}

std::string render_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  return render_table_part(columns, rows, widths, true);
}

std::string render_table_part(const std::vector<Column>& columns,
                              const std::vector<std::vector<std::string>>& rows,
                              std::vector<std::size_t>& widths, bool header) {
  widths.resize(columns.size(), 0);
  for (std::size_t c = 0; c < columns.size() && header; ++c) {
    widths[c] = std::max(widths[c], display_width(columns[c].header));
  }
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < columns.size() && c < row.size(); ++c) {
      widths[c] = std::max(widths[c], display_width(row[c]));
    }
  }
  std::string out;
  const auto line = [&](const auto& cell_at) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const std::string& cell = cell_at(c);
      const std::size_t gap = widths[c] - display_width(cell);
      const bool last = c + 1 == columns.size();
      if (c > 0) out += "  ";
      if (columns[c].align == Align::kRight) pad(out, gap);
      out += cell;
      if (columns[c].align == Align::kLeft && !last) pad(out, gap);
    }
    out += '\n';
  };
  if (header) line([&](std::size_t c) -> const std::string& { return columns[c].header; });
  static const std::string kEmpty;
  for (const auto& row : rows) {
    line([&](std::size_t c) -> const std::string& { return c < row.size() ? row[c] : kEmpty; });
  }
  return out;
}

std::string render_fields(const Fields& fields) {
  std::size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size() + 1);
  std::string out;
  for (const auto& [key, value] : fields) {
    out += key + ":";
    pad(out, width - key.size() - 1 + 2);
    out += value + "\n";
  }
  return out;
}

std::string counts_summary(const proto::StateCounts& n) {
  std::string out = plural(n.total(), "task", "tasks");
  const std::pair<std::int64_t, const char*> parts[] = {
      {n.succeeded, "succeeded"},     {n.failed, "failed"},
      {n.timed_out, "timed out"},     {n.cancelled, "cancelled"},
      {n.interrupted, "interrupted"}, {n.lost, "lost"},
      {n.running, "running"},         {n.queued, "queued"}};
  const char* sep = ": ";
  for (const auto& [count, what] : parts) {
    if (count == 0) continue;
    out += sep + std::to_string(count) + " " + what;
    sep = ", ";
  }
  return out;
}

std::string progress_line(const proto::WaitResult& p, std::size_t width) {
  const proto::StateCounts& n = p.counts;
  const std::int64_t unsuccessful = n.failed + n.timed_out + n.interrupted + n.lost;
  const std::string text = std::to_string(n.done()) + "/" + std::to_string(n.total()) + " done  " +
                           std::to_string(n.succeeded) + " ok  " + std::to_string(unsuccessful) +
                           " failed  " + std::to_string(n.cancelled) + " cancelled  " +
                           std::to_string(n.running) + " running  " + std::to_string(n.queued) +
                           " queued  " + format_elapsed(std::chrono::milliseconds(p.elapsed_ms));
  // Stay off the last column: writing there makes some terminals wrap, breaking the redraw.
  const std::size_t room = width > 0 ? width - 1 : 0;
  constexpr std::size_t kMinBar = 10;
  constexpr std::size_t kMaxBar = 30;
  if (room < text.size() + kMinBar + 3) return truncate_display(text, room);
  const std::size_t bar = std::min(kMaxBar, room - text.size() - 3);
  const std::int64_t total = n.total();
  const std::size_t filled =
      total > 0 ? static_cast<std::size_t>(std::clamp<std::int64_t>(n.done(), 0, total)) * bar /
                      static_cast<std::size_t>(total)
                : bar;
  return "[" + std::string(filled, '#') + std::string(bar - filled, '-') + "] " + text;
}

}  // namespace tg::client
