// SPDX-License-Identifier: GPL-2.0-or-later
// watched_roots(): what a live watch daemon vouches for, for 'check --fast' (`watched`
// evidence, docs/design.md, Real time: coverage). Two sources must agree: the daemon's own
// answer on its socket, trusted by status's rules (its uid, its pid against state.db's
// heartbeat) and fresh (built after the request, so every event queued before it was read
// and its path recorded), and state.db's coverage row and evented paths for the same root,
// since and pid. Rows alone vouch for nothing: a daemon that died left them.
#include "fim/base/sys.h"
#include "fim/coverage_rows.h"
#include "fim/pipeline.h"

namespace fim {

Result<std::vector<WatchedRoot>> watched_roots(const Bytes& socket_path, const Bytes& db_path) {
  std::vector<WatchedRoot> out;
  auto s = watch_status(socket_path, db_path);
  // No daemon, or none that answers as it should: no `watched` evidence (the check hashes).
  if (!s || !s->running || !s->untrusted.empty()) return out;
  // Degraded (a mark failed, a mount hides a root, state.db not written, ...): any doubt.
  if (!s->degraded.empty() || s->covered.empty()) return out;
  Bytes dir, name;
  split_path(db_path, &dir, &name);
  auto store = StateStore::open(dir);
  if (!store) return store.error();
  for (const auto& c : s->covered) {
    // A dirty root is being rescanned: the daemon does not list it, but the record is checked too.
    bool dirty = false;
    for (const auto& d : s->dirty) dirty |= d.root == c.root;
    if (dirty || c.since_ns <= 0) continue;
    WatchedRoot w{c.root, c.since_ns, {}};
    auto row = CoverageRows(**store).get(db_path, c.root, &w.evented);
    if (!row) return row.error();
    if (!*row || (*row)->since_ns != c.since_ns || (*row)->pid != s->pid) continue;
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace fim
