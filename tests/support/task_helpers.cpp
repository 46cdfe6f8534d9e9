#include "support/task_helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <sstream>

#include <doctest/doctest.h>

#include "common/time_format.h"
#include "support/temp_dir.h"
#include "support/wait_until.h"

namespace tg::test::helpers {

namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::int64_t> parse_ids(const std::string& out) {
  std::vector<std::int64_t> ids;
  for (const auto& line : lines_of(out)) {
    std::size_t used = 0;
    std::int64_t id = 0;
    try {
      id = std::stoll(line, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    REQUIRE_MESSAGE((used == line.size() && id > 0), "not a task id: '" << line << "'");
    ids.push_back(id);
  }
  return ids;
}

json parse_json(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << text);
  return j;
}

std::string id_str(std::int64_t id) { return std::to_string(id); }

std::string describe(const ProcessOutput& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

std::string tgctl_ok(const TestDaemon& d, const std::vector<std::string>& args,
                     const RunOptions& opts) {
  auto r = d.tgctl(args, opts);
  REQUIRE_MESSAGE(r.exit_code == 0, "tgctl " << quote_argv(args) << " exited " << r.exit_code
                                             << "\nstdout: " << r.out << "\nstderr: " << r.err);
  return r.out;
}

std::int64_t submit(const TestDaemon& d, std::vector<std::string> args, const RunOptions& opts) {
  args.insert(args.begin(), "submit");
  const auto ids = parse_ids(tgctl_ok(d, args, opts));
  REQUIRE_MESSAGE(ids.size() == 1, "submit printed " << ids.size() << " ids");
  return ids.front();
}

json show(const TestDaemon& d, std::int64_t id) {
  return parse_json(tgctl_ok(d, {"show", std::to_string(id), "--json"})).at("task");
}

json status(const TestDaemon& d) { return parse_json(tgctl_ok(d, {"status", "--json"})); }

std::vector<std::int64_t> listed_ids(const TestDaemon& d, std::vector<std::string> args) {
  args.insert(args.begin(), "list");
  args.push_back("--json");
  std::vector<std::int64_t> ids;
  const json listed = parse_json(tgctl_ok(d, args));
  for (const auto& t : listed.at("tasks")) ids.push_back(t.at("id").get<std::int64_t>());
  return ids;
}

std::map<std::int64_t, json> list_all(const TestDaemon& d) {
  RunOptions opts;
  opts.timeout = std::chrono::milliseconds(30'000);
  const json listed = parse_json(tgctl_ok(d, {"list", "--json"}, opts));
  std::map<std::int64_t, json> out;
  for (const auto& t : listed.at("tasks")) {
    const auto id = t.at("id").get<std::int64_t>();
    CHECK_MESSAGE(out.count(id) == 0, "task " << id << " listed twice");
    out[id] = t;
  }
  return out;
}

int wait_tasks(const TestDaemon& d, const std::vector<std::int64_t>& ids,
               std::chrono::milliseconds timeout) {
  std::vector<std::string> args = {"wait"};
  for (auto id : ids) args.insert(args.end(), {"--task", std::to_string(id)});
  RunOptions opts;
  opts.timeout = timeout;
  return d.tgctl(args, opts).exit_code;
}

int wait_group(const TestDaemon& d, const std::string& group, std::chrono::milliseconds timeout) {
  RunOptions opts;
  opts.timeout = timeout;
  return d.tgctl({"wait", group}, opts).exit_code;
}

json group_info(const TestDaemon& d, const std::string& name) {
  const json groups = parse_json(tgctl_ok(d, {"groups", "--json"})).at("groups");
  for (const auto& g : groups) {
    if (g.at("name") == name) return g;
  }
  FAIL("no group '" << name << "' in " << groups.dump());
  return {};
}

std::string log_of_last_start(const TestDaemon& d) {
  const std::string log = d.log();
  const auto banner = log.rfind("==== test: starting");
  REQUIRE(banner != std::string::npos);
  const auto eol = log.find('\n', banner);
  return eol == std::string::npos ? "" : log.substr(eol + 1);
}

std::size_t requests_logged(const TestDaemon& d, const std::string& method) {
  const std::string needle = "uid=" + std::to_string(::getuid()) + " " + method + "\n";
  const std::string log = d.log();
  std::size_t n = 0;
  for (auto at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
  return n;
}

std::int64_t time_ms(const json& rfc3339) {
  REQUIRE_MESSAGE(rfc3339.is_string(), "not a time: " << rfc3339.dump());
  const auto t = tg::parse_rfc3339(rfc3339.get<std::string>());
  REQUIRE_MESSAGE(t.has_value(), "not an RFC 3339 time: " << rfc3339.dump());
  return *t;
}

std::int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool process_alive(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

std::vector<pid_t> read_pids(const fs::path& file) {
  std::vector<pid_t> pids;
  std::istringstream in(read_file(file));
  for (long pid = 0; in >> pid;) {
    if (pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  return pids;
}

std::vector<pid_t> alive_of(const std::vector<pid_t>& pids) {
  std::vector<pid_t> alive;
  std::copy_if(pids.begin(), pids.end(), std::back_inserter(alive), process_alive);
  return alive;
}

void Gate::open() const {
  if (!fs::exists(path_)) write_file(path_, "");
}

bool Gate::is_open() const { return fs::exists(path_); }

std::string Gate::wait_shell() const {
  return "i=0; until [ -e '" + path_.string() + "' ]; do i=$((i+1)); [ $i -gt " +
         std::to_string(max_polls_) + " ] && exit 99; sleep 0.01; done";
}

std::string tracked_script(const fs::path& work, const TrackedTask& task) {
  const std::string w = "'" + work.string() + "'";
  std::string s = "W=" + w + "; I=$TASKGROUPD_TASK_ID; ";
  if (task.trap_term) s += "trap 'echo term >> \"$W/term-$I\"' TERM; ";
  s += "( ";
  if (task.ignore_term_grandchild) s += "trap '' TERM; ";
  s += "exec sleep " + std::to_string(task.grandchild_s) + " ) & ";
  s += "echo \"$$ $!\" > \"$W/pids-$I.tmp\" && mv \"$W/pids-$I.tmp\" \"$W/pids-$I\" && "
       ": > \"$W/started-$I\"; ";
  s += task.body;
  return s;
}

std::string busy_loop(int seconds) {
  return "n=0; while [ $n -lt " + std::to_string(seconds * 10) +
         " ]; do sleep 0.1; n=$((n+1)); done; exit 0";
}

fs::path make_work_dir(const TestDaemon& d) {
  const fs::path work = d.dir() / "work";
  fs::create_directories(work);
  return work;
}

std::vector<pid_t> task_pids(const fs::path& work, std::int64_t id) {
  const auto pids = read_pids(work / ("pids-" + std::to_string(id)));
  REQUIRE_MESSAGE(pids.size() == 2, "task " << id << " recorded pids '"
                                            << read_file(work / ("pids-" + std::to_string(id)))
                                            << "'");
  return pids;
}

void wait_started(const fs::path& work, const std::vector<std::int64_t>& ids,
                  std::chrono::milliseconds timeout) {
  std::string what = "tasks started:";
  for (auto id : ids) what += " " + std::to_string(id);
  wait_until(
      [&] {
        return std::all_of(ids.begin(), ids.end(), [&](std::int64_t id) {
          return fs::exists(work / ("started-" + std::to_string(id)));
        });
      },
      timeout, what);
}

std::size_t count_started(const fs::path& work) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(work)) {
    if (e.path().filename().string().starts_with("started-")) ++n;
  }
  return n;
}

std::vector<pid_t> processes_with_env(const std::string& entry) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const std::string env = read_file(e.path() / "environ");  // Empty for zombies.
    for (std::size_t pos = 0; pos < env.size();) {
      const auto end = std::min(env.find('\0', pos), env.size());
      if (env.compare(pos, end - pos, entry) == 0) {
        found.push_back(static_cast<pid_t>(std::stol(name)));
        break;
      }
      pos = end + 1;
    }
  }
  return alive_of(found);  // A process may have died between the two reads.
}

BackgroundShell::BackgroundShell(const std::string& script, const fs::path& log) {
  auto env = env_strings(clean_environment());
  std::vector<std::string> args = {"/bin/sh", "-c", script};
  std::vector<char*> c_args, c_env;
  for (auto& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  for (auto& e : env) c_env.push_back(e.data());
  c_env.push_back(nullptr);
  Fd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE_MESSAGE(log_fd.valid(), "open " << log << ": " << last_error());
  REQUIRE_MESSAGE(null_fd.valid(), "open /dev/null: " << last_error());
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  REQUIRE_MESSAGE(pid_ >= 0, "fork: " << last_error());
  if (pid_ == 0) {
    (void)::prctl(PR_SET_PDEATHSIG, SIGKILL);  // A crashed test leaves no client behind.
    if (::getppid() != parent) ::_exit(126);
    (void)::signal(SIGPIPE, SIG_DFL);
    if (::dup2(null_fd.get(), 0) < 0 || ::dup2(log_fd.get(), 1) < 0 ||
        ::dup2(log_fd.get(), 2) < 0) {
      ::_exit(126);
    }
    ::execve(c_args[0], c_args.data(), c_env.data());
    ::_exit(127);
  }
}

BackgroundShell::~BackgroundShell() {
  if (pid_ > 0) {
    (void)::kill(pid_, SIGKILL);
    (void)wait_for_exit(pid_, std::chrono::milliseconds(10'000));
  }
}

ExitStatus BackgroundShell::wait(std::chrono::milliseconds timeout) {
  REQUIRE(pid_ > 0);
  const ExitStatus st = wait_for_exit(pid_, timeout);
  if (!st.timed_out) pid_ = -1;
  return st;
}

}  // namespace tg::test::helpers
