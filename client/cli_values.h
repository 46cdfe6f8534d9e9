#pragma once

// What tgctl's options accept (CLI11 validators, each giving the reason a value is refused), and
// the fixed lists of values its completion scripts offer. Used by cli.cpp's definition.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>  // Validators.hpp alone is not self-contained.

namespace tg::client {

// Validators have no name: the option's type_name already says what it takes.
extern const CLI::Validator kGroupName;   // 1-64 characters of A-Z a-z 0-9 _ . -
extern const CLI::Validator kDuration;    // 30s, 5m, 1h...
extern const CLI::Validator kSize;        // 512K, 100M, 1G, bytes.
extern const CLI::Validator kState;       // Any task state.
extern const CLI::Validator kEndedState;  // A state a task ends in.
extern const CLI::Validator kSignal;      // A signal name or number.
extern const CLI::Validator kLabel;       // KEY=VALUE, as the daemon takes labels.
extern const CLI::Validator kSubmitKey;   // An idempotency key's length.
extern const CLI::Validator kPositive;    // Task ids and --limit N.

// The states --state offers (only those a task ends in for restart), and the named signals.
[[nodiscard]] std::vector<std::string> state_words(bool ended_only);
[[nodiscard]] std::vector<std::string> signal_words();

}  // namespace tg::client
