// SPDX-License-Identifier: GPL-2.0-or-later
// unified_diff (docs/design.md, Content store): diff -u's output on fixed cases, and on random
// texts a diff that, applied to the old text, gives the new one; the bounds.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "fim/diff.h"

using namespace fim;

namespace {

std::vector<std::string> lines_of(const std::string& t) {
  std::vector<std::string> out;
  size_t s = 0;
  while (s < t.size()) {
    size_t nl = t.find('\n', s);
    size_t e = nl == std::string::npos ? t.size() : nl + 1;
    out.push_back(t.substr(s, e - s));
    s = e;
  }
  return out;
}

/// Applies a unified diff (as unified_diff writes it) to `a`.
std::string patched(const std::string& a, const std::string& diff) {
  const auto old_lines = lines_of(a);
  const auto d = lines_of(diff);
  std::string out;
  size_t at = 0;  // next line of a to copy
  for (size_t i = 2; i < d.size(); ++i) {
    const std::string& l = d[i];
    if (l.rfind("@@ -", 0) == 0) {
      size_t start = std::stoul(l.substr(4));
      const size_t comma = l.find(',');
      const size_t space = l.find(' ', 4);
      const bool empty = comma != std::string::npos && comma < space && l.substr(comma + 1, space - comma - 1) == "0";
      const size_t first = empty ? start : start - 1;  // 0-based index of the hunk's first line
      while (at < first) out += old_lines[at++];
      continue;
    }
    if (l.rfind("\\ ", 0) == 0) {  // the line before had no newline
      if (!out.empty() && out.back() == '\n') out.pop_back();
      continue;
    }
    const std::string body = l.substr(1);
    if (l[0] == ' ') out += body, ++at;
    else if (l[0] == '-') ++at;
    else if (l[0] == '+') out += body;
  }
  while (at < old_lines.size()) out += old_lines[at++];
  return out;
}

}  // namespace

TEST_CASE("unified_diff prints what diff -u prints") {
  const std::string a = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n";
  const std::string b = "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nL\nm\nn";
  CHECK(unified_diff(a, b, "a/x", "b/x").text ==
        "--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -9,5 +9,6 @@\n i\n j\n k\n-l\n+L\n m\n+n\n"
        "\\ No newline at end of file\n");
  CHECK(unified_diff("", "x\ny\n", "a/x", "b/x").text == "--- a/x\n+++ b/x\n@@ -0,0 +1,2 @@\n+x\n+y\n");
  CHECK(unified_diff("x\ny\n", "", "a/x", "b/x").text == "--- a/x\n+++ b/x\n@@ -1,2 +0,0 @@\n-x\n-y\n");
  CHECK(unified_diff("same\n", "same\n", "a/x", "b/x").text.empty());
}

TEST_CASE("unified_diff: applying the diff to the old text gives the new one (random texts)") {
  std::mt19937 rng(42);
  const char* words[] = {"a\n", "b\n", "c\n", "dd\n", "e e\n", "\n", "f"};
  for (int round = 0; round < 500; ++round) {
    std::vector<std::string> la, lb;
    const size_t na = rng() % 40, edits = rng() % 12;
    for (size_t i = 0; i < na; ++i) la.push_back(words[rng() % 6]);
    lb = la;
    for (size_t i = 0; i < edits; ++i) {
      const size_t pos = lb.empty() ? 0 : rng() % lb.size();
      if (rng() % 2 || lb.empty()) lb.insert(lb.begin() + static_cast<long>(pos), words[rng() % 6]);
      else lb.erase(lb.begin() + static_cast<long>(pos));
    }
    std::string a, b;
    for (const auto& l : la) a += l;
    for (const auto& l : lb) b += l;
    if (rng() % 5 == 0) b += words[6];  // no newline at the end
    const TextDiff d = unified_diff(a, b, "a/x", "b/x", DiffLimits{3, 100000, 1 << 24, 4000});
    REQUIRE(d.unavailable.empty());
    CHECK(d.lines_omitted == 0);
    CHECK(patched(a, d.text) == b);
  }
}

TEST_CASE("unified_diff is bounded: lines and bytes counted, too many edits given up") {
  std::string a, b;
  for (int i = 0; i < 500; ++i) a += "line " + std::to_string(i) + "\n", b += "LINE " + std::to_string(i) + "\n";
  const TextDiff d = unified_diff(a, b, "a/x", "b/x");
  CHECK(d.unavailable.empty());
  CHECK(lines_of(d.text).size() == 200);
  CHECK(d.lines_omitted == 1003 - 200);  // ---, +++, @@, 500 -, 500 +
  const TextDiff small = unified_diff(a, b, "a/x", "b/x", DiffLimits{3, 200, 100, 4000});
  CHECK(small.text.size() <= 100);
  CHECK(lines_of(small.text).size() + small.lines_omitted == 1003);
  const TextDiff gave_up = unified_diff(a, b, "a/x", "b/x", DiffLimits{3, 200, 16384, 100});
  CHECK(gave_up.text.empty());
  CHECK(gave_up.unavailable == "more than 100 lines differ");
}
