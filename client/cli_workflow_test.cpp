// tgctl's options for issue 13's labels, list filters, submit keys and restart.
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "client/cli.h"

namespace tg::client {

namespace {

std::variant<Invocation, int> parse(std::vector<std::string> args, std::string* err = nullptr) {
  args.insert(args.begin(), "tgctl");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out_stream;
  std::ostringstream err_stream;
  auto r = parse_args(static_cast<int>(argv.size()), argv.data(), out_stream, err_stream);
  if (err) *err = err_stream.str();
  return r;
}

template <class T>
T command(std::vector<std::string> args) {
  auto r = parse(std::move(args));
  REQUIRE(std::holds_alternative<Invocation>(r));
  REQUIRE(std::holds_alternative<T>(std::get<Invocation>(r).command));
  return std::get<T>(std::get<Invocation>(r).command);
}

// A usage error: exit 2 and one line naming the problem.
void refused(std::vector<std::string> args, const std::string& says) {
  std::string err;
  auto r = parse(args, &err);
  CAPTURE(err);
  REQUIRE(std::holds_alternative<int>(r));
  CHECK(std::get<int>(r) == 2);
  CHECK(err.find(says) != std::string::npos);
}

using proto::TaskState;
using States = std::vector<TaskState>;

}  // namespace

TEST_CASE("parse_args: submit --label and --key") {
  const auto c = command<SubmitCommand>(
      {"submit", "--label", "env=prod", "--label", "note=a=b", "--key", "k1", "--", "true"});
  CHECK(c.options.labels == proto::Labels{{"env", "prod"}, {"note", "a=b"}});
  CHECK(c.key == "k1");
  const auto plain = command<SubmitCommand>({"submit", "--", "true"});
  CHECK_FALSE(plain.options.labels.has_value());
  CHECK_FALSE(plain.key.has_value());
  const auto batch = command<SubmitCommand>({"submit", "--label", "e=", "--batch", "-"});
  CHECK(batch.options.labels == proto::Labels{{"e", ""}});

  refused({"submit", "--key", "k", "--batch", "-"}, "a batch line may carry no key");
  refused({"submit", "--key", std::string(257, 'k'), "--", "true"}, "1-256 bytes");
  refused({"submit", "--key", "", "--", "true"}, "1-256 bytes");
  refused({"submit", "--label", "novalue", "--", "true"}, "labels are KEY=VALUE");
  refused({"submit", "--label", "a b=c", "--", "true"}, "labels are KEY=VALUE");
  refused({"submit", "--label", "k=" + std::string(257, 'v'), "--", "true"}, "at most 256 bytes");
  refused({"submit", "--label", "a=1", "--label", "a=2", "--", "true"}, "'a' is given twice");
}

TEST_CASE("parse_args: list --state S1,S2, --label (all must match) and --since") {
  const auto c =
      command<ListCommand>({"list", "--state", "failed,timed_out", "--state", "lost", "--label",
                            "env=prod", "--label", "team=ml", "--since", "2h"});
  CHECK(c.request.states == States{TaskState::kFailed, TaskState::kTimedOut, TaskState::kLost});
  CHECK(c.request.labels == proto::Labels{{"env", "prod"}, {"team", "ml"}});
  CHECK(c.request.since_ms == 7'200'000);
  const auto plain = command<ListCommand>({"list"});
  CHECK(plain.request.states.empty());
  CHECK(plain.request.labels.empty());
  CHECK_FALSE(plain.request.since_ms.has_value());
  refused({"list", "--state", "failed,sleeping"}, "unknown state 'sleeping'");
  refused({"list", "--since", "soon"}, "--since");
  refused({"list", "--label", "=x"}, "labels are KEY=VALUE");
}

TEST_CASE("parse_args: restart takes ids, or -g with --failed or --state") {
  CHECK(command<RestartCommand>({"restart", "4", "7"}).request.ids ==
        std::vector<proto::TaskId>{4, 7});
  const auto failed = command<RestartCommand>({"restart", "-g", "ci", "--failed"});
  REQUIRE(failed.request.group.has_value());
  CHECK(failed.request.group->name == "ci");
  CHECK(failed.request.ids.empty());
  CHECK(failed.request.states == States{TaskState::kFailed, TaskState::kTimedOut,
                                        TaskState::kInterrupted, TaskState::kLost});
  const auto states = command<RestartCommand>(
      {"restart", "-g", "ci", "--state", "cancelled,failed", "--user", "bob"});
  CHECK(states.request.states == States{TaskState::kCancelled, TaskState::kFailed});
  CHECK(states.request.group->user == "bob");
  CHECK(command<RestartCommand>({"restart", "-g", "ci", "--failed", "--state", "failed,cancelled"})
            .request.states.size() == 5);

  refused({"restart"}, "give task IDs, or -g GROUP");
  refused({"restart", "-g", "ci"}, "--failed or --state");
  refused({"restart", "--failed"}, "--failed");
  refused({"restart", "3", "-g", "ci", "--failed"}, "excludes");
  refused({"restart", "-g", "ci", "--state", "running"}, "not the state of an ended task");
  refused({"restart", "0"}, "not a positive integer");
}

}  // namespace tg::client
