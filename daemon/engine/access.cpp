// Engine: who may see and act on what (DESIGN.md "Who may do what").
#include <charconv>

#include "daemon/engine/engine.h"

namespace tg::daemon {

Result<uid_t> Engine::resolve_user(const Peer& peer, const std::string& user) const {
  uid_t uid = 0;
  const char* end = user.data() + user.size();
  if (auto [p, ec] = std::from_chars(user.data(), end, uid); ec != std::errc() || p != end) {
    const auto found = users_.uid_of(user);
    if (!found) return Error{Errc::kNotFound, "no user '" + user + "'"};
    uid = *found;
  }
  if (!peer.root() && uid != peer.uid) {
    return Error{Errc::kPermissionDenied, "only root may act on another user's groups"};
  }
  return uid;
}

Result<GroupKey> Engine::resolve(const Peer& peer, const proto::GroupRef& ref) const {
  uid_t uid = peer.uid;
  if (ref.user) {
    auto u = resolve_user(peer, *ref.user);
    if (u.has_error()) return u.error();
    uid = *u;
  }
  return GroupKey{uid, ref.name};
}

}  // namespace tg::daemon
