// SPDX-License-Identifier: GPL-2.0-or-later
// diff::compare: which attributes differ between a baseline record and the current one.
// Pure functions over Records; the table in attr.h drives the loop.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "fim/attr.h"

namespace fim {

enum class ChangeKind : uint8_t { Added, Removed, Changed };
std::string_view change_kind_name(ChangeKind k);

/// The attributes that changed. Normally only attributes collected on both sides are
/// compared (an attribute the policy did not select, or that could not be read now, is not a
/// change). When the type changed, every attribute present on either side that differs is
/// listed, so a file replaced by a symlink shows its lost digest and its new target.
/// With `growing` (a log), a size that grew is not a change; one that shrank is.
AttrMask compare(const Record& old_rec, const Record& new_rec, bool growing = false);

/// A unified diff of two texts (unified.cpp), bounded for a report.
struct TextDiff {
  std::string text;             ///< "--- a/PATH\n+++ b/PATH\n@@ ... @@\n..." (the lines shown)
  uint64_t lines_omitted = 0;   ///< diff lines beyond the bounds, not in `text`
  std::string unavailable;      ///< why there is no diff (too many differences); empty: there is
};
struct DiffLimits {
  size_t context = 3;
  size_t max_lines = 200;        ///< diff lines shown (headers included)
  size_t max_bytes = 16 * 1024;  ///< bytes of `text`
  size_t max_edits = 4000;       ///< Myers' D: more lines inserted plus deleted give up
};
/// Myers' O(ND) diff of the lines of `a` and `b`, as `diff -u` prints it with labels `label_a`
/// and `label_b` (a last line without '\n' is followed by "\ No newline at end of file").
/// Time and memory are O((N+M)·D) and O(D²) with D at most max_edits; beyond: `unavailable`.
TextDiff unified_diff(std::string_view a, std::string_view b, std::string_view label_a, std::string_view label_b,
                      const DiffLimits& lim = {});

}  // namespace fim
