#include "daemon/config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include "common/duration.h"
#include "common/size.h"
#include "common/unique_fd.h"
#include "common/version.h"

namespace tg::daemon {

namespace {

namespace fs = std::filesystem;

void apply_defaults(Config& c, const Environment& env) {
  c.max_running = std::max<std::int64_t>(env.cpus, 1);
  if (env.root) {
    c.socket = "/run/taskgroupd/control.sock";
    c.state_dir = "/var/lib/taskgroupd";
    return;
  }
  const fs::path runtime = env.xdg_runtime_dir.empty()
                               ? fs::path("/tmp") / ("taskgroupd-" + std::to_string(::getuid()))
                               : fs::path(env.xdg_runtime_dir) / "taskgroupd";
  c.socket = (runtime / "control.sock").string();
  // Without XDG_STATE_HOME and HOME (env -i), keep the state beside the socket rather than
  // under a path relative to whatever the working directory is.
  const fs::path state_home = !env.xdg_state_home.empty() ? fs::path(env.xdg_state_home)
                              : !env.home.empty()         ? fs::path(env.home) / ".local/state"
                                                          : runtime;
  c.state_dir = state_home / "taskgroupd";
}

fs::path default_config_path(const Environment& env) {
  if (env.root) return "/etc/taskgroupd/taskgroupd.toml";
  const fs::path config_home =
      !env.xdg_config_home.empty() ? fs::path(env.xdg_config_home) : fs::path(env.home) / ".config";
  return config_home / "taskgroupd" / "taskgroupd.toml";
}

// Reads one key of the table; each reader leaves `c` alone when the key is absent.
class TomlReader {
 public:
  TomlReader(const toml::table& t, std::string file) : table_(t), file_(std::move(file)) {}

  Result<void> finish() const {
    if (error_) return *error_;
    return {};
  }

  void string(const char* key, std::string& out) {
    if (auto n = table_.get(key)) {
      if (auto v = n->value<std::string>()) {
        out = *v;
      } else {
        fail(key, "must be a string");
      }
    }
  }
  void integer(const char* key, std::int64_t& out, std::int64_t min, std::int64_t max) {
    if (auto n = table_.get(key)) {
      auto v = n->value<std::int64_t>();
      if (!v || !n->is_integer()) return fail(key, "must be an integer");
      if (*v < min || *v > max) {
        return fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      }
      out = *v;
    }
  }
  // A duration: "30s"-style string or a number of seconds.
  void duration(const char* key, milliseconds& out) {
    auto n = table_.get(key);
    if (!n) return;
    std::string text;
    if (auto s = n->value<std::string>(); s && n->is_string()) {
      text = *s;
    } else if (auto d = n->value<double>(); d && (n->is_integer() || n->is_floating_point())) {
      text = std::to_string(*d);
    } else {
      return fail(key, "must be a duration such as \"30s\"");
    }
    auto parsed = parse_duration(text);
    if (parsed.has_error()) return fail(key, parsed.error().message);
    out = *parsed;
  }
  // A size: "1G"-style string or a number of bytes.
  void size(const char* key, std::int64_t& out) {
    auto n = table_.get(key);
    if (!n) return;
    std::string text;
    if (auto s = n->value<std::string>(); s && n->is_string()) {
      text = *s;
    } else if (auto i = n->value<std::int64_t>(); i && n->is_integer()) {
      text = std::to_string(*i);
    } else {
      return fail(key, "must be a size such as \"1G\"");
    }
    auto parsed = parse_size(text);
    if (parsed.has_error()) return fail(key, parsed.error().message);
    out = *parsed;
  }
  void boolean(const char* key, bool& out) {
    if (auto n = table_.get(key)) {
      if (auto v = n->value<bool>(); v && n->is_boolean()) {
        out = *v;
      } else {
        fail(key, "must be true or false");
      }
    }
  }
  void fail(const char* key, const std::string& why) {
    if (error_) return;
    std::string where = file_;
    if (auto n = table_.get(key)) where += ":" + std::to_string(n->source().begin.line);
    error_ = Error{Errc::kInvalidParams, where + ": " + key + " " + why};
  }

 private:
  const toml::table& table_;
  std::string file_;
  std::optional<Error> error_;
};

constexpr const char* kKnownKeys[] = {
    "socket",       "state_dir", "max_running",       "drain_timeout",   "kill_grace",
    "stop_signal",  "log_level", "max_message_bytes", "max_connections", "max_connections_per_uid",
    "idle_timeout", "retention", "retention_count",   "durable",         "no_new_privs",
    "max_log_size", "cgroup"};

// A config file is small, and reading it must never block the daemon: a FIFO (or a device)
// at its path would freeze a start before it listens, or the loop on SIGHUP. So it is opened
// without blocking, must be a regular file of at most kMaxConfigBytes, and is read in full here.
constexpr std::size_t kMaxConfigBytes = 1 << 20;

Result<std::string> read_config_text(const fs::path& path) {
  const auto failed = [&](const std::string& why) {
    return Error{Errc::kInvalidParams, path.string() + ": " + why};
  };
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return failed(std::string("cannot open: ") + ::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failed(std::string("cannot stat: ") + ::strerror(errno));
  if (!S_ISREG(st.st_mode)) return failed("not a regular file");
  if (static_cast<std::size_t>(st.st_size) > kMaxConfigBytes) {
    return failed("larger than " + std::to_string(kMaxConfigBytes) + " bytes");
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(std::string("cannot read: ") + ::strerror(errno));
    if (n == 0) break;  // Shrunk meanwhile: parse what is there.
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

Result<void> apply_file(Config& c, const fs::path& path) {
  auto text = read_config_text(path);
  if (text.has_error()) return text.error();
  toml::table table;
  try {
    table = toml::parse(*text, path.string());
  } catch (const toml::parse_error& e) {
    return Error{Errc::kInvalidParams, path.string() + ":" + std::to_string(e.source().begin.line) +
                                           ": " + std::string(e.description())};
  }
  for (const auto& [key, value] : table) {
    const bool known = std::any_of(std::begin(kKnownKeys), std::end(kKnownKeys),
                                   [&](const char* k) { return key.str() == k; });
    if (!known) {
      return Error{Errc::kInvalidParams, path.string() + ":" +
                                             std::to_string(value.source().begin.line) +
                                             ": unknown key '" + std::string(key.str()) + "'"};
    }
  }
  TomlReader r(table, path.string());
  r.string("socket", c.socket);
  std::string state_dir = c.state_dir.string();
  r.string("state_dir", state_dir);
  c.state_dir = state_dir;
  r.integer("max_running", c.max_running, 1, 100'000);
  r.duration("drain_timeout", c.drain_timeout);
  r.duration("kill_grace", c.kill_grace);
  std::string stop_signal;
  r.string("stop_signal", stop_signal);
  if (!stop_signal.empty()) {
    if (auto sig = parse_signal(stop_signal)) {
      c.stop_signal = *sig;
    } else {
      r.fail("stop_signal", "is not a signal name");
    }
  }
  r.string("log_level", c.log_level);
  std::int64_t max_message = static_cast<std::int64_t>(c.max_message_bytes);
  r.integer("max_message_bytes", max_message, 1024, 1LL << 30);
  c.max_message_bytes = static_cast<std::size_t>(max_message);
  r.integer("max_connections", c.max_connections, 1, 1'000'000);
  r.integer("max_connections_per_uid", c.max_connections_per_uid, 1, 1'000'000);
  r.duration("idle_timeout", c.idle_timeout);
  r.duration("retention", c.retention);
  r.integer("retention_count", c.retention_count, 0, 1LL << 40);
  r.boolean("durable", c.durable);
  r.boolean("no_new_privs", c.no_new_privs);
  r.size("max_log_size", c.max_log_size);
  r.string("cgroup", c.cgroup);
  return r.finish();
}

Result<void> check(const Config& c) {
  static constexpr const char* kLevels[] = {"trace", "debug",    "info", "warn",
                                            "error", "critical", "off"};
  if (std::none_of(std::begin(kLevels), std::end(kLevels),
                   [&](const char* l) { return c.log_level == l; })) {
    return Error{Errc::kInvalidParams,
                 "log_level '" + c.log_level + "' is not one of trace, debug, info, warn, error"};
  }
  if (c.cgroup != "auto" && c.cgroup != "off" && (c.cgroup.empty() || c.cgroup[0] != '/')) {
    return Error{Errc::kInvalidParams,
                 "cgroup '" + c.cgroup + "' is not \"auto\", \"off\" or an absolute path"};
  }
  if (c.socket.size() >= 108) {
    return Error{Errc::kInvalidParams, "socket path '" + c.socket + "' is longer than 107 bytes"};
  }
  return {};
}

}  // namespace

std::optional<int> parse_signal(std::string_view text) {
  std::string name(text);
  if (!name.empty() &&
      std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
    int n = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
    if (ec != std::errc() || end != name.data() + name.size()) return std::nullopt;  // Overflow.
    return n > 0 && n < NSIG ? std::optional(n) : std::nullopt;
  }
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (const char* abbrev = ::sigabbrev_np(sig); abbrev && name == abbrev) return sig;
  }
  return std::nullopt;
}

std::span<const char* const> config_keys() { return kKnownKeys; }

Flags parse_args(int argc, char** argv) {
  Flags f;
  CLI::App app{"taskgroupd: runs commands under limits, in groups that can be cancelled as one"};
  app.set_version_flag("--version", std::string("taskgroupd ") + kVersion);
  std::string config, socket, state_dir, drain, grace, level;
  std::int64_t max_running = 0;
  auto* o_config = app.add_option("--config", config, "TOML config file");
  auto* o_socket = app.add_option("--socket", socket, "control socket path");
  auto* o_state = app.add_option("--state-dir", state_dir, "state directory (store, logs)");
  auto* o_max = app.add_option("--max-running", max_running, "global limit of running tasks")
                    ->check(CLI::Range(1, 100'000));
  auto* o_drain = app.add_option("--drain-timeout", drain, "time running tasks get on SIGTERM");
  auto* o_grace = app.add_option("--kill-grace", grace, "time between stop signal and SIGKILL");
  auto* o_level = app.add_option("--log-level", level, "trace, debug, info, warn or error");
  app.add_flag("--check-reexec", f.check_reexec,
               "load the config, print the handover version a re-exec needs, and exit")
      ->group("");  // For the daemon's own use (sys/handover.h), not for people.
  app.add_flag("--accept-lost-tasks", f.accept_lost_tasks,
               "start although the store lost commits (a deleted or damaged WAL): see usage.md");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    std::exit(rc == 0 ? 0 : 2);
  }
  const auto duration = [](const std::string& flag, const std::string& text) {
    auto d = parse_duration(text);
    if (d.has_error()) {
      std::fprintf(stderr, "taskgroupd: %s: %s\n", flag.c_str(), d.error().message.c_str());
      std::exit(2);
    }
    return *d;
  };
  if (*o_config) f.config = config;
  if (*o_socket) f.socket = socket;
  if (*o_state) f.state_dir = state_dir;
  if (*o_max) f.max_running = max_running;
  if (*o_drain) f.drain_timeout = duration("--drain-timeout", drain);
  if (*o_grace) f.kill_grace = duration("--kill-grace", grace);
  if (*o_level) f.log_level = level;
  return f;
}

Result<Config> load_config(const Flags& flags, const Environment& env) {
  Config c;
  apply_defaults(c, env);
  const fs::path path = flags.config.value_or(default_config_path(env));
  std::error_code ec;
  if (flags.config || fs::exists(path, ec)) {
    if (auto r = apply_file(c, path); r.has_error()) return r.error();
    c.config_path = path;
  }
  if (flags.socket) c.socket = *flags.socket;
  if (flags.state_dir) c.state_dir = *flags.state_dir;
  if (flags.max_running) c.max_running = *flags.max_running;
  if (flags.drain_timeout) c.drain_timeout = *flags.drain_timeout;
  if (flags.kill_grace) c.kill_grace = *flags.kill_grace;
  if (flags.log_level) c.log_level = *flags.log_level;
  // Tasks get the socket path (TASKGROUPD_SOCKET) and run in cwds of their own: relative to
  // ours it would reach nothing from there.
  if (auto abs = fs::absolute(c.socket, ec); !ec) c.socket = abs.string();
  if (auto abs = fs::absolute(c.state_dir, ec); !ec) c.state_dir = abs;
  if (auto r = check(c); r.has_error()) return r.error();
  return c;
}

}  // namespace tg::daemon
