// SPDX-License-Identifier: GPL-2.0-or-later
// Where the daemon's fanotify marks go (docs/design.md, Real time). Not one filesystem mark
// for everything: that makes every write on the filesystem an event the kernel queues and the
// daemon reads, so a busy writer outside every root (a database under /var while /usr and
// /etc are watched) paid a third of its speed. Instead:
//   - an inode mark on every directory below a root (its children's changes included),
//   - an inode mark on each directory above a root (the root replaced or moved away),
//   - a filesystem mark for attribute changes only: link(2) changes a file's link count, so a
//     hard link made outside every root to a baseline file is seen when it is made; the file
//     then gets an inode mark of its own, and writes through any name of it are events,
//   - an inode mark on every baseline file that has a second name already.
// A directory created or moved in below a root is marked when its event is read, and its
// subtree before the worker compares it: whatever happened before a mark is seen by the
// compare that follows, whatever after it is an event.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "daemon.h"

namespace fim::watchd {

namespace {

/// The subdirectories of `fd` on the same filesystem (d_type, else fstatat).
std::vector<Bytes> subdirs(int fd, dev_t dev) {
  std::vector<Bytes> out;
  UniqueFd list(::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!list.valid()) return out;
  alignas(8) char buf[32 * 1024];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, list.get(), buf, sizeof buf);
    if (n <= 0) return out;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      if (!std::strcmp(d->d_name, ".") || !std::strcmp(d->d_name, "..")) continue;
      if (d->d_type != DT_DIR && d->d_type != DT_UNKNOWN) continue;
      struct stat sb;
      if (::fstatat(list.get(), d->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode)) continue;
      if (sb.st_dev == dev) out.emplace_back(d->d_name);  // another mount: not crossed, as the walk does not
    }
  }
}

}  // namespace

Status Watcher::mark_tree(const Bytes& top) {
  if (!fan_) return {};  // replayed events: nothing to mark
  UniqueFd fd(open_in_root(-1, top, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return {};  // gone, or not a directory: its parent's mark covers it
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0) return {};
  const dev_t dev = sb.st_dev;
  std::vector<Bytes> todo{top};
  Status first_error;
  while (!todo.empty()) {
    const Bytes dir = std::move(todo.back());
    todo.pop_back();
    UniqueFd d(open_in_root(-1, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) continue;  // removed since: its parent's event says so
    // Marked before it is listed: a name added after the listing is an event.
    if (Status st = fan_->mark(FanotifySource::Mark::Directory, d.get()); !st) {
      if (first_error) first_error = make_error(st.error().code, "cannot watch " + quote(dir), st.error().sys_errno);
      continue;
    }
    ++marks_;
    for (auto& name : subdirs(d.get(), dev)) todo.push_back(join_path(dir, name));
  }
  return first_error;
}

void Watcher::mark_file(int fd) {
  if (fan_ && fan_->mark(FanotifySource::Mark::File, fd)) ++marks_;
}

void Watcher::mark_root(const Bytes& r, int64_t now) {
  marked_roots_.insert(r);
  (void)sensors_.watch_root(r);  // a root that does not exist yet: fanotify's rescan covers it
  if (!fan_) return;  // replayed events: nothing to mark
  // Every directory above the root, and the links mark on each filesystem on the way (a root
  // that does not exist yet lands on its nearest existing ancestor's).
  Status ms;
  Bytes at = "/";
  for (size_t pos = 1; ms; ) {
    UniqueFd a(open_in_root(-1, at, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!a.valid()) break;
    if (at != r) ms = fan_->mark(FanotifySource::Mark::Ancestor, a.get());
    if (ms) ms = fan_->mark(FanotifySource::Mark::Links, a.get());
    if (ms) ms = locator_.add_filesystem(at);
    if (at == r || pos >= r.size()) break;
    size_t end = r.find('/', pos);
    if (end == Bytes::npos) end = r.size();
    at = join_path(at, r.substr(pos, end - pos));
    pos = end + 1;
  }
  struct stat sb;
  if (ms && ::stat(r.c_str(), &sb) == 0) {
    if (S_ISDIR(sb.st_mode)) {
      ms = mark_tree(r);
    } else {
      UniqueFd f(open_in_root(-1, r, O_PATH | O_CLOEXEC));
      if (f.valid()) ms = fan_->mark(FanotifySource::Mark::File, f.get());
    }
  }
  if (ms) return;
  const std::string why = ms.error().describe();
  {
    std::lock_guard<std::mutex> lk(mu_);
    degraded_.push_back(escape_terminal(r) + ": " + why);
    unmarked_.insert(r);  // not covered until a rescan marks it whole
    covered_.erase(r);
  }
  json::Writer f = json::Writer::fields();
  f.str("reason", "mark_failed");
  roots_field(f, {r});
  f.str("message", why);
  sink_.event("degraded", f, escape_terminal(r) + " is not watched in real time (" + why +
                                 "); it is checked at start and by every full check");
  recorded(state_->mark_dirty(o_.run.db_path, r, "mark_failed", now), "a dirty root");
}

}  // namespace fim::watchd
