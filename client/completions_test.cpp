#include "client/completions.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <doctest/doctest.h>

#include "client/cli.h"

namespace tg::client {

namespace {

// What the real command line defines, found by walking its CLI11 tree here (not through
// completion_commands), so that a subcommand or flag the generator skips fails the test.
struct Defined {
  std::vector<std::string> subcommands;
  std::vector<std::string> long_names;   // "--group".
  std::vector<std::string> short_names;  // "-g".
};

void walk(const CLI::App& app, Defined& out) {
  for (const CLI::Option* opt : app.get_options()) {
    for (const std::string& l : opt->get_lnames()) out.long_names.push_back("--" + l);
    for (const std::string& s : opt->get_snames()) out.short_names.push_back("-" + s);
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_group().empty()) continue;  // Hidden: __complete.
    out.subcommands.push_back(sub->get_name());
    walk(*sub, out);
  }
}

Defined defined() {
  Defined out;
  visit_cli([&](const CLI::App& app, const ValueKinds&) { walk(app, out); });
  return out;
}

std::vector<CompletionCommand> commands() {
  std::vector<CompletionCommand> out;
  visit_cli(
      [&](const CLI::App& app, const ValueKinds& kinds) { out = completion_commands(app, kinds); });
  return out;
}

const CompletionCommand& command(const std::vector<CompletionCommand>& all,
                                 const std::string& path) {
  auto it = std::find_if(all.begin(), all.end(),
                         [&](const CompletionCommand& c) { return c.path == path; });
  REQUIRE(it != all.end());
  return *it;
}

const CompletionOption& option(const CompletionCommand& c, const std::string& name) {
  auto it = std::find_if(c.options.begin(), c.options.end(), [&](const CompletionOption& o) {
    return std::find(o.names.begin(), o.names.end(), name) != o.names.end();
  });
  REQUIRE_MESSAGE(it != c.options.end(), "tgctl " << c.path << " " << name);
  return *it;
}

}  // namespace

TEST_CASE("completion scripts: every subcommand and flag of tgctl is in each shell's script") {
  const Defined d = defined();
  REQUIRE(d.subcommands.size() >= 16);  // The walk found the tree (submit ... completions).
  REQUIRE(d.long_names.size() >= 30);
  for (const Shell shell : {Shell::kBash, Shell::kZsh, Shell::kFish}) {
    const std::string script = completion_script(commands(), shell);
    CAPTURE(static_cast<int>(shell));
    for (const std::string& sub : d.subcommands) {
      CAPTURE(sub);
      CHECK(script.find(sub) != std::string::npos);
    }
    for (const std::string& name : d.long_names) {
      CAPTURE(name);
      // fish writes "-l group"; bash and zsh write "--group".
      const std::string written = shell == Shell::kFish ? "-l " + name.substr(2) : name;
      CHECK(script.find(written) != std::string::npos);
    }
    for (const std::string& name : d.short_names) {
      CAPTURE(name);
      const std::string written = shell == Shell::kFish ? "-s " + name.substr(1) : name;
      CHECK(script.find(written) != std::string::npos);
    }
  }
}

TEST_CASE("completion scripts: every command is reached, with its own and the global options") {
  const auto all = commands();
  const Defined d = defined();
  // tgctl itself, then one command per visible subcommand (nested ones too: group set).
  CHECK(all.size() == d.subcommands.size() + 1);
  CHECK(command(all, "").subcommands.size() >= 15);
  CHECK(command(all, "group").subcommands == std::vector<std::string>{"set"});
  for (const CompletionCommand& c : all) {
    CAPTURE(c.path);
    CHECK(c.path.find("__complete") == std::string::npos);  // Hidden.
    CHECK(option(c, "--help").takes_value == false);
    CHECK(option(c, "--socket").takes_value);  // tgctl takes it after a subcommand too.
    CHECK(option(c, "--socket").kind == ValueKind::kFile);
  }
  CHECK(option(command(all, "submit"), "--shell").takes_value == false);
  CHECK(option(command(all, "submit"), "--timeout").takes_value);
  CHECK(option(command(all, "group set"), "--no-fail-fast").takes_value == false);
}

TEST_CASE("completion scripts: group names and task ids are completed where the CLI takes them") {
  const auto all = commands();
  SUBCASE("positionals") {
    for (const char* path : {"cancel", "wait", "pause", "resume", "group set"}) {
      CAPTURE(path);
      CHECK(command(all, path).positional_kind == ValueKind::kGroup);
    }
    for (const char* path : {"show", "logs", "kill", "restart"}) {
      CAPTURE(path);
      CHECK(command(all, path).positional_kind == ValueKind::kTask);
    }
    CHECK(command(all, "submit").has_positionals);  // The command: not the daemon's names.
    CHECK_FALSE(command(all, "submit").positional_kind.has_value());
    CHECK_FALSE(command(all, "status").has_positionals);
  }
  SUBCASE("options") {
    for (const char* path : {"submit", "list", "kill", "restart", "top"}) {
      CAPTURE(path);
      CHECK(option(command(all, path), "-g").kind == ValueKind::kGroup);
    }
    CHECK(option(command(all, "submit"), "--after-group").kind == ValueKind::kGroup);
    CHECK(option(command(all, "submit"), "--after").kind == ValueKind::kTask);
    CHECK(option(command(all, "submit"), "--after-any").kind == ValueKind::kTask);
    CHECK(option(command(all, "cancel"), "--task").kind == ValueKind::kTask);
    CHECK(option(command(all, "wait"), "--task").kind == ValueKind::kTask);
    CHECK(option(command(all, "submit"), "--batch").kind == ValueKind::kFile);
    CHECK_FALSE(option(command(all, "submit"), "--timeout").kind.has_value());
  }
  SUBCASE("fixed lists") {
    const auto& states = option(command(all, "list"), "--state");
    CHECK(states.kind == ValueKind::kWords);
    CHECK(states.words.size() == 8);
    CHECK(std::find(states.words.begin(), states.words.end(), "timed_out") != states.words.end());
    const auto& ended = option(command(all, "restart"), "--state").words;
    CHECK(ended.size() == 6);
    CHECK(std::find(ended.begin(), ended.end(), "queued") == ended.end());
    const auto& signals = option(command(all, "kill"), "--signal").words;
    CHECK(std::find(signals.begin(), signals.end(), "USR1") != signals.end());
    CHECK(std::find(signals.begin(), signals.end(), "TERM") != signals.end());
    CHECK(command(all, "completions").positional_words ==
          std::vector<std::string>{"bash", "zsh", "fish"});
    for (const Shell shell : {Shell::kBash, Shell::kZsh, Shell::kFish}) {
      CAPTURE(static_cast<int>(shell));
      CHECK(completion_script(all, shell).find("queued running succeeded failed timed_out") !=
            std::string::npos);
    }
  }
  SUBCASE("every option whose value is a GROUP or an ID is tagged") {
    visit_cli([](const CLI::App& app, const ValueKinds& kinds) {
      std::vector<const CLI::App*> todo{&app};
      while (!todo.empty()) {
        const CLI::App* a = todo.back();
        todo.pop_back();
        for (const CLI::Option* opt : a->get_options()) {
          const std::string type = opt->get_type_name();
          CAPTURE(a->get_name());
          CAPTURE(opt->get_name());
          const auto it = kinds.find(opt);
          const auto kind = it == kinds.end() ? std::nullopt : std::optional(it->second.kind);
          if (type == "GROUP") CHECK(kind == ValueKind::kGroup);
          if (type.rfind("ID", 0) == 0) CHECK(kind == ValueKind::kTask);
        }
        for (const CLI::App* sub : a->get_subcommands([](const CLI::App*) { return true; })) {
          todo.push_back(sub);
        }
      }
    });
  }
  SUBCASE("each script asks the daemon through tgctl __complete") {
    for (const Shell shell : {Shell::kBash, Shell::kZsh, Shell::kFish}) {
      const std::string script = completion_script(all, shell);
      CHECK(script.find("__complete") != std::string::npos);
      CHECK(script.find("groups") != std::string::npos);
      CHECK(script.find("tasks") != std::string::npos);
    }
    const std::string bash = completion_script(all, Shell::kBash);
    CHECK(bash.find("\"cancel/--task\"") != std::string::npos);
    CHECK(bash.find("complete -F _tgctl tgctl") != std::string::npos);
  }
}

}  // namespace tg::client
