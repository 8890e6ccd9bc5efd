// SPDX-License-Identifier: GPL-2.0-or-later
// The report module's private parts: the spool the sinks hold records in, and the sinks.
#pragma once

#include <cstdio>
#include <string>

#include <memory>

#include "fim/base/result.h"
#include "fim/report.h"

namespace fim::report {

/// Lines held in an unlinked temporary file until the report is complete.
class Spool {
 public:
  Spool();
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  void line(const std::string& s);
  /// Writes every line to `out`; with a separator, lines are joined by it (no final newline).
  Status copy_to(FILE* out, const char* separator);
  size_t count() const { return count_; }

 private:
  FILE* file_;
  bool failed_ = false;
  size_t count_ = 0;
};

/// The sinks make_sink chooses between (plain.cpp, sink.cpp).
std::unique_ptr<Sink> make_plain_sink(FILE* out, bool color);
std::unique_ptr<Sink> make_json_sink(FILE* out, bool ndjson, const json::Writer* extra);

}  // namespace fim::report
