#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tg::daemon {

// A user as the system's user database (passwd, group; NSS, so maybe LDAP) knows them.
struct Account {
  uid_t uid = 0;
  std::string name;
  std::string home;
  std::vector<gid_t> groups;  // Supplementary groups, for the gid the lookup was made with.
};

// Who users are. The engine names users in its answers and resolves `--user NAME`; the local
// executor switches to a task's submitter. Used on the event loop's thread only.
class UserDirectory {
 public:
  virtual ~UserDirectory() = default;
  // The user `uid` with the supplementary groups they get with primary group `gid`; nullopt
  // if the user database does not know them.
  [[nodiscard]] virtual std::optional<Account> account(uid_t uid, gid_t gid) = 0;
  [[nodiscard]] virtual std::optional<std::string> name_of(uid_t uid) = 0;
  [[nodiscard]] virtual std::optional<uid_t> uid_of(const std::string& name) = 0;
};

// The system's user database behind a cache. A name service can be slow (LDAP on a cluster:
// tens of milliseconds a lookup) and the loop must not wait for it on every submit, start and
// listed task: each answer, also "no such user", is kept for `ttl`, for at most `capacity`
// users (the oldest entry goes first). A user added or changed is seen after `ttl` at the
// latest.
class CachedUsers final : public UserDirectory {
 public:
  using Now = std::function<std::chrono::steady_clock::time_point()>;
  // What answers a miss: the system by default (getpwuid_r, getgrouplist, getpwnam_r).
  struct Source {
    std::function<std::optional<Account>(uid_t, gid_t)> account;
    std::function<std::optional<uid_t>(const std::string&)> uid_of;
  };
  static Source system_source();

  explicit CachedUsers(Source source = system_source(),
                       std::chrono::seconds ttl = std::chrono::seconds(60),
                       std::size_t capacity = 4096, Now now = &std::chrono::steady_clock::now);

  [[nodiscard]] std::optional<Account> account(uid_t uid, gid_t gid) override;
  [[nodiscard]] std::optional<std::string> name_of(uid_t uid) override;
  [[nodiscard]] std::optional<uid_t> uid_of(const std::string& name) override;

  [[nodiscard]] std::size_t lookups() const { return lookups_; }  // Misses, for tests.

 private:
  template <class V>
  struct Entry {
    V value;
    std::chrono::steady_clock::time_point at;
  };
  template <class K, class V, class Fetch>
  V cached(std::map<K, Entry<V>>& cache, const K& key, Fetch fetch);

  Source source_;
  const std::chrono::seconds ttl_;
  const std::size_t capacity_;
  Now now_;
  std::map<std::pair<uid_t, gid_t>, Entry<std::optional<Account>>> accounts_;
  std::map<std::string, Entry<std::optional<uid_t>>> uids_;
  std::size_t lookups_ = 0;
};

}  // namespace tg::daemon
