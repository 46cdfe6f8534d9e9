// Integration tests of the shell completions (usage.md "Shell completions"): the scripts that
// `tgctl completions` prints, sourced into real bash, fish and zsh, completing names from a real
// daemon through `tgctl __complete`.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "support/task_helpers.h"
#include "support/test_daemon.h"

namespace {

namespace fs = std::filesystem;
using tg::test::ProcessOutput;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using namespace tg::test::helpers;

// `tgctl completions SHELL`, written to a file in the daemon's temp dir; returns its path.
fs::path write_script(const TestDaemon& d, const std::string& shell) {
  const std::string script = tgctl_ok(d, {"completions", shell});
  const fs::path path = d.dir() / ("tgctl." + shell);
  std::ofstream(path) << script;
  return path;
}

// Runs `code` with `shell -c`, as a user would with tgctl on PATH and TASKGROUPD_SOCKET set (to
// `socket`, if not empty). HOME is the temp dir: fish writes its history and variables there.
ProcessOutput run_shell(const TestDaemon& d, const std::string& shell, const std::string& code,
                        const std::string& socket) {
  RunOptions opts;
  opts.env_extra["PATH"] =
      fs::path(TG_CLIENT_BIN).parent_path().string() + ":/usr/local/bin:/usr/bin:/bin";
  opts.env_extra["HOME"] = d.dir().string();
  opts.env_extra["XDG_CONFIG_HOME"] = (d.dir() / "config").string();
  opts.env_extra["XDG_DATA_HOME"] = (d.dir() / "data").string();
  if (!socket.empty()) opts.env_extra["TASKGROUPD_SOCKET"] = socket;
  const fs::path bin = fs::path("/usr/bin") / shell;
  REQUIRE_MESSAGE(fs::exists(bin), shell << " is not installed: scripts/deps.sh installs it");
  auto r = tg::test::run_process({bin.string(), "-c", code}, opts);
  INFO(describe(r));
  REQUIRE(r.exit_code == 0);
  return r;
}

// What bash's _tgctl offers for `words` (the last one being completed), one per line.
std::vector<std::string> bash_complete(const TestDaemon& d, const fs::path& script,
                                       const std::string& words,
                                       const std::string& socket = "use the daemon's") {
  const std::string code = "source '" + script.string() + "'\nCOMP_WORDS=(" + words +
                           ")\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n_tgctl\n"
                           "for w in \"${COMPREPLY[@]}\"; do echo \"$w\"; done\n";
  return lines_of(
      run_shell(d, "bash", code, socket == "use the daemon's" ? d.socket_path() : socket).out);
}

bool has(const std::vector<std::string>& lines, const std::string& want) {
  for (const std::string& l : lines) {
    // fish prints "value<TAB>description".
    if (l == want || l.rfind(want + "\t", 0) == 0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("completions: bash completes subcommands, flags, live group names and task ids") {
  TestDaemon d;
  const std::int64_t id = submit(d, {"-g", "compl_grp", "--", "true"});
  REQUIRE(wait_group(d, "compl_grp") == 0);
  const fs::path script = write_script(d, "bash");
  run_shell(d, "bash", "bash -n '" + script.string() + "'", "");  // Parses (exit 0) or fails.

  const auto cancel = bash_complete(d, script, "tgctl cancel ''");
  INFO("cancel: " << tg::test::quote_argv(cancel));
  CHECK(has(cancel, "compl_grp"));
  CHECK(has(bash_complete(d, script, "tgctl sub"), "submit"));
  CHECK(bash_complete(d, script, "tgctl sub") == std::vector<std::string>{"submit"});
  CHECK(has(bash_complete(d, script, "tgctl pause ''"), "compl_grp"));
  CHECK(has(bash_complete(d, script, "tgctl wait ''"), "compl_grp"));
  CHECK(has(bash_complete(d, script, "tgctl submit -g ''"), "compl_grp"));
  CHECK(has(bash_complete(d, script, "tgctl submit --group ''"), "compl_grp"));
  CHECK(has(bash_complete(d, script, "tgctl group set ''"), "compl_grp"));
  CHECK(has(bash_complete(d, script, "tgctl show ''"), id_str(id)));
  CHECK(has(bash_complete(d, script, "tgctl cancel --task ''"), id_str(id)));
  CHECK(has(bash_complete(d, script, "tgctl cancel --ta"), "--task"));
  CHECK(has(bash_complete(d, script, "tgctl logs -"), "--follow"));
  CHECK(has(bash_complete(d, script, "tgctl gr"), "groups"));
  CHECK(has(bash_complete(d, script, "tgctl group ''"), "set"));
  // The value of an option is not taken for a subcommand: a group named like one.
  CHECK(has(bash_complete(d, script, "tgctl list -g cancel --st"), "--state"));
  // Fixed lists: states, ended states for restart, signal names, shells.
  CHECK(bash_complete(d, script, "tgctl list --state ti") == std::vector<std::string>{"timed_out"});
  CHECK(has(bash_complete(d, script, "tgctl restart -g g --state ''"), "cancelled"));
  CHECK_FALSE(has(bash_complete(d, script, "tgctl restart -g g --state ''"), "queued"));
  CHECK(bash_complete(d, script, "tgctl kill -s US") == std::vector<std::string>{"USR1", "USR2"});
  CHECK(bash_complete(d, script, "tgctl completions z") == std::vector<std::string>{"zsh"});

  SUBCASE("--socket on the command line is where the names come from") {
    const auto words = "tgctl --socket '" + d.socket_path() + "' cancel ''";
    CHECK(has(bash_complete(d, script, words, "/nonexistent/s"), "compl_grp"));
  }
  SUBCASE("without a daemon, names complete to nothing, quietly; the rest still completes") {
    CHECK(bash_complete(d, script, "tgctl cancel ''", "/nonexistent/s").empty());
    CHECK(has(bash_complete(d, script, "tgctl sub", "/nonexistent/s"), "submit"));
  }
}

TEST_CASE("completions: tgctl __complete prints one name a line, and nothing without a daemon") {
  TestDaemon d;
  submit(d, {"-g", "compl_a", "--", "true"});
  const std::int64_t id = submit(d, {"-g", "compl_b", "--", "true"});
  const auto groups = lines_of(tgctl_ok(d, {"__complete", "groups"}));
  CHECK(has(groups, "compl_a"));
  CHECK(has(groups, "compl_b"));
  CHECK(has(lines_of(tgctl_ok(d, {"__complete", "tasks"})), id_str(id)));

  const auto none =
      tg::test::run_tgctl((d.dir() / "nothing-here").string(), {"__complete", "groups"});
  CHECK(none.exit_code == 0);
  CHECK(none.out.empty());
  CHECK(none.err.empty());
  // Hidden from help.
  CHECK(tgctl_ok(d, {"--help"}).find("__complete") == std::string::npos);
}

TEST_CASE("completions: fish completes subcommands and live group names") {
  TestDaemon d;
  submit(d, {"-g", "compl_fish", "--", "true"});
  const fs::path script = write_script(d, "fish");
  run_shell(d, "fish", "fish -n '" + script.string() + "'", "");
  auto complete = [&](const std::string& line) {
    return lines_of(run_shell(d, "fish",
                              "source '" + script.string() + "'; complete -C '" + line + "'",
                              d.socket_path())
                        .out);
  };
  const auto cancel = complete("tgctl cancel ");
  INFO("cancel: " << tg::test::quote_argv(cancel));
  CHECK(has(cancel, "compl_fish"));
  CHECK(has(complete("tgctl sub"), "submit"));
  CHECK(has(complete("tgctl submit -g "), "compl_fish"));
  CHECK(has(complete("tgctl cancel --"), "--task"));
  CHECK(has(complete("tgctl group "), "set"));
  CHECK_FALSE(has(complete("tgctl "), "__complete"));
  CHECK(has(complete("tgctl list --state "), "interrupted"));
  CHECK(has(complete("tgctl kill --signal "), "HUP"));
}

// Drives an interactive zsh in a pseudo-terminal (zsh/zpty): types $3 and TAB, with compadd
// wrapped to append every match it is given to the file $2, until the line $4 is among them
// (or 10 s have passed). $1 is the completion script.
constexpr const char* kZshDriver = R"zsh(zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "autoload -U compinit && compinit -u -D && source ${(q)1}"
zpty -w z "compadd() { local -a m; builtin compadd -A m \"\$@\"; print -rl -- \$m >> ${(q)2}; builtin compadd \"\$@\"; }"
zpty -w -n z "$3"$'\t'
for i in {1..100}; do
  [[ -f $2 ]] && grep -qxF -- "$4" $2 && break
  sleep 0.1
done
zpty -d z
)zsh";

TEST_CASE("completions: zsh completes subcommands, flags and live group names") {
  TestDaemon d;
  submit(d, {"-g", "compl_zsh", "--", "true"});
  const fs::path script = write_script(d, "zsh");
  run_shell(d, "zsh", "zsh -n '" + script.string() + "'", "");
  const fs::path driver = d.dir() / "driver.zsh";
  std::ofstream(driver) << kZshDriver;
  int n = 0;
  auto complete = [&](const std::string& line, const std::string& want) {
    const fs::path out = d.dir() / ("matches" + std::to_string(n++));
    run_shell(d, "zsh",
              "zsh -f '" + driver.string() + "' '" + script.string() + "' '" + out.string() +
                  "' '" + line + "' '" + want + "'",
              d.socket_path());
    std::ifstream in(out);
    return lines_of(std::string(std::istreambuf_iterator<char>(in), {}));
  };
  const auto cancel = complete("tgctl cancel ", "compl_zsh");
  INFO("cancel: " << tg::test::quote_argv(cancel));
  CHECK(has(cancel, "compl_zsh"));
  CHECK(has(complete("tgctl sub", "submit"), "submit"));
  CHECK(has(complete("tgctl cancel --", "--task"), "--task"));
  CHECK(has(complete("tgctl submit -g ", "compl_zsh"), "compl_zsh"));
  CHECK(has(complete("tgctl list --state ", "succeeded"), "succeeded"));
  CHECK(has(complete("tgctl completions ", "fish"), "fish"));
}
