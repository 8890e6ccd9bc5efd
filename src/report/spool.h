// SPDX-License-Identifier: GPL-2.0-or-later
// The report module's private parts: the spool the sinks hold records in, and the sinks.
#pragma once

#include <cstdio>
#include <string>

#include <memory>

#include "fim/base/result.h"
#include "fim/report.h"

namespace fim::report {

/// Lines held until the report is complete: in memory up to `memory_bound` bytes, then in an
/// unlinked file (O_TMPFILE) in `spill_dir`, the baseline's directory, or when that fails in
/// the temporary directory. A full /tmp alone never loses a report.
class Spool {
 public:
  static constexpr size_t kMemoryBound = size_t{64} << 20;
  explicit Spool(Bytes spill_dir = {}, size_t memory_bound = kMemoryBound);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  void line(const std::string& s);
  /// Writes every line to `out`; with a separator, lines are joined by it (no final newline).
  Status copy_to(FILE* out, const char* separator);
  size_t count() const { return count_; }

 private:
  void spill();
  Bytes spill_dir_;
  size_t memory_bound_;
  std::string mem_;       // the lines while they fit
  FILE* file_ = nullptr;  // once they did not
  bool failed_ = false;
  int errno_ = 0;
  size_t count_ = 0;
};

/// The sinks make_sink chooses between (plain.cpp, sink.cpp). `verbose`: the plain report
/// lists every change an apt run explains, not one line per package.
std::unique_ptr<Sink> make_plain_sink(FILE* out, bool color, bool verbose, const Bytes& spill_dir);
std::unique_ptr<Sink> make_json_sink(FILE* out, bool ndjson, const json::Writer* extra, const Bytes& spill_dir);

}  // namespace fim::report

namespace fim::report {
/// `inner` with ChangeGroups counted from the changes it is given (groups.cpp).
std::unique_ptr<Sink> with_groups(std::unique_ptr<Sink> inner);
}  // namespace fim::report
