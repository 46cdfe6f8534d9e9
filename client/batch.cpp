#include "client/batch.h"

#include <limits>
#include <utility>

#include "common/codec.h"

namespace tg::client {

namespace {

// The request id is not known yet; the widest one it can be.
constexpr std::int64_t kWidestId = std::numeric_limits<std::int64_t>::max();

proto::TaskSpec shell_task(const std::string& command) {
  proto::TaskSpec t;
  t.argv = {command};
  t.shell = true;  // One line is one shell command, so quoting and pipes work as typed.
  return t;
}

std::size_t encoded_size(const proto::Submit& s) {
  return proto::encode_request(kWidestId, proto::Request{s}).size();
}

// What one more task adds to a batch: its object in "tasks" and a comma. Taken from to_params()
// rather than mirrored, so it stays exact if the wire form changes; one small encode per line
// (a 100 000-line batch must not encode whole requests per line). Two tasks, because one task
// alone is sent in the single-task form.
std::size_t task_size(const proto::TaskSpec& t) {
  const nlohmann::json params =
      proto::to_params(proto::Request{proto::Submit{"g", {}, {t, t}, {}}});
  return proto::dump_json(params["tasks"][0]).size() + 1;
}

}  // namespace

std::vector<std::string> read_batch_commands(std::istream& in) {
  std::vector<std::string> commands;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    commands.push_back(std::move(line));
  }
  return commands;
}

std::vector<proto::Submit> chunk_batch(const std::string& group, const proto::TaskSpec& defaults,
                                       const std::vector<std::string>& commands,
                                       std::size_t max_request_bytes) {
  proto::Submit empty{group, defaults, {}, {}};
  const std::size_t base = encoded_size(empty);
  std::vector<proto::Submit> chunks;
  proto::Submit chunk = empty;
  std::size_t size = base;
  for (const std::string& command : commands) {
    proto::TaskSpec t = shell_task(command);
    const std::size_t add = task_size(t);
    if (!chunk.tasks.empty() && size + add >= max_request_bytes) {
      chunks.push_back(std::exchange(chunk, empty));
      size = base;
    }
    chunk.tasks.push_back(std::move(t));
    size += add;
  }
  if (!chunk.tasks.empty()) chunks.push_back(std::move(chunk));
  return chunks;
}

}  // namespace tg::client
