#include "daemon/exec/users.h"

#include <grp.h>
#include <pwd.h>

#include <algorithm>

namespace tg::daemon {

namespace {

std::optional<Account> system_account(uid_t uid, gid_t gid) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found) return std::nullopt;
  Account a{uid, pw.pw_name, pw.pw_dir, {}};
  std::vector<gid_t> groups(64);
  int n = static_cast<int>(groups.size());
  while (::getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n) + 16);
    n = static_cast<int>(groups.size());
  }
  groups.resize(static_cast<std::size_t>(n));
  a.groups = std::move(groups);
  return a;
}

std::optional<uid_t> system_uid_of(const std::string& name) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    return std::nullopt;
  }
  return pw.pw_uid;
}

}  // namespace

CachedUsers::Source CachedUsers::system_source() { return {&system_account, &system_uid_of}; }

CachedUsers::CachedUsers(Source source, std::chrono::seconds ttl, std::size_t capacity, Now now)
    : source_(std::move(source)), ttl_(ttl), capacity_(capacity), now_(std::move(now)) {}

template <class K, class V, class Fetch>
V CachedUsers::cached(std::map<K, Entry<V>>& cache, const K& key, Fetch fetch) {
  const auto now = now_();
  if (auto it = cache.find(key); it != cache.end()) {
    if (now - it->second.at < ttl_) return it->second.value;
    cache.erase(it);
  }
  if (cache.size() >= capacity_) {  // Bounded: the oldest answer goes (a scan, only when full).
    cache.erase(std::min_element(cache.begin(), cache.end(), [](const auto& a, const auto& b) {
      return a.second.at < b.second.at;
    }));
  }
  ++lookups_;
  V value = fetch();
  cache.emplace(key, Entry<V>{value, now});
  return value;
}

std::optional<Account> CachedUsers::account(uid_t uid, gid_t gid) {
  return cached(accounts_, std::pair(uid, gid), [&] { return source_.account(uid, gid); });
}

std::optional<std::string> CachedUsers::name_of(uid_t uid) {
  // The name needs no groups: reuse any fresh entry of this uid, else look it up under gid -1
  // (an entry only name_of() asks for).
  auto it = accounts_.lower_bound({uid, 0});
  if (it != accounts_.end() && it->first.first == uid && now_() - it->second.at < ttl_) {
    return it->second.value ? std::optional(it->second.value->name) : std::nullopt;
  }
  const auto a = account(uid, static_cast<gid_t>(-1));
  return a ? std::optional(a->name) : std::nullopt;
}

std::optional<uid_t> CachedUsers::uid_of(const std::string& name) {
  return cached(uids_, name, [&] { return source_.uid_of(name); });
}

}  // namespace tg::daemon
