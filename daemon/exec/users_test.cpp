#include "daemon/exec/users.h"

#include <doctest/doctest.h>

namespace tg::daemon {

namespace {

using namespace std::chrono_literals;

// A user database that counts its lookups, on a clock the test moves.
struct Fixture {
  int account_lookups = 0;
  int name_lookups = 0;
  std::chrono::steady_clock::time_point now{};
  CachedUsers users{
      CachedUsers::Source{[this](uid_t uid, gid_t gid) -> std::optional<Account> {
                            ++account_lookups;
                            if (uid >= 2000) return std::nullopt;
                            return Account{uid, "u" + std::to_string(uid), "/h", {gid}};
                          },
                          [this](const std::string& name) -> std::optional<uid_t> {
                            ++name_lookups;
                            if (name == "alice") return 1000;
                            return std::nullopt;
                          }},
      60s, 3, [this] { return now; }};
};

}  // namespace

TEST_CASE("CachedUsers: an answer is reused until its ttl, then looked up again") {
  Fixture f;
  CHECK(f.users.account(1000, 1000)->name == "u1000");
  CHECK(f.users.account(1000, 1000)->groups == std::vector<gid_t>{1000});
  CHECK(f.users.name_of(1000) == "u1000");  // Served from the account entry.
  CHECK(f.account_lookups == 1);
  f.now += 59s;
  (void)f.users.account(1000, 1000);
  CHECK(f.account_lookups == 1);
  f.now += 1s;
  (void)f.users.account(1000, 1000);
  CHECK(f.account_lookups == 2);
}

TEST_CASE("CachedUsers: 'no such user' is cached too, so a missing user costs one lookup") {
  Fixture f;
  CHECK_FALSE(f.users.account(4242, 4242).has_value());
  CHECK_FALSE(f.users.account(4242, 4242).has_value());
  CHECK_FALSE(f.users.uid_of("nobody-here").has_value());
  CHECK_FALSE(f.users.uid_of("nobody-here").has_value());
  CHECK(f.users.uid_of("alice") == 1000u);
  CHECK(f.account_lookups == 1);
  CHECK(f.name_lookups == 2);
}

TEST_CASE("CachedUsers: the cache is bounded; the oldest answer goes first") {
  Fixture f;
  for (uid_t uid = 1; uid <= 3; ++uid) {
    (void)f.users.account(uid, 0);
    f.now += 1s;
  }
  (void)f.users.account(4, 0);  // Full: uid 1, the oldest, is dropped.
  CHECK(f.account_lookups == 4);
  (void)f.users.account(3, 0);
  CHECK(f.account_lookups == 4);  // Still cached.
  (void)f.users.account(1, 0);
  CHECK(f.account_lookups == 5);  // Looked up again.
}

TEST_CASE("CachedUsers: supplementary groups depend on the primary gid asked with") {
  Fixture f;
  CHECK(f.users.account(1000, 1000)->groups == std::vector<gid_t>{1000});
  CHECK(f.users.account(1000, 27)->groups == std::vector<gid_t>{27});
  CHECK(f.account_lookups == 2);
}

TEST_CASE("CachedUsers: the system source knows root") {
  CachedUsers users;
  const auto root = users.account(0, 0);
  REQUIRE(root.has_value());
  CHECK(root->name == "root");
  CHECK(users.uid_of("root") == 0u);
  CHECK(users.name_of(0) == "root");
}

}  // namespace tg::daemon
