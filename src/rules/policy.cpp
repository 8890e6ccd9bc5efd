// SPDX-License-Identifier: GPL-2.0-or-later
// Policy values: severities, attribute groups and expressions, the canonical form whose
// digest a baseline stores.
#include <algorithm>

#include "fim/base/digest.h"
#include "fim/rules.h"

namespace fim {

namespace {
constexpr std::string_view kSeverities[] = {"info", "low", "medium", "high", "critical"};
}

std::string_view severity_name(Severity s) { return kSeverities[static_cast<size_t>(s)]; }

std::optional<Severity> severity_from_name(std::string_view name) {
  for (size_t i = 0; i < std::size(kSeverities); ++i)
    if (kSeverities[i] == name) return static_cast<Severity>(i);
  return std::nullopt;
}

AttrMask default_attrs() { return kAllAttrs & ~attr_bit(Attr::Dev) & ~attr_bit(Attr::Xxh128); }

namespace {

/// Every attribute of one of `kinds`, read from the registry (include/fim/attr.h).
AttrMask attrs_of_kind(std::initializer_list<AttrKind> kinds) {
  AttrMask m = 0;
  for (size_t i = 0; i < kAttrCount; ++i) {
    const AttrInfo& a = attr_info(static_cast<Attr>(i));
    if (std::find(kinds.begin(), kinds.end(), a.kind) != kinds.end()) m |= attr_bit(a.id);
  }
  return m;
}

}  // namespace

const std::vector<BuiltinGroup>& builtin_groups() {
  // Masks over the registry, not lists of names: an attribute added there joins R (and so L
  // and all) unless it is content (size, times, digests, the fs-verity digest; the file
  // handle is a Digest too, as inode and generation change when a log is rotated), which L
  // leaves out.
  static const std::vector<BuiltinGroup> kGroups = [] {
    const AttrMask r = default_attrs();
    const AttrMask content = attr_bit(Attr::Size) | attr_bit(Attr::Verity) | attrs_of_kind({AttrKind::Time, AttrKind::Digest});
    const AttrMask l = r & ~content;
    const AttrMask x = attrs_of_kind({AttrKind::Xattrs, AttrKind::Acl, AttrKind::Caps, AttrKind::Flags}) | attr_bit(Attr::Selinux);
    const AttrMask perms = attr_bit(Attr::Type) | attr_bit(Attr::Mode) | attr_bit(Attr::Uid) | attr_bit(Attr::Gid);
    return std::vector<BuiltinGroup>{
        {"R", {r, false}, "read-only files: everything but dev and xxh128 (the default)"},
        {"L", {l, false}, "files whose content changes: ownership, mode, identity; no size, times or digest"},
        {">", {l | attr_bit(Attr::Size) | attr_bit(Attr::Sha256), true},
         "growing logs: L plus size and the digest of the recorded size; a shrinking size or rewritten bytes are a change"},
        {"H", {attr_bit(Attr::Sha256), false}, "the content digest"},
        {"X", {x, false}, "extended attributes, ACLs, capabilities, label, flags"},
        {"perms", {perms, false}, "type, permission bits and owner"},
        {"acl", {attrs_of_kind({AttrKind::Acl}), false}, "both POSIX ACLs"},
        {"all", {kAllAttrs, false}, "every attribute fimctl knows"},
        {"none", {0, false}, "nothing: the entry's existence only (its type is always recorded)"},
    };
  }();
  return kGroups;
}

namespace {

bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '>' || c == '-'; }

const BuiltinGroup* builtin_group(std::string_view name) {
  for (const auto& g : builtin_groups())
    if (g.name == name) return &g;
  return nullptr;
}

/// "unknown attribute or group" lists what is known: the registry's attributes and the groups.
std::string known_names() {
  std::string out = "attributes:";
  for (size_t i = 0; i < kAttrCount; ++i) out += (i ? ", " : " ") + std::string(attr_info(static_cast<Attr>(i)).key);
  out += ", growing; groups:";
  for (size_t i = 0; i < builtin_groups().size(); ++i) out += (i ? ", " : " ") + std::string(builtin_groups()[i].name);
  return out + ", and [groups]";
}

Result<AttrSet> parse_expr(std::string_view expr, const std::map<std::string, AttrSet, std::less<>>& groups) {
  AttrSet out;
  size_t i = 0;
  bool any = false;
  while (i < expr.size()) {
    while (i < expr.size() && expr[i] == ' ') ++i;
    if (i == expr.size()) break;
    bool add = true;
    if (expr[i] == '+' || expr[i] == '-') {
      add = expr[i] == '+';
      ++i;
      while (i < expr.size() && expr[i] == ' ') ++i;
    } else if (any) {
      return make_error(Errc::Usage, "expected '+' or '-' before " + quote(expr.substr(i, 16)));
    }
    size_t j = i;
    if (j < expr.size() && expr[j] == '>') {
      ++j;  // ">" is a name of its own
    } else {
      while (j < expr.size() && is_word(expr[j]) && expr[j] != '-' && expr[j] != '>') ++j;
    }
    const std::string_view name = expr.substr(i, j - i);
    if (name.empty())
      return make_error(Errc::Usage, "expected an attribute or group name after " + quote(expr.substr(0, i)));
    AttrSet term;
    if (name == "growing") {
      term.growing = true;
    } else if (auto a = attr_from_key(name)) {
      term.mask = attr_bit(*a);
    } else if (auto g = groups.find(name); g != groups.end()) {
      term = g->second;
    } else if (const BuiltinGroup* b = builtin_group(name)) {
      term = b->attrs;
    } else {
      return make_error(Errc::Usage, "unknown attribute or group " + quote(name) + " (" + known_names() + ")");
    }
    if (add) {
      out.mask |= term.mask;
      out.growing |= term.growing;
    } else {
      out.mask &= ~term.mask;
      if (term.growing) out.growing = false;
    }
    any = true;
    i = j;
  }
  return out;
}

}  // namespace

Result<AttrSet> parse_attr_expr(std::string_view expr, const std::map<std::string, AttrSet, std::less<>>& groups) {
  const bool blank = std::all_of(expr.begin(), expr.end(), [](char c) { return c == ' '; });
  if (blank) return make_error(Errc::Usage, "empty attribute expression (use \"none\" for no attributes)");
  return parse_expr(expr, groups);
}

std::string attr_set_text(const AttrSet& s) {
  std::string out;
  for (size_t i = 0; i < kAttrCount; ++i) {
    if (!(s.mask & attr_bit(static_cast<Attr>(i)))) continue;
    if (!out.empty()) out += '+';
    out += attr_info(static_cast<Attr>(i)).key;
  }
  if (s.growing) out += out.empty() ? "growing" : "+growing";
  return out.empty() ? "none" : out;
}

std::string SourcePos::text() const {
  if (line == 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Rule::label(size_t index) const {
  return std::string(exclude ? "exclude" : "rule") + " #" + std::to_string(index + 1) + " (" + where.text() + ")";
}

void add_path_rules(Policy* p, const std::vector<Bytes>& paths, const std::string& where) {
  for (const auto& path : paths) {
    Rule r;
    r.kind = SelectorKind::Path;
    r.pattern = path;
    r.attrs = p->default_attrs;
    r.attrs.mask |= attr_bit(Attr::Type);  // as for every rule: the type says what the entry is
    r.attrs_expr = "(default_attrs)";
    r.severity = p->default_severity;
    r.max_hash_bytes = p->max_hash_bytes;
    r.cross_fs = p->cross_fs;
    r.where = SourcePos{where, 0, 0};
    if (compile_rule(&r)) p->rules.push_back(std::move(r));  // paths come normalised; cannot fail
  }
}

std::string policy_canonical(const Policy& p) {
  // Line-based; every free-form value is hex-free but length-prefixed so no value can
  // imitate a field separator.
  const auto str = [](std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); };
  std::string out = "fimctl-policy-v2\ndefault_attrs=" + attr_set_text(p.default_attrs) +
                    " severity=" + std::string(severity_name(p.default_severity)) +
                    " cross_fs=" + (p.cross_fs ? "1" : "0") + " max_hash_bytes=" + std::to_string(p.max_hash_bytes) + "\n";
  for (const auto& r : p.rules) {
    out += r.exclude ? "exclude" : "rule";
    out += " kind=" + std::string(selector_kind_name(r.kind)) + " pattern=" + str(r.pattern);
    out += " depth=" + (r.depth == kAnyDepth ? std::string("any") : std::to_string(r.depth));
    out += " types=" + std::to_string(r.types) + " fstypes=";
    for (const auto& f : r.fstypes) out += str(f) + ",";
    if (!r.exclude) {
      out += " attrs=" + attr_set_text(r.attrs) + " severity=" + std::string(severity_name(r.severity)) + " tags=";
      for (const auto& t : r.tags) out += str(t) + ",";
      out += " max_hash_bytes=" + std::to_string(r.max_hash_bytes) + " cross_fs=" + (r.cross_fs ? "1" : "0");
      // Only when set, so the digest of every policy written before these keys is unchanged.
      if (r.protect) out += " protect=1";
      if (r.deny_unknown_exec) out += " deny_unknown_exec=1";
    }
    out += "\n";
  }
  return out;
}

std::string policy_digest(const Policy& p) { return hex_encode(sha256_of(policy_canonical(p))); }

std::vector<Bytes> normalize_roots(std::vector<Bytes> roots) {
  std::sort(roots.begin(), roots.end());
  roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
  std::vector<Bytes> out;
  for (auto& r : roots) {
    const bool covered = std::any_of(out.begin(), out.end(), [&](const Bytes& o) { return path_within(r, o); });
    if (!covered) out.push_back(std::move(r));
  }
  // Sorting put "/a" before "/a.b" before "/a/x": a later root can only lie below an earlier
  // one that shares its prefix, but not necessarily the one just before it; the any_of
  // above checks all of them.
  return out;
}

}  // namespace fim
