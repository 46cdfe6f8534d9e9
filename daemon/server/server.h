#pragma once

#include <list>
#include <map>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "daemon/engine/engine.h"
#include "daemon/server/dispatch.h"
#include "daemon/server/log_watcher.h"
#include "daemon/server/outsider_logs.h"
#include "daemon/server/session.h"

namespace tg::daemon {

using Acceptor = boost::asio::local::stream_protocol::acceptor;

// Accepts connections and runs one session coroutine per connection. Identity comes from
// SO_PEERCRED at accept; connections are capped overall and per uid (the extra ones get a
// `busy` error and are closed). Owned by run(); event-loop thread only. stop() closes the
// acceptor and cancels every session; the loop ends once they have returned.
class Server {
 public:
  Server(boost::asio::io_context& ioc, Engine& engine, LogWatcher& watcher, DaemonControl control);
  void start(Acceptor acceptor);
  void stop();
  // The listening socket's fd (-1 once stopped): what a re-exec hands over, duplicated.
  [[nodiscard]] int listening_fd();

 private:
  boost::asio::awaitable<void> accept_loop();
  void spawn_session(Socket socket, const Peer& peer);

  boost::asio::io_context& ioc_;
  Engine& engine_;
  LogWatcher& watcher_;
  const DaemonControl control_;
  std::optional<Acceptor> acceptor_;
  std::list<boost::asio::cancellation_signal> signals_;  // One per session; must not move.
  std::map<uid_t, std::int64_t> per_uid_;
  std::int64_t connections_ = 0;
  OutsiderLogs logs_;  // Outlives the sessions, which hold a reference: run() owns the Server.
};

}  // namespace tg::daemon
