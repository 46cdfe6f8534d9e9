#include "daemon/server/dispatch.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/codec.h"
#include "common/unique_fd.h"
#include "common/version.h"
#include "daemon/log/printable.h"

namespace tg::daemon {

namespace {

using nlohmann::json;
constexpr std::size_t kLogChunkBytes = 256 * 1024;

template <class T>
std::string reply(const json& id, const Result<T>& r) {
  if (r.has_error()) return proto::encode_error(id, r.error());
  return proto::encode_result(id, json(*r));
}

struct Handler {
  Engine& engine;
  const DaemonControl& control;
  const Peer& peer;
  const json& id;

  Dispatched operator()(const proto::Hello&) const {
    return {proto::encode_result(id, json(proto::HelloResult{kVersion, kProtocolVersion})), {}};
  }
  Dispatched operator()(const proto::Status&) const {
    return {proto::encode_result(id, json(engine.status())), {}};
  }
  Dispatched operator()(const proto::Submit& r) const {
    return {reply(id, engine.submit(peer, r)), {}};
  }
  Dispatched operator()(const proto::List& r) const {
    if (!r.after_id) return {{}, PendingList{id, r}};
    return {reply(id, engine.list(peer, r)), {}};
  }
  Dispatched operator()(const proto::Show& r) const {
    return {reply(id, engine.show(peer, r)), {}};
  }
  Dispatched operator()(const proto::Cancel& r) const {
    return {reply(id, engine.cancel(peer, r)), {}};
  }
  Dispatched operator()(const proto::Groups& r) const {
    return {reply(id, engine.groups(peer, r)), {}};
  }
  Dispatched operator()(const proto::GroupSet& r) const {
    return {reply(id, engine.group_set(peer, r)), {}};
  }
  Dispatched operator()(const proto::Pause& r) const {
    return {reply(id, engine.set_paused(peer, r.group, true)), {}};
  }
  Dispatched operator()(const proto::Resume& r) const {
    return {reply(id, engine.set_paused(peer, r.group, false)), {}};
  }
  Dispatched operator()(const proto::Reload&) const {
    if (!peer.root() && peer.uid != ::getuid()) {
      return {proto::encode_error(
                  id, {Errc::kPermissionDenied, "only root or the daemon's user may reload it"}),
              {}};
    }
    return {proto::encode_result(id, json(control.reload())), {}};
  }
  Dispatched operator()(const proto::Reexec&) const {
    if (!peer.root() && peer.uid != ::getuid()) {
      return {proto::encode_error(id, {Errc::kPermissionDenied,
                                       "only root or the daemon's user may re-execute it"}),
              {}};
    }
    if (!control.reexec) {
      return {proto::encode_error(id, {Errc::kInternal, "this daemon cannot re-execute"}), {}};
    }
    return {reply(id, control.reexec()), {}};
  }
  Dispatched operator()(const proto::Kill& r) const {
    return {reply(id, engine.kill(peer, r)), {}};
  }
  Dispatched operator()(const proto::Restart& r) const {
    return {reply(id, engine.restart(peer, r)), {}};
  }
  Dispatched operator()(const proto::Wait& r) const { return {{}, PendingWait{id, r}}; }
  Dispatched operator()(const proto::Watch& r) const { return {{}, PendingWatch{id, r}}; }
  Dispatched operator()(const proto::Logs& r) const {
    auto src = engine.log_source(peer, r.id, r.attempt);
    if (src.has_error()) return {proto::encode_error(id, src.error()), {}};
    // Offsets are the whole log's: an attempt's part starts at src->begin.
    const std::int64_t offset = std::max(r.offset, src->begin);
    if (r.follow && !src->end) {  // Followed from there on, into later attempts too.
      proto::Logs from = r;
      from.offset = offset;
      return {{}, PendingLogs{id, std::move(from)}};
    }
    std::size_t max_bytes = kLogChunkBytes;
    if (src->end) {
      max_bytes = static_cast<std::size_t>(std::clamp<std::int64_t>(
          *src->end - offset, 0, static_cast<std::int64_t>(kLogChunkBytes)));
    }
    auto data = max_bytes == 0 ? Result<std::string>(std::string())
                               : read_log(src->path, offset, max_bytes);
    if (data.has_error()) return {proto::encode_error(id, data.error()), {}};
    proto::LogsResult out;
    out.offset = offset + static_cast<std::int64_t>(data->size());
    out.eof = src->ended && data->empty();
    out.data = std::move(*data);
    return {proto::encode_result(id, json(out)), {}};
  }
};

// Requests whose effect a handed-over engine could no longer save or carry out.
bool changes_state(const proto::Request& r) {
  return std::holds_alternative<proto::Submit>(r) || std::holds_alternative<proto::Cancel>(r) ||
         std::holds_alternative<proto::GroupSet>(r) || std::holds_alternative<proto::Pause>(r) ||
         std::holds_alternative<proto::Resume>(r) || std::holds_alternative<proto::Reload>(r) ||
         std::holds_alternative<proto::Reexec>(r) || std::holds_alternative<proto::Wait>(r) ||
         std::holds_alternative<proto::Logs>(r) || std::holds_alternative<proto::Kill>(r) ||
         std::holds_alternative<proto::Restart>(r) || std::holds_alternative<proto::Watch>(r);
}

}  // namespace

Result<std::string> read_log(const std::string& path, std::int64_t offset, std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::string();  // Not started yet: no output so far.
    return Error{Errc::kIo, "cannot read log '" + path + "': " + ::strerror(errno)};
  }
  std::string data(max_bytes, '\0');
  const ssize_t n = ::pread(fd.get(), data.data(), data.size(), offset);
  if (n < 0) return Error{Errc::kIo, "cannot read log '" + path + "': " + ::strerror(errno)};
  data.resize(static_cast<std::size_t>(n));
  return data;
}

Dispatched dispatch(Engine& engine, const DaemonControl& control, const Peer& peer,
                    std::string_view line, LogRateLimit* bad_requests) {
  auto in = proto::decode_request(line);
  if (in.request.has_error()) {
    if (bad_requests) {  // The message may quote the request: a method or key it names.
      bad_requests->debug("uid={} bad request: {}", peer.uid,
                          printable(in.request.error().message));
    }
    if (in.notification) return {};
    return {proto::encode_error(in.id, in.request.error()), {}};
  }
  spdlog::debug("uid={} {}", peer.uid, proto::method_name(*in.request));
  if (engine.handed_over() && changes_state(*in.request)) {  // The next program will answer.
    if (in.notification) return {};
    return {proto::encode_error(in.id, {Errc::kRestarting,
                                        "the daemon is re-executing itself; "
                                        "ask again in a moment"}),
            {}};
  }
  Dispatched out = std::visit(Handler{engine, control, peer, in.id}, *in.request);
  if (in.notification) {  // JSON-RPC: notifications get no reply.
    out.reply.clear();
    out.pending.reset();
  }
  return out;
}

}  // namespace tg::daemon
