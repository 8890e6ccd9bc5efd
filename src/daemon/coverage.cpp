// SPDX-License-Identifier: GPL-2.0-or-later
// Coverage (docs/design.md, Real time: loss is never silent): roots marked dirty when events
// were lost, the gap records that say for how long, and state.db keeping both. A failure to
// record coverage is itself reported (an alert, and status lists it until a write succeeds):
// a daemon that cannot say what it missed must not look as if it missed nothing.
#include <syslog.h>

#include <algorithm>

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
    for (const auto& r : roots) dirty_[r] = Mark{reason, now};
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
  if (first) {
    std::lock_guard<std::mutex> lk(mu_);
    degraded_.push_back(kEntry);
  }
  // Said once when it starts failing and then at most once a minute (a full disk fails every write).
  const double now = monotonic_seconds();
  double last = last_coverage_alert_.load();
  if (!first && now - last < 60) return;
  last_coverage_alert_ = now;
  sink_.alert("coverage_not_recorded", std::string("state.db did not record ") + what + " (" + st.error().describe() +
                                           "): a daemon restarted now would not know what it missed; run 'fimctl check'");
}

}  // namespace fim::watchd
