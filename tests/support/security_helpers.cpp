#include "support/security_helpers.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "support/raw_client.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/wait_until.h"

namespace tg::test::security {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using helpers::describe;
using helpers::lines_of;
using helpers::show;

Users users() { return {tg::test::ensure_user("tgtest_a"), tg::test::ensure_user("tgtest_b")}; }

TestUser root_user() { return {"root", 0, 0, {0}, "/root"}; }

gid_t taskgroupd_gid() { return tg::test::ensure_group("taskgroupd"); }

void open_to_group(const TestDaemon& d) {
  REQUIRE(::chmod(d.dir().c_str(), 0755) == 0);
  REQUIRE(::chown(d.socket_path().c_str(), 0, taskgroupd_gid()) == 0);
  REQUIRE(::chmod(d.socket_path().c_str(), 0660) == 0);
}

void require_served(const TestDaemon& d) {
  const auto t0 = Clock::now();
  RawClient probe(d.socket_path());
  const json r = probe.call("status", nullptr, 424242);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  REQUIRE_MESSAGE(r.contains("result"), "status: " << r.dump());
  // Served, not fast: a wedged loop takes forever, a loaded machine a second or two (how fast
  // is bench/'s business).
  CHECK_MESSAGE(took < milliseconds(10'000), "status took " << took.count() << " ms");
}

SharedDaemon::SharedDaemon(std::vector<std::string> extra)
    : u(users()), d(DaemonOptions{.args = with_defaults(std::move(extra))}) {
  open_to_group(d);
  require_served(d);  // Started: its fds are all open (tests take them as a baseline).
}

std::vector<std::string> SharedDaemon::with_defaults(std::vector<std::string> args) {
  args.insert(args.end(), kQuickStop.begin(), kQuickStop.end());
  args.insert(args.end(), {"--max-running", "8"});
  return args;
}

ProcessOutput tgctl_at(const TestUser& user, const std::string& socket,
                       const std::vector<std::string>& args, const RunOptions& opts) {
  return user.uid == 0 ? tg::test::run_tgctl(socket, args, opts)
                       : tg::test::tgctl_as(user, socket, args, opts);
}

std::string ok_at(const TestUser& user, const std::string& socket,
                  const std::vector<std::string>& args, const RunOptions& opts) {
  const auto r = tgctl_at(user, socket, args, opts);
  REQUIRE_MESSAGE(r.exit_code == 0, "tgctl " << tg::test::quote_argv(args) << " as " << user.name
                                             << ": " << describe(r));
  return r.out;
}

std::string ok_as(const TestUser& user, const TestDaemon& d, const std::vector<std::string>& args,
                  const RunOptions& opts) {
  return ok_at(user, d.socket_path(), args, opts);
}

std::int64_t submit_as(const TestUser& user, const TestDaemon& d, std::vector<std::string> args,
                       const RunOptions& opts) {
  args.insert(args.begin(), "submit");
  const std::string out = ok_as(user, d, args, opts);
  const auto lines = lines_of(out);
  REQUIRE_MESSAGE(lines.size() == 1, "submit printed: " << out);
  return std::stoll(lines.front());
}

std::string state_of(const TestDaemon& d, std::int64_t id) {
  return show(d, id).at("state").get<std::string>();
}

void wait_state(const TestDaemon& d, std::int64_t id, const std::string& state) {
  wait_until([&] { return state_of(d, id) == state; }, kEventTimeout,
             "task " + std::to_string(id) + " " + state);
}

bool is_terminal(const std::string& s) { return s != "queued" && s != "running"; }

void wait_ended(const TestDaemon& d, std::int64_t id) {
  wait_until([&] { return is_terminal(state_of(d, id)); }, kEventTimeout,
             "task " + std::to_string(id) + " to end");
}

std::string request(std::string_view method, const json& params, const json& id) {
  json r = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) r["params"] = params;
  return r.dump();
}

void expect_error(const json& reply, int code, std::string_view kind,
                  std::string_view message_part) {
  INFO("reply: " << reply.dump().substr(0, 500));
  REQUIRE(reply.contains("error"));
  const json& e = reply.at("error");
  CHECK(e.at("code") == code);
  REQUIRE(e.at("message").is_string());
  if (!kind.empty()) CHECK(e.at("data").at("kind") == kind);
  if (!message_part.empty()) {
    CHECK(e.at("message").get<std::string>().find(message_part) != std::string::npos);
  }
}

void expect_result(const json& reply) {
  INFO("reply: " << reply.dump().substr(0, 500));
  CHECK(reply.contains("result"));
  CHECK_FALSE(reply.contains("error"));
}

std::string proc(pid_t pid, const std::string& file) {
  return tg::test::read_file("/proc/" + std::to_string(pid) + "/" + file);
}

std::vector<std::string> status_field(pid_t pid, const std::string& key) {
  for (const auto& line : lines_of(proc(pid, "status"))) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream in(line.substr(key.size() + 1));
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    return fields;
  }
  FAIL("no " << key << " in /proc/" << pid << "/status");
  return {};
}

std::size_t fd_count(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n;
}

std::size_t quiet_fd_count(pid_t pid) {
  std::size_t lowest = fd_count(pid);
  const auto until = Clock::now() + milliseconds(200);
  while (Clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(10));
    lowest = std::min(lowest, fd_count(pid));
  }
  return lowest;
}

bool sanitized(pid_t pid) { return proc(pid, "maps").find("libasan") != std::string::npos; }

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  REQUIRE_MESSAGE(::lstat(p.c_str(), &st) == 0, "stat " << p << ": " << tg::test::last_error());
  return st;
}

std::string octal(mode_t m) {
  std::ostringstream o;
  o << std::oct << (m & 07777);
  return o.str();
}

}  // namespace tg::test::security
