#include "client/format.h"

#include <doctest/doctest.h>

namespace tg::client {

TEST_CASE("render_table: columns align to the widest cell and the last one is not padded") {
  const std::string table = render_table({{"ID", Align::kRight}, {"STATE"}, {"COMMAND"}},
                                         {{"7", "running", "sleep 10"}, {"1234", "queued", "ls"}});
  CHECK(table ==
        "  ID  STATE    COMMAND\n"
        "   7  running  sleep 10\n"
        "1234  queued   ls\n");
}

TEST_CASE("render_table: width counts UTF-8 characters, not bytes") {
  const std::string table = render_table({{"A"}, {"B"}}, {{"été", "x"}, {"abcd", "y"}});
  CHECK(table ==
        "A     B\n"
        "été   x\n"
        "abcd  y\n");
}

TEST_CASE("render_table: a table without rows is its header") {
  CHECK(render_table({{"ID", Align::kRight}, {"GROUP"}}, {}) == "ID  GROUP\n");
}

TEST_CASE("render_fields: values line up after the longest key") {
  CHECK(render_fields({{"id", "42"}, {"state", "running"}}) ==
        "id:     42\n"
        "state:  running\n");
}

TEST_CASE("truncate_display: cuts at a character boundary and marks the cut") {
  CHECK(truncate_display("short", 10) == "short");
  CHECK(truncate_display("exactly10!", 10) == "exactly10!");
  CHECK(truncate_display("make -j4 all install", 10) == "make -j4 \u2026");
  CHECK(truncate_display("ééééé", 3) == "éé\u2026");
  CHECK(truncate_display("abc", 0) == "");
}

TEST_CASE("printable: control characters become escapes") {
  CHECK(printable("a\nb\tc\x1b[31m") == "a\\nb\\tc\\x1b[31m");
  CHECK(printable("plain été") == "plain été");
}

TEST_CASE("command_line: argv is quoted as a shell would need it, shell text is left alone") {
  CHECK(command_line({"make", "-j4", "CFLAGS=-O2"}, false) == "make -j4 CFLAGS=-O2");
  CHECK(command_line({"sh", "-c", "echo 'hi' | wc"}, false) == "sh -c 'echo '\\''hi'\\'' | wc'");
  CHECK(command_line({"printf", ""}, false) == "printf ''");
  CHECK(command_line({"echo $HOME | wc -c"}, true) == "echo $HOME | wc -c");
}

TEST_CASE("counts_summary: names every non-zero count") {
  proto::StateCounts n;
  CHECK(counts_summary(n) == "0 tasks");
  n.succeeded = 1;
  CHECK(counts_summary(n) == "1 task: 1 succeeded");
  n.succeeded = 10;
  n.failed = 1;
  n.timed_out = 1;
  n.cancelled = 2;
  CHECK(counts_summary(n) == "14 tasks: 10 succeeded, 1 failed, 1 timed out, 2 cancelled");
}

TEST_CASE("progress_line: a bar, the counts and the elapsed time within the width") {
  proto::WaitResult p;
  p.counts.succeeded = 5;
  p.counts.failed = 1;
  p.counts.lost = 1;
  p.counts.cancelled = 1;
  p.counts.running = 2;
  p.counts.queued = 2;
  p.elapsed_ms = 42'000;
  const std::string text = "8/12 done  5 ok  2 failed  1 cancelled  2 running  2 queued  42.0s";

  SUBCASE("a wide terminal gets a 30-column bar, filled by the share done") {
    const std::string line = progress_line(p, 200);
    CHECK(line == "[" + std::string(20, '#') + std::string(10, '-') + "] " + text);
  }
  SUBCASE("a narrower terminal gets a shorter bar, and the line stays off the last column") {
    const std::string line = progress_line(p, 90);
    CHECK(line.size() == 89);
    CHECK(line.substr(line.size() - text.size()) == text);
  }
  SUBCASE("a terminal too narrow for a bar gets the counts, cut") {
    const std::string line = progress_line(p, 40);
    CHECK(display_width(line) == 39);
    CHECK(line.rfind("8/12 done", 0) == 0);
  }
  SUBCASE("nothing to wait for is a full bar") {
    const std::string line = progress_line(proto::WaitResult{}, 200);
    CHECK(line.rfind("[" + std::string(30, '#') + "] 0/0 done", 0) == 0);
  }
}

}  // namespace tg::client
