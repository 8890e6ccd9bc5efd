// SPDX-License-Identifier: GPL-2.0-or-later
// state.db's tables of the watch daemon's continuous coverage (docs/design.md, Real time:
// coverage; src/db/state_coverage.cpp): per root since when, by which daemon, and the paths
// events named since. Written by the daemon, read by watched_roots() only together with a
// live daemon's answer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "fim/db.h"
#include "fim/state.h"

namespace fim {

class CoverageRows {
 public:
  explicit CoverageRows(StateStore& store) : s_(store) {}
  struct Covered {
    int64_t since_ns = 0, pid = 0;
  };
  /// Coverage of `root` begins at since_ns: its evented paths are cleared.
  Status start(const Bytes& baseline, const Bytes& root, int64_t since_ns, int64_t pid);
  /// Coverage ends for `root` (empty: every root) and its evented paths go.
  Status end(const Bytes& baseline, const Bytes& root);
  /// Paths per root, in one transaction; how many were new per root.
  Result<std::map<Bytes, uint64_t>> add_evented(const Bytes& baseline, const std::map<Bytes, std::set<Bytes>>& paths);
  /// `root`'s coverage and (sorted) evented paths, read together; none when not covered.
  Result<std::optional<Covered>> get(const Bytes& baseline, const Bytes& root, std::vector<Bytes>* evented);

 private:
  StateStore& s_;
};

}  // namespace fim
