#include "support/temp_dir.h"

#include <stdlib.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include <doctest/doctest.h>

#include "support/process.h"
#include "support/test_status.h"

namespace tg::test {

TempDir::TempDir() {
  std::string templ = "/tmp/tgit.XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    FAIL("mkdtemp(/tmp/tgit.XXXXXX) failed: " << last_error());
  }
  path_ = templ;
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (current_test_failed()) {
    std::cerr << "test failed; keeping " << path_.string() << " for inspection\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) std::cerr << "cannot remove " << path_.string() << ": " << ec.message() << '\n';
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  REQUIRE_MESSAGE(out.good(), "cannot write " << path.string());
}

}  // namespace tg::test
