#include "daemon/server/session.h"

#include <sys/socket.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "common/codec.h"
#include "daemon/sys/asio_util.h"

namespace tg::daemon {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::experimental::awaitable_operators::operator||;
using nlohmann::json;

namespace {

constexpr std::size_t kLogChunkBytes = 64 * 1024;
// A watch sends at most one frame per interval: a burst of changes (a batch of 1000 tasks
// ending) becomes one frame, and a quiet daemon sends none.
constexpr std::chrono::milliseconds kWatchInterval{200};

// What a parked request answers when the daemon ends its wait.
Error aborted_error(const Waiter& w) {
  if (w.restarting()) {
    return {Errc::kRestarting, "the daemon is re-executing itself; ask again in a moment"};
  }
  return {Errc::kDraining, "the daemon is stopping"};
}

// Keeps a waiter registered with the engine for the life of a long request.
class WatchGuard {
 public:
  WatchGuard(Engine& engine, Waiter& w) : engine_(engine), w_(w) { engine_.watch(w_); }
  ~WatchGuard() { engine_.unwatch(w_); }
  WatchGuard(const WatchGuard&) = delete;
  WatchGuard& operator=(const WatchGuard&) = delete;

 private:
  Engine& engine_;
  Waiter& w_;
};

awaitable<void> send(Socket& socket, const std::string& line) {
  co_await asio::async_write(socket, asio::buffer(line), use_awaitable);
}

// True if the peer has hung up; false if it merely sent more (pipelined) requests.
bool peer_closed(Socket& socket) {
  char c;
  const ssize_t n = ::recv(socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

// Waits for a wake, or for the peer to hang up (then returns false). Once the peer has sent
// more data we stop watching the socket: that data waits its turn in the buffer.
awaitable<bool> park(Socket& socket, Waiter& w, bool& watch_socket) {
  if (!watch_socket) {
    co_await w.next();
    co_return true;
  }
  auto got = co_await (w.next() || socket.async_wait(Socket::wait_read, kNoThrow));
  if (got.index() == 1) {
    if (peer_closed(socket)) co_return false;
    watch_socket = false;
  }
  co_return true;
}

awaitable<void> serve_wait(Socket& socket, Engine& engine, const Peer& peer, PendingWait p) {
  Waiter w(socket.get_executor());
  if (auto r = engine.prepare_wait(peer, p.request, w); r.has_error()) {
    const std::string line = proto::encode_error(p.id, r.error());
    co_await send(socket, line);
    co_return;
  }
  WatchGuard guard(engine, w);
  const TimeMs started = now_ms();
  bool watch_socket = true;
  std::optional<proto::StateCounts> last_sent;
  for (;;) {
    proto::WaitResult progress = engine.wait_progress(w, started);
    if (progress.counts.done() == progress.counts.total()) {
      const std::string line = proto::encode_result(p.id, json(progress));
      co_await send(socket, line);
      co_return;
    }
    if (w.aborted()) {
      const std::string line = proto::encode_error(p.id, aborted_error(w));
      co_await send(socket, line);
      co_return;
    }
    if (p.request.progress && (!last_sent || json(*last_sent) != json(progress.counts))) {
      last_sent = progress.counts;
      const std::string line = proto::encode_notification(proto::kWaitProgress, json(progress));
      co_await send(socket, line);
    }
    if (!co_await park(socket, w, watch_socket)) co_return;
  }
}

// Sends everything from `offset` to the current end of the log as notifications.
// Returns an error if the log cannot be read.
awaitable<std::optional<Error>> send_log_data(Socket& socket, const std::string& path,
                                              std::int64_t& offset) {
  for (;;) {
    auto data = read_log(path, offset, kLogChunkBytes);
    if (data.has_error()) co_return data.error();
    if (data->empty()) co_return std::nullopt;
    offset += static_cast<std::int64_t>(data->size());
    json body = json::object();
    body["data"] = std::move(*data);
    const std::string line = proto::encode_notification(proto::kLogsData, body);
    co_await send(socket, line);
  }
}

// Keeps a follower counted and its waiter registered with the LogWatcher while it follows.
class FollowGuard {
 public:
  FollowGuard(LogWatcher& watcher, Waiter& w, uid_t uid) : watcher_(watcher), w_(w), uid_(uid) {}
  ~FollowGuard() {
    watcher_.remove(w_);
    watcher_.end_follow(uid_);
  }
  FollowGuard(const FollowGuard&) = delete;
  FollowGuard& operator=(const FollowGuard&) = delete;

 private:
  LogWatcher& watcher_;
  Waiter& w_;
  uid_t uid_;
};

awaitable<void> serve_logs(Socket& socket, Engine& engine, LogWatcher& watcher, const Peer& peer,
                           PendingLogs p, LogRateLimit& refusals) {
  const proto::TaskId id = p.request.id;
  auto src = engine.log_source(peer, id);
  if (src.has_error()) {
    const std::string line = proto::encode_error(p.id, src.error());
    co_await send(socket, line);
    co_return;
  }
  if (auto admitted = watcher.begin_follow(peer.uid); admitted.has_error()) {
    refusals.warn("uid={} refused a logs -f: {}", peer.uid, admitted.error().message);
    const std::string line = proto::encode_error(p.id, admitted.error());
    co_await send(socket, line);
    co_return;
  }
  // The waiter wakes when the task starts or ends (Engine) and when its log is written (the
  // daemon's one inotify instance, shared by all followers).
  Waiter w(socket.get_executor());
  w.log_task = id;
  WatchGuard guard(engine, w);
  FollowGuard follow(watcher, w, peer.uid);
  bool watch_socket = true;
  std::int64_t offset = p.request.offset;
  for (;;) {
    src = engine.log_source(peer, id);
    if (src.has_error()) break;
    // Watch before reading, so that nothing written after the read goes unnoticed. Until the
    // task starts there is no file: the task's start wakes us to try again.
    if (!watcher.watching(w)) {
      if (auto r = watcher.add(src->path, w); r.has_error() && r.error().code != Errc::kNotFound) {
        const std::string line = proto::encode_error(p.id, r.error());
        co_await send(socket, line);
        co_return;
      }
    }
    const bool ended = src->ended;  // Read after checking: nothing is written after the end.
    if (auto failed = co_await send_log_data(socket, src->path, offset)) {
      const std::string line = proto::encode_error(p.id, *failed);
      co_await send(socket, line);
      co_return;
    }
    if (w.aborted() && w.restarting()) {  // The client follows on with the next program.
      const std::string line = proto::encode_error(p.id, aborted_error(w));
      co_await send(socket, line);
      co_return;
    }
    if (ended || w.aborted()) {
      const std::string line =
          proto::encode_result(p.id, json(proto::LogsResult{"", offset, ended}));
      co_await send(socket, line);
      co_return;
    }
    if (!co_await park(socket, w, watch_socket)) co_return;
  }
  const std::string line = proto::encode_error(p.id, src.error());
  co_await send(socket, line);
}

// Frames until the peer hangs up or the daemon stops. The first goes out at once; after that,
// each wake sends one, at least kWatchInterval after the last one, and only if it differs.
awaitable<void> serve_watch(Socket& socket, Engine& engine, const Peer& peer, PendingWatch p) {
  Waiter w(socket.get_executor());
  if (auto r = engine.prepare_watch(peer, p.request, w); r.has_error()) {
    const std::string line = proto::encode_error(p.id, r.error());
    co_await send(socket, line);
    co_return;
  }
  WatchGuard guard(engine, w);
  asio::steady_timer pace(socket.get_executor());
  bool watch_socket = true;
  std::string last;
  auto last_at = asio::steady_timer::clock_type::now() - kWatchInterval;
  for (;;) {
    if (w.aborted()) {
      const std::string line = proto::encode_error(p.id, aborted_error(w));
      co_await send(socket, line);
      co_return;
    }
    std::string line = proto::encode_notification(proto::kWatchFrame, json(engine.watch_frame(w)));
    if (line != last) {
      co_await send(socket, line);
      last = std::move(line);
      last_at = asio::steady_timer::clock_type::now();
    }
    if (!co_await park(socket, w, watch_socket)) co_return;
    // Armed only after a change: what else changes meanwhile joins this frame (its wakes are
    // taken here). The daemon's stop ends the pause at once, so that its answer goes out.
    while (!w.aborted() && asio::steady_timer::clock_type::now() < last_at + kWatchInterval) {
      pace.expires_at(last_at + kWatchInterval);
      (void)co_await (pace.async_wait(kNoThrow) || w.next());
    }
  }
}

// A list without after_id: every match in one reply line, built and written a page at a time,
// so that neither the loop nor memory holds more than a page; other sessions run between pages.
// Pages go on from the last id listed: a task submitted meanwhile may be listed (unless a limit
// was given), a task pruned meanwhile may not be, none twice.
awaitable<void> serve_list(Socket& socket, Engine& engine, const Peer& peer, PendingList p) {
  auto walk = engine.begin_list(peer, p.request);
  if (walk.has_error()) {
    const std::string line = proto::encode_error(p.id, walk.error());
    co_await send(socket, line);
    co_return;
  }
  const proto::ResultFrame frame = proto::encode_result_frame(p.id, "tasks");
  std::string chunk = frame.head;
  bool first = true;
  while (!walk->done) {
    for (const proto::TaskInfo& t : engine.list_page(*walk)) {
      if (!first) chunk += ',';
      first = false;
      chunk += proto::dump_json(json(t));
    }
    co_await send(socket, chunk);
    chunk.clear();
  }
  chunk += frame.tail;
  co_await send(socket, chunk);
}

}  // namespace

awaitable<void> session(Socket socket, Peer peer, Engine& engine, LogWatcher& watcher,
                        const DaemonControl& control, OutsiderLogs& logs) {
  std::string buf;
  asio::steady_timer idle(socket.get_executor());
  for (;;) {
    idle.expires_after(engine.config().idle_timeout);
    const std::size_t max_frame = engine.config().max_message_bytes;
    auto got = co_await (
        asio::async_read_until(socket, asio::dynamic_buffer(buf, max_frame + 1), '\n', kNoThrow) ||
        idle.async_wait(kNoThrow));
    if (got.index() == 1) co_return;  // Idle timeout.
    auto [ec, n] = std::get<0>(got);
    if (ec == asio::error::not_found) {
      // Over the limit without a newline: it cannot be framed, so answer and hang up.
      logs.oversized.warn("uid={} sent a frame over {} bytes; closing", peer.uid, max_frame);
      const std::string line = proto::encode_error(
          nullptr,
          {Errc::kTooLarge, "request line longer than " + std::to_string(max_frame) + " bytes"});
      co_await send(socket, line);
      co_return;
    }
    if (ec) co_return;  // EOF, reset, or operation_aborted at shutdown.
    std::string_view line(buf.data(), n - 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    Dispatched out =
        line.empty() ? Dispatched{} : dispatch(engine, control, peer, line, &logs.bad_requests);
    buf.erase(0, n);
    if (!out.reply.empty()) co_await send(socket, out.reply);
    if (out.pending) {
      if (auto* w = std::get_if<PendingWait>(&*out.pending)) {
        PendingWait pending = std::move(*w);
        co_await serve_wait(socket, engine, peer, std::move(pending));
      } else if (auto* wa = std::get_if<PendingWatch>(&*out.pending)) {
        PendingWatch pending = std::move(*wa);
        co_await serve_watch(socket, engine, peer, std::move(pending));
      } else if (auto* l = std::get_if<PendingList>(&*out.pending)) {
        PendingList pending = std::move(*l);
        co_await serve_list(socket, engine, peer, std::move(pending));
      } else {
        PendingLogs pending = std::get<PendingLogs>(std::move(*out.pending));
        co_await serve_logs(socket, engine, watcher, peer, std::move(pending),
                            logs.refused_follows);
      }
    }
  }
}

}  // namespace tg::daemon
