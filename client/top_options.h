#pragma once

#include <string>

#include "client/command.h"
#include "client/completions.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace tg::client {

// The `tgctl top` subcommand: --once, -g/--group (a filter), --user. add_to() defines it on
// tgctl's command line and records that -g takes a group (for completions); its callback
// puts a TopCommand into `command`, which must outlive the parse.
class TopOptions {
 public:
  void add_to(CLI::App& app, Command& command, ValueKinds& kinds);

 private:
  TopCommand top_;
  std::string user_;
  CLI::Option* user_option_ = nullptr;
};

}  // namespace tg::client
