#include "client/color.h"

#include <doctest/doctest.h>

#include "client/format.h"
#include "client/render.h"

namespace tg::client {

namespace {

std::string without_escapes(std::string s) {
  for (auto at = s.find('\x1b'); at != std::string::npos; at = s.find('\x1b')) {
    s.erase(at, s.find('m', at) - at + 1);
  }
  return s;
}

}  // namespace

TEST_CASE("use_color: only on a terminal, and never with NO_COLOR set and non-empty") {
  CHECK(use_color(true, ""));  // Unset or empty: no-color.org says both mean colours.
  CHECK_FALSE(use_color(false, ""));
  CHECK_FALSE(use_color(true, "1"));
  CHECK_FALSE(use_color(true, "0"));  // Any non-empty value.
  CHECK_FALSE(use_color(false, "1"));
}

TEST_CASE("state_word: each ending in its colour, queued plain") {
  CHECK(state_word(proto::TaskState::kSucceeded, true) == "\x1b[32msucceeded\x1b[0m");
  CHECK(state_word(proto::TaskState::kFailed, true) == "\x1b[31mfailed\x1b[0m");
  CHECK(state_word(proto::TaskState::kTimedOut, true) == "\x1b[31mtimed_out\x1b[0m");
  CHECK(state_word(proto::TaskState::kLost, true) == "\x1b[31mlost\x1b[0m");
  CHECK(state_word(proto::TaskState::kRunning, true) == "\x1b[36mrunning\x1b[0m");
  CHECK(state_word(proto::TaskState::kCancelled, true) == "\x1b[33mcancelled\x1b[0m");
  CHECK(state_word(proto::TaskState::kInterrupted, true) == "\x1b[33minterrupted\x1b[0m");
  CHECK(state_word(proto::TaskState::kQueued, true) == "queued");
  CHECK(state_word(proto::TaskState::kFailed, false) == "failed");
}

TEST_CASE("display_width: colour codes take no room") {
  CHECK(display_width("\x1b[32msucceeded\x1b[0m") == 9);
  CHECK(display_width(paint("grün", kSgrGreen, true)) == 4);
}

TEST_CASE("render_task_table and render_groups: coloured, they align as without colour") {
  std::vector<proto::TaskInfo> tasks(3);
  const proto::TaskState states[] = {proto::TaskState::kSucceeded, proto::TaskState::kQueued,
                                     proto::TaskState::kInterrupted};
  for (int i = 0; i < 3; ++i) {
    tasks[i].id = i + 1;
    tasks[i].group = "g";
    tasks[i].state = states[i];
    tasks[i].argv = {"true"};
  }
  TaskTableWriter plain(0, 0, false), colored(0, 0, false, Cut::kToFit, true);
  const std::string p = plain.page(tasks), c = colored.page(tasks);
  CHECK(c != p);
  CHECK(c.find("\x1b[33minterrupted\x1b[0m") != std::string::npos);
  CHECK(without_escapes(c) == p);

  std::vector<proto::GroupInfo> groups(2);
  groups[0].name = "a";
  groups[0].counts.failed = 12;
  groups[0].paused = true;
  groups[1].name = "bb";
  groups[1].counts.succeeded = 3;
  const std::string gp = render_groups(groups), gc = render_groups(groups, true);
  CHECK(gc.find("\x1b[31m12\x1b[0m") != std::string::npos);
  CHECK(without_escapes(gc) == gp);
  CHECK(render_groups(groups, false).find('\x1b') == std::string::npos);
}

}  // namespace tg::client
