#pragma once

// tgctl top without the terminal: what the screen shows for a frame (proto::WatchFrame) and
// what a key does. Pure functions of their arguments, so they are tested as-is; terminal.h
// draws the lines, commands_top.cpp runs the loop.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/time_format.h"

namespace tg::client {

// Keys beyond bytes: what an arrow's escape sequence decodes to.
inline constexpr int kKeyUp = 0x100;
inline constexpr int kKeyDown = 0x101;
inline constexpr int kKeyEscape = 0x1b;
inline constexpr int kKeyCtrlC = 0x03;
inline constexpr int kKeyEnter = '\r';
inline constexpr int kKeyBackspace = 0x7f;

inline constexpr std::size_t kTopBarWidth = 20;  // A group's progress bar, in cells.

// What the user has done to the view; the frame is the daemon's.
struct TopState {
  enum class Mode {
    kBrowse,   // Keys act: select, pause, cancel, filter, quit.
    kFilter,   // Typing a group filter, until Enter or Esc.
    kConfirm,  // "Cancel group X? (y/n)": only y confirms.
  };
  Mode mode = Mode::kBrowse;
  std::string filter;  // Groups whose name contains it; "" for all.
  std::string typing;  // The filter being typed (kFilter).
  // The selected group, by owner and name, so that it stays selected when groups move.
  std::optional<std::uint32_t> selected_uid;
  std::string selected_name;
  std::string message;  // The last action's outcome, in the bottom line until the next key.
};

// What a key asks of the daemon; the group is the selected one.
struct TopAction {
  enum class Kind { kNone, kQuit, kPause, kResume, kCancel };
  Kind kind = Kind::kNone;
  proto::GroupRef group;
};

// The frame's groups that pass the filter, in the frame's order.
[[nodiscard]] std::vector<const proto::WatchGroup*> shown_groups(const proto::WatchFrame& frame,
                                                                 const TopState& state);
// The selected group among shown_groups(): the one selected if it is still shown, else the
// first (and the state is moved onto it); nullptr when none is shown.
const proto::WatchGroup* selected_group(const proto::WatchFrame& frame, TopState& state);

// Applies one key (a byte, or kKeyUp/kKeyDown) to the state; returns what to ask the daemon.
[[nodiscard]] TopAction on_key(TopState& state, int key, const proto::WatchFrame& frame);

struct TopScreen {
  std::size_t width = 0;   // Columns; 0: lines are not cut (--once into a pipe).
  std::size_t height = 0;  // Rows; 0: every line (--once), and no key help or selection.
  bool color = false;
  TimeMs now = 0;  // For running tasks' elapsed time.
};

// The screen's lines, at most `height` of them (the last one the key help or prompt), each
// at most `width` columns, with colour codes only when screen.color.
[[nodiscard]] std::vector<std::string> render_top(const proto::WatchFrame& frame,
                                                  const TopState& state, const TopScreen& screen);

// "[###xx-->>.....]" for a run's counts: succeeded #, failed (timed out, lost) x, cancelled
// (interrupted) -, running >, queued . ; proportional, `width` cells between the brackets.
// Painted per kind with `color`.
[[nodiscard]] std::string progress_bar(const proto::StateCounts& counts, std::size_t width,
                                       bool color);

}  // namespace tg::client
