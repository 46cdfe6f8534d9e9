// libFuzzer target for the daemon's request path (issue 7): arbitrary bytes go to
// tg::proto::decode_request() and, as one request line, to tg::daemon::dispatch() with a real
// Engine on an in-memory Store. Both must answer every input without crashing, throwing,
// leaking or tripping ASan/UBSan, and every reply must be one line of valid JSON-RPC.
//
// The Engine's io_context is never run: what the Engine posts (its turn, which would start
// tasks) stays queued and is destroyed unrun with the io_context, so no child is ever spawned
// and no timer fires, however many submits the fuzzer makes. Long requests (wait, logs -f)
// come back as `pending` for a session we do not have, and are dropped.
//
// Submits and group.set grow the Engine's state: it is rebuilt every kInputsPerEngine inputs so
// that memory stays bounded (and a slow leak still shows up as growth across rebuilds).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/codec.h"
#include "daemon/config.h"
#include "daemon/engine/engine.h"
#include "daemon/exec/fake/fake_executor.h"
#include "daemon/exec/fake/virtual_clock.h"
#include "daemon/exec/users.h"
#include "daemon/model/peer.h"
#include "daemon/server/dispatch.h"
#include "daemon/store/store.h"

namespace {

constexpr int kInputsPerEngine = 2000;

// One daemon's worth of state, as run() would own it, minus the loop and the sockets.
struct World {
  World() {
    auto opened = tg::daemon::Store::open(":memory:", {.durable = false});
    if (opened.has_error()) std::abort();
    store = std::make_unique<tg::daemon::Store>(std::move(*opened));
    tg::daemon::Config config;
    config.state_dir = "/nonexistent/taskgroupd-fuzz";  // Log reads find nothing; none written.
    config.socket = "/nonexistent/taskgroupd-fuzz.sock";
    config.max_running = 4;
    engine = std::make_unique<tg::daemon::Engine>(ioc.get_executor(), *store, executor, users,
                                                  clock, config);
    if (engine->recover().has_error()) std::abort();
  }
  ~World() {
    engine.reset();  // Before the io_context: its queued handlers point at the engine.
  }

  boost::asio::io_context ioc{1};     // Never run (see the top of the file).
  tg::daemon::FakeExecutor executor;  // Nothing starts anyway: the turn is never run.
  tg::daemon::CachedUsers users;
  tg::daemon::VirtualClock clock;
  std::unique_ptr<tg::daemon::Store> store;
  std::unique_ptr<tg::daemon::Engine> engine;
};

// Every reply is one '\n'-terminated line of JSON with jsonrpc "2.0".
void check_reply(const std::string& reply) {
  if (reply.empty()) return;  // Notifications get none.
  if (reply.back() != '\n' || reply.find('\n') != reply.size() - 1) std::abort();
  const auto j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("jsonrpc", "") != "2.0") std::abort();
  if (!j.contains("result") && !j.contains("error")) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // The daemon logs per request at debug; keep quiet.
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::unique_ptr<World> world;
  static int inputs = 0;
  if (!world || ++inputs % kInputsPerEngine == 0) {
    world.reset();
    world = std::make_unique<World>();
  }
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  // The decoder alone: never throws, and a failed decode always carries a message.
  const auto in = tg::proto::decode_request(bytes);
  if (in.request.has_error() && in.request.error().message.empty()) std::abort();

  // The session hands dispatch one line without its '\n'; the first byte picks the peer, so
  // both the root and the per-user paths (visibility, --user) are explored.
  const std::string_view line = bytes.substr(0, bytes.find('\n'));
  const tg::daemon::Peer peer{size > 0 && (data[0] & 1) ? 0u : 1000u, 1000u, 4242};
  const tg::daemon::DaemonControl control{[] { return tg::proto::ReloadResult{}; }, nullptr};
  const tg::daemon::Dispatched out = tg::daemon::dispatch(*world->engine, control, peer, line);
  check_reply(out.reply);
  return 0;
}
