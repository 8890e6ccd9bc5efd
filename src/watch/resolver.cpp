// SPDX-License-Identifier: GPL-2.0-or-later
// File handles back to paths (docs/design.md, Real time): open_by_handle_at through an fd on the
// same filesystem, readlink of /proc/self/fd, and a check that the path still names the
// inode the handle opened (a directory deleted or moved since the event gives nothing rather
// than a wrong path). Needs CAP_DAC_READ_SEARCH.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fim/watch.h"

namespace fim {

namespace {

uint64_t fsid_of(int fd) {
  struct statfs sfs;
  if (::fstatfs(fd, &sfs) != 0) return 0;
  __kernel_fsid_t f;
  std::memcpy(&f, &sfs.f_fsid, sizeof f);
  return (static_cast<uint64_t>(static_cast<uint32_t>(f.val[0])) << 32) | static_cast<uint32_t>(f.val[1]);
}

}  // namespace

Status Resolver::add_filesystem(const Bytes& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return make_error(Errc::Io, "cannot open " + quote(dir), errno);
  const uint64_t id = fsid_of(fd.get());
  if (!mounts_.count(id)) mounts_.emplace(id, std::move(fd));
  return {};
}

Status Resolver::add_unpinned(const Bytes& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return make_error(Errc::Io, "cannot open " + quote(dir), errno);
  unpinned_[fsid_of(fd.get())] = dir;
  return {};
}

std::optional<Bytes> Resolver::resolve(const FanInfo& info) {
  std::string key(reinterpret_cast<const char*>(&info.fsid), sizeof info.fsid);
  key.append(reinterpret_cast<const char*>(&info.handle_type), sizeof info.handle_type);
  key += info.handle;
  if (auto it = cache_.find(key); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.path;
  }
  auto m = mounts_.find(info.fsid);
  UniqueFd opened;  // an unpinned filesystem's, for this lookup only
  if (m == mounts_.end()) {
    if (auto u = unpinned_.find(info.fsid); u != unpinned_.end()) {
      opened.reset(::open(u->second.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (opened.valid() && fsid_of(opened.get()) != info.fsid) opened.reset();  // unmounted, replaced
    }
  }
  const int mount_fd = m != mounts_.end() ? m->second.get() : opened.get();
  if (mount_fd < 0 || info.handle.size() > MAX_HANDLE_SZ) {
    ++failures_;
    return std::nullopt;
  }
  alignas(file_handle) unsigned char storage[sizeof(file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<file_handle*>(storage);
  fh->handle_bytes = static_cast<unsigned>(info.handle.size());
  fh->handle_type = info.handle_type;
  std::memcpy(fh->f_handle, info.handle.data(), info.handle.size());
  UniqueFd fd(::open_by_handle_at(mount_fd, fh, O_PATH | O_CLOEXEC));
  if (!fd.valid()) {
    ++failures_;
    return std::nullopt;
  }
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd.get());
  std::string path(4096, '\0');
  const ssize_t n = ::readlink(link, path.data(), path.size());
  if (n <= 0 || static_cast<size_t>(n) >= path.size() || path[0] != '/') {
    ++failures_;
    return std::nullopt;
  }
  path.resize(static_cast<size_t>(n));
  struct stat by_fd, by_path;
  if (::fstat(fd.get(), &by_fd) != 0 || ::lstat(path.c_str(), &by_path) != 0 || by_fd.st_dev != by_path.st_dev ||
      by_fd.st_ino != by_path.st_ino) {
    ++failures_;  // deleted ("... (deleted)") or moved since: no path is better than a wrong one
    return std::nullopt;
  }
  if (S_ISDIR(by_fd.st_mode)) {
    if (cache_.size() >= limit_) {
      cache_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key);
    cache_.emplace(key, Cached{path, lru_.begin()});
  }
  return path;
}

Notifier::Notifier() {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  if (sock && (sock[0] == '/' || sock[0] == '@') && std::strlen(sock) < sizeof(sockaddr_un::sun_path)) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    addr_ = sock;
  }
  if (const char* wd = std::getenv("WATCHDOG_USEC")) {
    const char* pid = std::getenv("WATCHDOG_PID");
    if (!pid || std::strtol(pid, nullptr, 10) == ::getpid()) watchdog_usec_ = std::strtoull(wd, nullptr, 10);
  }
}

void Notifier::send(std::string_view state) const {
  if (!fd_.valid()) return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, addr_.data(), addr_.size());
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + addr_.size());
  (void)::sendto(fd_.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
}

}  // namespace fim
