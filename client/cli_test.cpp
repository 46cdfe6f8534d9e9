#include "client/cli.h"

#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace tg::client {

namespace {

struct Parsed {
  std::variant<Invocation, int> result;
  std::string out;
  std::string err;

  // Parsed results are kept in a variable: a reference into a temporary would dangle.
  const Command& command() const { return std::get<Invocation>(result).command; }
  int exit_code() const { return std::get<int>(result); }
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "tgctl");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out;
  std::ostringstream err;
  auto result = parse_args(static_cast<int>(argv.size()), argv.data(), out, err);
  return {std::move(result), out.str(), err.str()};
}

}  // namespace

TEST_CASE("parse_args: submit takes everything after -- as the command, flags included") {
  const Parsed p = parse({"submit", "-g", "nightly", "--timeout", "1.5", "--priority", "5", "--",
                          "make", "-j4", "--keep-going"});
  const auto& c = std::get<SubmitCommand>(p.command());
  CHECK(c.group == "nightly");
  CHECK(c.argv == std::vector<std::string>{"make", "-j4", "--keep-going"});
  CHECK(c.options.timeout_ms == 1500);
  CHECK(c.options.priority == 5);
  CHECK_FALSE(c.options.shell.has_value());
  CHECK_FALSE(c.batch.has_value());
}

TEST_CASE("parse_args: submit --max-log takes a size; a bad one is a usage error") {
  const Parsed p = parse({"submit", "--max-log", "512K", "--", "yes"});
  CHECK(std::get<SubmitCommand>(p.command()).options.max_log_bytes == 512 * 1024);
  CHECK_FALSE(std::get<SubmitCommand>(parse({"submit", "--", "yes"}).command())
                  .options.max_log_bytes.has_value());
  for (const char* bad : {"banana", "-1", "1.5G"}) {
    CAPTURE(bad);
    const Parsed refused = parse({"submit", "--max-log", bad, "--", "yes"});
    CHECK(refused.exit_code() == 2);
    CHECK(refused.err.find("invalid size") != std::string::npos);
  }
}

TEST_CASE("parse_args: submit --batch reads a file and defaults to the default group") {
  const Parsed p = parse({"submit", "--batch", "-", "--shell"});
  const auto& c = std::get<SubmitCommand>(p.command());
  CHECK(c.batch == "-");
  CHECK(c.group == "default");
  CHECK(c.options.shell == true);
  CHECK(c.argv.empty());
}

TEST_CASE("parse_args: --socket is accepted before and after the subcommand") {
  CHECK(std::get<Invocation>(parse({"--socket", "/s", "status"}).result).socket == "/s");
  CHECK(std::get<Invocation>(parse({"status", "--socket", "/s"}).result).socket == "/s");
  CHECK_FALSE(std::get<Invocation>(parse({"status"}).result).socket.has_value());
}

TEST_CASE("parse_args: list puts --user on the group when there is one") {
  const Parsed pa = parse({"list", "--user", "bob", "--json"});
  const auto& a = std::get<ListCommand>(pa.command());
  CHECK(a.request.user == "bob");
  CHECK_FALSE(a.request.group.has_value());
  CHECK(a.json);
  const Parsed pb =
      parse({"list", "-g", "nightly", "--user", "bob", "--state", "timed_out", "--limit", "5"});
  const auto& b = std::get<ListCommand>(pb.command());
  REQUIRE(b.request.group.has_value());
  CHECK(b.request.group->user == "bob");
  CHECK_FALSE(b.request.user.has_value());
  CHECK(b.request.states == std::vector<proto::TaskState>{proto::TaskState::kTimedOut});
  CHECK(b.request.limit == 5);
  CHECK_FALSE(b.wide);
  CHECK(std::get<ListCommand>(parse({"list", "--wide"}).command()).wide);
}

TEST_CASE("parse_args: cancel and wait take a group or task ids") {
  const Parsed pa = parse({"cancel", "nightly", "--grace", "5s", "--force", "--wait"});
  const auto& a = std::get<CancelCommand>(pa.command());
  CHECK(a.request.group->name == "nightly");
  CHECK(a.request.grace_ms == 5000);
  CHECK(a.request.force);
  CHECK(a.wait);
  const Parsed pb = parse({"cancel", "--task", "4", "5,6"});
  const auto& b = std::get<CancelCommand>(pb.command());
  CHECK_FALSE(b.request.group.has_value());
  CHECK(b.request.ids == std::vector<proto::TaskId>{4, 5, 6});
  CHECK_FALSE(b.request.grace_ms.has_value());
  const Parsed pw = parse({"wait", "nightly", "--user", "1000"});
  const auto& w = std::get<WaitCommand>(pw.command());
  CHECK(w.request.group->user == "1000");
}

TEST_CASE("parse_args: group set sends only what was given") {
  const Parsed pa = parse({"group", "set", "nightly", "--limit", "0"});
  const auto& a = std::get<GroupSetCommand>(pa.command());
  CHECK(a.request.group.name == "nightly");
  CHECK(a.request.limit == 0);
  CHECK_FALSE(a.request.fail_fast.has_value());
  const Parsed pb = parse({"group", "set", "nightly", "--no-fail-fast"});
  const auto& b = std::get<GroupSetCommand>(pb.command());
  CHECK(b.request.fail_fast == false);
  CHECK_FALSE(b.request.limit.has_value());
  const Parsed pc = parse({"group", "set", "g", "--fail-fast"});
  CHECK(std::get<GroupSetCommand>(pc.command()).request.fail_fast == true);
}

TEST_CASE("parse_args: usage errors exit 2 with one tgctl: line") {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"bogus"},
           {"submit"},
           {"submit", "--batch", "f", "--", "ls"},
           {"submit", "--timeout", "soon", "--", "ls"},
           {"submit", "-g", "no spaces", "--", "ls"},
           {"submit", "--priority", "5000", "--", "ls"},
           {"list", "--state", "sleeping"},
           {"list", "--wide", "--json"},
           {"show"},
           {"show", "0"},
           {"cancel"},
           {"cancel", "nightly", "--task", "3"},
           {"cancel", "--task", "3", "--user", "bob"},
           {"wait", "--task", "x"},
           {"group"},
           {"group", "set", "g", "--limit", "-1"},
           {"pause"},
       }) {
    CAPTURE(args.size());
    const Parsed p = parse(args);
    REQUIRE(std::holds_alternative<int>(p.result));
    CHECK(p.exit_code() == 2);
    CHECK(p.err.rfind("tgctl: ", 0) == 0);
    CHECK(p.err.find('\n') == p.err.size() - 1);
  }
}

TEST_CASE("parse_args: --help and --version exit 0 and print to stdout") {
  const Parsed help = parse({"cancel", "--help"});
  CHECK(help.exit_code() == 0);
  CHECK(help.out.find("--grace") != std::string::npos);
  const Parsed version = parse({"--version"});
  CHECK(version.exit_code() == 0);
  CHECK_FALSE(version.out.empty());
}

}  // namespace tg::client

namespace tg::client {

TEST_CASE("parse_args: wait --timeout takes a duration, a bad one is a usage error") {
  const Parsed p = parse({"wait", "g", "--timeout", "1s"});
  CHECK(std::get<WaitCommand>(p.command()).timeout == std::chrono::milliseconds(1000));
  CHECK_FALSE(std::get<WaitCommand>(parse({"wait", "g"}).command()).timeout.has_value());
  CHECK(parse({"wait", "g", "--timeout", "soon"}).exit_code() == 2);
  CHECK(parse({"cancel", "g", "--timeout", "1s"}).exit_code() == 2);  // wait only.
}

TEST_CASE("parse_args: group set --first-success and --on-done, each only when given") {
  const Parsed p = parse({"group", "set", "g", "--first-success", "--on-done", "echo hi"});
  const auto& set = std::get<GroupSetCommand>(p.command()).request;
  CHECK(set.first_success == true);
  CHECK(set.on_done == "echo hi");
  CHECK_FALSE(set.limit.has_value());
  const Parsed off = parse({"group", "set", "g", "--no-first-success", "--on-done", ""});
  CHECK(std::get<GroupSetCommand>(off.command()).request.first_success == false);
  CHECK(std::get<GroupSetCommand>(off.command()).request.on_done == "");
  const Parsed none = parse({"group", "set", "g", "--limit", "2"});
  CHECK_FALSE(std::get<GroupSetCommand>(none.command()).request.first_success.has_value());
  CHECK_FALSE(std::get<GroupSetCommand>(none.command()).request.on_done.has_value());
}

TEST_CASE("parse_args: kill needs -s and ids or a group, an unknown signal is a usage error") {
  const Parsed ids = parse({"kill", "-s", "USR1", "3", "4"});
  const auto& k = std::get<KillCommand>(ids.command()).request;
  CHECK(k.ids == std::vector<proto::TaskId>{3, 4});
  CHECK(k.signal == 10);
  CHECK_FALSE(k.group.has_value());
  const Parsed group = parse({"kill", "--signal", "SIGSTOP", "-g", "g", "--json"});
  const auto& kg = std::get<KillCommand>(group.command());
  CHECK(kg.request.group->name == "g");
  CHECK(kg.request.signal == 19);
  CHECK(kg.json);
  const Parsed bogus = parse({"kill", "-s", "BOGUS", "3"});
  CHECK(bogus.exit_code() == 2);
  CHECK(bogus.err.find("unknown signal 'BOGUS'") != std::string::npos);
  CHECK(parse({"kill", "3"}).exit_code() == 2);                           // No -s.
  CHECK(parse({"kill", "-s", "USR1"}).exit_code() == 2);                  // Nothing to signal.
  CHECK(parse({"kill", "-s", "USR1", "-g", "g", "3"}).exit_code() == 2);  // Both.
}

}  // namespace tg::client
