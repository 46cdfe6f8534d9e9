#pragma once

// A protocol-level client for tests that need to send what tgctl never would.

#include <string>

#include "support/peer_client.h"
#include "support/process.h"

namespace tg::test {

// Connects to the Unix socket `path` as the test process; the socket is close-on-exec, and
// blocking unless `non_blocking`. REQUIREs the connect to succeed: the listener is already there,
// so nothing is retried. A non-blocking connect completes (or fails, e.g. on a full backlog) at
// once; a blocking one waits for room in the backlog.
[[nodiscard]] Fd connect_unix(const std::string& path, bool non_blocking = false);

// A PeerClient on its own connection to the daemon's socket, opened as the test process: every
// read is bounded by a timeout, and a reply that does not come in time fails the test. Not
// thread-safe; owned by one test.
class RawClient : public PeerClient {
 public:
  // connect_unix(socket_path, non_blocking = true): never waits on a full backlog.
  explicit RawClient(const std::string& socket_path);
};

}  // namespace tg::test
