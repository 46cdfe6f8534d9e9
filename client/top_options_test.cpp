#include "client/top_options.h"

#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "client/cli.h"

namespace tg::client {

namespace {

std::variant<Invocation, int> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "tgctl");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  return parse_args(static_cast<int>(argv.size()), argv.data(), out, err);
}

}  // namespace

TEST_CASE("parse_args: top, with --once, a group filter and another user") {
  auto plain = parse({"top"});
  const auto& p = std::get<TopCommand>(std::get<Invocation>(plain).command);
  CHECK_FALSE(p.once);
  CHECK(p.filter.empty());
  CHECK_FALSE(p.request.user.has_value());

  auto full = parse({"top", "--once", "-g", "night", "--user", "alice"});
  const auto& f = std::get<TopCommand>(std::get<Invocation>(full).command);
  CHECK(f.once);
  CHECK(f.filter == "night");
  CHECK(f.request.user == "alice");

  CHECK(std::get<int>(parse({"top", "extra"})) == kExitUsage);
}

}  // namespace tg::client
