#pragma once

// Shell completion scripts for tgctl (usage.md "Shell completions"), generated from the CLI11
// definition in cli.cpp: every subcommand and option found there is completed, with no list of
// names kept here. Values the daemon knows (group names, task ids) are completed by calling
// `tgctl __complete groups|tasks` from the script.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace tg::client {

enum class Shell { kBash, kZsh, kFish };

// What an option's value (or a subcommand's positionals) names, where cli.cpp defines it.
enum class ValueKind {
  kGroup,  // A group name: completed from the daemon (`__complete groups`).
  kTask,   // A task id: completed from the daemon (`__complete tasks`).
  kFile,   // A path: completed by the shell.
  kWords,  // One of a fixed list (states, signals, shells), written into the script.
};
struct ValueSpec {
  ValueSpec(ValueKind k) : kind(k) {}  // NOLINT: a kind alone is a spec.
  ValueSpec(std::vector<std::string> w) : kind(ValueKind::kWords), words(std::move(w)) {}  // NOLINT
  ValueKind kind;
  std::vector<std::string> words;  // kWords: the values offered.
};
using ValueKinds = std::map<const CLI::Option*, ValueSpec>;

// "groups" / "tasks": the argument of `tgctl __complete`.
[[nodiscard]] std::string_view complete_word(ValueKind kind);
// The words separated by single spaces, as the scripts list fixed values.
[[nodiscard]] std::string joined(const std::vector<std::string>& words);

// One option of a command, as the scripts need it.
struct CompletionOption {
  std::vector<std::string> names;  // "-g", "--group".
  std::string description;
  bool takes_value = false;
  std::optional<ValueKind> kind;   // Of its value.
  std::vector<std::string> words;  // kWords: the values offered.
};

// One command: tgctl itself (path ""), a subcommand ("cancel"), or a nested one ("group set").
struct CompletionCommand {
  std::string path;
  std::string description;
  std::vector<CompletionOption> options;  // Its own, and the global ones tgctl takes after it.
  std::vector<std::string> subcommands;   // Names, not paths.
  std::vector<std::string> subcommand_descriptions;
  bool has_positionals = false;
  std::optional<ValueKind> positional_kind;   // Of its first positional.
  std::vector<std::string> positional_words;  // kWords: the values offered.
};

// Every visible command of `app`, depth first, tgctl itself first. Hidden subcommands (an
// empty help group, like __complete) are left out.
[[nodiscard]] std::vector<CompletionCommand> completion_commands(const CLI::App& app,
                                                                 const ValueKinds& kinds);

// The script for `shell`, to be sourced (bash, fish) or put on $fpath as _tgctl (zsh).
[[nodiscard]] std::string completion_script(const std::vector<CompletionCommand>& commands,
                                            Shell shell);
[[nodiscard]] std::string bash_script(const std::vector<CompletionCommand>& commands);
[[nodiscard]] std::string zsh_script(const std::vector<CompletionCommand>& commands);
[[nodiscard]] std::string fish_script(const std::vector<CompletionCommand>& commands);

}  // namespace tg::client
