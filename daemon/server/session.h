#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "daemon/engine/engine.h"
#include "daemon/model/peer.h"
#include "daemon/server/dispatch.h"
#include "daemon/server/log_watcher.h"
#include "daemon/server/outsider_logs.h"

namespace tg::daemon {

using Socket = boost::asio::local::stream_protocol::socket;

// One connection: reads request lines (bounded by max_message_bytes and the idle timeout),
// answers them in order, and serves long requests (wait, logs -f) by parking on a Waiter.
// A `logs -f` is woken through the shared LogWatcher. The Engine, the LogWatcher, `control`
// and `logs` (the Server's) are owned by run() and outlive every session.
boost::asio::awaitable<void> session(Socket socket, Peer peer, Engine& engine, LogWatcher& watcher,
                                     const DaemonControl& control, OutsiderLogs& logs);

}  // namespace tg::daemon
