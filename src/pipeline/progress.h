// SPDX-License-Identifier: GPL-2.0-or-later
// What a run tells RunOptions::progress (docs/design.md, Record schema: the progress line):
// entries done, bytes hashed with the reads in flight, and the totals where they can be known cheaply
// (a baseline's own counts, or init's pre-walk). Private to pipeline.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "fim/pipeline.h"

namespace fim::detail {

/// Calls the run's progress function at most every 250 ms, on the calling thread: per entry
/// (tick) and while the consumer waits for a slow read (the scan's `waiting` hook). Inert
/// when there is no progress function: nothing is counted and no pre-walk runs.
class ProgressTracker {
 public:
  explicit ProgressTracker(const std::function<void(const ScanProgress&)>& f) : f_(f) {}
  ~ProgressTracker();
  ProgressTracker(const ProgressTracker&) = delete;
  ProgressTracker& operator=(const ProgressTracker&) = delete;

  bool on() const { return static_cast<bool>(f_); }
  /// Known totals (0: unknown).
  void set_totals(uint64_t entries, uint64_t bytes);
  /// init with no earlier baseline: a walk of the same roots under the same policy on a thread
  /// of its own counts the totals while the scan runs: the entries from the listings, then the
  /// bytes while the scan leaves CPU idle (progress.cpp; never blocks or fails the scan).
  void count_in_background(const std::vector<Bytes>& roots, const Policy& policy, int root_fd);
  /// Counts the scan's bytes as they are read and keeps the line moving during long reads.
  void attach(ScanOptions* so);
  /// Bytes read outside a scan (accept's re-collection).
  std::atomic<uint64_t>* live_bytes() { return bytes_.get(); }
  void tick(uint64_t entries);
  /// The scan ended: the pre-walk stops, and the progress function sees the final counts.
  void finish(uint64_t entries);

  struct Count;  // the pre-walk's state, shared with its thread (progress.cpp)

 private:
  void report(bool force);
  void stop_count();

  const std::function<void(const ScanProgress&)>& f_;
  std::shared_ptr<std::atomic<uint64_t>> bytes_ = std::make_shared<std::atomic<uint64_t>>(0);
  uint64_t entries_ = 0, total_entries_ = 0, total_bytes_ = 0;
  uint64_t calls_ = 0;
  double last_ = 0;
  bool finished_ = false;
  std::shared_ptr<Count> count_;
};

}  // namespace fim::detail
