#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

#include "common/protocol.h"

namespace tg::client {

// Each batch request line stays under this, well inside the daemon's default 1 MiB frame limit,
// so a batch of a thousand ordinary commands is one round trip.
inline constexpr std::size_t kMaxBatchRequestBytes = 512 * 1024;

// The commands of a batch file: one per line; blank lines and lines whose first non-blank
// character is '#' are skipped; a trailing '\r' (a DOS line end) is dropped.
[[nodiscard]] std::vector<std::string> read_batch_commands(std::istream& in);

// Submit requests for `commands` in order, as few as fit: each one's encoded request line is
// under max_request_bytes (unless a single command alone is over it, which then goes alone).
// Every command runs with the shell; `defaults` (cwd, env, timeout...) go once per request.
[[nodiscard]] std::vector<proto::Submit> chunk_batch(
    const std::string& group, const proto::TaskSpec& defaults,
    const std::vector<std::string>& commands,
    std::size_t max_request_bytes = kMaxBatchRequestBytes);

}  // namespace tg::client
