#include "client/top_view.h"

#include <algorithm>

#include <doctest/doctest.h>

#include "client/format.h"

namespace tg::client {

namespace {

constexpr TimeMs kNow = 1'700'000'100'000;

proto::WatchGroup group(std::string name, std::int64_t succeeded, std::int64_t running,
                        std::int64_t queued) {
  proto::WatchGroup g;
  g.name = std::move(name);
  g.user = "alice";
  g.uid = 1000;
  g.counts.succeeded = succeeded;
  g.counts.running = running;
  g.counts.queued = queued;
  return g;
}

proto::WatchFrame sample() {
  proto::WatchFrame f;
  f.daemon = {"1.2.3", 8, 1, 2, false};
  f.groups = {group("build", 2, 1, 2), group("nightly", 0, 0, 0)};
  f.groups_total = 2;
  proto::WatchTask run;
  run.id = 41;
  run.group = "build";
  run.uid = 1000;
  run.user = "alice";
  run.state = proto::TaskState::kRunning;
  run.command = "make -j4";
  run.started_at = format_rfc3339(kNow - 65'000);
  f.running = {run};
  f.running_total = 1;
  proto::WatchTask end = run;
  end.id = 40;
  end.state = proto::TaskState::kCancelled;
  end.ended_at = format_rfc3339(kNow - 5'000);
  end.reason = "cancelled: group 'build' cancelled by uid 1000";
  f.ended = {end};
  return f;
}

bool has_line(const std::vector<std::string>& lines, std::string_view part) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(part) != std::string::npos; });
}

}  // namespace

TEST_CASE("progress_bar: each kind its share of the cells, in a fixed order") {
  proto::StateCounts c;
  CHECK(progress_bar(c, 10, false) == "[          ]");
  c.succeeded = 5;
  c.failed = 3;
  c.timed_out = 2;
  CHECK(progress_bar(c, 10, false) == "[#####xxxxx]");
  c = {};
  c.succeeded = 1;
  c.cancelled = 1;
  c.running = 1;
  c.queued = 1;
  CHECK(progress_bar(c, 8, false) == "[##-->>..]");
  CHECK(progress_bar(c, 8, true).find("\x1b[32m##\x1b[0m") != std::string::npos);
}

TEST_CASE("render_top: one frame as text, every section, no escape codes without colour") {
  const auto lines = render_top(sample(), {}, TopScreen{0, 0, false, kNow});
  CHECK(lines.front() == "taskgroupd 1.2.3  running 1/8  queued 2");
  CHECK(has_line(lines, "GROUPS (2)"));
  CHECK(has_line(lines, "build    [########>>>>........]          2/5"));
  CHECK(has_line(lines, "RUNNING (1)"));
  CHECK(has_line(lines, "1m05s"));
  CHECK(has_line(lines, "make -j4"));
  CHECK(has_line(lines, "ENDED (the last 1)"));
  CHECK(has_line(lines, "cancelled: group 'build' cancelled by uid 1000"));
  CHECK_FALSE(has_line(lines, "\x1b"));
  CHECK_FALSE(has_line(lines, "quit"));  // No key help without a screen.
  CHECK_FALSE(has_line(lines, "> build"));
}

TEST_CASE("render_top: on a screen, exactly its height, lines cut to its width, keys last") {
  proto::WatchFrame f = sample();
  for (int i = 0; i < 40; ++i) f.groups.push_back(group("g" + std::to_string(i), 1, 0, 1));
  TopState s;
  const TopScreen screen{60, 20, true, kNow};
  const auto lines = render_top(f, s, screen);
  REQUIRE(lines.size() == 20);
  for (const auto& l : lines) CHECK(display_width(l) <= 60);
  CHECK(lines.back().find("quit") != std::string::npos);
  CHECK(has_line(lines, "more"));
  CHECK(has_line(lines, "\x1b[32m"));

  // Selecting down past the window scrolls the selection into view.
  for (int i = 0; i < 30; ++i) (void)on_key(s, 'j', f);
  CHECK(s.selected_name == "g28");
  CHECK(has_line(render_top(f, s, {60, 20, false, kNow}), "> g28"));
}

TEST_CASE("on_key: select, pause or resume, and cancel only after y") {
  proto::WatchFrame f = sample();
  TopState s;
  CHECK(on_key(s, kKeyDown, f).kind == TopAction::Kind::kNone);
  CHECK(s.selected_name == "nightly");
  CHECK(on_key(s, 'k', f).kind == TopAction::Kind::kNone);
  CHECK(s.selected_name == "build");
  CHECK(on_key(s, 'k', f).kind == TopAction::Kind::kNone);  // Stays at the top.
  CHECK(s.selected_name == "build");

  TopAction a = on_key(s, 'p', f);
  CHECK(a.kind == TopAction::Kind::kPause);
  CHECK(a.group.name == "build");
  CHECK(a.group.user == "1000");
  f.groups[0].paused = true;
  CHECK(on_key(s, 'p', f).kind == TopAction::Kind::kResume);

  CHECK(on_key(s, 'c', f).kind == TopAction::Kind::kNone);
  CHECK(s.mode == TopState::Mode::kConfirm);
  CHECK(render_top(f, s, {80, 24, false, kNow}).back() == "Cancel group build? (y/n)");
  CHECK(on_key(s, 'n', f).kind == TopAction::Kind::kNone);
  CHECK(s.mode == TopState::Mode::kBrowse);
  CHECK(s.message == "not cancelled");
  (void)on_key(s, 'c', f);
  CHECK(on_key(s, 'Y', f).kind == TopAction::Kind::kNone);  // Only y.
  (void)on_key(s, 'c', f);
  a = on_key(s, 'y', f);
  CHECK(a.kind == TopAction::Kind::kCancel);
  CHECK(a.group.name == "build");

  CHECK(on_key(s, 'q', f).kind == TopAction::Kind::kQuit);
  CHECK(on_key(s, kKeyCtrlC, f).kind == TopAction::Kind::kQuit);
}

TEST_CASE("on_key: g types a filter, Enter applies it, Esc clears it") {
  const proto::WatchFrame f = sample();
  TopState s;
  (void)on_key(s, 'g', f);
  CHECK(s.mode == TopState::Mode::kFilter);
  for (char c : std::string("nighx")) (void)on_key(s, c, f);
  (void)on_key(s, kKeyBackspace, f);
  CHECK(on_key(s, 'q', f).kind == TopAction::Kind::kNone);  // Typed, not quit.
  CHECK(s.typing == "nighq");
  (void)on_key(s, kKeyBackspace, f);
  (void)on_key(s, kKeyEnter, f);
  CHECK(s.filter == "nigh");
  CHECK(shown_groups(f, s).size() == 1);
  CHECK(selected_group(f, s)->name == "nightly");
  CHECK(render_top(f, s, {0, 0, false, kNow}).front().find("filter: nigh") != std::string::npos);
  (void)on_key(s, '/', f);
  (void)on_key(s, kKeyEscape, f);
  CHECK(s.filter.empty());
  CHECK(shown_groups(f, s).size() == 2);
}

}  // namespace tg::client
