// SPDX-License-Identifier: GPL-2.0-or-later
// check --fast (docs/design.md, Evidence): before each entry is collected, the plan chooses
// the evidence to try, from an unverified second reading of the baseline (hints) and from
// state.db's hashed-at times. The merge then holds every entry that was not hashed against the
// verified row, and hashes it when anything differs, so a hint can only save work, never
// make a difference go unreported.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fim/db.h"
#include "fim/state.h"
#include "fim/merge.h"
#include "fim/pipeline.h"

namespace fim::detail {

/// Within one boot, a realtime-minus-boottime offset that moved more than this since the last
/// check is a step of the clock (NTP slews; it does not step by more in normal operation).
inline constexpr int64_t kClockStepTolerance = 2'000'000'000;

/// The clock now, as state.db keeps it (CheckClock without full_ns and stat_void).
StateStore::CheckClock clock_now(const std::string& baseline_id);

/// Why stat evidence cannot be used after `last` (empty: it can): no earlier check of this
/// baseline, a step within one boot, a realtime earlier than the last check's after a reboot,
/// or a withdrawal an earlier run recorded (stat_void).
std::string stat_withdrawn(const std::optional<StateStore::CheckClock>& last, const StateStore::CheckClock& now);

class FastPlan {
 public:
  struct Facts {
    int64_t now_ns = 0;
    bool stat_ok = false;
    int64_t full_ns = 0;        ///< every entry hashed then (0: unknown)
    double interval_s = 7 * 86400.0;
    std::string baseline_id;    ///< seeds each entry's phase in the rolling re-hash
    std::vector<WatchedRoot> watched;
  };
  /// `state` (may be null: no entry has a hashed-at time) is read here, on the calling thread.
  static Result<std::unique_ptr<FastPlan>> open(const Bytes& db_path, StateStore* state, Facts f);

  /// ScanOptions::plan: on the walk's thread, in path order.
  void plan(const WalkItem& item, CollectOptions* co);

  /// A ctime later than the start of the run, seen by plan() (empty: none). Read after the scan.
  const Bytes& future_ctime() const { return future_; }

 private:
  FastPlan() = default;
  int64_t hashed_at(const Bytes& path) const;
  bool due(const Bytes& path, int64_t hashed) const;
  const WatchedRoot* watched_root(const Bytes& path) const;

  Facts f_;
  std::unique_ptr<BaselineReader> hints_;
  Record hint_;
  bool have_hint_ = false;
  bool hints_done_ = false;
  uint64_t lookup_seed_ = 0;
  uint64_t phase_seed_ = 0;
  std::vector<std::pair<uint64_t, int64_t>> hashed_;  // (keyed hash of path, at), sorted
  Bytes future_;
};

/// check's evidence (docs/design.md, Evidence): the mode, and for fast the plan, built from
/// what state.db remembers of earlier checks' clocks and hashes.
struct CheckEvidence {
  bool fast = false;
  StateStore::CheckClock now;
  std::optional<StateStore::CheckClock> last;
  std::unique_ptr<FastPlan> plan;
  std::vector<Bytes> hashed;  ///< files hashed and found as recorded, for their hashed-at rows
  bool hashed_overflow = false;
};

/// Hashed-at rows kept per run at most (16 MB of paths or so): a file beyond it is only hashed
/// again sooner than it had to be.
inline constexpr size_t kMaxHashedRows = 200000;

/// Before check's scan: the mode (--fast/--full, else the policy's), the clock, and for fast the
/// plan; stat_evidence_withdrawn is alerted here.
Result<CheckEvidence> check_evidence(const RunOptions& opts, Trusted& t, Summary* s, Sink& sink);
/// After a verified check: its clock and what it hashed, for the next fast check (a ctime later
/// than the clock makes the run incomplete, alert clock_behind_ctime). state.db's error, if any.
Status record_evidence(const RunOptions& opts, Trusted& t, CheckEvidence& ev, Summary* s, Sink& sink);

}  // namespace fim::detail
