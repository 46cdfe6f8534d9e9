#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

namespace tg::daemon {

// A token bucket for one kind of log line that anyone who can connect may trigger (a refused
// connection, a bad request: STYLE.md rule 22), so that a flood of them cannot flood the log:
// `burst` lines at once, then one per `every`. Owned by whoever logs that kind of line (the
// Server, for the lines of its sessions); event-loop thread only. Never use it for what a user
// relies on, such as a task's transitions.
class LogRateLimit {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogRateLimit(std::string kind, int burst = 10,
                        std::chrono::milliseconds every = std::chrono::seconds(1))
      : kind_(std::move(kind)), burst_(burst), every_(every), tokens_(burst) {}

  // Whether a line may be logged at `now`: nullopt if not (it is counted as suppressed);
  // otherwise how many lines were suppressed since the last one let through.
  [[nodiscard]] std::optional<std::uint64_t> admit(Clock::time_point now);

  // Logs one line at `level` unless the bucket is empty; before a line that follows
  // suppressed ones, one line "N similar messages suppressed (KIND)". A level the logger
  // would drop anyway costs no token.
  template <class... Args>
  void log(spdlog::level::level_enum level, spdlog::format_string_t<Args...> fmt, Args&&... args) {
    log_at(Clock::now(), level, fmt, std::forward<Args>(args)...);
  }
  template <class... Args>
  void log_at(Clock::time_point now, spdlog::level::level_enum level,
              spdlog::format_string_t<Args...> fmt, Args&&... args) {
    spdlog::logger* logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    const auto admitted = admit(now);
    if (!admitted) return;
    if (*admitted > 0) logger->log(level, "{} similar messages suppressed ({})", *admitted, kind_);
    logger->log(level, fmt, std::forward<Args>(args)...);
  }
  template <class... Args>
  void debug(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    log(spdlog::level::debug, fmt, std::forward<Args>(args)...);
  }
  template <class... Args>
  void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    log(spdlog::level::warn, fmt, std::forward<Args>(args)...);
  }

 private:
  // Constant after construction.
  const std::string kind_;
  const int burst_;
  const std::chrono::milliseconds every_;

  int tokens_;
  std::optional<Clock::time_point> refilled_;  // When tokens_ was last brought up to date.
  std::uint64_t suppressed_ = 0;
};

}  // namespace tg::daemon
