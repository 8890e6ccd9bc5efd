// SPDX-License-Identifier: GPL-2.0-or-later
// The path matcher on arbitrary selectors: input is "pattern\npath". The pattern is compiled
// both as a glob and as a regex rule; whatever compiles is matched against the path through a
// one-rule policy (Selector) and, for globs, glob_match. Invariants:
//   - no single match takes a second (globs are an NFA, regexes are bounded by compile_rule:
//     docs/design.md, Threat model, T56);
//   - the Selector (which prunes by the fixed prefix) agrees with glob_match;
//   - for globs of '*' and '?' only, glob_match agrees with fnmatch(3) with FNM_PATHNAME.
#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "fim/rules.h"

using namespace fim;

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what, std::string_view pattern, std::string_view path) {
  std::fprintf(stderr, "match_fuzz: %s\npattern: %.*s\npath (%zu bytes): %.*s\n", what, static_cast<int>(pattern.size()),
               pattern.data(), path.size(), static_cast<int>(std::min<size_t>(path.size(), 200)), path.data());
  __builtin_trap();
}

template <class F>
auto timed(const char* what, std::string_view pattern, std::string_view path, F&& f) {
  const auto t0 = Clock::now();
  auto r = f();
  if (Clock::now() - t0 > std::chrono::seconds(1)) fail(what, pattern, path);
  return r;
}

/// Collapses "//", drops a trailing '/', prefixes '/': what a walk would hand the Selector.
std::string normalised(std::string_view path) {
  std::string out = "/";
  for (const char c : path) {
    if (c == '/' && out.back() == '/') continue;
    out += c;
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

/// One rule, depth 0 (its own match only), run through the Selector. A depth-0 rule's decision
/// does not depend on the parent's scope, so the single match of the path itself is timed with
/// an empty parent; scope_of (one match per ancestor, O(depth^2)) runs for shallow paths only.
bool selector_says(const Rule& r, std::string_view pattern, std::string_view path, const char* what) {
  Policy p;
  p.rules.push_back(r);
  p.rules.back().depth = 0;
  const Selector sel(p);
  Scope s;
  timed(what, pattern, path, [&] {
    sel.child_scope(Scope{}, path, &s);
    return 0;
  });
  const int w = sel.winner(s, FileType::File, "");
  if (std::count(path.begin(), path.end(), '/') <= 32) {
    const Scope full = sel.scope_of(path);
    if (sel.winner(full, FileType::File, "") != w) fail("scope_of and child_scope disagree", pattern, path);
  }
  if (w != -1 && w != 0) __builtin_trap();
  (void)sel.descend(path, s);
  (void)sel.may_match_below(path);
  return w == 0;
}

bool fnmatch_comparable(std::string_view pattern, std::string_view path) {
  if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
  for (const auto s : {pattern, path}) {
    if (s.find('\0') != std::string_view::npos || s.find("//") != std::string_view::npos) return false;
    if (s.size() > 1 && s.back() == '/') return false;
  }
  return pattern.find("**") == std::string_view::npos && pattern.find_first_of("\\[") == std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view pattern = in.substr(0, nl);
  const std::string_view raw_path = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  const std::string path = normalised(raw_path);

  const bool direct = timed("glob_match took more than 1 s", pattern, raw_path, [&] { return glob_match(pattern, raw_path); });

  Rule glob;
  glob.kind = SelectorKind::Glob;
  glob.pattern = std::string(pattern);
  if (compile_rule(&glob)) {
    if (!glob.compiled) __builtin_trap();
    const bool sel = selector_says(glob, pattern, path, "glob Selector took more than 1 s");
    const bool gm = glob_match(glob.pattern, path);
    if (sel != gm) fail(sel ? "Selector matches, glob_match does not" : "glob_match matches, Selector does not", glob.pattern, path);
    // Roots: the walk starts at the fixed prefix, so a match lies within it.
    if (gm) {
      Policy one;
      one.rules.push_back(glob);
      const auto roots = one.roots();
      if (roots.size() != 1 || !path_within(path, roots[0])) fail("glob matches outside its walk root", glob.pattern, path);
    }
  }

  if (fnmatch_comparable(pattern, raw_path)) {
    const std::string p(pattern), s(raw_path);
    const bool fm = ::fnmatch(p.c_str(), s.c_str(), FNM_PATHNAME) == 0;
    if (fm != direct) fail(direct ? "glob_match matches, fnmatch does not" : "fnmatch matches, glob_match does not", pattern, raw_path);
  }

  Rule rx;
  rx.kind = SelectorKind::Regex;
  rx.pattern = std::string(pattern);
  if (compile_rule(&rx)) {
    if (!rx.compiled) __builtin_trap();
    (void)selector_says(rx, pattern, path, "regex Selector took more than 1 s");
  }

  Rule lit;
  lit.kind = SelectorKind::Path;
  lit.pattern = std::string(pattern);
  if (compile_rule(&lit)) {
    if (selector_says(lit, pattern, path, "path Selector took more than 1 s") != (lit.pattern == path)) fail("path rule disagrees with equality", lit.pattern, path);
  }
  return 0;
}
