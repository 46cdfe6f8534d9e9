#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/config.h"
#include "daemon/log/logging.h"
#include "daemon/run.h"

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The handover a re-exec left us (sys/handover.h), out of the environment so that nothing we
// start sees it; -1 if we are a first start.
int take_handover_fd() {
  const std::string text = env_or_empty("TASKGROUPD_HANDOVER_FD");
  ::unsetenv("TASKGROUPD_HANDOVER_FD");
  int fd = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
  return ec == std::errc() && end == text.data() + text.size() && fd >= 0 ? fd : -1;
}

// Our binary's path as it was when we started: a re-exec runs whatever is there by then (the
// package's new version). Read now, before an upgrade can replace the file.
std::string own_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

// JOURNAL_STREAM is "dev:inode" of the journal's stream; it is ours only if stderr is it.
bool stderr_is_journal(const std::string& journal_stream) {
  struct stat st {};
  if (journal_stream.empty() || ::fstat(STDERR_FILENO, &st) != 0) return false;
  return journal_stream == std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

// Until the event loop's signal_set exists, a TERM/INT/HUP waits blocked instead of killing
// us half-started (systemctl stop during a slow start must still drain and exit 0); run.cpp
// takes what came meanwhile. Blocked before main(): the shared libraries' initialisers and our
// static constructors take milliseconds, and a signal then would end us by its default action.
// The dynamic loader runs the program's .preinit_array before any library's initialiser, so
// only exec itself and the loader's mapping and relocating of the libraries (and, in sanitizer
// builds, the sanitizer's own set-up) remain unprotected: see docs/usage.md, Signals.
void block_lifecycle_signals(int, char**, char**) {
  sigset_t lifecycle;
  sigemptyset(&lifecycle);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&lifecycle, sig);
  (void)::sigprocmask(SIG_BLOCK, &lifecycle, nullptr);  // Cannot fail with valid arguments.
}

}  // namespace

// A constant table entry, not state: the loader calls it once, before anything else of ours.
[[gnu::section(".preinit_array"), gnu::used]] static constexpr auto kBlockEarly =
    &block_lifecycle_signals;

// The only place that reads the process environment (STYLE.md rule 11).
int main(int argc, char** argv) {
  const auto flags = tg::daemon::parse_args(argc, argv);  // Exits 2 on usage errors.
  tg::daemon::Environment env;
  env.handover_fd = take_handover_fd();
  env.self.exe = own_path();
  env.self.argv.assign(argv, argv + argc);
  env.root = ::geteuid() == 0;
  env.xdg_runtime_dir = env_or_empty("XDG_RUNTIME_DIR");
  env.xdg_state_home = env_or_empty("XDG_STATE_HOME");
  env.xdg_config_home = env_or_empty("XDG_CONFIG_HOME");
  env.home = env_or_empty("HOME");
  env.notify_socket = env_or_empty("NOTIFY_SOCKET");
  env.cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  tg::daemon::init_logging(stderr_is_journal(env_or_empty("JOURNAL_STREAM")));
  auto config = tg::daemon::load_config(flags, env);
  if (config.has_error()) {
    std::fprintf(stderr, "taskgroupd: %s\n", config.error().message.c_str());
    return 1;
  }
  if (flags.check_reexec) {
    std::printf("%s\n", tg::daemon::reexec_check_line().c_str());
    return 0;
  }
  tg::daemon::set_log_level(config->log_level);
  return tg::daemon::run(flags, env, *config);
}
