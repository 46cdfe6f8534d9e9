#include "daemon/exec/local/log_watch.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

namespace tg::daemon {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

// A log file in a private temp dir, removed with it; append() writes as a task would.
class TempLog {
 public:
  TempLog() {
    std::string tmpl = (fs::temp_directory_path() / "tg-logwatch.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    fd_ = ::open(path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    REQUIRE(fd_ >= 0);
  }
  ~TempLog() {
    ::close(fd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);  // Best effort: a leftover under /tmp harms nothing.
  }
  TempLog(const TempLog&) = delete;
  TempLog& operator=(const TempLog&) = delete;

  std::string path() const { return (dir_ / "1.log").string(); }
  void append(std::size_t n) const {
    const std::string bytes(n, 'y');
    REQUIRE(::write(fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(n));
  }

 private:
  fs::path dir_;
  int fd_ = -1;
};

struct Rig {
  boost::asio::io_context ioc{1};
  std::vector<std::pair<proto::TaskId, std::int64_t>> reports;
  LogWatch watch{ioc.get_executor(),
                 [this](proto::TaskId id, std::int64_t size) { reports.emplace_back(id, size); }};

  // Runs the loop until `n` reports have come, or `limit` has passed.
  void run_until_reports(std::size_t n, milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (reports.size() < n && std::chrono::steady_clock::now() < end) ioc.run_one_for(50ms);
  }
  // Runs the loop until it has had nothing to do for `quiet`; false if not within `limit`.
  bool settles(milliseconds quiet = 300ms, milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (ioc.run_for(quiet) == 0) return true;
    }
    return false;
  }
};

}  // namespace

TEST_CASE("LogWatch::next_check_delay: sooner as the cap nears, between 10 and 100 ms") {
  const auto delay = [](std::int64_t cap, std::int64_t size, std::int64_t grown,
                        milliseconds over) {
    return LogWatch::next_check_delay(cap, size, grown, over);
  };
  CHECK(delay(1000, 0, 0, 50ms) == LogWatch::kMaxDelay);           // Not growing.
  CHECK(delay(1000, 10, 10, 0ms) == LogWatch::kMinDelay);          // Growing, rate unknown.
  CHECK(delay(1000, 1001, 1, 50ms) == LogWatch::kMinDelay);        // Over the cap.
  CHECK(delay(1'000'000, 100, 100, 10ms) == LogWatch::kMaxDelay);  // Far: 100 s away.
  CHECK(delay(1000, 500, 100, 10ms) == milliseconds(50));          // 500 bytes at 10 a ms.
  CHECK(delay(1000, 990, 100, 10ms) == LogWatch::kMinDelay);       // 1 ms away.
  CHECK(delay(std::int64_t{1} << 50, 1, 1, 3'600'000ms) == LogWatch::kMaxDelay);  // No overflow.
}

TEST_CASE("LogWatch: a quiet log costs no wakeup; growth past the cap is reported as it grows") {
  TempLog log;
  Rig rig;
  rig.watch.add(1, log.path(), 100);
  CHECK(rig.settles());
  CHECK(rig.ioc.run_for(200ms) == 0);  // Nothing written: nothing to do, not even a timer.

  log.append(60);
  CHECK(rig.settles());
  CHECK(rig.reports.empty());  // Under the cap.

  log.append(60);
  rig.run_until_reports(1);
  REQUIRE(rig.reports.size() == 1);
  CHECK(rig.reports[0] == std::pair<proto::TaskId, std::int64_t>{1, 120});
  CHECK(rig.settles());
  CHECK(rig.reports.size() == 1);  // Once per growth, not once per check.

  log.append(1);
  rig.run_until_reports(2);
  REQUIRE(rig.reports.size() == 2);
  CHECK(rig.reports[1].second == 121);

  rig.watch.remove(1);
  log.append(1000);
  CHECK(rig.settles());
  CHECK(rig.reports.size() == 2);
  CHECK(rig.watch.watched() == 0);
}

TEST_CASE("LogWatch: a log written without pause is found over its cap within a few checks") {
  TempLog log;
  Rig rig;
  rig.watch.add(7, log.path(), 1 << 20);
  std::size_t written = 0;
  const auto end = std::chrono::steady_clock::now() + 5s;
  // 64 KiB every 2 ms (32 MB/s): the checks must follow the growth, not one per write.
  while (rig.reports.empty() && std::chrono::steady_clock::now() < end) {
    log.append(64 << 10);
    written += 64 << 10;
    rig.ioc.run_for(2ms);
  }
  REQUIRE(rig.reports.size() == 1);
  CHECK(rig.reports[0].first == 7);
  CHECK(rig.reports[0].second > 1 << 20);
  // Found within about one check's delay (kMaxDelay at most, 10 ms near the cap) of crossing.
  CHECK(written < (1 << 20) + (8 << 20));
  rig.watch.shutdown();
  CHECK(rig.settles());
}

TEST_CASE("LogWatch: a cap of 0 watches nothing; a log that disappears is let go") {
  TempLog log;
  Rig rig;
  rig.watch.add(1, log.path(), 0);
  CHECK(rig.watch.watched() == 0);
  rig.watch.add(2, log.path(), 10);
  CHECK(rig.watch.watched() == 1);
  REQUIRE(::unlink(log.path().c_str()) == 0);
  log.append(100);  // Into the unlinked file: its watch fires, the path is gone.
  CHECK(rig.settles());
  CHECK(rig.watch.watched() == 0);
  CHECK(rig.reports.empty());
}

}  // namespace tg::daemon
