// SPDX-License-Identifier: GPL-2.0-or-later
// Container roots (docs/design.md, Containers): with watch --containers each running
// container is one more kind of root of the same daemon. Its overlay upper directory (where
// every write made inside it lands) is marked in the daemon's own fanotify group; an event
// below it becomes a pending container path (the container, a path inside it) that the worker
// compares against the image's baseline; a loss marks every container dirty as it marks the
// host's roots, and the worker rescans them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/container.h"
#include "fim/container_identity.h"
#include "sink.h"

namespace fim::watchd {

/// A running container the daemon watches: what its compares need, fixed when it is found.
struct ContainerRoot {
  Container c;
  ContainerIdentity id;  ///< as its runtime names it
  ImageBaselineKey key;  ///< baseline_key_of(): names the image's baseline
  Bytes db;         ///< images/<key>.db beside the host's baseline
  Bytes upper;      ///< the overlay's upper directory, on the host
  /// The "container" object its records carry ({"pid":..,"runtime":..,"id":..,"image":..}).
  std::string field;
  /// The same for people: container_label(), "podman container web (localhost/app:1, pid N)".
  std::string label;
};

/// Where a host path lies among the watched upper directories.
struct UpperPath {
  Bytes upper;   ///< the upper directory it is below (or is)
  Bytes inside;  ///< the path inside the container ("/" for the upper directory itself)
};
/// The upper directory `path` is at or below (the longest, should one lie below another) and
/// the container path it names; nothing when it is below none (the overlay's work directory,
/// a sibling of the upper one, is below none).
std::optional<UpperPath> upper_path(const std::set<Bytes>& uppers, const Bytes& path);

/// What the worker is to compare in one container (gathered by the main thread).
struct ContainerWork {
  std::set<Bytes> paths;       ///< inside the container
  std::set<Bytes> mark_trees;  ///< host paths of directories that came to be: marked before the compare
  Trigger trigger;             ///< the events; pid: the latest process that wrote
};

/// The containers' share of the pending work, under the Watcher's mutex.
struct ContainerQueue {
  struct Dirty {
    std::string reason;
    int64_t at_ns = 0;  ///< the latest loss: a rescan clears it only when it began after this
  };
  std::map<Bytes, std::shared_ptr<const ContainerRoot>> tracked;  ///< by upper, as the main thread last found them
  std::map<Bytes, ContainerWork> work;                            ///< by upper
  std::map<Bytes, Dirty> dirty;                                   ///< by upper
  size_t paths = 0;                                               ///< in `work`, for the pending bound

  bool has_work() const { return !work.empty() || !dirty.empty(); }
  /// A loss: every container is rescanned, its pending paths with it.
  void all_dirty(const std::string& reason, int64_t now_ns) {
    for (const auto& [upper, root] : tracked) dirty[upper] = Dirty{reason, now_ns};
    work.clear();
    paths = 0;
  }
  bool dirty_for(const std::string& reason) const {
    for (const auto& [upper, d] : dirty)
      if (d.reason == reason) return true;
    return false;
  }
};

/// What the worker takes in one go (a copy of `tracked` and `dirty`, the work moved).
struct ContainerBatch {
  std::map<Bytes, std::shared_ptr<const ContainerRoot>> tracked;
  std::map<Bytes, ContainerWork> work;
  std::map<Bytes, ContainerQueue::Dirty> dirty;
};

/// The containers found (main thread): discovery every poll, faster for a moment after a
/// mount came or went (a runtime mounts a container's root before its first process starts).
class ContainerRoots {
 public:
  ContainerRoots(Bytes db_path, double poll_seconds) : db_path_(std::move(db_path)), poll_(poll_seconds) {}
  /// Time to look again (the next look is scheduled then).
  bool due(double now) {
    if (now < next_) return false;
    next_ = now + (now < burst_until_ ? std::min(0.25, poll_) : poll_);
    return true;
  }
  /// A mount came or went: look now and a few times more over 3 s.
  void poke(double now) {
    next_ = 0;
    burst_until_ = now + 3;
  }
  struct Change {
    std::vector<std::shared_ptr<const ContainerRoot>> started, stopped;
  };
  /// What `found` (discover_containers()) starts and stops; containers without an upper
  /// directory (nothing in them can drift) are not tracked.
  Change update(const std::vector<Container>& found);
  const std::map<Bytes, std::shared_ptr<const ContainerRoot>>& tracked() const { return by_upper_; }
  const std::set<Bytes>& uppers() const { return uppers_; }
  /// True the first time an image without a baseline is met (said once per image).
  bool warn_no_baseline(const std::string& key) { return warned_.insert(key).second; }

 private:
  Bytes db_path_;
  double poll_;
  double next_ = 0, burst_until_ = 0;
  std::map<Bytes, std::shared_ptr<const ContainerRoot>> by_upper_;
  std::set<Bytes> uppers_;
  std::set<std::string> warned_;
};

}  // namespace fim::watchd
