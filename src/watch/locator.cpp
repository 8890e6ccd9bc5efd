// SPDX-License-Identifier: GPL-2.0-or-later
// Events to roots by identity (docs/design.md, Real time). A fanotify event names a directory
// by its file handle; open_by_handle_at opens it (through an fd on the same filesystem, which
// needs CAP_DAC_READ_SEARCH) and ".." is walked up until a root's (dev, ino) is met or the top
// of the filesystem is reached. Matching paths instead would miss a root reached through a
// symlinked ancestor (the kernel names /data/etc, the baseline /srv/link/etc), a write through
// another mount of the same filesystem (the handle resolves through whichever mount the fd is
// on) and directories whose path is longer than PATH_MAX (readlink fails).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "fim/base/sys.h"
#include "fim/watch.h"

namespace fim {

namespace {

// Deeper directories than this are not located (Where::Unknown, counted): the walk up costs
// two syscalls a level, once per directory (the result is cached).
constexpr int kMaxDepth = 8192;

uint64_t fsid_of(int fd) {
  struct statfs sfs;
  if (::fstatfs(fd, &sfs) != 0) return 0;
  __kernel_fsid_t f;
  std::memcpy(&f, &sfs.f_fsid, sizeof f);
  return (static_cast<uint64_t>(static_cast<uint32_t>(f.val[0])) << 32) | static_cast<uint32_t>(f.val[1]);
}

std::optional<FileId> id_of(int fd) {
  struct stat sb;
  if (::fstat(fd, &sb) != 0) return std::nullopt;
  return FileId{sb.st_dev, static_cast<uint64_t>(sb.st_ino)};
}

std::optional<FileId> id_of_path(const Bytes& path) {
  UniqueFd fd(open_in_root(-1, path, O_PATH | O_CLOEXEC));  // follows symlinks: what the path names
  if (!fd.valid()) return std::nullopt;
  return id_of(fd.get());
}

std::string cache_key(const FanInfo& info) {
  if (!info.path.empty()) return "p" + info.path;
  std::string key(1, 'h');
  key.append(reinterpret_cast<const char*>(&info.fsid), sizeof info.fsid);
  key.append(reinterpret_cast<const char*>(&info.handle_type), sizeof info.handle_type);
  return key + info.handle;
}

/// The path an fd names (readlink of /proc/self/fd): nothing when the kernel cannot say
/// (longer than a page, deleted).
std::optional<Bytes> fd_path(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  std::string path(PATH_MAX, '\0');
  const ssize_t n = ::readlink(link, path.data(), path.size());
  if (n <= 0 || static_cast<size_t>(n) >= path.size() || path[0] != '/') return std::nullopt;
  path.resize(static_cast<size_t>(n));
  if (path.size() > 10 && path.compare(path.size() - 10, 10, " (deleted)") == 0) return std::nullopt;
  return path;
}

/// The name under which directory `dir` lists the subdirectory `child` (by inode; checked
/// with fstatat): for paths readlink cannot give.
std::optional<Bytes> name_in(int dir, const FileId& child) {
  UniqueFd fd(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  alignas(8) char buf[32 * 1024];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd.get(), buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      if (d->d_ino != child.ino || (d->d_type != DT_DIR && d->d_type != DT_UNKNOWN)) continue;
      if (!std::strcmp(d->d_name, ".") || !std::strcmp(d->d_name, "..")) continue;
      struct stat sb;
      if (::fstatat(fd.get(), d->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && sb.st_dev == child.dev &&
          static_cast<uint64_t>(sb.st_ino) == child.ino)
        return Bytes(d->d_name);
    }
  }
}

}  // namespace

void Locator::set_roots(const std::vector<Bytes>& roots) {
  roots_.clear();
  for (const auto& r : roots) roots_.push_back(Root{r, std::nullopt, {}});
  refresh();
  invalidate();
}

bool Locator::refresh() {
  bool changed = false;
  for (auto& r : roots_) {
    Root now{r.path, id_of_path(r.path), {}};
    // Each ancestor as it is now, with the component below it: "/" -> "srv", "/srv" -> "link".
    Bytes parent = "/";
    for (size_t at = 1; at < r.path.size();) {
      size_t end = r.path.find('/', at);
      if (end == Bytes::npos) end = r.path.size();
      const Bytes name = r.path.substr(at, end - at);
      if (auto id = id_of_path(parent)) now.ancestors.emplace_back(*id, name);
      parent = join_path(parent, name);
      at = end + 1;
    }
    if (now.id != r.id || now.ancestors != r.ancestors) {
      changed = true;
      r = std::move(now);
    }
  }
  if (changed) invalidate();
  return changed;
}

Status Locator::add_filesystem(const Bytes& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return make_error(Errc::Io, "cannot open " + quote(dir), errno);
  const uint64_t id = fsid_of(fd.get());
  if (!mounts_.count(id)) mounts_.emplace(id, std::move(fd));
  return {};
}

Status Locator::add_unpinned(const Bytes& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return make_error(Errc::Io, "cannot open " + quote(dir), errno);
  unpinned_[fsid_of(fd.get())] = dir;
  return {};
}

UniqueFd Locator::open_info(const FanInfo& info, int flags) {
  if (!info.path.empty()) return UniqueFd(open_in_root(-1, info.path, flags | O_NOFOLLOW | O_CLOEXEC));
  if (info.handle.size() > MAX_HANDLE_SZ) return {};
  int mount_fd = -1;
  UniqueFd opened;  // an unpinned filesystem's, for this lookup only
  if (const auto m = mounts_.find(info.fsid); m != mounts_.end()) {
    mount_fd = m->second.get();
  } else if (const auto u = unpinned_.find(info.fsid); u != unpinned_.end()) {
    opened.reset(::open(u->second.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (opened.valid() && fsid_of(opened.get()) == info.fsid) mount_fd = opened.get();  // else unmounted, replaced
  }
  if (mount_fd < 0) return {};
  alignas(file_handle) unsigned char storage[sizeof(file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<file_handle*>(storage);
  fh->handle_bytes = static_cast<unsigned>(info.handle.size());
  fh->handle_type = info.handle_type;
  std::memcpy(fh->f_handle, info.handle.data(), info.handle.size());
  return UniqueFd(::open_by_handle_at(mount_fd, fh, flags | O_CLOEXEC));
}

Located Locator::walk_up(UniqueFd start) {
  Located loc;
  auto first = id_of(start.get());
  if (!first) return loc;
  for (const auto& r : roots_)
    for (const auto& [anc, name] : r.ancestors)
      if (anc == *first) loc.above.emplace_back(name, r.path);
  // Up through "..", innermost root first; the ids on the way name the levels below it.
  std::vector<FileId> ids{*first};
  const Root* hit = nullptr;
  UniqueFd cur(::dup(start.get()));
  for (int depth = 0; depth < kMaxDepth && cur.valid(); ++depth) {
    for (const auto& r : roots_)
      if (r.id && *r.id == ids.back()) hit = &r;
    if (hit) break;
    UniqueFd up(::openat(cur.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    auto id = up.valid() ? id_of(up.get()) : std::nullopt;
    if (!id) return loc;  // Unknown
    if (*id == ids.back()) {  // the top of the filesystem: below no root
      loc.where = Located::Where::Outside;
      return loc;
    }
    ids.push_back(*id);
    cur = std::move(up);
  }
  if (!hit) return loc;  // deeper than kMaxDepth: Unknown
  const size_t below = ids.size() - 1;  // levels between the root and the directory
  Bytes rel;
  if (auto p = below ? fd_path(start.get()) : std::nullopt) {
    // The last `below` components of the kernel's path are the names on the way down.
    size_t cut = p->size(), n = 0;
    while (n < below && cut > 0) {
      cut = p->rfind('/', cut - 1);
      if (cut == Bytes::npos) break;
      ++n;
    }
    if (n == below && cut != Bytes::npos) rel = p->substr(cut + 1);
  }
  if (below && rel.empty()) {
    // readlink could not say (a path longer than a page): name each level by its inode, from
    // the root down.
    UniqueFd fd(open_in_root(-1, hit->path, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || id_of(fd.get()) != hit->id) return loc;
    for (size_t i = below; i-- > 0;) {
      auto name = name_in(fd.get(), ids[i]);
      if (!name) return loc;
      rel = rel.empty() ? *name : rel + "/" + *name;
      fd.reset(::openat(fd.get(), name->c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return loc;
    }
  }
  loc.where = Located::Where::Inside;
  loc.path = rel.empty() ? hit->path : join_path(hit->path, rel);
  return loc;
}

Located Locator::locate(const FanInfo& info) {
  const std::string key = cache_key(info);
  if (auto it = cache_.find(key); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.loc;
  }
  UniqueFd fd = open_info(info, O_PATH | O_DIRECTORY);
  Located loc = fd.valid() ? walk_up(std::move(fd)) : Located{};
  if (loc.where == Located::Where::Unknown) {
    ++failures_;  // gone or moved before we looked: its own event on a parent covers it
    return loc;
  }
  if (cache_.size() >= limit_) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  cache_.emplace(key, Cached{loc, lru_.begin()});
  return loc;
}

UniqueFd Locator::open_object(const FanInfo& info) { return open_info(info, O_PATH); }

std::optional<Bytes> Locator::resolve(const FanInfo& info) {
  UniqueFd fd = open_info(info, O_PATH);
  if (!fd.valid()) {
    ++failures_;
    return std::nullopt;
  }
  auto path = fd_path(fd.get());
  struct stat by_fd, by_path;
  if (!path || ::fstat(fd.get(), &by_fd) != 0 || ::lstat(path->c_str(), &by_path) != 0 || by_fd.st_dev != by_path.st_dev ||
      by_fd.st_ino != by_path.st_ino) {
    ++failures_;  // deleted or moved since: no path is better than a wrong one
    return std::nullopt;
  }
  return path;
}

void Locator::invalidate() {
  cache_.clear();
  lru_.clear();
}

}  // namespace fim
