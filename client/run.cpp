#include "client/run.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "client/format.h"

namespace tg::client {

namespace {

std::size_t terminal_width(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

// Calls the run_* function of the command it is given.
struct Dispatch {
  Connection& conn;
  const proto::Env& env;
  Io& io;

  Result<int> operator()(const SubmitCommand& c) const { return run_submit(conn, c, env, io); }
  Result<int> operator()(const ListCommand& c) const { return run_list(conn, c, io); }
  Result<int> operator()(const ShowCommand& c) const { return run_show(conn, c, io); }
  Result<int> operator()(const LogsCommand& c) const { return run_logs(conn, c, io); }
  Result<int> operator()(const GroupsCommand& c) const { return run_groups(conn, c, io); }
  Result<int> operator()(const GroupSetCommand& c) const { return run_group_set(conn, c, io); }
  Result<int> operator()(const PauseCommand& c) const { return run_pause(conn, c, io); }
  Result<int> operator()(const ResumeCommand& c) const { return run_resume(conn, c, io); }
  Result<int> operator()(const CancelCommand& c) const { return run_cancel(conn, c, env, io); }
  Result<int> operator()(const WaitCommand& c) const { return run_wait(conn, c, io); }
  Result<int> operator()(const StatusCommand& c) const { return run_status(conn, c, io); }
  Result<int> operator()(const ReloadCommand& c) const { return run_reload(conn, c, io); }
  Result<int> operator()(const ReexecCommand& c) const { return run_reexec(conn, c, io); }
  Result<int> operator()(const KillCommand& c) const { return run_kill(conn, c, io); }
  Result<int> operator()(const RestartCommand& c) const { return run_restart(conn, c, io); }
  Result<int> operator()(const TopCommand& c) const { return run_top(conn, c, io); }
  Result<int> operator()(const CompleteCommand&) const { return kExitOk; }  // See run().
};

int fail(Io& io, const Error& error) {
  io.out.flush();  // What succeeded before the error (batch ids) comes first.
  // printable(): one line, whatever the daemon put in its message.
  io.err << "tgctl: "
         << (error.message.empty() ? std::string(kind_name(error.code)) : printable(error.message))
         << '\n';
  return exit_code_for(error);
}

}  // namespace

int exit_code_for(const Error& error) {
  return error.code == Errc::kUnavailable ? kExitUnreachable : kExitFailed;
}

Io standard_io() {
  const bool out_tty = ::isatty(STDOUT_FILENO) == 1;
  const bool err_tty = ::isatty(STDERR_FILENO) == 1;
  return Io{std::cout,
            std::cerr,
            std::cin,
            err_tty,
            out_tty ? terminal_width(STDOUT_FILENO) : 0,
            err_tty ? terminal_width(STDERR_FILENO) : 0};
}

int run(const Command& command, const std::string& socket, const proto::Env& env, Io& io) {
  if (const auto* complete = std::get_if<CompleteCommand>(&command)) {
    return run_complete(socket, *complete, io);  // Quiet, whatever happens.
  }
  auto conn = Connection::connect(socket);
  if (conn.has_error()) return fail(io, conn.error());
  auto done = std::visit(Dispatch{*conn, env, io}, command);
  if (done.has_error()) return fail(io, done.error());
  io.out.flush();
  return *done;
}

}  // namespace tg::client
