// Integration tests: what a user or an outsider can put into the daemon's own log (issue 18,
// item 5). User strings reach the log escaped and capped, so no one can forge a line or write a
// huge one; lines any client can trigger are rate-limited, with a summary of what was dropped.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/raw_client.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::connect_unix;
using tg::test::PeerClient;
using tg::test::RawClient;
using tg::test::TestDaemon;
using tg::test::wait_until;
using tg::test::helpers::lines_of;
using tg::test::helpers::show;
using tg::test::helpers::tgctl_ok;
using tg::test::helpers::wait_tasks;

constexpr const char* kForged = "\n2026-12-07T00:00:00.000 critical forged";
// No log line may be longer than this, whatever a user sends (the longest user string in a
// line is capped at a few hundred bytes, a whole message at a few KiB).
constexpr std::size_t kMaxLineBytes = 8192;

// One submit over a raw connection: tgctl cannot pass a 900 KB argument (the kernel caps one
// argument at 128 KiB), the protocol can (docs/protocol.md: a request line up to 1 MiB).
std::int64_t submit_raw(const TestDaemon& d, const json& params) {
  RawClient c(d.socket_path());
  const json r = c.call("submit", params);
  REQUIRE_MESSAGE(r.contains("result"), r.dump());
  return r.at("result").at("ids").at(0).get<std::int64_t>();
}

// "2026-11-22T02:58:40.534 level message": every line starts with the daemon's timestamp.
bool timestamped(const std::string& line) {
  return line.size() > 24 && line[4] == '-' && line[10] == 'T' && line[13] == ':' &&
         line[19] == '.' && line[23] == ' ';
}

void check_log_lines(const std::string& log) {
  for (const auto& line : lines_of(log)) {
    if (line.starts_with("==== test:")) continue;  // The fixture's banner.
    CHECK_MESSAGE(timestamped(line),
                  "a log line without a timestamp (forged?): '" << line.substr(0, 200) << "'");
    // A forged line has a timestamp too, but not the one of the daemon's clock, and no
    // message here is critical.
    CHECK_MESSAGE(!line.starts_with("2026-12-07T00:00:00.000"), "a forged line: '" << line << "'");
    CHECK_MESSAGE(line.find(" critical ") != 23,
                  "a critical line: '" << line.substr(0, 200) << "'");
    CHECK_MESSAGE(line.size() <= kMaxLineBytes,
                  "a log line of " << line.size() << " bytes: '" << line.substr(0, 200) << "'");
    CHECK_MESSAGE(line.find('\x1b') == std::string::npos,
                  "an escape sequence in the log: '" << line.substr(0, 200) << "'");
    CHECK_MESSAGE(line.find('\r') == std::string::npos, "a carriage return in the log");
  }
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("Logs: a task's argv[0] and cwd cannot forge a log line, or make a huge one") {
  TestDaemon d;
  const std::string forged_path = std::string("/nonexistent") + kForged;  // exec fails.
  const std::string forged_name = std::string("nosuch") + kForged;        // Not on PATH.
  const std::string huge = "/" + std::string(900'000, 'a');               // ENAMETOOLONG.
  const std::string bad_cwd = std::string("/tmp/\x1b[31mred\x1b]0;title\x07") + kForged;
  std::vector<std::int64_t> ids;
  ids.push_back(submit_raw(d, {{"argv", {forged_path}}}));
  ids.push_back(submit_raw(d, {{"argv", {forged_name}}}));
  ids.push_back(submit_raw(d, {{"argv", {huge}}}));
  ids.push_back(submit_raw(d, {{"argv", {"true"}}, {"cwd", bad_cwd}}));
  CHECK(wait_tasks(d, ids) != 0);
  for (auto id : ids) {
    const json t = show(d, id);
    CHECK(t.at("state") == "failed");
    // The reason a user reads is capped too, with a marker saying how much was left out.
    const std::string reason = t.at("reason").get<std::string>();
    CHECK_MESSAGE(reason.size() < 1024, reason.substr(0, 200));
    CHECK_MESSAGE(reason.find('\n') == std::string::npos, reason);
  }
  CHECK(show(d, ids[2]).at("reason").get<std::string>().find("bytes]") != std::string::npos);

  const std::string log = d.log();
  check_log_lines(log);
  // What was sent is still there, visibly escaped.
  CHECK(count_of(log, "\\n2026-12-07T00:00:00.000 critical forged") >= 3);
  CHECK(log.find("\\x1b[31mred") != std::string::npos);
  // The argv[0] of 900 KB is cut short, saying how much more there was.
  CHECK(log.find("aaaa…[+") != std::string::npos);
}

TEST_CASE("Logs: a flood of refused connections logs a bounded number of lines and a summary") {
  TestDaemon d;
  tg::test::write_file(d.dir() / "taskgroupd.toml", "max_connections_per_uid = 1\n");
  tgctl_ok(d, {"reload"});
  // Our one allowed connection: every other one is refused. (Until the daemon has seen tgctl's
  // connection close, this one may be refused too.)
  std::optional<RawClient> held;
  wait_until(
      [&] {
        held.emplace(d.socket_path());
        if (!held->send_raw("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\"}\n")) {
          return false;  // Refused and closed before it read.
        }
        const auto reply = held->read_line();
        return reply && reply->find("\"result\"") != std::string::npos;
      },
      milliseconds(10'000), "a connection of our own");
  const std::size_t lines_before = lines_of(d.log()).size();
  constexpr int kFlood = 2000;
  for (int i = 0; i < kFlood; ++i) {
    PeerClient c(connect_unix(d.socket_path()));
    const auto line = c.read_line();  // The daemon has handled it once it answered.
    REQUIRE(line.has_value());
    REQUIRE(line->find("busy") != std::string::npos);
  }
  // The flood took a few seconds at most: a burst of 10 lines, then about one a second.
  const std::string flood_log = d.log();
  const std::size_t gained = lines_of(flood_log).size() - lines_before;
  CHECK_MESSAGE(gained <= 60, gained << " lines for " << kFlood << " refused connections");
  CHECK(count_of(flood_log, "refused: too many connections") >= 1);
  CHECK(count_of(flood_log, "refused: too many connections") <= 60);
  // The next refusal let through says how many were dropped.
  wait_until(
      [&] {
        PeerClient c(connect_unix(d.socket_path()));
        (void)c.read_line();
        return d.log().find("similar messages suppressed") != std::string::npos;
      },
      milliseconds(10'000), "a 'similar messages suppressed' line");
  check_log_lines(d.log());
}
