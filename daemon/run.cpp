#include "daemon/run.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <optional>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "daemon/engine/engine.h"
#include "daemon/exec/local/child.h"
#include "daemon/exec/local/local_executor.h"
#include "daemon/exec/users.h"
#include "daemon/log/logging.h"
#include "daemon/server/listener.h"
#include "daemon/server/log_watcher.h"
#include "daemon/server/server.h"
#include "daemon/store/store.h"
#include "daemon/sys/handover.h"
#include "daemon/sys/state_dir.h"
#include "daemon/sys/systemd.h"

namespace tg::daemon {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

Result<void> make_state_dir(const fs::path& dir) {
  std::error_code ec;
  const bool existed = fs::exists(dir, ec);
  if (existed) {
    // Given to us: another user able to write it could swap the store or a log for a link.
    if (auto r = check_dir_is_ours(dir, "state directory", /*sticky_ok=*/false); r.has_error()) {
      return r;
    }
  }
  fs::create_directories(dir / "logs", ec);
  if (ec)
    return Error{Errc::kIo,
                 "cannot create state directory '" + dir.string() + "': " + ec.message()};
  // One we made: readable (not listable, its logs/ is private) by users whose tasks we run.
  if (!existed) (void)::chmod(dir.c_str(), ::geteuid() == 0 ? 0755 : 0700);
  if (::access(dir.c_str(), W_OK) != 0) {
    return Error{Errc::kIo, "state directory '" + dir.string() + "' is not writable"};
  }
  return {};
}

// One daemon per state directory: a POSIX write lock on `taskgroupd.lock`, held until we exit
// (the kernel drops it even on kill -9). Without it a second daemon, say on another socket,
// would recover the first one's running tasks as lost and kill them. A POSIX lock, not
// flock(): it belongs to this process alone, so a child that still holds a copy of the fd
// between clone and exec cannot keep it alive after we die.
Result<UniqueFd> lock_state_dir(const fs::path& dir) {
  const fs::path file = dir / "taskgroupd.lock";
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    return Error{Errc::kIo, "cannot open '" + file.string() + "': " + ::strerror(errno)};
  }
  (void)::fchmod(fd.get(), 0600);  // As private as the rest, whatever made it.
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd.get(), F_SETLK, &lock) == 0) return fd;
  const int err = errno;
  if (err != EAGAIN && err != EACCES) {
    return Error{Errc::kIo, "cannot lock '" + file.string() + "': " + ::strerror(err)};
  }
  struct flock holder {};
  holder.l_type = F_WRLCK;
  holder.l_whence = SEEK_SET;
  const bool known = ::fcntl(fd.get(), F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK;
  return Error{Errc::kIo, "another taskgroupd" +
                              (known ? " (pid " + std::to_string(holder.l_pid) + ")" : "") +
                              " is using state directory '" + dir.string() + "'"};
}

// The lock a re-exec handed over (`fd`, still held: POSIX locks belong to the process, which
// the exec kept). Checked to be the lock of `dir`, then close-on-exec again.
Result<UniqueFd> adopt_lock(int raw_fd, const fs::path& dir) {
  UniqueFd fd(raw_fd);
  const fs::path file = dir / "taskgroupd.lock";
  struct stat held {
  }, named{};
  if (raw_fd < 0 || ::fstat(fd.get(), &held) != 0 || ::stat(file.c_str(), &named) != 0 ||
      held.st_dev != named.st_dev || held.st_ino != named.st_ino) {
    return Error{Errc::kIo, "the handed-over lock (fd " + std::to_string(raw_fd) + ") is not '" +
                                file.string() + "'"};
  }
  (void)::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  return fd;
}

// systemd's STATUS= line. A refused reload stays in it until a good one, whatever changes.
std::string summary(const proto::StatusResult& s) {
  return std::to_string(s.running) + " running, " + std::to_string(s.queued) + " queued" +
         (s.draining ? ", draining" : "") +
         (s.config_error ? "; config error: " + *s.config_error : "") +
         (s.store_error ? "; not saving, restarts when idle: " + *s.store_error : "");
}

// How Daemon::run() ends: an exit code, or a handover to exec (run() adds its lock).
struct Ending {
  int code = 0;
  std::optional<Handover> handover;
};

// The whole running daemon: what run() owns, in construction order. `adopted`: what the
// program before a re-exec handed over, or nullptr at a first start.
class Daemon {
 public:
  Daemon(const Flags& flags, const Environment& env, Store& store, const Config& config,
         const Handover* adopted, std::optional<CgroupTree> cgroups)
      : flags_(flags),
        env_(env),
        adopted_(adopted),
        notifier_(env.notify_socket),
        executor_(ioc_.get_executor(), users_, config.task_umask, std::move(cgroups)),
        clock_(ioc_.get_executor()),
        engine_(ioc_.get_executor(), store, executor_, users_, clock_, config),
        log_watcher_(ioc_.get_executor()),
        server_(ioc_, engine_, log_watcher_,
                DaemonControl{[this] { return reload(); }, [this] { return reexec("a client"); }}),
        signals_(ioc_, SIGTERM, SIGINT, SIGHUP) {
    signals_.add(SIGUSR2);
  }

  Ending run() {
    // The socket first: a daemon already serving it makes us leave before recovery touches
    // anything. Connections wait in the backlog until the server starts.
    auto listener = adopted_ ? adopt_listener(ioc_, adopted_->listen_fd, adopted_->socket_path,
                                              adopted_->owned_socket)
                             : open_listener(ioc_, engine_.config());
    if (listener.has_error()) {
      spdlog::critical("{}", listener.error().message);
      return {1, {}};
    }
    std::unordered_set<proto::TaskId> adopt;
    if (adopted_) adopt.insert(adopted_->tasks.begin(), adopted_->tasks.end());
    // Before recovery records anything: what crashed tasks left running is killed first.
    executor_.reclaim_cgroups(adopt);
    if (auto r = engine_.recover(adopt); r.has_error()) {
      spdlog::critical("recovery failed: {}", r.error().message);
      return {1, {}};
    }
    owned_socket_ = listener->owned_path;
    socket_path_ = listener->path;
    // Tasks get the path clients really use (under socket activation, systemd's).
    if (!listener->path.empty()) engine_.set_socket_path(listener->path);
    engine_.on_counts_changed(
        [this](const proto::StatusResult& s) { notifier_.status(summary(s)); });
    engine_.on_saving_stopped([this] {
      spdlog::critical("exiting for a restart: nothing can be saved in this run (status 75)");
      notifier_.stopping();
      exit_code_ = kExitForRestart;
      shutdown();
    });
    server_.start(std::move(listener->acceptor));
    wait_signal();
    // WATCHDOG_* went with the first start's environment: a re-exec carries the interval.
    const auto interval = adopted_ ? std::chrono::microseconds(adopted_->watchdog_usec)
                                   : watchdog_interval().value_or(std::chrono::microseconds(0));
    watchdog_usec_ = interval.count();
    if (interval.count() > 0) ping_watchdog(interval);
    notifier_.ready(summary(engine_.status()));
    spdlog::info("ready: max_running={} state_dir='{}'{}", engine_.config().max_running,
                 engine_.config().state_dir.string(), adopted_ ? " (re-executed)" : "");
    take_early_signals();
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      // A bug escaped a handler. Log it here, while everything still exists, and let the
      // sessions' coroutines end before the Engine they point at is destroyed.
      spdlog::critical("internal error, exiting: {}", e.what());
      server_.stop();
      engine_.abort_waiters();
      end_sessions();
      (void)engine_.flush();  // Logged; we exit 1 either way.
      return {1, {}};
    }
    if (handing_over_) {
      hold_lifecycle_signals();  // Before signals_ goes: the next program takes them.
      end_sessions();
      Handover h;
      h.listen_fd = listen_dup_;
      h.socket_path = socket_path_;
      h.owned_socket = owned_socket_;
      h.task_umask = engine_.config().task_umask;
      h.watchdog_usec = watchdog_usec_;
      h.tasks.assign(handed_.begin(), handed_.end());
      return {0, std::move(h)};
    }
    if (exit_code_ == kExitForRestart) {
      if (!owned_socket_.empty()) (void)::unlink(owned_socket_.c_str());
      return {exit_code_, {}};
    }
    const bool saved = engine_.flush().has_value();
    if (!owned_socket_.empty()) (void)::unlink(owned_socket_.c_str());  // Gone is fine too.
    if (!saved) {
      // The store is consistent but behind: what ended last is found running (lost) or
      // queued at the next start. Say so, and do not call it a clean stop.
      spdlog::critical("stopped, but the last task changes could not be saved (see above)");
      return {1, {}};
    }
    spdlog::info("stopped cleanly");
    return {0, {}};
  }

 private:
  // After the loop stopped with sessions still open: lets their coroutines see the
  // cancellation and end, before the Engine they point at is destroyed.
  void end_sessions() {
    ioc_.restart();
    for (int i = 0; i < 100 && ioc_.poll() > 0; ++i) {
    }
  }

  // tgctl reexec and SIGUSR2: checks the binary, then holds starts until no task is being
  // stopped (try_reexec()). Refused while draining or once saving has stopped (that exit
  // restarts the daemon anyway).
  Result<proto::ReexecResult> reexec(std::string_view by) {
    if (engine_.draining()) {
      return Error{Errc::kDraining, "the daemon is stopping; a re-exec would not outlive it"};
    }
    if (engine_.saving_stopped()) {
      return Error{Errc::kIo, "saving has stopped; the daemon restarts by itself once idle"};
    }
    if (!reexec_pending_) {
      if (auto r = check_new_binary(env_.self, kCheckTimeoutMs); r.has_error()) {
        spdlog::error("re-exec refused ({}): {}", by, r.error().message);
        return r.error();
      }
      reexec_pending_ = true;
      engine_.hold_starts(true);
      notifier_.reloading();
      notifier_.status("re-executing " + env_.self.exe);
      spdlog::info("re-exec of '{}' asked by {}: holding starts until no task is being stopped",
                   env_.self.exe, by);
      asio::post(ioc_, [this] { try_reexec(); });
    }
    return proto::ReexecResult{env_.self.exe, engine_.status().running};
  }

  void try_reexec() {
    if (!reexec_pending_ || stopped_) return;
    if (!engine_.ready_to_hand_over()) {  // Stops end within their grace and kKillWait.
      reexec_timer_.expires_after(std::chrono::milliseconds(20));
      reexec_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) try_reexec();
      });
      return;
    }
    // Every running task on disk, fsynced: the next program starts from the store.
    if (auto r = engine_.flush(); r.has_error()) {
      spdlog::error("re-exec cancelled: the running tasks could not be saved: {}",
                    r.error().message);
      return cancel_reexec();
    }
    listen_dup_ = ::fcntl(server_.listening_fd(), F_DUPFD_CLOEXEC, 3);
    if (listen_dup_ < 0) {
      spdlog::error("re-exec cancelled: cannot keep the socket: {}", ::strerror(errno));
      return cancel_reexec();
    }
    // From here on nothing changes: no exit is reaped (the next program reaps it), no request
    // that changes state is served (Errc::kRestarting), parked waits are told to ask again.
    handed_ = engine_.hand_over();
    handing_over_ = true;
    stopped_ = true;
    engine_.abort_waiters();
    signals_.cancel();
    watchdog_.cancel();
    // The waits' answers go out in the next turns; then the sessions end and the loop stops.
    asio::post(ioc_, [this] {
      asio::post(ioc_, [this] {
        server_.stop();
        ioc_.stop();
      });
    });
  }

  void cancel_reexec() {
    reexec_pending_ = false;
    engine_.hold_starts(false);
    notifier_.ready(summary(engine_.status()));
  }

  void wait_signal() {
    signals_.async_wait([this](boost::system::error_code ec, int sig) {
      // cancel() cannot stop a handler that was already queued: stopped_ makes sure nothing
      // re-arms after shutdown(), or the loop would never end.
      if (ec || stopped_) return;
      on_signal(sig);
      wait_signal();
    });
  }

  // main() blocked the lifecycle signals. What arrived while we started is acted on here,
  // before the loop runs the first turn that recovery posted: a TERM sent during start-up
  // keeps the queue queued (through signals_ it would come after that turn). Then unblock.
  void take_early_signals() {
    sigset_t lifecycle;
    sigemptyset(&lifecycle);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&lifecycle, sig);
    const timespec no_wait{};
    for (int sig; (sig = ::sigtimedwait(&lifecycle, nullptr, &no_wait)) > 0;) on_signal(sig);
    (void)::sigprocmask(SIG_UNBLOCK, &lifecycle, nullptr);
  }

  // From the event loop itself, so a stuck loop stops the pings; during a drain too.
  void ping_watchdog(std::chrono::microseconds interval) {
    notifier_.watchdog();
    watchdog_.expires_after(interval);
    watchdog_.async_wait([this, interval](boost::system::error_code ec) {
      if (!ec && !stopped_) ping_watchdog(interval);
    });
  }

  // Signals of one number do not queue: two sent back to back may come here as one (usage.md).
  void on_signal(int sig) {
    if (sig == SIGUSR2) {
      spdlog::info("received USR2: re-executing");
      (void)reexec("SIGUSR2");  // A refusal is logged.
      return;
    }
    if (sig != SIGHUP) return on_stop_signal(sig);
    // A reload changes the drain's own timeouts, so one racing a stop is worth a trace.
    if (engine_.draining()) {
      spdlog::info("received HUP while draining: reloading the config, the drain goes on");
    } else {
      spdlog::info("received HUP: reloading the config");
    }
    (void)reload();
  }

  void on_stop_signal(int sig) {
    spdlog::info("received {}", ::sigabbrev_np(sig) ? ::sigabbrev_np(sig) : "signal");
    const bool first = !engine_.draining();
    if (reexec_pending_) {
      spdlog::info("re-exec cancelled: the daemon is stopping");
      cancel_reexec();
    }
    if (first) notifier_.stopping();
    // New connections keep being served during the drain: list, show, cancel, wait work.
    engine_.drain([this] { shutdown(); });
    if (first) notifier_.status(summary(engine_.status()));  // Now says "draining".
  }

  void shutdown() {
    spdlog::info("drained; shutting down");
    stopped_ = true;
    // Sessions parked in a wait answer "draining" first: their wake-up and their (immediate,
    // non-blocking) write run in the next turns of the loop; only then are sessions cancelled.
    engine_.abort_waiters();
    asio::post(ioc_, [this] { asio::post(ioc_, [this] { server_.stop(); }); });
    signals_.cancel();
    watchdog_.cancel();
  }

  proto::ReloadResult reload() {
    notifier_.reloading();
    proto::ReloadResult out;
    auto config = load_config(flags_, env_);
    if (config.has_error()) {
      spdlog::error("reload refused, keeping the old config: {}", config.error().message);
      engine_.set_config_error(config.error().message);
      out.error = config.error().message;
      notifier_.ready(summary(engine_.status()));
      return out;
    }
    set_log_level(config->log_level);
    engine_.apply_config(*config);
    engine_.set_config_error(std::nullopt);
    out.ok = true;
    notifier_.ready(summary(engine_.status()));
    return out;
  }

  const Flags& flags_;
  const Environment& env_;
  const Handover* adopted_;
  Notifier notifier_;
  asio::io_context ioc_{1};
  CachedUsers users_;  // The user database behind a cache, for the engine and the executor.
  LocalExecutor executor_;
  AsioClock clock_;
  Engine engine_;
  LogWatcher log_watcher_;  // Shared by every session's logs -f.
  Server server_;
  asio::signal_set signals_;
  asio::steady_timer watchdog_{ioc_};
  asio::steady_timer reexec_timer_{ioc_};
  std::string owned_socket_;
  std::string socket_path_;
  std::int64_t watchdog_usec_ = 0;
  // A re-exec: asked for (starts held), then under way (the loop stops, handed_ is the handover).
  static constexpr int kCheckTimeoutMs = 10'000;  // For `--check-reexec` of the new binary.
  bool reexec_pending_ = false;
  bool handing_over_ = false;
  int listen_dup_ = -1;
  std::vector<proto::TaskId> handed_;
  bool stopped_ = false;  // shutdown() ran: timers and signals must not re-arm.
  // EX_TEMPFAIL: saving stopped (a failed fsync) and the daemon exits so that a new process
  // recovers from the disk; systemd's Restart=on-failure starts it again.
  static constexpr int kExitForRestart = 75;
  int exit_code_ = 0;
};

// One program's life: a first start (`handover` nullptr) or the one after a re-exec.
Ending run_program(const Flags& flags, const Environment& env, const Config& given,
                   const Handover* handover) {
  // Everything we create (store, logs, directories) is private, whatever umask we inherited;
  // tasks get the inherited one back (after a re-exec, ours is already 0077: it is handed over).
  Config config = given;
  config.task_umask = ::umask(0077);
  if (handover) config.task_umask = handover->task_umask;
  // Before anything can fail halfway: no child may inherit a SIGPIPE-ignoring or blocked mask
  // from us (spawn_child resets them), and writes to a closed socket must not kill us.
  (void)::signal(SIGPIPE, SIG_IGN);
  if (auto r = make_state_dir(config.state_dir); r.has_error()) {
    spdlog::critical("{}", r.error().message);
    return {1, {}};
  }
  auto lock =
      handover ? adopt_lock(handover->lock_fd, config.state_dir) : lock_state_dir(config.state_dir);
  if (lock.has_error()) {
    spdlog::critical("{}", lock.error().message);
    return {1, {}};
  }
  (void)tighten_state_dir(config.state_dir);  // An older build's open store and logs.
  auto cgroups = CgroupTree::open(config.cgroup);
  if (cgroups.has_error()) {
    spdlog::critical("cgroup: {}", cgroups.error().message);
    return {1, {}};
  }
  if (*cgroups) {
    spdlog::info("isolation: cgroups, one per task under '{}'", (*cgroups)->root().string());
  } else {
    spdlog::info("isolation: process groups (cgroup = \"{}\"{})", config.cgroup,
                 config.cgroup == "auto" ? ", and no delegated cgroup2 tree" : "");
  }
  Ending end;
  {
    const Store::LedgerOptions ledger{config.state_dir / "taskgroupd.ledger", current_boot_id(),
                                      flags.accept_lost_tasks};
    auto store = Store::open(config.state_dir / "taskgroupd.db", {config.durable}, ledger);
    if (store.has_error()) {
      spdlog::critical("{}", store.error().message);
      return {1, {}};
    }
    try {
      Daemon daemon(flags, env, *store, config, handover, std::move(*cgroups));
      end = daemon.run();
      // Everything is saved (a re-exec's running tasks too): the next start goes on from the
      // highest id used.
      if (end.code == 0) {
        if (auto r = store->release_unused_ids(); r.has_error()) {
          spdlog::warn("could not give back the unused task ids: {}; the next start skips them",
                       r.error().message);
        }
      }
    } catch (const std::exception& e) {
      spdlog::critical("fatal: {}", e.what());
      return {1, {}};
    }
  }  // The store is closed here, before any exec: the next program opens it afresh.
  if (end.handover) end.handover->lock_fd = lock->release();  // Held across the exec.
  return end;
}

}  // namespace

int run(const Flags& flags, const Environment& env, const Config& given) {
  std::optional<Handover> handover;
  if (env.handover_fd >= 0) {
    auto h = read_handover(env.handover_fd);
    if (h.has_error()) {
      // The tasks are our children still, but nothing says which: they are recovered (lost)
      // by the next start, as after a crash.
      spdlog::critical("cannot take over from the program before the re-exec: {}",
                       h.error().message);
      return 1;
    }
    handover = std::move(*h);
  }
  for (;;) {
    Ending end = run_program(flags, env, given, handover ? &*handover : nullptr);
    if (!end.handover) return end.code;
    spdlog::info("re-executing '{}' with {} running task(s)", env.self.exe,
                 end.handover->tasks.size());
    const Error failed = exec_handover(env.self, *end.handover);
    // The binary passed its check but cannot be executed after all (replaced meanwhile, or
    // out of memory): this program takes its own handover and goes on, not a dead service.
    spdlog::error("re-exec failed, going on with the running program: {}", failed.message);
    handover = std::move(end.handover);
  }
}

}  // namespace tg::daemon
