#include "daemon/server/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "common/codec.h"
#include "daemon/server/session.h"
#include "daemon/sys/asio_util.h"

namespace tg::daemon {

namespace asio = boost::asio;
using asio::awaitable;

Server::Server(asio::io_context& ioc, Engine& engine, LogWatcher& watcher, DaemonControl control)
    : ioc_(ioc), engine_(engine), watcher_(watcher), control_(std::move(control)) {}

void Server::start(Acceptor acceptor) {
  acceptor_.emplace(std::move(acceptor));
  asio::co_spawn(ioc_, accept_loop(), RethrowExit{"accept loop"});
}

int Server::listening_fd() {
  return acceptor_ && acceptor_->is_open() ? acceptor_->native_handle() : -1;
}

void Server::stop() {
  if (acceptor_) {
    boost::system::error_code ignored;
    (void)acceptor_->close(ignored);  // Wakes accept_loop with operation_aborted.
  }
  for (auto& s : signals_) s.emit(asio::cancellation_type::terminal);
}

namespace {

// Answers a connection we will not serve with one error line, then it is closed.
void refuse(Socket& socket, const Error& why) {
  const std::string line = proto::encode_error(nullptr, why);
  // Best effort and non-blocking: a peer that does not read must not stall the loop.
  (void)::send(socket.native_handle(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace

awaitable<void> Server::accept_loop() {
  asio::steady_timer backoff(ioc_);
  for (;;) {
    auto [ec, socket] = co_await acceptor_->async_accept(kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
    if (ec) {
      // Out of fds (EMFILE/ENFILE) or memory: back off instead of spinning, then retry.
      logs_.accept_failed.warn("accept failed: {}; retrying in 100ms", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      (void)co_await backoff.async_wait(kNoThrow);
      continue;
    }
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      logs_.refused.warn("SO_PEERCRED failed: {}; closing the connection", ::strerror(errno));
      continue;
    }
    const Peer peer{cred.uid, cred.gid, cred.pid};
    // A daemon that is not root cannot run tasks as anyone but itself: serve only its user.
    if (const uid_t self = ::geteuid(); self != 0 && peer.uid != self && peer.uid != 0) {
      logs_.refused.warn("uid={} refused: this daemon serves uid {} only", peer.uid, self);
      refuse(socket, {Errc::kPermissionDenied,
                      "this taskgroupd serves uid " + std::to_string(self) + " only"});
      continue;
    }
    const Config& config = engine_.config();
    if (connections_ >= config.max_connections ||
        per_uid_[peer.uid] >= config.max_connections_per_uid) {
      logs_.refused.warn("uid={} refused: too many connections", peer.uid);
      refuse(socket, {Errc::kBusy, "too many connections; try again later"});
      continue;
    }
    spawn_session(std::move(socket), peer);
  }
}

void Server::spawn_session(Socket socket, const Peer& peer) {
  ++connections_;
  ++per_uid_[peer.uid];
  auto it = signals_.emplace(signals_.end());
  const uid_t uid = peer.uid;
  auto done = [this, it, uid](std::exception_ptr e) {
    log_exit("session")(e);
    signals_.erase(it);
    --connections_;
    if (--per_uid_[uid] == 0) per_uid_.erase(uid);
  };
  asio::co_spawn(ioc_, session(std::move(socket), peer, engine_, watcher_, control_, logs_),
                 asio::bind_cancellation_slot(it->slot(), std::move(done)));
}

}  // namespace tg::daemon
