#include "daemon/store/ledger.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

namespace tg::daemon {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kHeader = "taskgroupd ledger v1\n";
constexpr std::size_t kBootWidth = 36;  // A UUID, as /proc/sys/kernel/random/boot_id has it.
constexpr std::size_t kMaxFile = 4096;

// FNV-1a: enough to tell a torn or edited marks line from a written one.
std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string reserved_line(TaskId reserved) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "reserved %019" PRId64 "\n", reserved);
  return buf;
}

std::string marks_line(const Ledger::Marks& m) {
  std::string boot = m.boot_id.substr(0, kBootWidth);
  boot.resize(kBootWidth, ' ');
  char body[128];
  std::snprintf(body, sizeof body, "marks %019" PRId64 " %019" PRId64 " %s", m.commits, m.synced,
                boot.c_str());
  char line[160];
  std::snprintf(line, sizeof line, "%s %016" PRIx64 "\n", body, fnv1a(body));
  return line;
}

std::optional<std::int64_t> number(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<Ledger::Marks> parse_marks(std::string_view line) {
  // "marks C S BOOT CHECK": fixed widths, so the fields are at fixed offsets.
  constexpr std::size_t kBody = 6 + 19 + 1 + 19 + 1 + kBootWidth;
  if (line.size() != kBody + 1 + 16 || line.substr(0, 6) != "marks ") return std::nullopt;
  const std::string_view body = line.substr(0, kBody);
  const std::string_view check = line.substr(kBody + 1);
  std::uint64_t sum = 0;
  auto [end, ec] = std::from_chars(check.data(), check.data() + check.size(), sum, 16);
  if (ec != std::errc() || end != check.data() + check.size() || sum != fnv1a(body)) {
    return std::nullopt;
  }
  auto commits = number(body.substr(6, 19));
  auto synced = number(body.substr(26, 19));
  if (!commits || !synced) return std::nullopt;
  std::string boot(body.substr(46, kBootWidth));
  while (!boot.empty() && boot.back() == ' ') boot.pop_back();
  return Ledger::Marks{*commits, *synced, std::move(boot)};
}

Error io_error(const std::string& what, const fs::path& file, int err) {
  return Error{Errc::kIo, what + " '" + file.string() + "': " + ::strerror(err)};
}

Result<void> write_all(int fd, std::string_view data, off_t offset) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error{Errc::kIo, n < 0 ? ::strerror(errno) : "short write"};
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += n;
  }
  return {};
}

}  // namespace

std::string format_ledger(const Ledger::Contents& contents) {
  return std::string(kHeader) + reserved_line(contents.reserved) +
         marks_line(contents.marks.value_or(Ledger::Marks{}));
}

std::int64_t required_commits(const Ledger::Marks& marks, std::string_view boot_id) {
  const bool same_boot = !boot_id.empty() && marks.boot_id == boot_id;
  return same_boot ? std::max(marks.commits, marks.synced) : marks.synced;
}

Result<std::optional<Ledger::Contents>> Ledger::read(const fs::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<Contents>();
    return io_error("cannot open ledger", file, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot read ledger", file, errno);
  if (!S_ISREG(st.st_mode) || st.st_size > static_cast<off_t>(kMaxFile)) {
    return Error{Errc::kIo, "ledger '" + file.string() + "' is not a regular file of at most " +
                                std::to_string(kMaxFile) + " bytes"};
  }
  std::vector<char> buf(kMaxFile);
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot read ledger", file, errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  std::string_view text(buf.data(), got);
  const std::string_view reserved_prefix = "reserved ";
  const auto end_reserved = text.find('\n', kHeader.size());
  if (!text.starts_with(kHeader) || end_reserved == std::string_view::npos ||
      text.substr(kHeader.size(), reserved_prefix.size()) != reserved_prefix) {
    return Error{Errc::kIo, "'" + file.string() + "' is not a taskgroupd ledger"};
  }
  const auto digits = text.substr(kHeader.size() + reserved_prefix.size(),
                                  end_reserved - kHeader.size() - reserved_prefix.size());
  auto reserved = number(digits);
  if (!reserved || *reserved < 0) {
    return Error{Errc::kIo, "ledger '" + file.string() + "' has no readable reservation"};
  }
  const std::string_view rest = text.substr(end_reserved + 1);
  const auto end_marks = rest.find('\n');  // A torn line may lack it: then it is unreadable.
  Contents contents{*reserved, end_marks == std::string_view::npos
                                   ? std::nullopt
                                   : parse_marks(rest.substr(0, end_marks))};
  return std::optional<Contents>(std::move(contents));
}

Result<Ledger> Ledger::create(const fs::path& file, const Contents& contents) {
  const fs::path tmp = file.string() + ".tmp";
  UniqueFd fd(
      ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
  if (!fd.valid()) return io_error("cannot create", tmp, errno);
  if (auto r = write_all(fd.get(), format_ledger(contents), 0); r.has_error()) {
    (void)::unlink(tmp.c_str());  // The old ledger, if any, is still in place.
    return Error{Errc::kIo, "cannot write '" + tmp.string() + "': " + r.error().message};
  }
  if (::fdatasync(fd.get()) != 0) {
    const int err = errno;
    (void)::unlink(tmp.c_str());
    return io_error("cannot sync", tmp, err);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    (void)::unlink(tmp.c_str());
    return io_error("cannot rename '" + tmp.string() + "' to", file, err);
  }
  // The rename is durable only once the directory is.
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) return io_error("cannot open directory", dir, errno);
  if (::fsync(dfd.get()) != 0) return io_error("cannot sync directory", dir, errno);
  return Ledger(file, std::move(fd), contents);
}

Result<void> Ledger::reserve(TaskId reserved) {
  Contents next = contents_;
  next.reserved = reserved;
  auto replaced = create(path_, next);
  if (replaced.has_error()) return replaced.error();
  *this = std::move(*replaced);
  return {};
}

Result<void> Ledger::mark(std::int64_t commits, std::int64_t synced) {
  Marks m = contents_.marks.value_or(Marks{});
  m.commits = commits;
  m.synced = synced;
  const off_t offset = static_cast<off_t>(kHeader.size() + reserved_line(0).size());
  if (auto r = write_all(fd_.get(), marks_line(m), offset); r.has_error()) return r.error();
  contents_.marks = std::move(m);
  return {};
}

}  // namespace tg::daemon
