// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's side of files held open for writing (see open_writers.h): which files
// count as watched, and each one found handed to the worker, flagged open_for_write, at
// every pass while it stays open. A pass that a bound stopped says so (a degraded record
// once, and the status lists it until a pass completes).
#include <sys/stat.h>

#include <algorithm>

#include "daemon.h"

namespace fim::watchd {

namespace {

// The scan's interval: a write through a shared mapping is reported within this (plus the
// pass and the compare). Documented in fimctl(8), WATCH.
constexpr double kOpenWriterInterval = 5;
constexpr const char* kIncomplete = "files held open for writing: scan incomplete";

}  // namespace

void Watcher::start_open_writers() {
  writers_.start(
      kOpenWriterInterval, ScanLimits{},
      [this](dev_t dev, uint64_t ino, const Bytes& path) { return watched_file(dev, ino, path); },
      [this](const std::vector<OpenWriter>& held, const ScanResult& pass) { queue_open_writers(held, pass); });
}

bool Watcher::below_root(dev_t dev, uint64_t ino, const Bytes& path) {
  // The holder's path is relative to its own root (a process in a container, a chroot): it
  // counts only when it names this very inode here too.
  if (std::find(own_files_.begin(), own_files_.end(), path) != own_files_.end()) return false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (std::none_of(roots_.begin(), roots_.end(), [&](const Bytes& r) { return path_within(path, r); })) return false;
  }
  struct stat st;
  return lstat_path(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == dev && st.st_ino == ino;
}

bool Watcher::watched_file(dev_t dev, uint64_t ino, const Bytes& path) {
  // Below a root by its path, or a file the baseline records whatever name it is held under
  // (a hard link outside every root, a root reached through a symlink): the worker finds its
  // baseline names by inode.
  if (below_root(dev, ino, path)) return true;
  std::lock_guard<std::mutex> lk(mu_);
  return inodes_ && std::binary_search(inodes_->begin(), inodes_->end(), ino);
}

void Watcher::queue_open_writers(const std::vector<OpenWriter>& held, const ScanResult& pass) {
  const bool incomplete = !pass.incomplete.empty();
  if (incomplete && !writers_incomplete_) {
    const std::string why = "a scan stopped at its bound on " + pass.incomplete + " after " + std::to_string(pass.processes) +
                            " processes, " + std::to_string(pass.fds) + " fds and " + std::to_string(pass.map_lines) +
                            " map lines; the next scans go on from there";
    json::Writer f = json::Writer::fields();
    f.str("reason", "open_writer_scan_incomplete").str("bound", pass.incomplete).str("message", why);
    sink_.event("degraded", f, "files held open for writing may be missed until a scan completes (" + why + ")");
  }
  if (incomplete != writers_incomplete_) {
    std::lock_guard<std::mutex> lk(mu_);
    if (incomplete) degraded_.push_back(kIncomplete);
    else degraded_.erase(std::remove(degraded_.begin(), degraded_.end(), kIncomplete), degraded_.end());
  }
  writers_incomplete_ = incomplete;
  if (held.empty()) return;
  const int64_t now = now_ns();
  std::vector<bool> by_path;  // else by inode (below_root takes mu_ itself)
  for (const auto& w : held) by_path.push_back(below_root(w.dev, w.ino, w.path));
  std::lock_guard<std::mutex> lk(mu_);
  for (size_t i = 0; i < held.size(); ++i) {
    const OpenWriter& w = held[i];
    // Beyond the bound the main thread's next event rescans every root (coalesced) anyway.
    if (pending_.size() + pending_inodes_.size() >= o_.max_pending) break;
    Trigger& t = by_path[i] ? pending_[w.path] : pending_inodes_[FileId{w.dev, w.ino}];
    if (by_path[i]) note_evented(w.path);  // by inode: noted when the worker names it
    t.open_for_write = true;
    if (t.pid <= 0) {
      t.pid = w.pid;
      t.comm = w.comm;
    }
    if (!t.first_ns) t.first_ns = now;
  }
  cv_.notify_one();
}

}  // namespace fim::watchd
