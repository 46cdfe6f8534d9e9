#include "daemon/config.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

namespace tg::daemon {

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A user-mode environment whose config directory does not exist: defaults only.
Environment user_env() {
  Environment env;
  env.root = false;
  env.xdg_runtime_dir = "/run/user/1000";
  env.xdg_state_home = "/home/alice/.local/state";
  env.xdg_config_home = "/nonexistent/taskgroupd-unit-test/config";
  env.home = "/home/alice";
  env.cpus = 8;
  return env;
}

Config loaded(const Flags& flags, const Environment& env) {
  auto c = load_config(flags, env);
  if (c.has_error()) FAIL("load_config failed: " << c.error().message);
  return *c;
}

// A private directory under /tmp, removed with everything in it. Config files are the one thing
// these tests cannot do without files; keep such tests few.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/tg-config-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);  // Best effort: a leftover under /tmp harms nothing.
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path write(const fs::path& relative, const std::string& content) const {
    const fs::path file = path_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << content;
    return file;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

TEST_CASE("load_config: with no file, user mode lives under XDG_RUNTIME_DIR and XDG_STATE_HOME") {
  const Config c = loaded({}, user_env());
  CHECK(c.config_path.empty());
  CHECK(c.socket == "/run/user/1000/taskgroupd/control.sock");
  CHECK(c.state_dir == "/home/alice/.local/state/taskgroupd");
  CHECK(c.max_running == 8);  // Number of CPUs.
  CHECK(c.drain_timeout == milliseconds(30'000));
  CHECK(c.kill_grace == milliseconds(10'000));
  CHECK(c.stop_signal == SIGTERM);
  CHECK(c.log_level == "info");
  CHECK(c.max_message_bytes == 1024 * 1024);
  CHECK(c.retention == milliseconds(7LL * 24 * 3600 * 1000));
  CHECK(c.durable);
  CHECK_FALSE(c.no_new_privs);  // Tasks may run setuid programs, as a login shell may.
  CHECK(c.max_log_size == std::int64_t{1} << 30);

  SUBCASE("XDG_STATE_HOME unset: ~/.local/state") {
    Environment env = user_env();
    env.xdg_state_home.clear();
    CHECK(loaded({}, env).state_dir == "/home/alice/.local/state/taskgroupd");
  }
  SUBCASE("XDG_RUNTIME_DIR unset: a per-uid directory under /tmp") {
    Environment env = user_env();
    env.xdg_runtime_dir.clear();
    CHECK(loaded({}, env).socket ==
          "/tmp/taskgroupd-" + std::to_string(::getuid()) + "/control.sock");
  }
  SUBCASE("an unknown CPU count still allows one task") {
    Environment env = user_env();
    env.cpus = 0;
    CHECK(loaded({}, env).max_running == 1);
    env.cpus = -1;  // sysconf() failed.
    CHECK(loaded({}, env).max_running == 1);
  }
}

// With HOME and XDG_STATE_HOME both unset (a bare `env -i taskgroupd`), the state directory
// must not depend on the daemon's working directory.
TEST_CASE("load_config: the default state directory is absolute even without HOME") {
  Environment env = user_env();
  env.xdg_state_home.clear();
  env.home.clear();
  auto c = load_config({}, env);
  // Either an absolute default or a clear error; never a path relative to the cwd.
  if (c.has_value()) CHECK(c->state_dir.is_absolute());
}

TEST_CASE("load_config: as root with no file, /run/taskgroupd and /var/lib/taskgroupd") {
  if (fs::exists("/etc/taskgroupd/taskgroupd.toml")) {
    MESSAGE("skipped: this machine has /etc/taskgroupd/taskgroupd.toml");
    return;
  }
  Environment env = user_env();
  env.root = true;
  const Config c = loaded({}, env);
  CHECK(c.config_path.empty());
  CHECK(c.socket == "/run/taskgroupd/control.sock");
  CHECK(c.state_dir == "/var/lib/taskgroupd");
  CHECK(c.max_running == 8);
}

TEST_CASE("load_config: relative paths are made absolute against our cwd") {
  // A task in another cwd must still reach the socket through TASKGROUPD_SOCKET.
  Flags f;
  f.socket = "rel/control.sock";
  f.state_dir = "rel/state";
  const Config c = loaded(f, user_env());
  const std::string cwd = std::filesystem::current_path().string();
  CHECK(c.socket == cwd + "/rel/control.sock");
  CHECK(c.state_dir == std::filesystem::path(cwd) / "rel/state");
}

TEST_CASE("load_config: flags override the defaults") {
  Flags f;
  f.socket = "/tmp/x/s";
  f.state_dir = "/tmp/x/st";
  f.max_running = 3;
  f.drain_timeout = milliseconds(1500);
  f.kill_grace = milliseconds(250);
  f.log_level = "debug";
  const Config c = loaded(f, user_env());
  CHECK(c.socket == "/tmp/x/s");
  CHECK(c.state_dir == "/tmp/x/st");
  CHECK(c.max_running == 3);
  CHECK(c.drain_timeout == milliseconds(1500));
  CHECK(c.kill_grace == milliseconds(250));
  CHECK(c.log_level == "debug");
}

TEST_CASE("load_config: invalid values are refused with a reason") {
  SUBCASE("an unknown log level") {
    Flags f;
    f.log_level = "verbose";
    auto c = load_config(f, user_env());
    REQUIRE(c.has_error());
    CHECK(c.error().message.find("verbose") != std::string::npos);
  }
  SUBCASE("a socket path longer than sun_path can hold") {
    Flags f;
    f.socket = "/tmp/" + std::string(103, 's');  // 108 bytes.
    REQUIRE(load_config(f, user_env()).has_error());
    f.socket = "/tmp/" + std::string(102, 's');  // 107 bytes: fits with its NUL.
    CHECK(load_config(f, user_env()).has_value());
  }
  SUBCASE("a config file given by flag that does not exist") {
    Flags f;
    f.config = "/nonexistent/taskgroupd-unit-test.toml";
    auto c = load_config(f, user_env());
    REQUIRE(c.has_error());
    CHECK(c.error().message.find("/nonexistent/taskgroupd-unit-test.toml") != std::string::npos);
  }
}

TEST_CASE("load_config: the file under XDG_CONFIG_HOME is read, and flags override it") {
  TempDir dir;
  const fs::path file = dir.write("taskgroupd/taskgroupd.toml", R"toml(
socket = "/tmp/from-file/s"
state_dir = "/tmp/from-file/st"
max_running = 5
drain_timeout = "1m"
kill_grace = 2.5
stop_signal = "SIGINT"
log_level = "warn"
max_message_bytes = 4096
max_connections = 10
max_connections_per_uid = 2
idle_timeout = "90s"
retention = "1h"
retention_count = 50
durable = false
no_new_privs = true
max_log_size = "512M"
)toml");
  Environment env = user_env();
  env.xdg_config_home = dir.path().string();

  const Config c = loaded({}, env);
  CHECK(c.config_path == file);
  CHECK(c.socket == "/tmp/from-file/s");
  CHECK(c.state_dir == "/tmp/from-file/st");
  CHECK(c.max_running == 5);
  CHECK(c.drain_timeout == milliseconds(60'000));
  CHECK(c.kill_grace == milliseconds(2500));
  CHECK(c.stop_signal == SIGINT);
  CHECK(c.log_level == "warn");
  CHECK(c.max_message_bytes == 4096);
  CHECK(c.max_connections == 10);
  CHECK(c.max_connections_per_uid == 2);
  CHECK(c.idle_timeout == milliseconds(90'000));
  CHECK(c.retention == milliseconds(3'600'000));
  CHECK(c.retention_count == 50);
  CHECK_FALSE(c.durable);
  CHECK(c.no_new_privs);
  CHECK(c.max_log_size == std::int64_t{512} << 20);

  Flags f;
  f.max_running = 7;
  f.socket = "/tmp/from-flag/s";
  const Config o = loaded(f, env);
  CHECK(o.max_running == 7);
  CHECK(o.socket == "/tmp/from-flag/s");
  CHECK(o.state_dir == "/tmp/from-file/st");  // Not overridden: the file's.
}

TEST_CASE("load_config: max_log_size is a size or a number of bytes; 0 is unlimited") {
  TempDir dir;
  Environment env = user_env();
  env.xdg_config_home = dir.path().string();
  dir.write("taskgroupd/taskgroupd.toml", "max_log_size = 4096\n");
  CHECK(loaded({}, env).max_log_size == 4096);
  dir.write("taskgroupd/taskgroupd.toml", "max_log_size = \"0\"\n");
  CHECK(loaded({}, env).max_log_size == 0);
  dir.write("taskgroupd/taskgroupd.toml", "max_log_size = 0\n");
  CHECK(loaded({}, env).max_log_size == 0);
}

TEST_CASE("load_config: cgroup is auto by default, off, or an absolute path; nothing else") {
  TempDir dir;
  Environment env = user_env();
  env.xdg_config_home = dir.path().string();
  CHECK(loaded({}, env).cgroup == "auto");
  dir.write("taskgroupd/taskgroupd.toml", "cgroup = \"off\"\n");
  CHECK(loaded({}, env).cgroup == "off");
  dir.write("taskgroupd/taskgroupd.toml", "cgroup = \"/sys/fs/cgroup/tg\"\n");
  CHECK(loaded({}, env).cgroup == "/sys/fs/cgroup/tg");
  for (const char* bad : {"cgroup = \"yes\"\n", "cgroup = \"rel/path\"\n", "cgroup = \"\"\n"}) {
    CAPTURE(bad);
    dir.write("taskgroupd/taskgroupd.toml", bad);
    Flags f;
    auto c = load_config(f, env);
    REQUIRE(c.has_error());
    CHECK(c.error().message.find("is not \"auto\", \"off\" or an absolute path") !=
          std::string::npos);
  }
}

TEST_CASE("load_config: a bad file is refused naming the file, the line and the key") {
  TempDir dir;
  struct Case {
    const char* content;
    const char* expected;  // In the message, after "<file>:".
  };
  for (const Case& bad : {
           Case{"max_running = 5\nbogus = 1\n", "2: unknown key 'bogus'"},
           Case{"\n\nmax_running = 0\n", "3: max_running must be between"},
           Case{"max_running = \"4\"\n", "1: max_running must be an integer"},
           Case{"drain_timeout = \"1d\"\n", "drain_timeout invalid duration"},
           Case{"kill_grace = -1\n", "kill_grace invalid duration"},
           Case{"stop_signal = \"NOPE\"\n", "stop_signal is not a signal name"},
           Case{"durable = 1\n", "durable must be true or false"},
           Case{"no_new_privs = \"yes\"\n", "no_new_privs must be true or false"},
           Case{"max_log_size = \"banana\"\n", "1: max_log_size invalid size 'banana'"},
           Case{"max_log_size = -1\n", "1: max_log_size invalid size '-1'"},
           Case{"max_log_size = 1.5\n", "max_log_size must be a size such as \"1G\""},
           Case{"socket = 5\n", "socket must be a string"},
           Case{"max_running = [\n", ":"},  // Not TOML at all.
       }) {
    CAPTURE(bad.content);
    const fs::path file = dir.write("bad.toml", bad.content);
    Flags f;
    f.config = file;
    auto c = load_config(f, user_env());
    REQUIRE(c.has_error());
    CAPTURE(c.error().message);
    CHECK(c.error().message.rfind(file.string() + ":", 0) == 0);
    CHECK(c.error().message.find(bad.expected) != std::string::npos);
  }
}

TEST_CASE("load_config: only a regular file of bounded size is read; a FIFO never blocks") {
  TempDir dir;
  Flags f;
  std::string expected;
  SUBCASE("a FIFO (a read would wait for a writer forever)") {
    f.config = dir.path() / "fifo.toml";
    REQUIRE(::mkfifo(f.config->c_str(), 0600) == 0);
    expected = ": not a regular file";
  }
  SUBCASE("a directory") {
    f.config = dir.path() / "dir.toml";
    fs::create_directories(*f.config);
    expected = ": not a regular file";
  }
  SUBCASE("a file over 1 MiB") {
    f.config = dir.write("big.toml", "# " + std::string((1 << 20) + 1, 'x') + "\n");
    expected = ": larger than 1048576 bytes";
  }
  SUBCASE("a missing file named with --config") {
    f.config = dir.path() / "missing.toml";
    expected = ": cannot open: No such file or directory";
  }
  auto c = load_config(f, user_env());
  REQUIRE(c.has_error());
  CHECK(c.error().message == f.config->string() + expected);
}

TEST_CASE("parse_signal: names with or without SIG, and numbers") {
  CHECK(parse_signal("TERM") == SIGTERM);
  CHECK(parse_signal("SIGTERM") == SIGTERM);
  CHECK(parse_signal("15") == SIGTERM);
  CHECK(parse_signal("KILL") == SIGKILL);
  CHECK(parse_signal("SIGINT") == SIGINT);
  CHECK(parse_signal("HUP") == SIGHUP);
  CHECK(parse_signal("USR1") == SIGUSR1);
  CHECK(parse_signal("9") == SIGKILL);
  CHECK(parse_signal("64") == 64);
}

TEST_CASE("parse_signal: unknown names and out-of-range numbers give nullopt") {
  for (std::string_view bad : {"NOPE", "", "SIG", "SIGNOPE", "term", "0", "65", "-1", "+15", "15x",
                               " 15", "TERM ", "99999999999999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_signal(bad).has_value());
  }
}

// std::atoi would overflow (undefined behaviour; glibc wraps "4294967311" to 15 = SIGTERM).
TEST_CASE("parse_signal: numbers too large for an int are refused, not wrapped") {
  CHECK_FALSE(parse_signal("4294967311").has_value());  // 2^32 + 15.
  CHECK_FALSE(parse_signal("4294967305").has_value());  // 2^32 + 9.
}

// The man page is the keys' reference: it must name each key the daemon reads, and no other.
namespace {

std::string man_section(const std::string& title) {
  std::ifstream in(TG_SOURCE_DIR "/docs/man/taskgroupd.toml.5.md");
  REQUIRE(in);
  std::string line, text;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      if (inside) break;
      inside = line == "# " + title;
      continue;
    }
    if (inside) text += line + "\n";
  }
  return text;
}

}  // namespace

TEST_CASE("taskgroupd.toml(5) documents every config key, and only those") {
  const std::string keys_text = man_section("KEYS");
  std::set<std::string> documented;
  const std::regex bold(R"(\*\*([a-z_]+)\*\*)");
  for (std::sregex_iterator it(keys_text.begin(), keys_text.end(), bold), end; it != end; ++it) {
    documented.insert((*it)[1]);
  }
  const std::set<std::string> known(config_keys().begin(), config_keys().end());
  CHECK(known.size() >= 10);
  CHECK(documented == known);
}

TEST_CASE("taskgroupd.toml(5): its example is a config file the daemon accepts") {
  const std::string example = man_section("EXAMPLE");
  const auto begin = example.find("```toml\n");
  const auto end = example.find("```", begin + 1);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  const std::string toml = example.substr(begin + 8, end - begin - 8);
  CHECK(toml.find("max_running") != std::string::npos);
  const fs::path file = fs::temp_directory_path() / ("tg-man-example-" + std::to_string(getpid()));
  std::ofstream(file) << toml;
  Flags f;
  f.config = file;
  const auto c = load_config(f, user_env());
  fs::remove(file);
  REQUIRE_MESSAGE(!c.has_error(), c.error().message);
  CHECK(c->max_running == 8);
  CHECK(c->state_dir == "/var/lib/taskgroupd");
}

}  // namespace tg::daemon
