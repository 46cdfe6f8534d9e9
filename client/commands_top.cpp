// tgctl top: a live view of the daemon, drawn from the frames a `watch` request streams.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <ostream>
#include <string>
#include <vector>

#include "client/commands.h"
#include "client/render.h"
#include "client/terminal.h"
#include "client/top_view.h"

namespace tg::client {

namespace {

// The signals that end top, and SIGWINCH, arrive through a signalfd instead of handlers: the
// loop polls them with the keys and the socket, and leaves through the Terminal's destructor,
// which restores the screen. The old mask comes back on destruction.
class TopSignals {
 public:
  TopSignals() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH}) sigaddset(&set_, s);
    (void)::sigprocmask(SIG_BLOCK, &set_, &old_);  // Fails only for a bad argument.
    fd_ = ::signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
  }
  ~TopSignals() {
    if (fd_ >= 0) ::close(fd_);
    // Taken ones are gone; anything still pending acts once unblocked, as it would have.
    (void)::sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  TopSignals(const TopSignals&) = delete;
  TopSignals& operator=(const TopSignals&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  // The next signal that came, or 0.
  [[nodiscard]] int take() const {
    signalfd_siginfo info{};
    if (::read(fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return 0;
    return static_cast<int>(info.ssi_signo);
  }

 private:
  sigset_t set_{};
  sigset_t old_{};
  int fd_ = -1;
};

// Turns what the keyboard sent into keys: bytes, and arrows from their escape sequences.
std::vector<int> decode_keys(std::string_view bytes) {
  std::vector<int> keys;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\x1b' && i + 2 < bytes.size() && (bytes[i + 1] == '[' || bytes[i + 1] == 'O')) {
      const char final = bytes[i + 2];
      if (final == 'A') keys.push_back(kKeyUp);
      if (final == 'B') keys.push_back(kKeyDown);
      i += 2;  // Other sequences (other arrows, function keys) do nothing.
      while (i < bytes.size() && (bytes[i] < 0x40 || bytes[i] > 0x7e)) ++i;
      continue;
    }
    keys.push_back(static_cast<unsigned char>(c));
  }
  return keys;
}

// What the stream brought: frames, or the request's end (an error reply).
struct Received {
  std::optional<proto::WatchFrame> frame;  // The latest one.
  std::optional<Error> ended;
};

Received read_stream(Connection& conn) {
  Received out;
  auto lines = conn.receive();
  if (lines.has_error()) {
    out.ended = lines.error();
    return out;
  }
  for (const std::string& line : *lines) {
    proto::IncomingReply reply = proto::decode_reply(line);
    if (reply.method == proto::kWatchFrame) {
      auto frame = proto::decode_result<proto::WatchFrame>(reply.params);
      if (frame.has_error()) {
        out.ended = frame.error();
        return out;
      }
      out.frame = std::move(*frame);
    } else if (reply.method.empty()) {  // Its reply: the watch has ended.
      out.ended = reply.result.has_error()
                      ? reply.result.error()
                      : Error{Errc::kUnavailable, "taskgroupd ended the watch"};
      return out;
    }
  }
  return out;
}

// The first frame, for --once.
Result<proto::WatchFrame> first_frame(Connection& conn) {
  for (;;) {
    pollfd p{conn.fd(), POLLIN, 0};
    if (::poll(&p, 1, -1) < 0 && errno != EINTR) {
      return Error{Errc::kUnavailable, "cannot wait for taskgroupd"};
    }
    Received got = read_stream(conn);
    if (got.frame) return std::move(*got.frame);
    if (got.ended) return *got.ended;
  }
}

// Carries out a key's action on a connection of its own; says how it went.
std::string act(const Connection& watching, const TopAction& action) {
  auto conn = watching.another();
  if (conn.has_error()) return conn.error().message;
  const std::string& name = action.group.name;
  switch (action.kind) {
    case TopAction::Kind::kPause:
    case TopAction::Kind::kResume: {
      const bool pause = action.kind == TopAction::Kind::kPause;
      auto r = pause ? call_as<proto::GroupInfo>(*conn, proto::Pause{action.group})
                     : call_as<proto::GroupInfo>(*conn, proto::Resume{action.group});
      if (r.has_error()) return r.error().message;
      return (pause ? "paused " : "resumed ") + name;
    }
    case TopAction::Kind::kCancel: {
      proto::Cancel request;
      request.group = action.group;
      auto r = call_as<proto::CancelResult>(*conn, request);
      if (r.has_error()) return r.error().message;
      return render_cancel(request, *r);
    }
    case TopAction::Kind::kNone:
    case TopAction::Kind::kQuit:
      break;
  }
  return {};
}

// The live view until q, a signal, or the end of the watch. The Terminal is restored when this
// returns, before the caller prints an error.
Result<int> run_live(Connection& conn, const TopCommand& cmd, Io& io) {
  TopSignals signals;
  if (signals.fd() < 0) return Error{Errc::kIo, "cannot watch for signals"};
  auto term = Terminal::open(STDIN_FILENO, STDOUT_FILENO);
  if (term.has_error()) return term.error();
  TopState state;
  state.filter = cmd.filter;
  std::optional<proto::WatchFrame> frame;
  for (;;) {
    if (frame) {
      const TopScreen screen{term->cols(), term->rows(), io.out_color, now_ms()};
      term->draw(render_top(*frame, state, screen));
    } else {
      term->draw({"tgctl top: waiting for taskgroupd..."});
    }
    // Running tasks' elapsed times tick on the second; frames and keys wake us at once.
    const int tick = static_cast<int>(1000 - now_ms() % 1000);
    pollfd fds[] = {{STDIN_FILENO, POLLIN, 0}, {conn.fd(), POLLIN, 0}, {signals.fd(), POLLIN, 0}};
    if (::poll(fds, 3, tick) < 0) {
      if (errno == EINTR) continue;
      return Error{Errc::kIo, "poll failed"};
    }
    if (fds[2].revents != 0) {
      const int sig = signals.take();
      if (sig == SIGWINCH) {
        term->invalidate();
      } else if (sig != 0) {
        return 128 + sig;  // As if it had killed us, but with the terminal restored.
      }
    }
    if (fds[1].revents != 0) {
      Received got = read_stream(conn);
      if (got.frame) frame = std::move(got.frame);
      if (got.ended && got.ended->code == Errc::kRestarting) {
        // The daemon is re-executing itself: the next program takes the socket over, and the
        // watch goes on with it.
        ::poll(nullptr, 0, 50);
        if (auto c = conn.reconnect(); c.has_error()) return c.error();
        if (auto sent = conn.send(cmd.request); sent.has_error()) return sent.error();
        continue;
      }
      if (got.ended) return *got.ended;
    }
    if (fds[0].revents != 0) {
      char buf[256];
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return kExitOk;  // The terminal is gone (EOF, EIO after a hangup).
      for (int key : decode_keys(std::string_view(buf, static_cast<std::size_t>(n)))) {
        if (!frame) {
          if (key == 'q' || key == kKeyCtrlC) return kExitOk;
          continue;
        }
        const TopAction action = on_key(state, key, *frame);
        if (action.kind == TopAction::Kind::kQuit) return kExitOk;
        if (action.kind != TopAction::Kind::kNone) state.message = act(conn, action);
      }
    }
  }
}

}  // namespace

Result<int> run_top(Connection& conn, const TopCommand& cmd, Io& io) {
  if (!cmd.once && (::isatty(STDIN_FILENO) != 1 || ::isatty(STDOUT_FILENO) != 1)) {
    io.err << "tgctl: top needs a terminal; use 'tgctl top --once' for one frame as text\n";
    return kExitUsage;
  }
  if (auto sent = conn.send(cmd.request); sent.has_error()) return sent.error();
  if (!cmd.once) return run_live(conn, cmd, io);
  auto frame = first_frame(conn);
  if (frame.has_error()) return frame.error();
  TopState state;
  state.filter = cmd.filter;
  const TopScreen screen{io.out_width, 0, io.out_color, now_ms()};
  for (const std::string& line : render_top(*frame, state, screen)) io.out << line << '\n';
  return kExitOk;
}

}  // namespace tg::client
