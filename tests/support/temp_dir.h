#pragma once

// A fresh directory under /tmp for one test, plus small file helpers for test evidence.

#include <filesystem>
#include <string>

namespace tg::test {

// Created by the constructor (mkdtemp under /tmp, so Unix socket paths inside it stay well
// under 108 bytes). The destructor removes it if the current test passed, and keeps it (and
// says where) if it failed. Move-only; owned by the fixture that made it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;  // Empty once moved from.
};

// The whole file, or "" if it does not exist.
[[nodiscard]] std::string read_file(const std::filesystem::path& path);
// Creates or replaces `path` with `text`; REQUIREs success.
void write_file(const std::filesystem::path& path, const std::string& text);

}  // namespace tg::test
