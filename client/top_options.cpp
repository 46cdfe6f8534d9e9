#include "client/top_options.h"

#include <CLI/CLI.hpp>

namespace tg::client {

void TopOptions::add_to(CLI::App& app, Command& command, ValueKinds& kinds) {
  CLI::App* top = app.add_subcommand(
      "top", "a live view of groups and tasks; keys: q quit, g filter, p pause, c cancel");
  top->add_flag("--once", top_.once, "print one frame as text and exit (for scripts and pipes)");
  kinds.insert_or_assign(
      top->add_option("-g,--group", top_.filter, "show only groups whose name contains TEXT")
          ->type_name("TEXT"),
      ValueKind::kGroup);
  user_option_ =
      top->add_option("--user", user_, "another user's groups (login name or uid; root only)")
          ->type_name("USER");
  top->callback([this, &command] {
    top_.request.user.reset();
    if (user_option_->count() > 0) top_.request.user = user_;
    command = top_;
  });
}

}  // namespace tg::client
