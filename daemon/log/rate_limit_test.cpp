#include "daemon/log/rate_limit.h"

#include <memory>
#include <sstream>
#include <string>

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>

namespace tg::daemon {

namespace {

using std::chrono::milliseconds;
using Clock = LogRateLimit::Clock;

// Makes a logger writing "level message" lines to `out` the default logger for a test.
class CaptureLog {
 public:
  explicit CaptureLog(spdlog::level::level_enum level) : old_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out_);
    sink->set_pattern("%l %v");
    auto logger = std::make_shared<spdlog::logger>("test", std::move(sink));
    logger->set_level(level);
    spdlog::set_default_logger(std::move(logger));
  }
  ~CaptureLog() { spdlog::set_default_logger(old_); }
  CaptureLog(const CaptureLog&) = delete;
  CaptureLog& operator=(const CaptureLog&) = delete;
  [[nodiscard]] std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> old_;
};

}  // namespace

TEST_CASE("LogRateLimit: a burst passes, then one line per interval") {
  LogRateLimit limit("refused connections", 3, milliseconds(1000));
  const Clock::time_point t0{};
  CHECK(limit.admit(t0) == std::optional<std::uint64_t>(0));
  CHECK(limit.admit(t0) == std::optional<std::uint64_t>(0));
  CHECK(limit.admit(t0) == std::optional<std::uint64_t>(0));
  for (int i = 0; i < 100; ++i) CHECK_FALSE(limit.admit(t0 + milliseconds(10 * i)).has_value());
  // A token a second; the first line through says how many were dropped before it.
  CHECK(limit.admit(t0 + milliseconds(1000)) == std::optional<std::uint64_t>(100));
  CHECK_FALSE(limit.admit(t0 + milliseconds(1500)).has_value());
  CHECK_FALSE(limit.admit(t0 + milliseconds(1999)).has_value());
  CHECK(limit.admit(t0 + milliseconds(2000)) == std::optional<std::uint64_t>(2));
}

TEST_CASE("LogRateLimit: a quiet spell refills the bucket, never past the burst") {
  LogRateLimit limit("k", 3, milliseconds(1000));
  const Clock::time_point t0{};
  for (int i = 0; i < 3; ++i) CHECK(limit.admit(t0).has_value());
  CHECK_FALSE(limit.admit(t0).has_value());
  const auto later = t0 + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) CHECK(limit.admit(later).has_value());
  CHECK_FALSE(limit.admit(later).has_value());
  SUBCASE("partial intervals add up") {
    CHECK_FALSE(limit.admit(later + milliseconds(600)).has_value());
    CHECK(limit.admit(later + milliseconds(1000)) == std::optional<std::uint64_t>(2));
  }
}

TEST_CASE("LogRateLimit::log: suppressed lines are summed up before the next one let through") {
  const CaptureLog capture(spdlog::level::info);
  LogRateLimit limit("refused connections", 2, std::chrono::hours(1));
  for (int uid = 1; uid <= 5; ++uid) limit.warn("uid={} refused", uid);
  CHECK(capture.text() == "warning uid=1 refused\nwarning uid=2 refused\n");
  SUBCASE("a level the logger drops costs no token") {
    LogRateLimit quiet("bad requests", 1, std::chrono::hours(1));
    quiet.debug("dropped by the level");
    quiet.warn("still let through");
    CHECK(capture.text().find("still let through") != std::string::npos);
  }
}

TEST_CASE("LogRateLimit::log: the summary names the kind and the count") {
  const CaptureLog capture(spdlog::level::info);
  LogRateLimit limit("refused connections", 1, milliseconds(1000));
  const Clock::time_point t0{};
  for (int i = 0; i < 2000; ++i) {
    limit.log_at(t0 + milliseconds(i / 4), spdlog::level::warn, "uid={} refused", i);
  }
  limit.log_at(t0 + milliseconds(1000), spdlog::level::warn, "uid={} refused", 2000);
  CHECK(capture.text() ==
        "warning uid=0 refused\n"
        "warning 1999 similar messages suppressed (refused connections)\n"
        "warning uid=2000 refused\n");
}

}  // namespace tg::daemon
