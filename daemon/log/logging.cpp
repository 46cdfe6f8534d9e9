#include "daemon/log/logging.h"

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "daemon/log/journal_sink.h"
#include "daemon/log/printable.h"

namespace tg::daemon {

namespace {

// stderr, one line per message whatever the message holds: the call sites pass user strings
// through printable() with their own caps, and this is the net under them, so that no message
// can start a line of its own (a forged one) or run on for megabytes.
class StderrSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 private:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t out;
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (is_printable(payload, kLoggedMessageBytes)) {
      formatter_->format(msg, out);
    } else {
      const std::string safe = printable(payload, kLoggedMessageBytes);
      spdlog::details::log_msg copy(msg);
      copy.payload = safe;
      formatter_->format(copy, out);
    }
    (void)std::fwrite(out.data(), 1, out.size(), stderr);  // Nowhere to report a failure.
  }
  void flush_() override { (void)std::fflush(stderr); }
};

}  // namespace

void init_logging(bool to_journal) {
  std::shared_ptr<spdlog::logger> logger;
  if (to_journal) {
    // journald adds its own timestamp and the unit name; the sink sends the bare message with
    // the fields of the task or group it is about (daemon/log_fields.h).
    logger =
        std::make_shared<spdlog::logger>("taskgroupd", std::make_shared<JournalSink>("taskgroupd"));
  } else {
    logger = std::make_shared<spdlog::logger>("taskgroupd", std::make_shared<StderrSink>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  logger->flush_on(spdlog::level::trace);  // stderr may be a pipe; never lose the last lines.
  spdlog::set_default_logger(std::move(logger));
}

void set_log_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

}  // namespace tg::daemon
