#include "daemon/exec/local/hook_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "daemon/exec/local/pidfd_wait.h"
#include "daemon/exec/local/task_session.h"

namespace tg::daemon {

namespace asio = boost::asio;

HookRunner::HookRunner(asio::any_io_executor ex, UserDirectory& users, unsigned umask, Done done)
    : ex_(ex), users_(users), umask_(umask), done_(std::move(done)) {}

HookRunner::~HookRunner() = default;

void HookRunner::run(const HookSpec& spec) {
  const auto failed = [&](std::string why) {
    HookOutcome out;
    out.start_error = std::move(why);
    done_(spec.id, out);
  };
  SpawnSpec s;
  s.argv = {"/bin/sh", "-c", spec.command};
  s.cwd = "/";  // Always there; a missing home would stop the hook before it ran.
  const bool switch_user = ::geteuid() == 0 && spec.uid != 0;
  const auto user = users_.account(spec.uid, spec.gid);
  if (switch_user && !user) {
    return failed("uid " + std::to_string(spec.uid) + " has no passwd entry");
  }
  if (switch_user) s.credentials = SpawnSpec::Credentials{spec.uid, spec.gid, user->groups};
  // The minimal environment a task without one gets, then ours (the engine's TASKGROUPD_*).
  s.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + (user ? user->home : "/"),
           "USER=" + (user ? user->name : std::to_string(spec.uid)), "LANG=C.UTF-8"};
  for (const auto& [k, v] : spec.env) s.env.push_back(k + "=" + v);
  s.log_path = spec.output_path;
  s.umask = umask_;
  s.no_new_privs = spec.no_new_privs;
  auto spawned = spawn_child(s);
  if (spawned.has_error()) return failed(spawned.error().message);
  auto& h = hooks_[spec.id] = std::make_unique<Hook>(ex_, spawned->pidfd.release());
  h->launch = std::move(spawned->launch);
  h->report = std::move(spawned->report);
  h->pid = spawned->pid;
  h->spawned_at = std::chrono::steady_clock::now();
  h->output_path = spec.output_path;
  await_exit(spec.id, *h);
}

void HookRunner::await_exit(HookId id, Hook& h) {
  h.pidfd.async_wait(asio::posix::descriptor_base::wait_read,
                     [this, id](boost::system::error_code ec) {
                       if (!ec) on_exit(id);
                     });
}

void HookRunner::signal(HookId id, int sig) {
  auto it = hooks_.find(id);
  if (it == hooks_.end()) return;
  (void)signal_sessions({it->second->pid}, sig);  // Already gone: its exit is on the way.
}

void HookRunner::on_exit(HookId id) {
  auto it = hooks_.find(id);
  if (it == hooks_.end()) return;
  if (!has_exited(it->second->pidfd.native_handle())) return await_exit(id, *it->second);
  auto node = hooks_.extract(it);
  Hook& h = *node.mapped();
  HookOutcome out;
  // A hook that never got to exec says why in its report, complete now that it has exited.
  if (auto outcome = h.launch->poll(h.report.get()); !outcome || outcome->has_error()) {
    out.start_error = outcome ? outcome->error().message : "the child died before exec";
  }
  // Its shell has ended: nothing it started outlives it (its leader, a zombie until reaped
  // below, keeps the session id from being reused meanwhile).
  (void)kill_session_remains(h.pid, std::chrono::steady_clock::now() - h.spawned_at);
  const auto reaped = wait_pidfd(h.pidfd.native_handle(), 0);
  if (reaped && !out.start_error) out.status = exit_status(*reaped);
  std::tie(out.output, out.output_bytes) = take_output(h.output_path, kMaxHookOutput);
  done_(id, out);
}

void HookRunner::shutdown() {
  for (auto& [id, h] : hooks_) h->pidfd.cancel();  // Their handlers see operation_aborted.
}

std::pair<std::string, std::int64_t> take_output(const std::string& path, std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  (void)::unlink(path.c_str());  // Missing (it never started) is fine.
  if (!fd.valid()) return {};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  std::string data(std::min<std::size_t>(max_bytes, static_cast<std::size_t>(st.st_size)), '\0');
  const ssize_t n = ::pread(fd.get(), data.data(), data.size(), 0);
  data.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return {std::move(data), static_cast<std::int64_t>(st.st_size)};
}

}  // namespace tg::daemon
