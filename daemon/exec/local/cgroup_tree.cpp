#include "daemon/exec/local/cgroup_tree.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <set>
#include <string_view>
#include <system_error>
#include <unordered_set>

#include "daemon/exec/local/sys_compat.h"

namespace tg::daemon {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTaskPrefix = "task-";
constexpr const char* kDaemonLeaf = "daemon";

// A whole small file (cgroupfs files are read in one go); nullopt if it cannot be read.
std::optional<std::string> read_file(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

Result<void> write_file(const fs::path& path, std::string_view text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid() || ::write(fd.get(), text.data(), text.size()) < 0) {
    return Error{Errc::kIo, "cannot write '" + path.string() + "': " + ::strerror(errno)};
  }
  return {};
}

// The value of `key` in a flat-keyed file ("key value" lines: cgroup.events, cpu.stat).
std::optional<std::int64_t> keyed_value(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ' ') {
      continue;
    }
    line.remove_prefix(key.size() + 1);
    std::int64_t v = 0;
    if (std::from_chars(line.data(), line.data() + line.size(), v).ec == std::errc{}) return v;
    return std::nullopt;
  }
  return std::nullopt;
}

// The processes listed in `dir`'s cgroup.procs and those of its sub-cgroups.
void members(const fs::path& dir, std::vector<pid_t>& out) {
  if (const auto text = read_file(dir / "cgroup.procs")) {
    std::string_view rest = *text;
    while (!rest.empty()) {
      const auto eol = rest.find('\n');
      const std::string_view line = rest.substr(0, eol);
      rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
      pid_t pid = 0;
      if (std::from_chars(line.data(), line.data() + line.size(), pid).ec == std::errc{}) {
        out.push_back(pid);
      }
    }
  }
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) members(it->path(), out);
  }
}

// Removes `dir` after its sub-cgroups (a task running as root may have made some).
bool remove_tree(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) (void)remove_tree(it->path());
  }
  return ::rmdir(dir.c_str()) == 0;
}

bool delegated(const fs::path& dir) {
  char value[8];
  for (const char* name : {"trusted.delegate", "user.delegate"}) {
    const ssize_t n = ::getxattr(dir.c_str(), name, value, sizeof value);
    if (n == 1 && value[0] == '1') return true;
  }
  return false;
}

// Where the cgroup2 hierarchy is mounted: /sys/fs/cgroup (unified), or beside v1 controllers
// at /sys/fs/cgroup/unified (hybrid).
std::optional<fs::path> cgroup2_mount() {
  for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (is_cgroup2(dir)) return fs::path(dir);
  }
  return std::nullopt;
}

// Our own cgroup2 cgroup (the "0::" line of /proc/self/cgroup), under the mount point.
std::optional<fs::path> own_cgroup(const fs::path& mount) {
  const auto text = read_file("/proc/self/cgroup");
  if (!text) return std::nullopt;
  const auto at = text->find("0::/");
  if (at == std::string::npos || (at != 0 && (*text)[at - 1] != '\n')) return std::nullopt;
  const auto eol = text->find('\n', at);
  const std::string rel = text->substr(at + 4, eol == std::string::npos ? eol : eol - at - 4);
  return rel.empty() ? mount : mount / rel;
}

// The cgroup systemd delegated to us; we move ourselves into its leaf `daemon` (after a
// re-exec we are there already).
Result<std::optional<CgroupTree>> delegated_tree() {
  const auto mount = cgroup2_mount();
  if (!mount) return std::optional<CgroupTree>{};
  const auto own = own_cgroup(*mount);
  if (!own) return std::optional<CgroupTree>{};
  fs::path root = *own;
  if (root.filename() == kDaemonLeaf) root = root.parent_path();
  if (root == *mount || !delegated(root)) return std::optional<CgroupTree>{};
  auto tree = CgroupTree::at(root);
  if (tree.has_error()) return tree.error();
  if (*own != root / kDaemonLeaf) {
    const fs::path leaf = root / kDaemonLeaf;
    if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) {
      return Error{Errc::kIo, "cannot create cgroup '" + leaf.string() + "': " + ::strerror(errno)};
    }
    if (auto r = write_file(leaf / "cgroup.procs", std::to_string(::getpid())); r.has_error()) {
      return r.error();
    }
  }
  return std::optional<CgroupTree>{std::move(*tree)};
}

}  // namespace

bool is_cgroup2(const fs::path& dir) {
  struct statfs fs {};
  return ::statfs(dir.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

Result<CgroupTree> CgroupTree::at(fs::path root) {
  if (!is_cgroup2(root)) {
    return Error{Errc::kInvalidParams, "'" + root.string() + "' is not a cgroup2 directory"};
  }
  if (::access(root.c_str(), W_OK) != 0 || ::access((root / "cgroup.procs").c_str(), W_OK) != 0) {
    return Error{Errc::kPermissionDenied, "cgroup '" + root.string() + "' is not writable"};
  }
  return CgroupTree(std::move(root));
}

Result<std::optional<CgroupTree>> CgroupTree::open(const std::string& setting) {
  if (setting == "off") return std::optional<CgroupTree>{};
  if (setting == "auto") return delegated_tree();
  auto tree = at(setting);
  if (tree.has_error()) return tree.error();
  return std::optional<CgroupTree>{std::move(*tree)};
}

fs::path CgroupTree::path(proto::TaskId id) const {
  return root_ / (std::string(kTaskPrefix) + std::to_string(id));
}

Result<UniqueFd> CgroupTree::create(proto::TaskId id) const {
  const fs::path dir = path(id);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error{Errc::kIo, "cannot create cgroup '" + dir.string() + "': " + ::strerror(errno)};
  }
  const fs::path procs = dir / "cgroup.procs";
  UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    (void)::rmdir(dir.c_str());  // Ours, and empty: nothing entered it.
    return Error{Errc::kIo, "cannot open '" + procs.string() + "': " + ::strerror(err)};
  }
  return fd;
}

std::size_t CgroupTree::signal(proto::TaskId id, int sig, bool then_cont) const {
  const fs::path dir = path(id);
  const bool cont = then_cont && sig != SIGKILL && sig != SIGCONT;
  std::unordered_set<pid_t> done;
  for (int pass = 0; pass < 8; ++pass) {
    std::vector<pid_t> listed;
    members(dir, listed);
    std::vector<std::pair<pid_t, UniqueFd>> held;
    for (pid_t pid : listed) {
      if (done.contains(pid)) continue;
      UniqueFd fd(::pidfd_open(pid, 0));
      if (fd.valid()) held.emplace_back(pid, std::move(fd));
    }
    if (held.empty()) break;
    // Still listed after we hold it: the pidfd is the member's, not a later owner of its pid.
    std::vector<pid_t> again;
    members(dir, again);
    const std::unordered_set<pid_t> still(again.begin(), again.end());
    for (auto& [pid, fd] : held) {
      done.insert(pid);
      if (!still.contains(pid)) continue;
      (void)::pidfd_send_signal(fd.get(), sig, nullptr, 0);  // ESRCH: it died meanwhile.
      if (cont) (void)::pidfd_send_signal(fd.get(), SIGCONT, nullptr, 0);
    }
  }
  return done.size();
}

Result<void> CgroupTree::kill(proto::TaskId id) const {
  return write_file(path(id) / "cgroup.kill", "1");
}

std::optional<bool> CgroupTree::populated(proto::TaskId id) const {
  const auto text = read_file(path(id) / "cgroup.events");
  if (!text) return std::nullopt;
  const auto v = keyed_value(*text, "populated");
  if (!v) return std::nullopt;
  return *v != 0;
}

CgroupUsage CgroupTree::usage(proto::TaskId id) const {
  CgroupUsage u;
  const fs::path dir = path(id);
  if (const auto cpu = read_file(dir / "cpu.stat")) {
    u.cpu_user_us = keyed_value(*cpu, "user_usec");
    u.cpu_system_us = keyed_value(*cpu, "system_usec");
  }
  if (const auto peak = read_file(dir / "memory.peak")) {
    std::int64_t v = 0;
    if (std::from_chars(peak->data(), peak->data() + peak->size(), v).ec == std::errc{}) {
      u.memory_peak_bytes = v;
    }
  }
  return u;
}

Result<void> CgroupTree::remove(proto::TaskId id) const {
  const fs::path dir = path(id);
  if (remove_tree(dir)) return {};
  return Error{Errc::kIo, "cannot remove cgroup '" + dir.string() + "': " + ::strerror(errno)};
}

std::vector<proto::TaskId> CgroupTree::tasks() const {
  std::vector<proto::TaskId> out;
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= kTaskPrefix.size() || name.compare(0, kTaskPrefix.size(), kTaskPrefix) != 0)
      continue;
    proto::TaskId id = 0;
    const char* first = name.data() + kTaskPrefix.size();
    const char* last = name.data() + name.size();
    if (auto [p, e] = std::from_chars(first, last, id); e == std::errc{} && p == last && id > 0) {
      out.push_back(id);
    }
  }
  return out;
}

Result<bool> CgroupTree::kill_and_remove(proto::TaskId id, std::chrono::milliseconds wait) const {
  const fs::path events = path(id) / "cgroup.events";
  UniqueFd fd(::open(events.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;  // No such cgroup.
  const bool had = populated(id).value_or(false);
  if (had) {
    if (auto r = kill(id); r.has_error()) return r.error();
  }
  // cgroup.events signals a change as POLLPRI: wait for "populated 0" without polling.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    char buf[256];
    const ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    if (n < 0) return Error{Errc::kIo, "cannot read '" + events.string() + "'"};
    const auto populated =
        keyed_value(std::string_view(buf, static_cast<std::size_t>(n)), "populated");
    if (populated && *populated == 0) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Error{Errc::kBusy, "cgroup '" + path(id).string() + "' still has processes after " +
                                    std::to_string(wait.count()) + " ms"};
    }
    struct pollfd p {};
    p.fd = fd.get();
    p.events = POLLPRI;
    (void)::poll(&p, 1, static_cast<int>(left.count()));
  }
  if (auto r = remove(id); r.has_error()) return r.error();
  return had;
}

}  // namespace tg::daemon
