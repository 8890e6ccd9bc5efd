// SPDX-License-Identifier: GPL-2.0-or-later
// Mounts over and under the watched roots (docs/design.md, Real time). A filesystem mounted
// over a watched directory or file hides what the baseline recorded and shows other files,
// and no fanotify event says so: the daemon keeps a snapshot of its mount table
// (/proc/self/mountinfo), reads it again when a mount changes (fanotify mount events on
// kernels from 6.14, else whenever the kernel flags the file, and every second), and reports
// each mount attached or detached at or below a root, or at or above one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/base/fd.h"
#include "fim/base/result.h"
#include "fim/container.h"

namespace fim::watchd {

/// mountinfo as the kernel writes it (fim::parse_mount_line for each line): a line that is not
/// a mount is an error naming it, since the text is not what the kernel writes.
Result<std::vector<MountEntry>> parse_mountinfo_strict(std::string_view text);

/// What changed between two snapshots of a mount table.
struct MountDiff {
  std::vector<MountEntry> detached, attached;
  bool empty() const { return detached.empty() && attached.empty(); }
};
/// By mount id. A mount that stays but changes place, source, type or options (moved,
/// remounted) is detached and attached again.
MountDiff diff_mounts(const std::vector<MountEntry>& before, const std::vector<MountEntry>& after);

/// The roots a mount concerns, as indexes into the roots given. Over: its mount point is below
/// the root, so it hides part of it. Under: its mount point is the root or above it, so the
/// whole root is now another tree.
struct MountImpact {
  std::vector<size_t> over, under;
  bool empty() const { return over.empty() && under.empty(); }
};
/// `real_roots` are real paths (symlinks resolved), as mount points are.
MountImpact mount_impact(const Bytes& point, const std::vector<Bytes>& real_roots);

/// A root's real path: symlinks resolved in the part that exists, the rest appended as it is.
Bytes real_root(const Bytes& root);

/// A fanotify group told of every mount attached to or detached from this process's mount
/// namespace (FAN_REPORT_MNT, FAN_MARK_MNTNS). Invalid where the kernel predates them
/// (before 6.14: EINVAL), with *why saying so.
UniqueFd open_mount_watch(std::string* why);

/// The daemon's view of its mount table and what tells it of changes.
class MountWatch {
 public:
  /// With `events`, fanotify mount events where the kernel has them; else, and always
  /// alongside, /proc/self/mountinfo (the kernel flags it with POLLPRI on every change in the
  /// namespace; it is also read every second). Takes the first snapshot.
  Status open(bool events);
  /// The fd to wait on (EPOLLIN for mount events, EPOLLPRI for mountinfo) and its events.
  int fd() const { return fan_.valid() ? fan_.get() : info_.get(); }
  uint32_t fd_events() const;
  /// Mount events in use (false: mountinfo alone), and why not.
  bool events() const { return fan_.valid(); }
  const std::string& why_not_events() const { return why_; }
  /// Reads and drops what woke fd (the snapshot says what changed).
  void drain();
  /// True once a second: time for a read even without a wakeup.
  bool due(double now);
  /// Reads mountinfo again and returns what changed since the last read (nothing when its
  /// text is the same).
  Result<MountDiff> refresh();
  /// The real paths of `roots` (resolved once per root, at its first use).
  std::vector<Bytes> real_roots(const std::vector<Bytes>& roots);
  /// The degraded lines a mount added (by mount id), removed when it is detached.
  std::map<uint64_t, std::vector<std::string>>& hiding() { return hiding_; }

 private:
  Result<std::string> read_info();

  UniqueFd fan_, info_;
  std::string why_, text_;
  std::vector<MountEntry> mounts_;
  std::map<Bytes, Bytes> real_;
  std::map<uint64_t, std::vector<std::string>> hiding_;
  double next_read_ = 0;
};

}  // namespace fim::watchd
