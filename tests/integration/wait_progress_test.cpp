// Integration tests of wait's progress (docs/protocol.md "wait", DESIGN.md "tgctl"): the
// wait.progress notifications on the raw socket, and `tgctl wait`'s progress bar, drawn on a
// terminal (a real pseudo-terminal here) and never written into a pipe.
//
// Each task waits for its own release file, which the test creates one at a time, so the tasks
// end one by one while the wait is in progress. Waits are for events (notifications, output,
// task states), always bounded.

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/background_process.h"
#include "support/process.h"
#include "support/raw_client.h"
#include "support/task_helpers.h"
#include "support/temp_dir.h"
#include "support/test_daemon.h"
#include "support/wait_until.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using tg::test::BackgroundProcess;
using tg::test::ExitStatus;
using tg::test::Fd;
using tg::test::RawClient;
using tg::test::TestDaemon;
using tg::test::wait_until;
using namespace tg::test::helpers;

constexpr milliseconds kEventTimeout{15'000};
constexpr int kTasks = 3;

// kTasks tasks in `group`; each waits (bounded, ~20 s) for work/release-ID, then exits 0.
std::vector<std::int64_t> submit_gated(const TestDaemon& d, const fs::path& work,
                                       const std::string& group) {
  const std::string script = "W='" + work.string() +
                             "'; i=0; until [ -e \"$W/release-$TASKGROUPD_TASK_ID\" ]; do "
                             "i=$((i+1)); [ $i -gt 2000 ] && exit 99; sleep 0.01; done";
  std::vector<std::int64_t> ids;
  for (int i = 0; i < kTasks; ++i)
    ids.push_back(submit(d, {"-g", group, "--", "sh", "-c", script}));
  return ids;
}

void release(const fs::path& work, std::int64_t id) {
  tg::test::write_file(work / ("release-" + id_str(id)), "");
}

void wait_succeeded(const TestDaemon& d, std::int64_t id) {
  wait_until([&] { return show(d, id).at("state") == "succeeded"; }, kEventTimeout,
             "task " + id_str(id) + " to succeed");
}

// Releases the tasks one at a time, each only once the one before has succeeded.
void release_one_by_one(const TestDaemon& d, const fs::path& work,
                        const std::vector<std::int64_t>& ids) {
  for (auto id : ids) {
    release(work, id);
    wait_succeeded(d, id);
  }
}

std::int64_t count(const json& counts, const char* state) {
  return counts.at(state).get<std::int64_t>();
}

std::int64_t total(const json& counts) {
  std::int64_t n = 0;
  for (const auto& [state, c] : counts.items()) n += c.get<std::int64_t>();
  return n;
}

// A child on the slave side of a pseudo-terminal (its stdin, stdout and stderr, 100 columns),
// read from the master side with bounded waits. The destructor SIGKILLs and reaps it if needed.
class PtyProcess {
 public:
  explicit PtyProcess(const std::vector<std::string>& argv) {
    std::vector<std::string> env = tg::test::env_strings(tg::test::clean_environment());
    env.push_back("TERM=xterm");
    std::vector<std::string> args = argv;
    std::vector<char*> c_args, c_env;
    for (auto& a : args) c_args.push_back(a.data());
    c_args.push_back(nullptr);
    for (auto& e : env) c_env.push_back(e.data());
    c_env.push_back(nullptr);
    winsize ws{};
    ws.ws_row = 24;
    ws.ws_col = 100;
    int master = -1;
    pid_ = ::forkpty(&master, nullptr, nullptr, &ws);
    REQUIRE_MESSAGE(pid_ >= 0, "forkpty: " << tg::test::last_error());
    if (pid_ == 0) {
      (void)::signal(SIGPIPE, SIG_DFL);
      ::execve(c_args[0], c_args.data(), c_env.data());
      ::_exit(127);
    }
    master_ = Fd(master);
    (void)::fcntl(master_.get(), F_SETFD, FD_CLOEXEC);
  }
  ~PtyProcess() {
    if (pid_ > 0) {
      (void)::kill(pid_, SIGKILL);
      (void)tg::test::wait_for_exit(pid_, milliseconds(5'000));
    }
  }
  PtyProcess(const PtyProcess&) = delete;
  PtyProcess& operator=(const PtyProcess&) = delete;

  // Reads until the output holds `needle` after `from`; false if it does not within `timeout`
  // or the terminal closes first.
  bool wait_for(const std::string& needle, milliseconds timeout, std::size_t from = 0) {
    const auto deadline = Clock::now() + timeout;
    while (out_.find(needle, from) == std::string::npos) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0 || !pump(static_cast<int>(left.count()))) return false;
    }
    return true;
  }
  // Reads until the slave side is closed (the child has exited), then reaps it.
  ExitStatus wait(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return ExitStatus{.timed_out = true};
      if (!pump(static_cast<int>(left.count()))) break;
    }
    const ExitStatus st = tg::test::wait_for_exit(pid_, timeout);
    if (!st.timed_out) pid_ = -1;
    return st;
  }
  [[nodiscard]] const std::string& out() const { return out_; }

 private:
  // One poll() of at most `timeout_ms`; false once the slave side is closed (EIO).
  bool pump(int timeout_ms) {
    pollfd p{master_.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, timeout_ms);
    if (n <= 0) return n == 0 || errno == EINTR;
    char buf[4096];
    const ssize_t got = ::read(master_.get(), buf, sizeof buf);
    if (got <= 0) return got < 0 && errno == EINTR;
    out_.append(buf, static_cast<std::size_t>(got));
    return true;
  }

  pid_t pid_ = -1;  // -1 once reaped.
  Fd master_;
  std::string out_;
};

}  // namespace

TEST_CASE("wait with progress: a notification first, then one per change, then the result") {
  TestDaemon d({.args = {"--max-running", "2"}});
  const fs::path work = make_work_dir(d);
  const auto ids = submit_gated(d, work, "p");
  // Two run at once, the third waits for a slot: give the daemon time to start the two.
  wait_until([&] { return status(d).at("running") == 2; }, kEventTimeout, "two tasks running");

  RawClient c(d.socket_path());
  c.send_line(json{{"jsonrpc", "2.0"},
                   {"id", 7},
                   {"method", "wait"},
                   {"params", {{"group", "p"}, {"progress", true}}}}
                  .dump());
  std::vector<json> notes;
  const auto next_note = [&] {
    const json m = c.read_json(kEventTimeout);
    CAPTURE(m.dump());
    REQUIRE_FALSE(m.contains("id"));  // Not the reply yet.
    REQUIRE(m.at("jsonrpc") == "2.0");
    REQUIRE(m.at("method") == "wait.progress");
    notes.push_back(m.at("params"));
    return notes.back();
  };
  // The first one comes at once, before anything has changed.
  json n = next_note();
  CHECK(total(n.at("counts")) == kTasks);
  CHECK(count(n.at("counts"), "succeeded") == 0);
  CHECK(count(n.at("counts"), "running") == 2);
  CHECK(count(n.at("counts"), "queued") == 1);
  CHECK(n.at("all_succeeded") == false);

  // One task ends at a time; each end is reported before the next one is released.
  json reply;
  for (int k = 0; k < kTasks; ++k) {
    release(work, ids[static_cast<std::size_t>(k)]);
    for (;;) {
      const json m = c.read_json(kEventTimeout);
      CAPTURE(m.dump());
      if (m.contains("id")) {  // The result: only after the last task.
        REQUIRE(k == kTasks - 1);
        reply = m;
        break;
      }
      REQUIRE(m.at("method") == "wait.progress");
      notes.push_back(m.at("params"));
      if (count(notes.back().at("counts"), "succeeded") == k + 1 && k < kTasks - 1) break;
    }
    if (!reply.is_null()) break;
  }

  REQUIRE(reply.is_object());
  CAPTURE(reply.dump());
  CHECK(reply.at("id") == 7);
  const json& r = reply.at("result");
  CHECK(r.at("all_succeeded") == true);
  CHECK(count(r.at("counts"), "succeeded") == kTasks);
  CHECK(total(r.at("counts")) == kTasks);
  // Every notification: the same tasks, a change from the one before, and never going back.
  REQUIRE(notes.size() >= static_cast<std::size_t>(kTasks));  // The first, then two ends at least.
  for (std::size_t i = 0; i < notes.size(); ++i) {
    CAPTURE(i);
    CAPTURE(notes[i].dump());
    const json& cur = notes[i].at("counts");
    CHECK(total(cur) == kTasks);
    CHECK(count(cur, "failed") + count(cur, "cancelled") + count(cur, "timed_out") == 0);
    CHECK(notes[i].at("all_succeeded") == (count(cur, "succeeded") == kTasks));
    if (i == 0) continue;
    const json& prev = notes[i - 1].at("counts");
    CHECK(cur != prev);
    CHECK(count(cur, "succeeded") >= count(prev, "succeeded"));
    CHECK(count(cur, "queued") <= count(prev, "queued"));
    CHECK(notes[i].at("elapsed_ms") >= notes[i - 1].at("elapsed_ms"));
  }
  CHECK(r.at("elapsed_ms") >= notes.back().at("elapsed_ms"));
  for (int k = 1; k < kTasks; ++k) {  // Each end before the last was reported on its own.
    bool seen = false;
    for (const auto& note : notes) seen = seen || count(note.at("counts"), "succeeded") == k;
    CHECK_MESSAGE(seen, "no notification with " << k << " succeeded");
  }
  // The stream is over: the connection serves the next request normally.
  const json st = c.call("status", nullptr, 8);
  CHECK(st.at("id") == 8);
  CHECK(st.contains("result"));
}

TEST_CASE("tgctl wait on a terminal redraws a progress bar and ends with the summary") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  const auto ids = submit_gated(d, work, "tty");
  const std::size_t waits_before = requests_logged(d, "wait");
  PtyProcess waiter({TG_CLIENT_BIN, "--socket", d.socket_path(), "wait", "tty"});
  // The bar is drawn at once, from the first notification: carriage return, bar, erase to the
  // end of the line.
  CHECK_MESSAGE(waiter.wait_for("0/3 done", kEventTimeout), "no progress bar: " << waiter.out());
  CHECK(requests_logged(d, "wait") > waits_before);
  CHECK(waiter.out().starts_with("\r["));
  // The erase follows the text, maybe in a later read of the terminal.
  CHECK_MESSAGE(waiter.wait_for("\x1b[K", kEventTimeout), "no erase to end of line");

  for (std::size_t k = 0; k + 1 < ids.size(); ++k) {
    release(work, ids[k]);
    wait_succeeded(d, ids[k]);
    const std::string redrawn = "\r[";
    const std::string done = std::to_string(k + 1) + "/3 done";
    CHECK_MESSAGE(waiter.wait_for(done, kEventTimeout),
                  "no redraw with " << done << ": " << waiter.out());
    const auto at = waiter.out().find(done);
    CHECK(at != std::string::npos);
    CHECK(waiter.out().rfind(redrawn, at) != std::string::npos);
  }
  release(work, ids.back());
  const ExitStatus st = waiter.wait(kEventTimeout);
  CHECK_MESSAGE(st.clean(), st.describe() << "\n" << waiter.out());
  const std::string& out = waiter.out();
  // The bar is cleared (carriage return, erase line) and the summary replaces it.
  const auto summary = out.find("3 tasks: 3 succeeded");
  REQUIRE_MESSAGE(summary != std::string::npos, out);
  CHECK(out.substr(0, summary).ends_with("\r\x1b[K"));
  CHECK(out.substr(summary) == "3 tasks: 3 succeeded\r\n");  // The terminal's onlcr.
}

TEST_CASE("tgctl wait into pipes writes no escape codes and no carriage returns") {
  TestDaemon d({.args = {"--max-running", "4"}});
  const fs::path work = make_work_dir(d);
  const auto ids = submit_gated(d, work, "piped");
  const std::size_t waits_before = requests_logged(d, "wait");
  BackgroundProcess waiter({TG_CLIENT_BIN, "--socket", d.socket_path(), "wait", "piped"});
  wait_until([&] { return requests_logged(d, "wait") > waits_before; }, kEventTimeout,
             "the daemon to receive the wait");
  release_one_by_one(d, work, ids);  // While it waits: a terminal would see three redraws.
  const ExitStatus st = waiter.wait(kEventTimeout);
  CHECK_MESSAGE(st.clean(), st.describe() << "\n" << waiter.out() << waiter.err());
  CHECK(waiter.out() == "3 tasks: 3 succeeded\n");
  CHECK(waiter.err().empty());
  const std::string all = waiter.out() + waiter.err();
  CHECK(all.find('\x1b') == std::string::npos);
  CHECK(all.find('\r') == std::string::npos);
}
