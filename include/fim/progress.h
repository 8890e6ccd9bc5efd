// SPDX-License-Identifier: GPL-2.0-or-later
// The progress of a scan (docs/design.md, Record schema: the progress line): what init,
// check, update and accept have done of how much, and the one line that shows it on stderr. Pure
// text from numbers: nothing from a file name ever goes into it (terminal-safe by
// construction). The command line draws it (src/cli/progress_line.cpp); the watch daemon
// reports its rescans' progress as records at a bounded rate (RescanPacer).
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace fim {

/// One snapshot of a running scan. A total of 0 is unknown.
struct ScanProgress {
  uint64_t entries = 0;        ///< entries handed to the consumer so far
  uint64_t bytes = 0;          ///< bytes hashed so far, reads in flight included
  uint64_t total_entries = 0;  ///< entries the run will see; 0: unknown
  uint64_t total_bytes = 0;    ///< bytes of the regular files it will hash; 0: unknown (or none)
  bool counting = false;       ///< the totals are still being counted (init's pre-walk)
  bool done = false;           ///< the scan ended: its final counts (not drawn as progress)
};

/// 1234567 -> "1,234,567".
std::string group_thousands(uint64_t n);
/// Decimal units, one decimal below 100 of a unit: "512 B", "1.2 kB", "3.4 GB", "210 MB".
std::string human_bytes(double bytes);
/// Seconds as "0:42", "12:03" or "1:02:03" (rounded up to the second).
std::string clock_duration(double seconds);

/// How fast a scan goes, over the last `window` seconds of samples (or since the start while
/// it has run less than that): bytes/s and entries/s.
class RateMeter {
 public:
  explicit RateMeter(double window = 10) : window_(window) {}
  void add(double now, uint64_t entries, uint64_t bytes);
  double bytes_per_second() const;
  double entries_per_second() const;

 private:
  struct Sample {
    double t;
    uint64_t entries, bytes;
  };
  double window_;
  std::deque<Sample> samples_;
};

/// The fraction done (0..1), or a negative number when no total is known: by bytes when the
/// total bytes are known (a few large files dominate a scan's time), else by entries. Never 1
/// before the run ends: a file that grew can make the bytes exceed their total.
double progress_fraction(const ScanProgress& p);

/// Seconds left at the current rate; negative when unknown (no total, no rate yet).
double progress_eta(const ScanProgress& p, double bytes_per_second, double entries_per_second);

/// The line for a terminal (`tty`: a bar, redrawn in place by the caller) or for a log (one
/// plain line, no bar), without "\r" or a newline:
///   fimctl check: [#######.............] 35% 35,012/100,000 entries, 1.2 GB/3.4 GB, 210 MB/s, 0:42 left
///   fimctl check: 35% 35,012/100,000 entries, 1.2 GB/3.4 GB, 210 MB/s, 0:42 left
/// With no total: counts and the rate ("counting..." while init's pre-walk runs). The rate is
/// in bytes/s, or entries/s when nothing was read.
std::string progress_line(const std::string& command, const ScanProgress& p, double bytes_per_second,
                          double entries_per_second, bool tty);

/// The state at the end: "fimctl check: 100,000 entries, 3.4 GB in 12.3 s".
std::string progress_final_line(const std::string& command, const ScanProgress& p, double seconds);

/// The watch daemon's rescan_progress records: at most one every `interval` seconds per rescan,
/// and none for a rescan shorter than that.
class RescanPacer {
 public:
  explicit RescanPacer(double started, double interval = 10) : next_(started + interval), interval_(interval) {}
  /// True when a record is due at `now` (and the next one is then `interval` later).
  bool due(double now);

 private:
  double next_;
  double interval_;
};

}  // namespace fim
