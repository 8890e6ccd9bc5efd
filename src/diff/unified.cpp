// SPDX-License-Identifier: GPL-2.0-or-later
// unified_diff (fim/diff.h): Myers' O(ND) line diff, printed as `diff -u` prints it, bounded in
// time and memory by the number of edits and in output by lines and bytes (docs/design.md,
// Content store). The texts are masked before they get here.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "fim/diff.h"

namespace fim {
namespace {

/// Each line with its '\n' (the last may lack it): a changed "no newline at end" is a change.
std::vector<std::string_view> split_lines(std::string_view t) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < t.size()) {
    const size_t nl = t.find('\n', start);
    const size_t end = nl == std::string_view::npos ? t.size() : nl + 1;
    out.push_back(t.substr(start, end - start));
    start = end;
  }
  return out;
}

enum class Op : uint8_t { Equal, Delete, Insert };
struct Edit {
  Op op;
  size_t a, b;  // line indices in a and b (for Insert: a's position, for Delete: b's)
};

/// The edit script from a[lo_a, hi_a) to b[lo_b, hi_b), or false past max_edits.
bool myers(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b, size_t lo_a, size_t hi_a,
           size_t lo_b, size_t hi_b, size_t max_edits, std::vector<Edit>* out) {
  const auto n = static_cast<int64_t>(hi_a - lo_a), m = static_cast<int64_t>(hi_b - lo_b);
  const int64_t dmax = std::min<int64_t>(n + m, static_cast<int64_t>(max_edits));
  const int64_t off = dmax + 1;
  std::vector<int32_t> v(static_cast<size_t>(2 * dmax + 3), 0);
  std::vector<std::vector<int32_t>> trace;
  const auto at = [&](std::vector<int32_t>& vec, int64_t k) -> int32_t& { return vec[static_cast<size_t>(k + off)]; };
  int64_t found = -1;
  for (int64_t d = 0; d <= dmax && found < 0; ++d) {
    // V as it was before step d, for k in [-d, d]: what backtracking needs.
    trace.emplace_back(v.begin() + (off - d), v.begin() + (off + d + 1));
    for (int64_t k = -d; k <= d; k += 2) {
      int64_t x = (k == -d || (k != d && at(v, k - 1) < at(v, k + 1))) ? at(v, k + 1) : at(v, k - 1) + 1;
      int64_t y = x - k;
      while (x < n && y < m && a[lo_a + static_cast<size_t>(x)] == b[lo_b + static_cast<size_t>(y)]) ++x, ++y;
      at(v, k) = static_cast<int32_t>(x);
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return false;
  std::vector<Edit> rev;
  int64_t x = n, y = m;
  for (int64_t d = found; d >= 0; --d) {
    const std::vector<int32_t>& tv = trace[static_cast<size_t>(d)];
    const auto tat = [&](int64_t k) { return static_cast<int64_t>(tv[static_cast<size_t>(k + d)]); };
    const int64_t k = x - y;
    int64_t px = 0, py = 0;
    if (d > 0) {
      const int64_t pk = (k == -d || (k != d && tat(k - 1) < tat(k + 1))) ? k + 1 : k - 1;
      px = tat(pk);
      py = px - pk;
    }
    while (x > px && y > py) {
      --x, --y;
      rev.push_back({Op::Equal, lo_a + static_cast<size_t>(x), lo_b + static_cast<size_t>(y)});
    }
    if (d == 0) break;
    if (x == px) rev.push_back({Op::Insert, lo_a + static_cast<size_t>(x), lo_b + static_cast<size_t>(py)});
    else rev.push_back({Op::Delete, lo_a + static_cast<size_t>(px), lo_b + static_cast<size_t>(y)});
    x = px, y = py;
  }
  out->insert(out->end(), rev.rbegin(), rev.rend());
  return true;
}

std::string range(size_t start, size_t count) {
  // diff -u: "l" for one line, "l,c" otherwise; an empty range names the line before it.
  if (count == 1) return std::to_string(start + 1);
  return std::to_string(count == 0 ? start : start + 1) + "," + std::to_string(count);
}

/// Appends lines to the diff until a bound is reached, then only counts them.
class Out {
 public:
  Out(const DiffLimits& lim, TextDiff* d) : lim_(lim), d_(d) {}
  void line(std::string_view prefix, std::string_view body) {
    const bool no_newline = body.empty() || body.back() != '\n';
    if (!no_newline) body.remove_suffix(1);
    add(std::string(prefix) + std::string(body) + "\n");
    if (no_newline && prefix != "@@" && prefix != "---" && prefix != "+++") add("\\ No newline at end of file\n");
  }
  void raw(std::string s) { add(std::move(s)); }

 private:
  void add(std::string s) {
    if (full_ || lines_ + 1 > lim_.max_lines || d_->text.size() + s.size() > lim_.max_bytes) {
      full_ = true;
      ++d_->lines_omitted;
      return;
    }
    ++lines_;
    d_->text += s;
  }
  const DiffLimits& lim_;
  TextDiff* d_;
  size_t lines_ = 0;
  bool full_ = false;
};

}  // namespace

TextDiff unified_diff(std::string_view ta, std::string_view tb, std::string_view label_a, std::string_view label_b,
                      const DiffLimits& lim) {
  TextDiff d;
  const auto a = split_lines(ta), b = split_lines(tb);
  // The common beginning and end cost nothing: Myers runs on what lies between.
  size_t pre = 0;
  while (pre < a.size() && pre < b.size() && a[pre] == b[pre]) ++pre;
  size_t suf = 0;
  while (suf < a.size() - pre && suf < b.size() - pre && a[a.size() - 1 - suf] == b[b.size() - 1 - suf]) ++suf;
  std::vector<Edit> edits;
  for (size_t i = 0; i < pre; ++i) edits.push_back({Op::Equal, i, i});
  if (!myers(a, b, pre, a.size() - suf, pre, b.size() - suf, lim.max_edits, &edits)) {
    d.unavailable = "more than " + std::to_string(lim.max_edits) + " lines differ";
    return d;
  }
  for (size_t i = suf; i > 0; --i) edits.push_back({Op::Equal, a.size() - i, b.size() - i});

  Out out(lim, &d);
  bool header = false;
  size_t i = 0;
  while (i < edits.size()) {
    while (i < edits.size() && edits[i].op == Op::Equal) ++i;
    if (i == edits.size()) break;
    // A hunk: from `context` lines before this change to `context` lines after the last change
    // that follows within 2 * context equal lines.
    const size_t first = i >= lim.context ? i - lim.context : 0;
    size_t last = i;  // the last change in the hunk
    for (size_t j = i; j < edits.size() && j <= last + 2 * lim.context; ++j)
      if (edits[j].op != Op::Equal) last = j;
    const size_t end = std::min(edits.size(), last + lim.context + 1);
    size_t na = 0, nb = 0;
    for (size_t j = first; j < end; ++j) {
      na += edits[j].op != Op::Insert;
      nb += edits[j].op != Op::Delete;
    }
    if (!header) {
      out.raw("--- " + std::string(label_a) + "\n");
      out.raw("+++ " + std::string(label_b) + "\n");
      header = true;
    }
    out.raw("@@ -" + range(edits[first].a, na) + " +" + range(edits[first].b, nb) + " @@\n");
    for (size_t j = first; j < end; ++j) {
      const Edit& e = edits[j];
      if (e.op == Op::Equal) out.line(" ", a[e.a]);
      else if (e.op == Op::Delete) out.line("-", a[e.a]);
      else out.line("+", b[e.b]);
    }
    i = end;
  }
  return d;
}

}  // namespace fim
