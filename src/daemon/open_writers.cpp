// SPDX-License-Identifier: GPL-2.0-or-later
// Files held open for writing or mapped shared-writable (see open_writers.h).
#include "open_writers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#include "fim/base/fd.h"
#include "fim/base/sys.h"

namespace fim::watchd {

namespace {

bool parse_hex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

/// The next space-separated field of `s` from *pos (leading spaces skipped).
std::string_view next_field(std::string_view s, size_t* pos) {
  while (*pos < s.size() && s[*pos] == ' ') ++*pos;
  const size_t b = *pos;
  while (*pos < s.size() && s[*pos] != ' ') ++*pos;
  return s.substr(b, *pos - b);
}

using Key = std::pair<dev_t, uint64_t>;

/// One pass's state: the bounds, what was found, and each file's verdict (asked once).
struct Pass {
  const ScanLimits& limits;
  const WatchedFn& watched;
  const std::atomic<bool>* cancel;
  double t0;
  ScanResult r;
  std::map<Key, bool> decided;

  bool over_time() {
    if (cancel && cancel->load()) {
      r.incomplete = "cancelled";
      return true;
    }
    if (monotonic_seconds() - t0 <= limits.budget_seconds) return false;
    r.incomplete = "time";
    return true;
  }
  /// Kept when watched; false when the files bound is reached.
  bool consider(dev_t dev, uint64_t ino, const Bytes& path, int32_t pid, const std::string& comm, bool mapped) {
    auto [it, fresh] = decided.try_emplace(Key{dev, ino}, false);
    if (!fresh) return true;  // seen already, through another fd, map or holder
    if (!watched(dev, ino, path)) return true;
    if (r.found.size() >= limits.max_files) {
      r.incomplete = "files";
      return false;
    }
    it->second = true;
    r.found.push_back({dev, ino, path, pid, comm, mapped});
    return true;
  }
};

Bytes readlink_at(int dirfd, const char* name) {
  char buf[4096];
  const ssize_t n = ::readlinkat(dirfd, name, buf, sizeof buf);
  return n > 0 ? Bytes(buf, static_cast<size_t>(n)) : Bytes();
}

std::string comm_at(int procfd, int32_t pid) {
  const std::string p = std::to_string(pid) + "/comm";
  UniqueFd fd(::openat(procfd, p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return {};
  char buf[64];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0) return {};
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

/// False when a bound stopped the pass.
bool scan_fds(int procfd, int32_t pid, Pass& pass, std::string& comm) {
  const std::string pre = std::to_string(pid);
  UniqueFd dfd(::openat(procfd, (pre + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) return true;  // gone, or a process we may not look into
  DIR* d = ::fdopendir(dfd.get());
  if (!d) return true;
  (void)dfd.release();
  std::unique_ptr<DIR, int (*)(DIR*)> dir(d, ::closedir);
  const int fdir = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (pass.r.fds >= pass.limits.max_fds) {
      pass.r.incomplete = "fds";
      return false;
    }
    if (++pass.r.fds % 1024 == 0 && pass.over_time()) return false;
    // The link's own mode carries the open mode (the kernel sets S_IWUSR for FMODE_WRITE):
    // read-only fds, most of them, cost one lstat. fdinfo below has the last word.
    struct stat ls;
    if (::fstatat(fdir, e->d_name, &ls, AT_SYMLINK_NOFOLLOW) != 0 || !(ls.st_mode & S_IWUSR)) continue;
    struct stat st;
    if (::fstatat(fdir, e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
    if (pass.decided.count(Key{st.st_dev, st.st_ino})) continue;
    const std::string fdinfo_name = pre + "/fdinfo/" + e->d_name;
    UniqueFd ifd(::openat(procfd, fdinfo_name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ifd.valid()) continue;
    char buf[512];
    const ssize_t n = ::read(ifd.get(), buf, sizeof buf);
    if (n <= 0) continue;
    const auto flags = parse_fdinfo_flags(std::string_view(buf, static_cast<size_t>(n)));
    if (!flags || !flags_open_for_write(*flags)) continue;
    const Bytes path = readlink_at(fdir, e->d_name);
    if (path.empty()) continue;
    if (comm.empty()) comm = comm_at(procfd, pid);
    if (!pass.consider(st.st_dev, st.st_ino, path, pid, comm, false)) return false;
  }
  return true;
}

/// One shared-writable map line: its file through map_files (the file's own dev and inode;
/// a maps line's device is the superblock's, which differs from stat's on btrfs), else as
/// the line says.
bool consider_map(int procfd, int32_t pid, const MapsLine& m, Pass& pass, std::string& comm) {
  dev_t dev = m.dev;
  uint64_t ino = m.ino;
  Bytes path = m.path;
  char name[96];
  std::snprintf(name, sizeof name, "%d/map_files/%llx-%llx", pid, static_cast<unsigned long long>(m.start),
                static_cast<unsigned long long>(m.end));
  struct stat st;
  if (::fstatat(procfd, name, &st, 0) == 0) {
    if (!S_ISREG(st.st_mode)) return true;  // a device, shared memory
    dev = st.st_dev, ino = st.st_ino;
    if (Bytes p = readlink_at(procfd, name); !p.empty()) path = std::move(p);
  }
  if (pass.decided.count(Key{dev, ino})) return true;
  if (comm.empty()) comm = comm_at(procfd, pid);
  return pass.consider(dev, ino, path, pid, comm, true);
}

bool scan_maps(int procfd, int32_t pid, Pass& pass, std::string& comm) {
  UniqueFd fd(::openat(procfd, (std::to_string(pid) + "/maps").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return true;
  std::string carry;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    carry.append(buf, static_cast<size_t>(n));
    size_t b = 0;
    for (size_t nl; (nl = carry.find('\n', b)) != std::string::npos; b = nl + 1) {
      if (pass.r.map_lines >= pass.limits.max_map_lines) {
        pass.r.incomplete = "map_lines";
        return false;
      }
      if (++pass.r.map_lines % 4096 == 0 && pass.over_time()) return false;
      const std::string_view line(carry.data() + b, nl - b);
      size_t pos = 0;
      (void)next_field(line, &pos);
      if (!maps_shared_writable(next_field(line, &pos))) continue;  // nearly every line
      if (auto m = parse_maps_line(line))
        if (!consider_map(procfd, pid, *m, pass, comm)) return false;
    }
    carry.erase(0, b);
  }
  return true;
}

}  // namespace

std::optional<uint32_t> parse_fdinfo_flags(std::string_view fdinfo) {
  size_t at = 0;
  while (at < fdinfo.size()) {
    size_t nl = fdinfo.find('\n', at);
    if (nl == std::string_view::npos) nl = fdinfo.size();
    std::string_view line = fdinfo.substr(at, nl - at);
    at = nl + 1;
    if (line.substr(0, 6) != "flags:") continue;
    line.remove_prefix(6);
    while (!line.empty() && (line.front() == '\t' || line.front() == ' ')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == '\t' || line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    if (line.empty() || line.size() > 11) return std::nullopt;
    uint64_t v = 0;
    for (char c : line) {
      if (c < '0' || c > '7') return std::nullopt;
      v = v << 3 | static_cast<uint64_t>(c - '0');
    }
    if (v > UINT32_MAX) return std::nullopt;
    return static_cast<uint32_t>(v);
  }
  return std::nullopt;
}

bool flags_open_for_write(uint32_t flags) {
  const uint32_t acc = flags & O_ACCMODE;
  return acc == O_WRONLY || acc == O_RDWR;
}

bool maps_shared_writable(std::string_view perms) {
  return perms.size() == 4 && perms[1] == 'w' && perms[3] == 's';
}

std::optional<MapsLine> parse_maps_line(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  MapsLine m;
  size_t pos = 0;
  const std::string_view range = next_field(line, &pos);
  const size_t dash = range.find('-');
  if (dash == std::string_view::npos || !parse_hex(range.substr(0, dash), &m.start) ||
      !parse_hex(range.substr(dash + 1), &m.end))
    return std::nullopt;
  const std::string_view perms = next_field(line, &pos);
  if (perms.size() != 4) return std::nullopt;
  m.perms = std::string(perms);
  uint64_t offset;
  if (!parse_hex(next_field(line, &pos), &offset)) return std::nullopt;
  const std::string_view dev = next_field(line, &pos);
  const size_t colon = dev.find(':');
  uint64_t maj, min;
  if (colon == std::string_view::npos || !parse_hex(dev.substr(0, colon), &maj) || !parse_hex(dev.substr(colon + 1), &min) ||
      maj > 0xfffff || min > 0xfffff)
    return std::nullopt;
  m.dev = makedev(static_cast<unsigned>(maj), static_cast<unsigned>(min));
  if (!parse_decimal(next_field(line, &pos), &m.ino)) return std::nullopt;
  while (pos < line.size() && line[pos] == ' ') ++pos;
  // The kernel escapes only a newline in the path (seq_file_path with "\n").
  for (std::string_view rest = line.substr(pos); !rest.empty();) {
    if (rest.substr(0, 4) == "\\012") {
      m.path += '\n';
      rest.remove_prefix(4);
    } else {
      m.path += rest.front();
      rest.remove_prefix(1);
    }
  }
  if (m.ino == 0 || m.path.empty() || m.path[0] != '/') return std::nullopt;  // anonymous, [heap], [stack]...
  return m;
}

ScanResult scan_open_writers(const Bytes& proc, int32_t self, int32_t resume_after, const ScanLimits& limits,
                             const WatchedFn& watched, const std::atomic<bool>* cancel) {
  Pass pass{limits, watched, cancel, monotonic_seconds(), {}, {}};
  UniqueFd procfd(::open(proc.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!procfd.valid()) {
    pass.r.incomplete = "proc";
    return std::move(pass.r);
  }
  std::vector<int32_t> pids;
  {
    UniqueFd lfd(::dup(procfd.get()));
    DIR* d = lfd.valid() ? ::fdopendir(lfd.get()) : nullptr;
    if (d) {
      (void)lfd.release();
      std::unique_ptr<DIR, int (*)(DIR*)> dir(d, ::closedir);
      while (const dirent* e = ::readdir(d)) {
        uint64_t pid;
        if (parse_decimal(e->d_name, &pid) && pid > 0 && pid <= INT32_MAX) pids.push_back(static_cast<int32_t>(pid));
      }
    }
  }
  std::sort(pids.begin(), pids.end());
  const size_t first = static_cast<size_t>(std::upper_bound(pids.begin(), pids.end(), resume_after) - pids.begin());
  for (size_t i = 0; i < pids.size(); ++i) {
    const int32_t pid = pids[(first + i) % pids.size()];
    if (pid == self) continue;
    if (pass.r.processes >= limits.max_processes) pass.r.incomplete = "processes";
    if (!pass.r.incomplete.empty() || pass.over_time()) break;
    ++pass.r.processes;
    pass.r.stopped_at = pid;
    std::string comm;
    if (!scan_fds(procfd.get(), pid, pass, comm) || !scan_maps(procfd.get(), pid, pass, comm)) break;
  }
  if (pass.r.incomplete.empty()) pass.r.stopped_at = 0;
  return std::move(pass.r);
}

void OpenWriterWatch::start(double interval, ScanLimits limits, WatchedFn watched, FoundFn found) {
  interval_ = interval;
  limits_ = limits;
  watched_ = std::move(watched);
  found_ = std::move(found);
  thread_ = std::thread([this] { loop(); });
}

void OpenWriterWatch::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cancel_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OpenWriterWatch::note(OpenWriter w) {
  std::lock_guard<std::mutex> lk(mu_);
  if (noted_.size() < limits_.max_files) noted_.push_back(std::move(w));
}

void OpenWriterWatch::loop() {
  int32_t resume = 0;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait_for(lk, std::chrono::duration<double>(interval_), [this] { return stop_; });
    if (stop_) return;
    lk.unlock();
    ScanResult pass = scan_open_writers("/proc", static_cast<int32_t>(::getpid()), resume, limits_, watched_, &cancel_);
    if (pass.incomplete == "cancelled") return;
    resume = pass.stopped_at;
    std::vector<OpenWriter> held = pass.found;
    lk.lock();
    std::vector<OpenWriter> noted;
    noted.swap(noted_);
    lk.unlock();
    for (auto& w : noted)
      if (held.size() < limits_.max_files && watched_(w.dev, w.ino, w.path) &&
          std::none_of(held.begin(), held.end(), [&](const OpenWriter& h) { return h.dev == w.dev && h.ino == w.ino; }))
        held.push_back(std::move(w));
    ++passes_;
    if (!pass.incomplete.empty()) ++incomplete_;
    held_ = held.size();
    found_(held, pass);
    lk.lock();
  }
}

}  // namespace fim::watchd
