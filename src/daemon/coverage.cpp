// SPDX-License-Identifier: GPL-2.0-or-later
// Coverage (docs/design.md, Real time: loss is never silent): roots marked dirty when events
// were lost, the gap records that say for how long, and state.db keeping both. A failure to
// record coverage is itself reported (an alert, and status lists it until a write succeeds):
// a daemon that cannot say what it missed must not look as if it missed nothing.
//
// Continuous coverage (what 'check --fast' may rest `watched` evidence on, watched.cpp): a
// root is covered from the moment it is marked, its start (or last) rescan ended clean and no
// loss is pending, until anything casts doubt on it: a dirty mark (overflow, BPF loss, read
// error, mount change, new or replaced baseline), a failed mark, a reload, a state.db write
// that failed, too many evented paths, the daemon's stop. It then begins again later, never
// from before the doubt. The paths events named meanwhile go to state.db once a tick (one
// transaction), and before every status answer.
#include <syslog.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>

#include "fim/coverage_rows.h"
#include "daemon.h"

namespace fim::watchd {

/// The fields of a gap record: when events were lost, why, and the roots rescanned for it.
json::Writer gap_fields(int64_t start_ns, int64_t end_ns, const std::string& reason, const std::vector<Bytes>& roots) {
  json::Writer f = json::Writer::fields();
  f.str("start", format_time_ns(start_ns)).str("end", format_time_ns(end_ns)).str("reason", reason);
  roots_field(f, roots);
  return f;
}

void Watcher::mark_all_dirty(const std::string& reason, int64_t since_ns) {
  const int64_t now = now_ns();
  std::vector<Bytes> roots;
  {
    std::lock_guard<std::mutex> lk(mu_);
    roots = roots_;
    for (const auto& r : roots) set_dirty(r, reason, now);
    ctr_.all_dirty(reason, now);  // and every container's
    pending_.clear();  // the rescans cover them
    pending_dirs_.clear();
    pending_inodes_.clear();
  }
  for (const auto& r : roots) recorded(state_->mark_dirty(o_.run.db_path, r, reason, now), "a dirty root");
  if (reason != "coalesced") {
    // The gap is said when the rescan that closes it ends: events were lost from the last one
    // read before the loss until then (Watcher::close_gap).
    std::lock_guard<std::mutex> lk(mu_);
    auto [it, fresh] = open_gaps_.emplace(reason, since_ns);
    if (!fresh) it->second = std::min(it->second, since_ns);
  }
  cv_.notify_one();
}

void Watcher::close_gap(const std::string& reason, const std::vector<Bytes>& roots) {
  int64_t start = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    const auto g = open_gaps_.find(reason);
    if (g == open_gaps_.end()) return;
    for (const auto& [root, mark] : dirty_)
      if (mark.reason == reason) return;  // lost again during the rescan: the next one closes it
    if (ctr_.dirty_for(reason)) return;   // a container's rescan closes it
    start = g->second;
    open_gaps_.erase(g);
  }
  const int64_t end = now_ns();
  recorded(worker_state_->add_gap(o_.run.db_path, {start, end, reason}), "a gap");
  sink_.event("gap", gap_fields(start, end, reason, roots),
              "events lost (" + reason + ") from " + format_time_ns(start) + " until the rescan of every root ended",
              LOG_WARNING);
}

void Watcher::recorded(const Status& st, const char* what) {
  constexpr const char* kEntry = "state.db: coverage not recorded";
  if (st) {
    if (!coverage_failing_.exchange(false)) return;
    std::lock_guard<std::mutex> lk(mu_);
    degraded_.erase(std::remove(degraded_.begin(), degraded_.end(), kEntry), degraded_.end());
    return;
  }
  const bool first = !coverage_failing_.exchange(true);
  {
    // What state.db holds may lack evented paths now: no root stays covered from before.
    std::lock_guard<std::mutex> lk(mu_);
    if (first) degraded_.push_back(kEntry);
    covered_.clear();
    evented_.clear();
  }
  // Said once when it starts failing and then at most once a minute (a full disk fails every write).
  const double now = monotonic_seconds();
  double last = last_coverage_alert_.load();
  if (!first && now - last < 60) return;
  last_coverage_alert_ = now;
  sink_.alert("coverage_not_recorded", std::string("state.db did not record ") + what + " (" + st.error().describe() +
                                           "): a daemon restarted now would not know what it missed; run 'fimctl check'");
}

namespace {

/// Evented paths kept per root: beyond it the root's coverage begins again (empty) rather
/// than drop a path.
constexpr uint64_t kEventedMax = 100000;
/// A realtime clock whose offset to CLOCK_BOOTTIME moved by more than this was stepped.
constexpr int64_t kClockStepNs = 2'000'000'000;

int64_t boottime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

void Watcher::set_dirty(const Bytes& root, const std::string& reason, int64_t at_ns) {
  dirty_[root] = Mark{reason, at_ns};
  covered_.erase(root);
  evented_.erase(root);
}

void Watcher::note_evented(const Bytes& path) {
  for (auto& [root, since] : covered_) {
    if (!path_within(path, root)) continue;
    auto& set = evented_[root];
    set.insert(path);
    if (set.size() > kEventedMax) {  // a flood between two ticks: begin again
      evented_.erase(root);
      covered_.erase(root);
      return;
    }
  }
}

void Watcher::sync_coverage() {
  const int64_t now = now_ns();
  // A step of the realtime clock: a since from before it and a hash time from after it (or
  // the reverse) do not compare, so every root's coverage ends; and none begins at a time
  // earlier than one already seen (this daemon's, or its predecessor's last heartbeat).
  const int64_t offset = now - boottime_ns();
  const bool stepped = clock_offset_ != 0 && std::llabs(offset - clock_offset_) > kClockStepNs;
  clock_offset_ = offset;
  // Nothing begins while state.db fails to record the daemon's coverage (until its next
  // heartbeat or dirty mark is written): what it would vouch for could not be kept.
  const bool behind = now < clock_high_ns_ || coverage_failing_;
  clock_high_ns_ = std::max(clock_high_ns_, now);
  std::map<Bytes, std::set<Bytes>> paths;
  std::map<Bytes, int64_t> covered;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stepped) covered_.clear();
    for (auto it = covered_.begin(); it != covered_.end();) {
      const bool gone = std::find(roots_.begin(), roots_.end(), it->first) == roots_.end();
      it = gone || dirty_.count(it->first) || unmarked_.count(it->first) ? covered_.erase(it) : std::next(it);
    }
    // Whole again: marked, its rescan done, nothing pending against it.
    for (const auto& r : roots_)
      if (!behind && marked_roots_.count(r) && !dirty_.count(r) && !unmarked_.count(r) && !covered_.count(r))
        covered_[r] = now;
    paths.swap(evented_);
    covered = covered_;
  }
  const Bytes& base = o_.run.db_path;
  // Failures count as every coverage write's do; a success here does not clear them (an
  // update of these rows can succeed where the heartbeat and gap records do not).
  const auto failed = [&](const Status& st, const char* what) {
    if (!st) recorded(st, what);
  };
  const auto end = [&](const Bytes& root) {
    covered_db_[root] = -1;  // unknown until the write succeeds
    Status st = CoverageRows(*state_).end(base, root);
    if (st) covered_db_.erase(root);
    failed(st, "the end of a root's coverage");
    evented_db_.erase(root);
  };
  for (auto it = covered_db_.begin(); it != covered_db_.end();) {
    const Bytes root = (it++)->first;
    auto c = covered.find(root);
    if (c == covered.end() || c->second != covered_db_[root]) end(root);
  }
  for (const auto& [root, since] : covered) {
    if (covered_db_.count(root)) continue;
    Status st = CoverageRows(*state_).start(base, root, since, ::getpid());
    covered_db_[root] = st ? since : -1;
    evented_db_[root].clear();
    failed(st, "the start of a root's coverage");
  }
  for (auto it = paths.begin(); it != paths.end();) {  // only what a coverage in state.db holds
    auto c = covered.find(it->first);
    const bool keep = c != covered.end() && covered_db_.count(it->first) && covered_db_[it->first] == c->second;
    if (keep) {
      // A path state.db already holds is not written again (a flood rewrites the same files).
      const auto& known = evented_db_[it->first];
      for (auto p = it->second.begin(); p != it->second.end();) p = known.count(*p) ? it->second.erase(p) : std::next(p);
    }
    it = keep && !it->second.empty() ? std::next(it) : paths.erase(it);
  }
  if (paths.empty()) return;
  auto added = CoverageRows(*state_).add_evented(base, paths);
  if (!added) return failed(added.error(), "the paths events named");
  for (auto& [root, set] : paths) {
    auto& known = evented_db_[root];
    known.merge(set);
    if (known.size() <= kEventedMax) continue;
    std::lock_guard<std::mutex> lk(mu_);  // begins again, empty, at the next sync
    covered_.erase(root);
    evented_.erase(root);
  }
}

}  // namespace fim::watchd
