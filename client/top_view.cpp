#include "client/top_view.h"

#include <algorithm>
#include <chrono>

#include "client/color.h"
#include "client/format.h"
#include "common/duration.h"
#include "common/signal_name.h"

namespace tg::client {

namespace {

// One screen line as plain text runs, each with its colour; cut to a width without ever
// counting or splitting a colour code.
class Line {
 public:
  Line& add(std::string_view text, std::string_view sgr = "") {
    runs_.push_back({std::string(text), std::string(sgr)});
    return *this;
  }
  // Left-aligned in `width` columns (cut if longer).
  Line& cell(std::string_view text, std::size_t width, std::string_view sgr = "") {
    std::string t = truncate_display(text, width);
    const std::size_t w = display_width(t);
    add(t, sgr);
    return add(std::string(width - w, ' '));
  }
  Line& right(std::string_view text, std::size_t width, std::string_view sgr = "") {
    const std::size_t w = display_width(text);
    if (w < width) add(std::string(width - w, ' '));
    return add(text, sgr);
  }
  [[nodiscard]] std::string finish(std::size_t width, bool color) const {
    std::string out;
    std::size_t left = width == 0 ? std::string::npos : width;
    for (const Run& r : runs_) {
      if (left == 0) break;
      std::string t = r.text;
      if (display_width(t) > left) t = truncate_display(t, left);
      left -= std::min(left, display_width(t));
      out += paint(t, r.sgr, color);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }

 private:
  struct Run {
    std::string text;
    std::string sgr;
  };
  std::vector<Run> runs_;
};

std::string owner(const std::string& user, std::uint32_t uid) {
  return user.empty() ? std::to_string(uid) : user;
}

std::optional<TimeMs> time_of(const std::optional<std::string>& t) {
  return t ? parse_rfc3339(*t) : std::nullopt;
}

// Whole seconds: a live view that ticks once a second shows no tenths.
std::string elapsed(TimeMs from, TimeMs to) {
  return format_elapsed(std::chrono::seconds((to - from) / 1000));
}

std::string exit_of(const proto::WatchTask& t) {
  if (t.signal) return signal_text(*t.signal);
  if (t.exit_code) return std::to_string(*t.exit_code);
  return "-";
}

bool several_owners(const proto::WatchFrame& f) {
  const auto differs = [&f](std::uint32_t uid) {
    return !f.groups.empty() && uid != f.groups.front().uid;
  };
  return std::any_of(f.groups.begin(), f.groups.end(),
                     [&](const proto::WatchGroup& g) { return differs(g.uid); }) ||
         std::any_of(f.running.begin(), f.running.end(),
                     [&](const proto::WatchTask& t) { return differs(t.uid); }) ||
         std::any_of(f.ended.begin(), f.ended.end(),
                     [&](const proto::WatchTask& t) { return differs(t.uid); });
}

// The bar's cells as runs of one kind each, then blanks: `width` cells in all.
std::vector<std::pair<std::string, std::string_view>> bar_runs(const proto::StateCounts& c,
                                                               std::size_t width) {
  const std::int64_t total = c.total();
  const std::int64_t parts[] = {c.succeeded, c.failed + c.timed_out + c.lost,
                                c.cancelled + c.interrupted, c.running, c.queued};
  const char marks[] = {'#', 'x', '-', '>', '.'};
  const std::string_view sgrs[] = {kSgrGreen, kSgrRed, kSgrYellow, kSgrCyan, kSgrDim};
  std::vector<std::pair<std::string, std::string_view>> out;
  std::int64_t sum = 0;
  std::size_t drawn = 0;
  for (std::size_t k = 0; k < 5 && total > 0; ++k) {
    sum += parts[k];
    // Cumulative rounding: the cells add up to `width`, each kind near its share.
    const auto upto =
        static_cast<std::size_t>((sum * static_cast<std::int64_t>(width) + total / 2) / total);
    if (upto > drawn) out.emplace_back(std::string(upto - drawn, marks[k]), sgrs[k]);
    drawn = std::max(drawn, upto);
  }
  if (drawn < width) out.emplace_back(std::string(width - drawn, ' '), "");
  return out;
}

struct Section {
  std::vector<Line> lines;  // The first is the title, the second the column headers.
  std::size_t focus = 0;    // A line that must stay in view when the section is cut.
};

Line summary_line(const proto::WatchFrame& f, const TopState& s) {
  Line l;
  l.add("taskgroupd " + f.daemon.version, kSgrBold);
  l.add("  running ")
      .add(std::to_string(f.daemon.running) + "/" + std::to_string(f.daemon.max_running), kSgrCyan);
  l.add("  queued ").add(std::to_string(f.daemon.queued));
  if (f.daemon.draining) l.add("  ").add("draining", kSgrRed);
  if (!s.filter.empty()) l.add("  filter: ").add(s.filter, kSgrYellow);
  return l;
}

Section group_section(const proto::WatchFrame& f, const TopScreen& screen,
                      const std::vector<const proto::WatchGroup*>& groups,
                      const proto::WatchGroup* selected, bool with_user) {
  Section out;
  std::string title = "GROUPS (" + std::to_string(groups.size());
  if (f.groups_total > static_cast<std::int64_t>(f.groups.size())) {
    title += " shown of " + std::to_string(f.groups_total) + ": the busiest " +
             std::to_string(f.groups.size()) + " are sent";
  }
  out.lines.emplace_back().add(title + ")", kSgrBold);
  std::size_t name_w = 5, user_w = 4;
  for (const auto* g : groups) {
    name_w = std::max(name_w, display_width(g->name));
    user_w = std::max(user_w, display_width(owner(g->user, g->uid)));
  }
  name_w = std::min<std::size_t>(name_w, 24);
  user_w = std::min<std::size_t>(user_w, 12);
  Line& h = out.lines.emplace_back();
  h.add("  ").cell("GROUP", name_w + 2);
  if (with_user) h.cell("USER", user_w + 2);
  h.cell("PROGRESS", kTopBarWidth + 4).right("DONE", 11);
  h.right("OK", 6).right("FAIL", 6).right("CANC", 6).right("RUN", 6).right("QUEUE", 7);
  h.add("  FLAGS");
  for (const auto* g : groups) {
    const proto::StateCounts& c = g->counts;
    const bool sel = screen.height > 0 && g == selected;
    if (sel) out.focus = out.lines.size();
    Line& l = out.lines.emplace_back();
    l.add(sel ? "> " : "  ", kSgrBold).cell(printable(g->name), name_w + 2, sel ? kSgrReverse : "");
    if (with_user) l.cell(owner(g->user, g->uid), user_w + 2);
    l.add("[");
    for (const auto& [marks, sgr] : bar_runs(c, kTopBarWidth)) l.add(marks, sgr);
    l.add("]  ");
    l.right(std::to_string(c.done()) + "/" + std::to_string(c.total()), 11);
    const auto count = [&l](std::int64_t n, std::size_t w, std::string_view sgr) {
      l.right(std::to_string(n), w, n == 0 ? "" : sgr);
    };
    count(c.succeeded, 6, kSgrGreen);
    count(c.failed + c.timed_out + c.lost, 6, kSgrRed);
    count(c.cancelled + c.interrupted, 6, kSgrYellow);
    count(c.running, 6, kSgrCyan);
    count(c.queued, 7, "");
    l.add("  ");
    if (g->cancelling) l.add("cancelling ", kSgrRed);
    if (g->paused) l.add("paused ", kSgrYellow);
    if (g->limit > 0) l.add("limit " + std::to_string(g->limit));
  }
  if (groups.empty())
    out.lines.emplace_back().add(f.groups.empty() ? "  (no groups)" : "  (none match)");
  return out;
}

Section running_section(const proto::WatchFrame& f, const TopScreen& screen, bool with_user) {
  Section out;
  std::string title = "RUNNING (" + std::to_string(f.running_total);
  if (f.running_total > static_cast<std::int64_t>(f.running.size())) {
    title += ", the oldest " + std::to_string(f.running.size()) + " shown";
  }
  out.lines.emplace_back().add(title + ")", kSgrBold);
  Line& h = out.lines.emplace_back();
  h.right("ID", 8).add("  ").cell("GROUP", 18);
  if (with_user) h.cell("USER", 12);
  // CPU: the task's CPU time once tasks have cgroups of their own; "-" until then.
  h.right("ELAPSED", 9).right("CPU", 8).add("  COMMAND");
  for (const auto& t : f.running) {
    Line& l = out.lines.emplace_back();
    l.right(std::to_string(t.id), 8).add("  ").cell(printable(t.group), 18);
    if (with_user) l.cell(owner(t.user, t.uid), 12);
    const auto started = time_of(t.started_at);
    l.right(started ? elapsed(*started, screen.now) : "-", 9, kSgrCyan);
    l.right(t.cpu_ms ? format_elapsed(std::chrono::milliseconds(*t.cpu_ms)) : "-", 8);
    l.add("  ").add(printable(t.command));
  }
  if (f.running.empty()) out.lines.emplace_back().add("  (none)");
  return out;
}

Section ended_section(const proto::WatchFrame& f, bool with_user) {
  Section out;
  out.lines.emplace_back().add("ENDED (the last " + std::to_string(f.ended.size()) + ")", kSgrBold);
  Line& h = out.lines.emplace_back();
  h.right("ID", 8).add("  ").cell("GROUP", 18);
  if (with_user) h.cell("USER", 12);
  h.cell("STATE", 12).right("EXIT", 8).right("TOOK", 9).add("  REASON / COMMAND");
  for (const auto& t : f.ended) {
    Line& l = out.lines.emplace_back();
    l.right(std::to_string(t.id), 8).add("  ").cell(printable(t.group), 18);
    if (with_user) l.cell(owner(t.user, t.uid), 12);
    l.cell(std::string(proto::to_string(t.state)), 12, state_sgr(t.state));
    l.right(exit_of(t), 8);
    const auto started = time_of(t.started_at), ended = time_of(t.ended_at);
    l.right(started && ended ? elapsed(*started, *ended) : "-", 9);
    l.add("  ").add(printable(t.reason ? *t.reason : t.command));
  }
  if (f.ended.empty()) out.lines.emplace_back().add("  (none since the daemon started)");
  return out;
}

Line footer(const TopState& s) {
  Line l;
  switch (s.mode) {
    case TopState::Mode::kFilter:
      l.add("filter groups: ", kSgrBold).add(printable(s.typing) + "_");
      l.add("   Enter applies, Esc clears");
      return l;
    case TopState::Mode::kConfirm:
      l.add("Cancel group " + printable(s.selected_name) + "? (y/n)", kSgrReverse);
      return l;
    case TopState::Mode::kBrowse:
      break;
  }
  l.add("q", kSgrBold).add(" quit  ").add("g /", kSgrBold).add(" filter  ");
  l.add("up/down j/k", kSgrBold).add(" select  ").add("p", kSgrBold).add(" pause/resume  ");
  l.add("c", kSgrBold).add(" cancel");
  if (!s.message.empty()) l.add("   ").add(printable(s.message), kSgrYellow);
  return l;
}

// Cuts a section to `rows` lines, keeping its title, its headers and its focus line in view,
// and saying how many lines it left out.
std::vector<Line> fit(Section s, std::size_t rows) {
  if (s.lines.size() <= rows) return std::move(s.lines);
  if (rows <= 2) {
    s.lines.resize(rows);
    return std::move(s.lines);
  }
  const std::size_t body = rows - 3;  // Title, headers, "… N more".
  const std::size_t first_body = 2;
  std::size_t start = first_body;
  if (s.focus >= first_body + body) start = s.focus + 1 - body;
  std::vector<Line> out(s.lines.begin(), s.lines.begin() + 2);
  out.insert(out.end(), s.lines.begin() + static_cast<std::ptrdiff_t>(start),
             s.lines.begin() + static_cast<std::ptrdiff_t>(start + body));
  const std::size_t hidden = s.lines.size() - first_body - body;
  out.emplace_back().add("  ... " + std::to_string(hidden) + " more", kSgrDim);
  return out;
}

}  // namespace

std::string progress_bar(const proto::StateCounts& c, std::size_t width, bool color) {
  std::string out = "[";
  for (const auto& [marks, sgr] : bar_runs(c, width)) out += paint(marks, sgr, color);
  return out + "]";
}

std::vector<const proto::WatchGroup*> shown_groups(const proto::WatchFrame& frame,
                                                   const TopState& state) {
  std::vector<const proto::WatchGroup*> out;
  for (const auto& g : frame.groups) {
    if (state.filter.empty() || g.name.find(state.filter) != std::string::npos) out.push_back(&g);
  }
  return out;
}

const proto::WatchGroup* selected_group(const proto::WatchFrame& frame, TopState& state) {
  const auto groups = shown_groups(frame, state);
  if (groups.empty()) return nullptr;
  for (const auto* g : groups) {
    if (state.selected_uid && *state.selected_uid == g->uid && state.selected_name == g->name) {
      return g;
    }
  }
  state.selected_uid = groups.front()->uid;
  state.selected_name = groups.front()->name;
  return groups.front();
}

TopAction on_key(TopState& s, int key, const proto::WatchFrame& frame) {
  using Kind = TopAction::Kind;
  if (key == kKeyCtrlC) return {Kind::kQuit, {}};
  switch (s.mode) {
    case TopState::Mode::kFilter:
      if (key == kKeyEnter || key == '\n') {
        s.filter = s.typing;
        s.mode = TopState::Mode::kBrowse;
      } else if (key == kKeyEscape) {
        s.filter.clear();
        s.mode = TopState::Mode::kBrowse;
      } else if (key == kKeyBackspace || key == '\b') {
        if (!s.typing.empty()) s.typing.pop_back();
      } else if (key >= 0x20 && key < 0x7f && s.typing.size() < proto::kMaxGroupNameBytes) {
        s.typing += static_cast<char>(key);
      }
      return {};
    case TopState::Mode::kConfirm: {
      s.mode = TopState::Mode::kBrowse;
      const proto::WatchGroup* g = selected_group(frame, s);
      if (key != 'y' || !g) {
        s.message = "not cancelled";
        return {};
      }
      return {Kind::kCancel, {g->name, std::to_string(g->uid)}};
    }
    case TopState::Mode::kBrowse:
      break;
  }
  s.message.clear();
  const auto groups = shown_groups(frame, s);
  const proto::WatchGroup* g = selected_group(frame, s);
  switch (key) {
    case 'q':
      return {Kind::kQuit, {}};
    case 'g':
    case '/':
      s.mode = TopState::Mode::kFilter;
      s.typing = s.filter;
      return {};
    case kKeyUp:
    case kKeyDown:
    case 'k':
    case 'j': {
      if (!g) return {};
      auto it = std::find(groups.begin(), groups.end(), g);
      const bool up = key == kKeyUp || key == 'k';
      if (up && it != groups.begin()) --it;
      if (!up && it + 1 != groups.end()) ++it;
      s.selected_uid = (*it)->uid;
      s.selected_name = (*it)->name;
      return {};
    }
    case 'p':
      if (!g) return {};
      return {g->paused ? Kind::kResume : Kind::kPause, {g->name, std::to_string(g->uid)}};
    case 'c':
      if (g) s.mode = TopState::Mode::kConfirm;
      return {};
    default:
      return {};
  }
}

std::vector<std::string> render_top(const proto::WatchFrame& frame, const TopState& state,
                                    const TopScreen& screen) {
  TopState s = state;
  const auto groups = shown_groups(frame, s);
  const proto::WatchGroup* selected = selected_group(frame, s);
  const bool with_user = several_owners(frame);
  std::vector<Line> lines;
  lines.push_back(summary_line(frame, s));
  std::vector<Section> sections = {group_section(frame, screen, groups, selected, with_user),
                                   running_section(frame, screen, with_user),
                                   ended_section(frame, with_user)};
  if (screen.height == 0) {  // --once: everything.
    for (Section& sec : sections) {
      lines.emplace_back();
      for (Line& l : sec.lines) lines.push_back(std::move(l));
    }
  } else {
    // Rows for the sections: all but the summary, the footer and a blank line before each.
    std::size_t left = screen.height > 5 ? screen.height - 5 : 0;
    // Each section gets what it needs up to an even share of what is left; what one does not
    // use goes to the next.
    for (std::size_t i = 0; i < sections.size(); ++i) {
      const std::size_t share = std::max<std::size_t>(left / (sections.size() - i), 3);
      const std::size_t rows = std::min({sections[i].lines.size(), share, left});
      lines.emplace_back();
      for (Line& l : fit(std::move(sections[i]), rows)) lines.push_back(std::move(l));
      left -= rows;
    }
    while (lines.size() + 1 < screen.height) lines.emplace_back();
    lines.push_back(footer(s));
  }
  std::vector<std::string> out;
  out.reserve(lines.size());
  for (const Line& l : lines) out.push_back(l.finish(screen.width, screen.color));
  if (screen.height > 0 && out.size() > screen.height) out.resize(screen.height);
  return out;
}

}  // namespace tg::client
