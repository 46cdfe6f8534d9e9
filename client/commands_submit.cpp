// tgctl submit: one command, or a batch of them in as few round trips as fit; and tgctl restart,
// which queues tasks like ended ones and prints their ids the same way.

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <ostream>
#include <string>

#include "client/batch.h"
#include "client/commands.h"

namespace tg::client {

namespace {

Result<std::string> current_dir() {
  // getcwd(nullptr, 0) allocates: no PATH_MAX limit on deep directories.
  std::unique_ptr<char, decltype(&::free)> dir(::getcwd(nullptr, 0), &::free);
  if (!dir) {
    return Error{Errc::kIo, std::string("cannot get the current directory: ") + ::strerror(errno)};
  }
  return std::string(dir.get());
}

Result<std::vector<std::string>> batch_commands(const std::string& source, std::istream& in) {
  if (source == "-") return read_batch_commands(in);
  std::ifstream file(source);
  if (!file) return Error{Errc::kIo, "cannot read '" + source + "': " + ::strerror(errno)};
  auto commands = read_batch_commands(file);
  if (file.bad()) return Error{Errc::kIo, "cannot read '" + source + "': " + ::strerror(errno)};
  return commands;
}

void print_ids(Io& io, const proto::SubmitResult& r) {
  for (auto id : r.ids) io.out << id << '\n';
  io.out.flush();
}

Result<int> submit_batch(Connection& conn, const SubmitCommand& cmd, proto::TaskSpec defaults,
                         Io& io) {
  auto commands = batch_commands(*cmd.batch, io.in);
  if (commands.has_error()) return commands.error();
  defaults.shell.reset();  // Every batch line is a shell command (chunk_batch).
  for (const proto::Submit& chunk : chunk_batch(cmd.group, defaults, *commands)) {
    // Ids are printed as each request is acknowledged: if a later one fails, what was queued is
    // already known to the caller.
    auto r = call_as<proto::SubmitResult>(conn, proto::Request{chunk});
    if (r.has_error()) return r.error();
    print_ids(io, *r);
  }
  return kExitOk;
}

}  // namespace

Result<int> run_submit(Connection& conn, const SubmitCommand& cmd, const proto::Env& env, Io& io) {
  auto cwd = current_dir();
  if (cwd.has_error()) return cwd.error();
  proto::TaskSpec spec = cmd.options;
  spec.cwd = std::move(*cwd);
  spec.env = env;  // The task runs in the submitter's environment (DESIGN.md, Processes).
  if (cmd.batch) return submit_batch(conn, cmd, std::move(spec), io);
  spec.argv = cmd.argv;
  proto::Submit submit;
  submit.group = cmd.group;
  submit.tasks = {std::move(spec)};
  submit.key = cmd.key;
  auto r = call_as<proto::SubmitResult>(conn, proto::Request{std::move(submit)});
  if (r.has_error()) return r.error();
  print_ids(io, *r);
  return kExitOk;
}

Result<int> run_restart(Connection& conn, const RestartCommand& cmd, Io& io) {
  auto r = call_as<proto::RestartResult>(conn, proto::Request{cmd.request});
  if (r.has_error()) return r.error();
  for (auto id : r->ids) io.out << id << '\n';
  if (r->ids.empty() && cmd.request.group) {  // Not an error: nothing of that kind to rerun.
    io.err << "tgctl: no task to restart in group '" << cmd.request.group->name << "'\n";
  }
  return kExitOk;
}

}  // namespace tg::client
