#include "daemon/log/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/log/journal_sink.h"

namespace tg::daemon {

void init_logging(bool to_journal) {
  std::shared_ptr<spdlog::logger> logger;
  if (to_journal) {
    // journald adds its own timestamp and the unit name; the sink sends the bare message with
    // the fields of the task or group it is about (daemon/log_fields.h).
    logger =
        std::make_shared<spdlog::logger>("taskgroupd", std::make_shared<JournalSink>("taskgroupd"));
  } else {
    logger = std::make_shared<spdlog::logger>("taskgroupd",
                                              std::make_shared<spdlog::sinks::stderr_sink_st>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  logger->flush_on(spdlog::level::trace);  // stderr may be a pipe; never lose the last lines.
  spdlog::set_default_logger(std::move(logger));
}

void set_log_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

}  // namespace tg::daemon
