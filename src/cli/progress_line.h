// SPDX-License-Identifier: GPL-2.0-or-later
// The progress line of init, check, update and accept on stderr (docs/design.md, Reports: the
// progress line): --progress=auto|always|never.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "fim/progress.h"
#include "options.h"

namespace fim::cli {

/// Draws RunOptions::progress's snapshots. On a terminal: one line redrawn in place ("\r",
/// cleared with "\r\x1b[K" before anything else prints), at most 4 times a second. Into a
/// log (--progress=always, stderr not a terminal): a plain line every `interval` seconds, no
/// escapes. Either way a final line stays at the end.
class ProgressLine {
 public:
  ProgressLine(std::string command, bool tty, double interval, FILE* out = stderr);
  /// A snapshot from the run (on the run's thread).
  void update(const ScanProgress& p);
  /// Removes the line from the terminal (before a question, an error, the report).
  void clear();
  /// The final state ("fimctl check: 100,000 entries, 3.4 GB in 12.3 s") and a newline, when
  /// the run scanned something.
  void finish();

 private:
  std::string command_;
  bool tty_;
  double interval_;
  FILE* out_;
  double started_, last_draw_ = 0;
  bool shown_ = false, seen_ = false;
  ScanProgress last_;
  RateMeter rate_;
};

/// The line `o` asks for (--progress, -q, whether stderr is a terminal), or null for none.
/// FIMCTL_PROGRESS_INTERVAL (seconds; for tests) replaces the plain line's 10 s.
std::shared_ptr<ProgressLine> progress_line_for(const Options& o);

}  // namespace fim::cli
