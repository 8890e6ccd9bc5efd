// SPDX-License-Identifier: GPL-2.0-or-later
#include "fim/base/sys.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "fim/base/fd.h"

namespace fim {

Result<Bytes> absolute_path(std::string_view path) {
  if (path.empty()) return make_error(Errc::Usage, "empty path");
  Bytes input;
  if (path[0] != '/') {
    std::vector<char> buf(4096);
    while (!::getcwd(buf.data(), buf.size())) {
      if (errno != ERANGE) return make_error(Errc::Io, "cannot read the working directory", errno);
      buf.resize(buf.size() * 2);
    }
    input = buf.data();
    input += '/';
  }
  input.append(path);
  std::vector<std::string_view> parts;
  std::string_view rest = input;
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  Bytes out;
  for (const auto part : parts) {
    out += '/';
    out.append(part);
  }
  return out.empty() ? Bytes("/") : out;
}

void split_path(std::string_view path, Bytes* dir, Bytes* name) {
  if (path == "/") {
    *dir = "/";
    *name = ".";
    return;
  }
  const size_t slash = path.rfind('/');
  *dir = slash == 0 ? Bytes("/") : Bytes(path.substr(0, slash));
  *name = Bytes(path.substr(slash + 1));
}

std::string format_time_ns(int64_t ns) {
  int64_t sec = ns / 1000000000;
  int64_t frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --sec;
  }
  const time_t t = static_cast<time_t>(sec);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

namespace {

// Slot states: 0 free, 1 being filled or emptied, 2 holds a path the handler may unlink.
struct TempSlot {
  std::atomic<int> state{0};
  char path[PATH_MAX];
};
TempSlot g_temp[4];
std::atomic<bool> g_installed{false};

}  // namespace

void track_temp_file(const Bytes& path) {
  if (path.size() >= PATH_MAX) return;
  for (auto& slot : g_temp) {
    int free = 0;
    if (!slot.state.compare_exchange_strong(free, 1)) continue;
    std::memcpy(slot.path, path.c_str(), path.size() + 1);
    slot.state.store(2);
    return;
  }
}

void untrack_temp_file(const Bytes& path) {
  for (auto& slot : g_temp) {
    int full = 2;
    if (!slot.state.compare_exchange_strong(full, 1)) continue;
    if (path == slot.path) {
      slot.state.store(0);
      return;
    }
    slot.state.store(2);
  }
}

int remove_temp_files() {
  int n = 0;
  for (auto& slot : g_temp) {
    int full = 2;
    if (!slot.state.compare_exchange_strong(full, 1)) continue;
    ::unlink(slot.path);
    ++n;
  }
  return n;
}

void note_baseline_installed() { g_installed.store(true); }
bool baseline_installed() { return g_installed.load(); }

std::string machine_id() {
  auto id = read_small_file("/etc/machine-id", 128);
  if (!id) return "unknown";
  std::string s = *id;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown" : s;
}

std::string host_name() {
  char h[256] = {};
  if (::gethostname(h, sizeof h - 1) != 0 || h[0] == '\0') return "unknown";
  return h;
}

int64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return timespec_ns(ts);
}

double monotonic_seconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string errno_name(int err) {
  if (const char* name = strerrorname_np(err)) return name;
  return std::to_string(err);
}

void raise_fd_limit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

namespace {

/// open(2) of a path of any length: directories a piece shorter than PATH_MAX at a time, each
/// relative to the last (symlinks on the way are followed, as open(2) would).
int open_long(const Bytes& path, int flags) {
  int dir = AT_FDCWD;
  UniqueFd held;
  size_t at = 0;
  while (path.size() - at >= PATH_MAX) {
    size_t cut = path.rfind('/', at + PATH_MAX - 1);
    if (cut == Bytes::npos || cut <= at) {
      errno = ENAMETOOLONG;  // one name longer than PATH_MAX: no filesystem has it
      return -1;
    }
    const Bytes piece = path.substr(at, cut - at);
    held.reset(::openat(dir, piece.empty() ? "/" : piece.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!held.valid()) return -1;
    dir = held.get();
    at = cut + 1;
  }
  return ::openat(dir, path.c_str() + at, flags);
}

}  // namespace

int lstat_at(int dirfd, const char* name, struct stat* st, int64_t* btime_ns) {
  struct statx x;
  if (::statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS | STATX_BTIME, &x) != 0) return -1;
  *st = {};
  st->st_dev = makedev(x.stx_dev_major, x.stx_dev_minor);
  st->st_ino = x.stx_ino;
  st->st_mode = x.stx_mode;
  st->st_nlink = x.stx_nlink;
  st->st_uid = x.stx_uid;
  st->st_gid = x.stx_gid;
  st->st_rdev = makedev(x.stx_rdev_major, x.stx_rdev_minor);
  st->st_size = static_cast<off_t>(x.stx_size);
  st->st_blksize = static_cast<blksize_t>(x.stx_blksize);
  st->st_blocks = static_cast<blkcnt_t>(x.stx_blocks);
  st->st_atim = {x.stx_atime.tv_sec, x.stx_atime.tv_nsec};
  st->st_mtim = {x.stx_mtime.tv_sec, x.stx_mtime.tv_nsec};
  st->st_ctim = {x.stx_ctime.tv_sec, x.stx_ctime.tv_nsec};
  *btime_ns = (x.stx_mask & STATX_BTIME) ? static_cast<int64_t>(x.stx_btime.tv_sec) * 1000000000 + x.stx_btime.tv_nsec : -1;
  return 0;
}

int lstat_path(const Bytes& path, struct stat* st) {
  if (path.size() < PATH_MAX) return ::lstat(path.c_str(), st);
  Bytes dir, name;
  split_path(path, &dir, &name);
  UniqueFd fd(open_long(dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return -1;
  return ::fstatat(fd.get(), name.c_str(), st, AT_SYMLINK_NOFOLLOW);
}

int open_in_root(int root_fd, const Bytes& path, int flags) {
  if (root_fd < 0) return path.size() < PATH_MAX ? ::open(path.c_str(), flags) : open_long(path, flags);
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  size_t skip = 0;
  while (skip < path.size() && path[skip] == '/') ++skip;
  const Bytes rel = skip == path.size() ? Bytes(".") : path.substr(skip);
  return static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
}

Result<std::string> read_small_file(const char* path, size_t limit) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return make_error(Errc::Io, "cannot open " + quote(path), errno);
  std::string out(limit, '\0');
  size_t have = 0;
  while (have < limit) {
    const ssize_t n = ::read(fd.get(), out.data() + have, limit - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::Io, "cannot read " + quote(path), errno);
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  out.resize(have);
  return out;
}

Status check_trusted_path(const Bytes& path, const char* what) {
  const std::unique_ptr<char, CDeleter<std::free>> real(::realpath(path.c_str(), nullptr));
  if (!real) return make_error(Errc::Usage, std::string("cannot resolve ") + what + " " + quote(path), errno);
  const Bytes resolved(real.get());
  const uid_t me = ::geteuid();
  // The file, then each directory up to "/".
  Bytes p = resolved;
  for (bool file = true;; file = false) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0)
      return make_error(Errc::Usage, std::string("cannot check ") + what + " path " + quote(p), errno);
    const bool sticky_root_dir = !file && S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && st.st_uid == 0;
    std::string why;
    if (st.st_uid != 0 && st.st_uid != me)
      why = "is owned by uid " + std::to_string(st.st_uid);
    else if ((st.st_mode & 022) && !sticky_root_dir)
      why = (st.st_mode & 002) ? "is writable by everyone" : "is writable by its group";
    if (!why.empty())
      return make_error(Errc::Usage, std::string(what) + " " + quote(path) + " is not on a trusted path: " + quote(p) +
                                         " " + why + ", so others could replace it");
    if (p == "/") break;
    Bytes dir, name;
    split_path(p, &dir, &name);
    p = dir;
  }
  return {};
}

Status read_chunks(int fd, const char* what, const std::function<Status(std::string_view)>& each) {
  std::vector<char> buf(size_t{1} << 16);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::Io, std::string("reading ") + what, errno);
    if (n == 0) return {};
    if (auto st = each(std::string_view(buf.data(), static_cast<size_t>(n))); !st) return st;
  }
}

Result<std::string> read_to_end(int fd, size_t limit, const std::string& shown) {
  std::string out;
  auto st = read_chunks(fd, shown.c_str(), [&](std::string_view b) -> Status {
    if (out.size() + b.size() > limit) return make_error(Errc::Io, shown + " is too large");
    out.append(b);
    return {};
  });
  if (!st) return st.error();
  return out;
}

Status write_all(int fd, std::string_view data, const char* what) {
  while (!data.empty()) {
    const ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return make_error(Errc::Io, std::string("writing ") + what, errno);
    data.remove_prefix(static_cast<size_t>(w));
  }
  return {};
}

}  // namespace fim
