#pragma once

#include <exception>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tg::daemon {

// For awaits whose errors are expected outcomes (EOF, timeout, cancel): returns a tuple.
inline constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::use_awaitable);

// A co_spawn completion handler that logs how a coroutine ended, except operation_aborted.
struct LogExit {
  std::string what;
  void operator()(std::exception_ptr e) const;
};
inline LogExit log_exit(std::string what) { return LogExit{std::move(what)}; }

// For root loops: logs and rethrows, so ioc.run() throws and run() returns 1.
struct RethrowExit {
  std::string what;
  void operator()(std::exception_ptr e) const;
};

}  // namespace tg::daemon
