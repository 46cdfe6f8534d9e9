#include "daemon/sys/asio_util.h"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

namespace tg::daemon {

void LogExit::operator()(std::exception_ptr e) const {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& err) {
    if (err.code() == boost::asio::error::operation_aborted) return;
    spdlog::warn("{} ended: {}", what, err.what());
  } catch (const std::exception& err) {
    spdlog::error("{} failed: {}", what, err.what());
  }
}

void RethrowExit::operator()(std::exception_ptr e) const {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& err) {
    spdlog::critical("{} failed: {}", what, err.what());
  }
  std::rethrow_exception(e);
}

}  // namespace tg::daemon
