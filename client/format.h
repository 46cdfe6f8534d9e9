#pragma once

// Text for people: tables, command lines, counts and the wait progress bar. Pure functions of
// their arguments (the caller passes the time and the terminal width), so they are tested as-is.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/protocol.h"

namespace tg::client {

enum class Align { kLeft, kRight };
struct Column {
  std::string header;
  Align align = Align::kLeft;
};

// A header row and rows of cells, columns two spaces apart and as wide as their widest cell.
// The last column is not padded, so lines have no trailing blanks. Each line ends in '\n'.
[[nodiscard]] std::string render_table(const std::vector<Column>& columns,
                                       const std::vector<std::vector<std::string>>& rows);
// The same a part at a time: `widths` holds each column's width so far (empty before the first
// part) and grows to fit these rows and, with `header`, the header row, which comes first.
[[nodiscard]] std::string render_table_part(const std::vector<Column>& columns,
                                            const std::vector<std::vector<std::string>>& rows,
                                            std::vector<std::size_t>& widths, bool header);

// "key:  value" lines with the values aligned.
using Fields = std::vector<std::pair<std::string, std::string>>;
[[nodiscard]] std::string render_fields(const Fields& fields);

// Width on a terminal, counted in UTF-8 code points (wide CJK characters count as one). Colour
// codes ("\x1b[32m", color.h) count nothing: a coloured cell pads like a plain one.
[[nodiscard]] std::size_t display_width(std::string_view utf8);

// At most `width` code points; a cut string ends in "…". Never splits a UTF-8 sequence.
[[nodiscard]] std::string truncate_display(std::string_view utf8, std::size_t width);

// Control characters as escapes ("\n", "\t", "\x1b"), so one cell stays on one line and text
// from tasks cannot drive the terminal.
[[nodiscard]] std::string printable(std::string_view text);

// How a task's command reads in a shell: shell tasks as written, argv quoted where needed.
[[nodiscard]] std::string command_line(const std::vector<std::string>& argv, bool shell);

// "12 tasks: 10 succeeded, 1 failed, 1 cancelled": every non-zero count, in a fixed order.
[[nodiscard]] std::string counts_summary(const proto::StateCounts& counts);

// One line of at most width - 1 columns, for redrawing on a terminal after '\r':
// "[#####-----] 7/12 done  5 ok  1 failed  1 cancelled  3 running  2 queued  42.0s".
// "failed" counts every unsuccessful end but cancelled (timed out, interrupted, lost).
[[nodiscard]] std::string progress_line(const proto::WaitResult& progress, std::size_t width);

}  // namespace tg::client
