// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdio>
#include <string>

#include "fim/base/result.h"

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

}  // namespace fim::report
