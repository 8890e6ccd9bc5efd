// SPDX-License-Identifier: GPL-2.0-or-later
// Selectors and precedence (see the top of fim/rules.h).
//
// Globs are matched component by component with a small NFA (a `**` state loops), so a
// pattern of any shape costs O(pattern x path) and the same code answers "could it match
// below this directory" for pruning. Regexes are POSIX EREs through glibc in the C locale
// (bytes): without back-references glibc matches in polynomial time, but it expands
// intervals at compile time, so their bounds are limited (docs/design.md, Threat model, T56).
#include <linux/magic.h>
#include <regex.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cstring>

#include "fim/rules.h"

namespace fim {

struct CompiledSelector {
  std::vector<Bytes> parts;  // glob: pattern components
  Bytes literal_prefix;      // path-valued fixed prefix: where a walk must start
  std::unique_ptr<regex_t, void (*)(regex_t*)> rx{nullptr, [](regex_t* r) {
                                                      regfree(r);
                                                      delete r;
                                                    }};
};

namespace {

constexpr size_t kMaxPattern = 4096;
constexpr size_t kMaxRegex = 1024;
constexpr uint64_t kMaxRegexNodes = 1024;  // estimated compiled size; regexec cost grows with it

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const size_t j = path.find('/', i);
    const size_t end = j == std::string_view::npos ? path.size() : j;
    if (end > i) out.push_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

/// One glob component against one name: *, ?, [...], \x. Iterative with one backtrack point
/// (the last star), O(pattern x name).
bool component_match(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star_p = std::string_view::npos, star_s = 0;
  const auto one = [&](size_t& pj, unsigned char c) -> bool {  // matches a non-star token at p[pj]
    const char pc = p[pj];
    if (pc == '?') return ++pj, true;
    if (pc == '\\' && pj + 1 < p.size()) {
      const bool ok = static_cast<unsigned char>(p[pj + 1]) == c;
      pj += 2;
      return ok;
    }
    if (pc == '[') {
      size_t k = pj + 1;
      bool neg = false;
      if (k < p.size() && (p[k] == '!' || p[k] == '^')) neg = true, ++k;
      bool hit = false, first = true;
      for (; k < p.size() && (first || p[k] != ']'); first = false) {
        unsigned char lo = static_cast<unsigned char>(p[k]);
        if (lo == '\\' && k + 1 < p.size()) lo = static_cast<unsigned char>(p[++k]);
        unsigned char hi = lo;
        if (k + 2 < p.size() && p[k + 1] == '-' && p[k + 2] != ']') {
          hi = static_cast<unsigned char>(p[k + 2]);
          k += 2;
        }
        if (c >= lo && c <= hi) hit = true;
        ++k;
      }
      if (k >= p.size()) {  // no closing bracket: a literal '['
        ++pj;
        return c == '[';
      }
      pj = k + 1;
      return hit != neg;
    }
    ++pj;
    return static_cast<unsigned char>(pc) == c;
  };
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = ++pi;
      star_s = si;
      continue;
    }
    size_t pj = pi;
    if (pi < p.size() && one(pj, static_cast<unsigned char>(s[si]))) {
      pi = pj;
      ++si;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

/// NFA over glob components: the set of pattern positions reachable after consuming `names`.
std::vector<bool> glob_states(const std::vector<Bytes>& parts, const std::vector<std::string_view>& names) {
  const size_t n = parts.size();
  std::vector<bool> cur(n + 1, false), next(n + 1, false);
  const auto close = [&](std::vector<bool>& st) {  // "**" may match zero components
    for (size_t i = 0; i < n; ++i)
      if (st[i] && parts[i] == "**") st[i + 1] = true;
  };
  cur[0] = true;
  close(cur);
  for (const auto name : names) {
    std::fill(next.begin(), next.end(), false);
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      if (!cur[i]) continue;
      if (parts[i] == "**") {
        // "**" does not match hidden components only by accident: it matches every name.
        next[i] = true;
        any = true;
      } else if (component_match(parts[i], name)) {
        next[i + 1] = true;
        any = true;
      }
    }
    cur.swap(next);
    if (!any) break;
    close(cur);
  }
  return cur;
}

bool has_glob_meta(std::string_view s) { return s.find_first_of("*?[\\") != std::string_view::npos; }

Status check_absolute(std::string_view what, std::string_view p) {
  if (p.empty() || p[0] != '/') return make_error(Errc::Usage, std::string(what) + " must be an absolute path (start with '/')");
  if (p.find('\0') != std::string_view::npos) return make_error(Errc::Usage, std::string(what) + " contains a NUL byte");
  for (const auto c : components(p))
    if (c == "." || c == "..") return make_error(Errc::Usage, std::string(what) + " must not contain '.' or '..' components");
  if (p.find("//") != std::string_view::npos) return make_error(Errc::Usage, std::string(what) + " contains '//'");
  return {};
}

/// Rejects what would make glibc's regcomp or regexec blow up: back-references, long
/// patterns, and patterns whose compiled size grows too far. glibc expands `x+` into `xx*` and
/// `x{m,n}` into n copies of x, so stacked or nested repetitions multiply ("/a++++++...",
/// "((a+)+)+", "(a{1,100}){1,100}" took seconds and gigabytes, fuzz-found). The size is
/// estimated the same way and capped at kMaxRegexNodes. Returns the fixed prefix.
Result<Bytes> check_regex(std::string_view rx) {
  if (rx.size() > kMaxRegex) return make_error(Errc::Usage, "regex longer than 1024 bytes");
  struct Frame {
    uint64_t total = 0;  // estimated nodes of this group so far
    uint64_t last = 0;   // nodes of the last item (what a quantifier repeats)
  };
  std::vector<Frame> stack(1);
  const auto add_item = [&](uint64_t n) {
    stack.back().last = n;
    stack.back().total += n;
  };
  const auto repeat = [&](uint64_t times) {  // the last item now appears `times` times
    Frame& f = stack.back();
    f.total += f.last * (times - 1);
    f.last *= times;
    return f.total <= kMaxRegexNodes;
  };
  const auto too_big = [] {
    return make_error(Errc::Usage, "regex too complex: nested or stacked repetitions (+, {m,n}) multiply its size past "
                                   "glibc's practical limit; simplify it");
  };
  bool after_quantifier = false;
  for (size_t i = 0; i < rx.size(); ++i) {
    const char c = rx[i];
    const bool quantifier = c == '*' || c == '+' || c == '?' || (c == '{' && rx.find('}', i) != std::string_view::npos);
    if (quantifier && after_quantifier)
      return make_error(Errc::Usage, "stacked repetitions ('a+*', 'a**', 'a+{2}') are not supported: group the "
                                     "repeated part instead");
    after_quantifier = quantifier;
    if (c == '\\' && i + 1 < rx.size()) {
      if (rx[i + 1] >= '1' && rx[i + 1] <= '9') return make_error(Errc::Usage, "back-references (\\1...) are not supported");
      ++i;
      add_item(1);
    } else if (c == '[') {  // a bracket expression is one item; '{' inside is literal
      size_t k = i + 1;
      if (k < rx.size() && rx[k] == '^') ++k;
      if (k < rx.size() && rx[k] == ']') ++k;
      while (k < rx.size() && rx[k] != ']') {
        if (rx[k] == '[' && k + 1 < rx.size() && (rx[k + 1] == ':' || rx[k + 1] == '.' || rx[k + 1] == '=')) {
          const size_t e = rx.find(std::string{rx[k + 1], ']'}, k + 2);
          k = e == std::string_view::npos ? rx.size() : e + 2;
        } else {
          ++k;
        }
      }
      i = k;
      add_item(1);
    } else if (c == '(') {
      if (stack.size() > 64) return too_big();
      stack.emplace_back();
    } else if (c == ')') {
      // glibc would take it as a literal, but it would also close the group fimctl wraps the
      // pattern in ("^(" pattern ")$"), changing what is anchored (fuzz-found).
      if (stack.size() == 1) return make_error(Errc::Usage, "unbalanced ')' in regex");
      const uint64_t inner = stack.back().total + 1;
      stack.pop_back();
      add_item(inner);
    } else if (c == '|') {
      stack.back().last = 0;
      stack.back().total += 1;
    } else if (c == '+') {
      if (!repeat(2)) return too_big();
    } else if (c == '*' || c == '?') {
      stack.back().total += 1;  // a loop or a branch, not a copy
    } else if (c == '{') {
      const size_t close = rx.find('}', i);
      if (close == std::string_view::npos) {  // not an interval: a literal '{'
        add_item(1);
        continue;
      }
      uint64_t lo = 0, hi = 0;
      bool comma = false;
      for (size_t k = i + 1; k < close; ++k) {
        if (rx[k] >= '0' && rx[k] <= '9') {
          uint64_t& v = comma ? hi : lo;
          v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(rx[k] - '0'), 100000);
        } else if (rx[k] == ',') {
          comma = true;
        }
      }
      const uint64_t copies = std::max<uint64_t>({lo, comma ? hi : lo, 1}) + (comma && hi == 0 ? 1 : 0);
      if (!repeat(copies)) return too_big();
      i = close;
    } else {
      add_item(1);
    }
    if (stack.back().total > kMaxRegexNodes) return too_big();
  }
  // The fixed prefix: literal bytes after an optional '^' up to the first operator. An
  // alternative at the top level ("/a|/b") has no common prefix: refused below.
  int depth = 0;
  for (size_t k = 0; k < rx.size(); ++k) {
    if (rx[k] == '\\') ++k;
    else if (rx[k] == '(') ++depth;
    else if (rx[k] == ')') --depth;
    else if (rx[k] == '|' && depth <= 0) return make_error(Errc::Usage, "a regex with '|' at the top level has no fixed beginning; "
                                                                         "group the alternatives: /usr/(bin|sbin)/.*");
  }
  size_t i = rx.size() && rx[0] == '^' ? 1 : 0;
  Bytes lit;
  for (; i < rx.size(); ++i) {
    const char c = rx[i];
    if (c == '\\' && i + 1 < rx.size() && std::strchr(".[]()*+?{}|^$\\/", rx[i + 1])) {
      lit += rx[++i];
      continue;
    }
    if (std::strchr(".[]()*+?{}|^$\\", c)) {
      if ((c == '*' || c == '?' || c == '{') && !lit.empty()) lit.pop_back();  // the last byte is optional
      break;
    }
    lit += c;
  }
  if (lit.empty() || lit[0] != '/')
    return make_error(Errc::Usage, "a regex must start with '/' (or '^/'): it is matched against whole paths, "
                                   "and its fixed beginning says where the walk starts");
  return lit;
}

/// The directory a fixed prefix lies in: "/usr/lib/x" -> "/usr/lib", "/usr/" -> "/usr".
Bytes dir_of_prefix(const Bytes& lit) {
  const size_t slash = lit.rfind('/');
  Bytes d = lit.substr(0, slash);
  return d.empty() ? Bytes("/") : d;
}

}  // namespace

std::string_view selector_kind_name(SelectorKind k) {
  switch (k) {
    case SelectorKind::Path: return "path";
    case SelectorKind::Glob: return "glob";
    case SelectorKind::Regex: return "regex";
  }
  return "path";
}

bool glob_match(std::string_view pattern, std::string_view path) {
  std::vector<Bytes> parts;
  for (auto c : components(pattern)) parts.emplace_back(c);
  const auto st = glob_states(parts, components(path));
  return st[parts.size()];
}

Status compile_rule(Rule* r) {
  auto c = std::make_shared<CompiledSelector>();
  if (r->pattern.size() > kMaxPattern) return make_error(Errc::Usage, "pattern longer than 4096 bytes");
  switch (r->kind) {
    case SelectorKind::Path: {
      if (r->pattern.size() > 1 && r->pattern.back() == '/') r->pattern.pop_back();
      FIM_TRY(check_absolute("path", r->pattern));
      c->literal_prefix = r->pattern;
      break;
    }
    case SelectorKind::Glob: {
      if (r->pattern.size() > 1 && r->pattern.back() == '/') r->pattern.pop_back();
      FIM_TRY(check_absolute("glob", r->pattern));
      for (auto part : components(r->pattern)) {
        if (part.find("**") != std::string_view::npos && part != "**")
          return make_error(Errc::Usage, "'**' must be a whole component (as in /usr/**/*.so)");
        c->parts.emplace_back(part);
      }
      // Consecutive "**" mean the same as one; keeping one bounds the NFA.
      c->parts.erase(std::unique(c->parts.begin(), c->parts.end(),
                                 [](const Bytes& a, const Bytes& b) { return a == "**" && b == "**"; }),
                     c->parts.end());
      Bytes fixed;
      for (const auto& part : c->parts) {
        if (has_glob_meta(part)) break;
        fixed += "/" + part;
      }
      c->literal_prefix = fixed.empty() ? Bytes("/") : fixed;
      break;
    }
    case SelectorKind::Regex: {
      auto lit = check_regex(r->pattern);
      if (!lit) return lit.error();
      c->literal_prefix = dir_of_prefix(*lit);
      auto* rx = new regex_t;
      const std::string anchored = "^(" + r->pattern + ")$";
      if (const int e = regcomp(rx, anchored.c_str(), REG_EXTENDED | REG_NOSUB); e != 0) {
        char buf[256];
        regerror(e, rx, buf, sizeof buf);
        delete rx;
        return make_error(Errc::Usage, std::string("invalid regex: ") + buf);
      }
      c->rx.reset(rx);
      break;
    }
  }
  r->compiled = std::move(c);
  return {};
}

std::vector<Bytes> Policy::roots() const {
  std::vector<Bytes> out;
  for (const auto& r : rules)
    if (!r.exclude && r.compiled) out.push_back(r.compiled->literal_prefix);
  return normalize_roots(std::move(out));
}

namespace {

bool selector_matches(const Rule& r, std::string_view path) {
  const CompiledSelector& c = *r.compiled;
  switch (r.kind) {
    case SelectorKind::Path:
      return path == r.pattern;
    case SelectorKind::Glob:
      if (!path_within(path, c.literal_prefix)) return false;
      return glob_states(c.parts, components(path))[c.parts.size()];
    case SelectorKind::Regex: {
      if (!path_within(path, c.literal_prefix)) return false;
      const std::string s(path);  // regexec needs a NUL-terminated string
      return regexec(c.rx.get(), s.c_str(), 0, nullptr, 0) == 0;
    }
  }
  return false;
}

int kind_rank(SelectorKind k) { return k == SelectorKind::Path ? 0 : k == SelectorKind::Glob ? 1 : 2; }

}  // namespace

Selector::Selector(const Policy& p) : p_(p) {
  for (const auto& r : p.rules) uses_fstype_ |= !r.fstypes.empty();
}

void Selector::child_scope(const Scope& parent, std::string_view path, Scope* out) const {
  out->clear();
  for (const Cover& c : parent)
    if (c.distance + 1 <= p_.rules[c.rule].depth) out->push_back({c.rule, c.distance + 1});
  for (uint32_t i = 0; i < p_.rules.size(); ++i) {
    if (!selector_matches(p_.rules[i], path)) continue;
    // A rule that also matched an ancestor ("/x/**") counts once, at its nearest match.
    auto same = std::find_if(out->begin(), out->end(), [&](const Cover& c) { return c.rule == i; });
    if (same != out->end()) same->distance = 0;
    else out->push_back({i, 0});
  }
}

Scope Selector::scope_of(std::string_view path) const {
  Scope s, next;
  child_scope(s, "/", &next);
  s.swap(next);
  Bytes prefix;
  for (auto part : components(path)) {
    prefix += "/";
    prefix += part;
    child_scope(s, prefix, &next);
    s.swap(next);
  }
  return s;
}

bool Selector::precedes(const Cover& a, const Cover& b) const {
  if (a.distance != b.distance) return a.distance < b.distance;
  const int ka = kind_rank(p_.rules[a.rule].kind), kb = kind_rank(p_.rules[b.rule].kind);
  if (ka != kb) return ka < kb;
  return a.rule > b.rule;  // defined later wins
}

int Selector::winner(const Scope& s, FileType t, std::string_view fstype, uint32_t extra) const {
  const Cover* best = nullptr;
  for (const Cover& c : s) {
    const Rule& r = p_.rules[c.rule];
    if (c.distance + extra > r.depth) continue;
    if (r.types && !(r.types & (1u << static_cast<unsigned>(t)))) continue;
    if (!r.fstypes.empty() && std::find(r.fstypes.begin(), r.fstypes.end(), fstype) == r.fstypes.end()) continue;
    if (!best || precedes(c, *best)) best = &c;
  }
  return best ? static_cast<int>(best->rule) : -1;
}

bool Selector::may_match_below(std::string_view dir) const {
  const Bytes below = dir == "/" ? Bytes("/") : Bytes(dir) + "/";
  const auto names = components(dir);
  for (const auto& r : p_.rules) {
    if (r.exclude) continue;  // an exclusion never selects anything
    const CompiledSelector& c = *r.compiled;
    switch (r.kind) {
      case SelectorKind::Path:
        if (r.pattern.size() > below.size() && r.pattern.compare(0, below.size(), below) == 0) return true;
        break;
      case SelectorKind::Glob: {
        if (!path_within(dir, c.literal_prefix) && !path_within(c.literal_prefix, dir)) break;
        const auto st = glob_states(c.parts, names);
        // Some state short of the end (or a "**" anywhere reachable) can consume more names.
        for (size_t i = 0; i < c.parts.size(); ++i)
          if (st[i]) return true;
        break;
      }
      case SelectorKind::Regex:
        // Conservative: anything below the fixed prefix, or on the way to it.
        if (path_within(dir, c.literal_prefix) || path_within(c.literal_prefix, dir)) return true;
        break;
    }
  }
  return false;
}

bool Selector::descend(std::string_view dir, const Scope& s) const {
  if (may_match_below(dir)) return true;
  // A child with no selector of its own is decided by the inherited covers (one level more).
  // Descend when some include could win for it: it is not beaten by an exclusion that applies
  // to every child whatever its type and filesystem.
  const Cover* best_excl = nullptr;
  for (const Cover& c : s) {
    const Rule& r = p_.rules[c.rule];
    if (!r.exclude || c.distance + 1 > r.depth || r.types || !r.fstypes.empty()) continue;
    if (!best_excl || precedes(c, *best_excl)) best_excl = &c;
  }
  for (const Cover& c : s) {
    const Rule& r = p_.rules[c.rule];
    if (r.exclude || c.distance + 1 > r.depth) continue;
    if (!best_excl || precedes(c, *best_excl)) return true;
  }
  return false;
}

std::string fstype_name(int64_t f_type) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {EXT4_SUPER_MAGIC, "ext4"},  // ext2 and ext3 share it
      {TMPFS_MAGIC, "tmpfs"}, {XFS_SUPER_MAGIC, "xfs"}, {BTRFS_SUPER_MAGIC, "btrfs"},
      {OVERLAYFS_SUPER_MAGIC, "overlay"}, {NFS_SUPER_MAGIC, "nfs"}, {CIFS_SUPER_MAGIC, "cifs"},
      {SMB2_SUPER_MAGIC, "smb2"}, {FUSE_SUPER_MAGIC, "fuse"}, {PROC_SUPER_MAGIC, "proc"},
      {SYSFS_MAGIC, "sysfs"}, {DEVPTS_SUPER_MAGIC, "devpts"}, {V9FS_MAGIC, "9p"},
      {RAMFS_MAGIC, "ramfs"}, {MSDOS_SUPER_MAGIC, "vfat"}, {EXFAT_SUPER_MAGIC, "exfat"},
      {ISOFS_SUPER_MAGIC, "iso9660"}, {SQUASHFS_MAGIC, "squashfs"}, {CGROUP_SUPER_MAGIC, "cgroup"},
      {CGROUP2_SUPER_MAGIC, "cgroup2"}, {DEBUGFS_MAGIC, "debugfs"}, {SECURITYFS_MAGIC, "securityfs"},
      {BPF_FS_MAGIC, "bpf"}, {NSFS_MAGIC, "nsfs"}, {BINFMTFS_MAGIC, "binfmt_misc"},
      {TRACEFS_MAGIC, "tracefs"}, {F2FS_SUPER_MAGIC, "f2fs"}, {EFIVARFS_MAGIC, "efivarfs"},
      {PSTOREFS_MAGIC, "pstore"}, {0x2fc12fc1, "zfs"}, {0x00c36400, "ceph"}, {0x19800202, "mqueue"},
      {0x5346544e, "ntfs"},
  };
  const uint32_t v = static_cast<uint32_t>(f_type);
  for (const auto& [magic, name] : kNames)
    if (magic == v) return name;
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

}  // namespace fim
