#pragma once

#include <string>

namespace tg::daemon {

// Sets the spdlog default logger: journald (JournalSink, with task and group fields) when
// stderr is the journal, else stderr. The only process-wide setting (STYLE.md rule 11).
void init_logging(bool to_journal);

// Applies a level name already validated by load_config().
void set_log_level(const std::string& level);

}  // namespace tg::daemon
