// Integration tests of issue 13 items 5-7, through the real taskgroupd and tgctl: restarting a
// group's failed tasks (tgctl restart), labels and the list filters (--label, --state S1,S2,
// --since), and idempotent submits (--key) across users and a kill -9 of the daemon.
//
// The tests that act as other users need root (they create tgtest_a and tgtest_b, see
// support/test_users.h); without it they fail, loudly, rather than skip.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/raw_client.h"
#include "support/security_helpers.h"
#include "support/task_helpers.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using tg::test::RawClient;
using tg::test::RunOptions;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

using Ids = std::vector<std::int64_t>;

constexpr milliseconds kWaitTimeout{20'000};

// tgctl ARGS must exit `code` with `says` in its one stderr line.
void refused(const TestDaemon& d, const std::vector<std::string>& args, int code,
             const std::string& says) {
  const auto r = d.tgctl(args);
  CAPTURE(describe(r));
  CHECK(r.exit_code == code);
  CHECK(r.err.find(says) != std::string::npos);
}

std::string log_of(const TestDaemon& d, std::int64_t id) {
  return tgctl_ok(d, {"logs", id_str(id)});
}

}  // namespace

TEST_CASE("Restart: a group's failed tasks run again as new tasks, the old ones keep history") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  const std::string w = work.string();
  RunOptions in_work;  // The tasks get tgctl's cwd and environment: a restart keeps both.
  in_work.cwd = work;
  in_work.env_extra = {{"WF_VAR", "from-the-submit"}};
  // Fails the first time it runs, succeeds after: the run it is in shows in its log.
  const std::string flaky =
      "if [ -e flaky.ran ]; then echo \"second $WF_VAR $(pwd)\"; exit 0; fi; "
      ": > flaky.ran; echo first; exit 3";
  const std::vector<std::string> opts = {"-g",         "rerun", "--label",   "suite=nightly",
                                         "--priority", "2",     "--timeout", "60s"};
  const auto with = [&](std::vector<std::string> cmd) {
    std::vector<std::string> args = opts;
    args.push_back("--");
    args.insert(args.end(), cmd.begin(), cmd.end());
    return submit(d, args, in_work);
  };
  const auto ok = with({"true"});
  const auto flaky_id = with({"sh", "-c", flaky});
  const auto broken = with({"sh", "-c", "exit 1"});
  const auto sleeper = with({"sleep", "600"});
  tgctl_ok(d, {"cancel", "--task", id_str(sleeper)});
  CHECK(wait_tasks(d, {ok, flaky_id, broken, sleeper}, kWaitTimeout) == 1);
  REQUIRE(show(d, flaky_id).at("exit_code") == 3);

  // The failed ones only: not the success, not the cancelled one.
  const Ids again = parse_ids(tgctl_ok(d, {"restart", "-g", "rerun", "--failed"}));
  REQUIRE(again.size() == 2);
  CHECK(wait_tasks(d, again, kWaitTimeout) == 1);  // The broken one fails again.
  const json copy = show(d, again[0]);
  const json old = show(d, flaky_id);
  CHECK(copy.at("restarted_from") == flaky_id);
  CHECK(show(d, again[1]).at("restarted_from") == broken);
  CHECK(copy.at("state") == "succeeded");
  for (const char* same : {"group", "argv", "cwd", "priority", "timeout_ms", "labels", "uid"}) {
    CAPTURE(same);
    CHECK(copy.at(same) == old.at(same));
  }
  CHECK(copy.at("labels") == json{{"suite", "nightly"}});
  CHECK(log_of(d, again[0]) == "second from-the-submit " + w + "\n");  // Same env and cwd.
  // The old task keeps its history: still failed, its own log, no origin.
  CHECK(old.at("state") == "failed");
  CHECK(old.at("restarted_from").is_null());
  CHECK(log_of(d, flaky_id) == "first\n");
  CHECK(tgctl_ok(d, {"show", id_str(again[0])}).find("restarted from " + id_str(flaky_id)) !=
        std::string::npos);

  // Again: only the new failure; what was restarted once is not restarted twice.
  const Ids third = parse_ids(tgctl_ok(d, {"restart", "-g", "rerun", "--failed"}));
  REQUIRE(third.size() == 1);
  CHECK(show(d, third[0]).at("restarted_from") == again[1]);
  CHECK(wait_tasks(d, third, kWaitTimeout) == 1);

  // Cancelled ones only when asked for; by id, any ended task.
  const Ids cancelled = parse_ids(tgctl_ok(d, {"restart", "-g", "rerun", "--state", "cancelled"}));
  REQUIRE(cancelled.size() == 1);
  CHECK(show(d, cancelled[0]).at("restarted_from") == sleeper);
  const Ids by_id = parse_ids(tgctl_ok(d, {"restart", id_str(ok), id_str(flaky_id)}));
  REQUIRE(by_id.size() == 2);
  CHECK(wait_tasks(d, by_id, kWaitTimeout) == 0);  // The flaky one has run before: succeeds.

  // Refused: a task not ended yet, an unknown id; nothing is queued by a refusal.
  const std::size_t before = list_all(d).size();
  refused(d, {"restart", id_str(ok), id_str(cancelled[0])}, 1,
          "task " + id_str(cancelled[0]) + " is ");
  refused(d, {"restart", id_str(cancelled[0])}, 1, "only ended tasks can be restarted");
  refused(d, {"restart", "999999"}, 1, "no task 999999");
  refused(d, {"restart", "-g", "nope", "--failed"}, 1, "no group 'nope'");
  refused(d, {"restart", "-g", "rerun"}, 2, "--failed or --state");
  CHECK(list_all(d).size() == before);
  tgctl_ok(d, {"cancel", "--task", id_str(cancelled[0])});
  CHECK(wait_tasks(d, {cancelled[0]}, kWaitTimeout) == 1);

  // Succeeded ones too, when asked: those not restarted yet (not `ok`, which was by id).
  const Ids rerun =
      parse_ids(tgctl_ok(d, {"restart", "-g", "rerun", "--state", "succeeded,timed_out"}));
  json from = json::array();
  for (const auto id : rerun) from.push_back(show(d, id).at("restarted_from"));
  CHECK(from == json{again[0], by_id[0], by_id[1]});
  CHECK(wait_tasks(d, rerun, kWaitTimeout) == 0);
  const auto nothing = d.tgctl({"restart", "-g", "rerun", "--state", "timed_out"});
  CHECK(nothing.exit_code == 0);
  CHECK(nothing.out.empty());
  CHECK(nothing.err == "tgctl: no task to restart in group 'rerun'\n");
}

TEST_CASE("Labels: submit --label, list --label, --state S1,S2 and --since, in every JSON view") {
  TestDaemon d;
  const auto prod = submit(d, {"--label", "env=prod", "--label", "team=ml", "--", "true"});
  const auto dev = submit(d, {"--label", "env=dev", "--", "sh", "-c", "exit 1"});
  const auto plain = submit(d, {"--", "true"});
  RunOptions lines;
  lines.stdin_text = "true\nexit 2\n";
  const Ids batch =
      parse_ids(tgctl_ok(d, {"submit", "-g", "b", "--label", "env=prod", "--batch", "-"}, lines));
  REQUIRE(batch.size() == 2);
  CHECK(wait_tasks(d, {prod, dev, plain, batch[0], batch[1]}, kWaitTimeout) == 1);

  CHECK(listed_ids(d, {"--label", "env=prod"}) == Ids{prod, batch[0], batch[1]});
  CHECK(listed_ids(d, {"--label", "env=prod", "--label", "team=ml"}) == Ids{prod});
  CHECK(listed_ids(d, {"--label", "env=prod", "--label", "team=other"}).empty());
  CHECK(listed_ids(d, {"--state", "failed"}) == Ids{dev, batch[1]});
  CHECK(listed_ids(d, {"--state", "failed,succeeded", "-g", "b"}) == batch);
  CHECK(listed_ids(d, {"--state", "failed", "--label", "env=prod"}) == Ids{batch[1]});
  CHECK(listed_ids(d, {"--state", "cancelled,lost"}).empty());

  // Labels in every JSON view, {} when none; and in show's human output.
  const auto all = list_all(d);
  CHECK(all.at(prod).at("labels") == json{{"env", "prod"}, {"team", "ml"}});
  CHECK(all.at(plain).at("labels") == json::object());
  CHECK(show(d, batch[1]).at("labels") == json{{"env", "prod"}});
  CHECK(tgctl_ok(d, {"show", id_str(prod)}).find("labels:     env=prod team=ml\n") !=
        std::string::npos);

  // --since: once a second has passed since the last submit, none of them is that recent.
  std::int64_t newest = 0;
  for (const auto& [id, t] : all) newest = std::max(newest, time_ms(t.at("submitted_at")));
  wait_until([&] { return wall_now_ms() > newest + 1000; }, kWaitTimeout, "a second to pass");
  CHECK(listed_ids(d, {"--since", "1s"}).empty());
  const auto fresh = submit(d, {"--label", "env=prod", "--", "true"});
  CHECK(listed_ids(d, {"--since", "1h", "--label", "env=prod"}) ==
        Ids{prod, batch[0], batch[1], fresh});

  // Bad labels are usage errors; the daemon refuses what a raw client sends beyond the bounds.
  refused(d, {"submit", "--label", "no spaces=x", "--", "true"}, 2, "labels are KEY=VALUE");
  refused(d, {"list", "--state", "failed,napping"}, 2, "unknown state 'napping'");
  RawClient raw(d.socket_path());
  json labels = json::object();
  for (int i = 0; i < 33; ++i) labels["k" + std::to_string(i)] = "v";
  tg::test::security::expect_error(raw.call("submit", {{"argv", {"true"}}, {"labels", labels}}),
                                   -32602, "", "at most 32 labels");
  tg::test::security::expect_error(
      raw.call("submit", {{"argv", {"true"}}, {"labels", {{"k", std::string(257, 'v')}}}}), -32602,
      "", "at most 256 bytes");
  CHECK(list_all(d).size() == 6);  // Nothing queued by the refusals.
}

TEST_CASE("Submit --key: a repeat gives the first id, per user, across kill -9, bad keys refused") {
  tg::test::security::SharedDaemon s;
  const auto& [a, b] = s.u;
  TestDaemon& d = s.d;
  using tg::test::security::ok_as;
  const auto submit_key = [&](const tg::test::TestUser& u, const std::string& key) {
    const Ids ids = parse_ids(ok_as(u, d, {"submit", "--key", key, "--", "true"}));
    REQUIRE(ids.size() == 1);
    return ids[0];
  };
  const auto first = submit_key(a, "deploy-42");
  CHECK(submit_key(a, "deploy-42") == first);
  const auto bobs = submit_key(b, "deploy-42");  // Keys are per user.
  CHECK(bobs != first);
  CHECK(submit_key(b, "deploy-42") == bobs);
  const auto other = submit_key(a, "deploy-43");
  CHECK(show(d, first).at("key") == "deploy-42");
  CHECK(list_all(d).size() == 3);

  d.crash();  // The keys are stored with the tasks: a crash forgets none.
  d.restart();
  tg::test::security::open_to_group(d);
  CHECK(submit_key(a, "deploy-42") == first);
  CHECK(submit_key(b, "deploy-42") == bobs);
  CHECK(submit_key(a, "deploy-43") == other);
  CHECK(list_all(d).size() == 3);

  // A key over 256 bytes, or with a batch: a clear error, nothing queued.
  refused(d, {"submit", "--key", std::string(257, 'k'), "--", "true"}, 2, "1-256 bytes");
  refused(d, {"submit", "--key", "k", "--batch", "-"}, 2, "a batch line may carry no key");
  RawClient raw(d.socket_path());
  tg::test::security::expect_error(
      raw.call("submit", {{"argv", {"true"}}, {"key", std::string(257, 'k')}}), -32602, "",
      "params.key: must be 1-256 bytes (got 257)");
  tg::test::security::expect_error(
      raw.call("submit", {{"key", "k"}, {"tasks", {{{"argv", {"true"}}}}}}), -32602, "",
      "a batch cannot carry a key");
  CHECK(list_all(d).size() == 3);
}

TEST_CASE("Restart: another user's task is not found, and root's restart stays the user's") {
  tg::test::security::SharedDaemon s;
  const auto& [a, b] = s.u;
  const TestDaemon& d = s.d;
  using namespace tg::test::security;
  const auto id = submit_as(a, d, {"-g", "mine", "--", "sh", "-c", "exit 5"});
  wait_ended(d, id);
  const auto r = tgctl_at(b, d.socket_path(), {"restart", id_str(id)});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("no task " + id_str(id)) != std::string::npos);
  CHECK(tgctl_at(b, d.socket_path(), {"restart", "-g", "mine", "--failed"}).exit_code == 1);
  CHECK(list_all(d).size() == 1);

  const Ids by_root = parse_ids(tgctl_ok(d, {"restart", id_str(id)}));
  REQUIRE(by_root.size() == 1);
  const json copy = show(d, by_root[0]);
  CHECK(copy.at("uid") == a.uid);
  CHECK(copy.at("group") == "mine");
  wait_ended(d, by_root[0]);
  // Alice's own group restart finds the copy's failure, not the task it copied.
  const Ids mine = parse_ids(ok_as(a, d, {"restart", "-g", "mine", "--failed"}));
  REQUIRE(mine.size() == 1);
  CHECK(show(d, mine[0]).at("restarted_from") == by_root[0]);
  wait_ended(d, mine[0]);
}
