#include "client/batch.h"

#include <sstream>

#include <doctest/doctest.h>

#include "common/codec.h"

namespace tg::client {

namespace {

std::vector<std::string> numbered_commands(int n) {
  std::vector<std::string> commands;
  for (int i = 0; i < n; ++i) {
    commands.push_back("./process --input 'data/part-" + std::to_string(i) + ".csv' | gzip > out" +
                       std::to_string(i) + ".gz");
  }
  return commands;
}

proto::TaskSpec typical_defaults() {
  proto::TaskSpec d;
  d.cwd = "/home/alice/src";
  d.env = proto::Env{{"HOME", "/home/alice"}, {"PATH", "/usr/local/bin:/usr/bin:/bin"}};
  d.timeout_ms = 30'000;
  return d;
}

std::size_t request_bytes(const proto::Submit& s) {
  return proto::encode_request(1, proto::Request{s}).size();
}

}  // namespace

TEST_CASE("read_batch_commands: skips blank and comment lines and keeps the rest as typed") {
  std::istringstream in(
      "echo one\n"
      "\n"
      "   \t\n"
      "# a comment\n"
      "  # an indented comment\n"
      "  echo 'two  spaces' | tr a b\r\n"
      "echo three # not a comment");
  CHECK(read_batch_commands(in) == std::vector<std::string>{"echo one",
                                                            "  echo 'two  spaces' | tr a b",
                                                            "echo three # not a comment"});
}

TEST_CASE("chunk_batch: a 1000-line batch is one request of shell tasks with the defaults") {
  const auto commands = numbered_commands(1000);
  const auto chunks = chunk_batch("nightly", typical_defaults(), commands);
  REQUIRE(chunks.size() == 1);
  const proto::Submit& s = chunks.front();
  CHECK(s.group == "nightly");
  CHECK(s.defaults.cwd == "/home/alice/src");
  CHECK(s.defaults.timeout_ms == 30'000);
  REQUIRE(s.tasks.size() == 1000);
  CHECK(s.tasks[7].argv == std::vector<std::string>{commands[7]});
  CHECK(s.tasks[7].shell == true);
  CHECK(request_bytes(s) < kMaxBatchRequestBytes);
}

TEST_CASE("chunk_batch: a 100000-line batch is split into requests under the limit, in order") {
  const auto commands = numbered_commands(100'000);
  const auto chunks = chunk_batch("nightly", typical_defaults(), commands);
  CHECK(chunks.size() > 1);
  std::size_t next = 0;
  for (const auto& s : chunks) {
    CHECK(request_bytes(s) < kMaxBatchRequestBytes);
    CHECK(s.defaults.env == typical_defaults().env);
    for (const auto& t : s.tasks) {
      REQUIRE(next < commands.size());
      CHECK(t.argv.front() == commands[next++]);
    }
  }
  CHECK(next == commands.size());
  // Packed: every request but the last is full to within one command (~70 bytes) of the limit.
  for (std::size_t i = 0; i + 1 < chunks.size(); ++i) {
    CHECK(request_bytes(chunks[i]) > kMaxBatchRequestBytes - 200);
  }
}

TEST_CASE("chunk_batch: the limit is exact at small sizes and an oversized command goes alone") {
  const std::vector<std::string> commands = {"a", std::string(5000, 'x'), "b", "c"};
  const auto chunks = chunk_batch("g", {}, commands, 1000);
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[0].tasks.size() == 1);
  CHECK(chunks[1].tasks.size() == 1);
  CHECK(chunks[1].tasks[0].argv.front().size() == 5000);
  CHECK(chunks[2].tasks.size() == 2);
  CHECK(request_bytes(chunks[2]) < 1000);
}

TEST_CASE("chunk_batch: no commands means no requests") { CHECK(chunk_batch("g", {}, {}).empty()); }

}  // namespace tg::client
