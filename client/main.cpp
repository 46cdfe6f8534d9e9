// tgctl: the command-line client of taskgroupd (DESIGN.md, tgctl).

#include <unistd.h>

#include <iostream>
#include <string>
#include <variant>

#include "client/cli.h"
#include "client/color.h"
#include "client/run.h"
#include "client/socket_path.h"

int main(int argc, char** argv) {
  auto parsed = tg::client::parse_args(argc, argv, std::cout, std::cerr);
  if (const int* code = std::get_if<int>(&parsed)) return *code;  // --help: 0, usage error: 2.
  const auto& invocation = std::get<tg::client::Invocation>(parsed);
  // The only read of the environment: for the socket, and to send with submits.
  const tg::proto::Env env = tg::client::environment_from(environ);
  const std::string socket =
      tg::client::discover_socket(invocation.socket, env, tg::client::path_exists);
  tg::client::Io io = tg::client::standard_io();
  const auto no_color = env.find("NO_COLOR");
  io.out_color = tg::client::use_color(::isatty(STDOUT_FILENO) == 1,
                                       no_color == env.end() ? "" : no_color->second);
  return tg::client::run(invocation.command, socket, env, io);
}
