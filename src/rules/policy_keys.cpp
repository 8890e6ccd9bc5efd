// SPDX-License-Identifier: GPL-2.0-or-later
// Every policy key: one row each, {tables, key, handler, type} (policy_keys.h). A key is
// accepted only through its row, so none can be listed without being handled.
#include "policy_keys.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "fim/base/duration.h"

namespace fim::rules {
namespace {

using V = ConfigValue;
using K = KeyContext;

constexpr uint8_t bit(Section s) { return static_cast<uint8_t>(1u << static_cast<unsigned>(s)); }
constexpr uint8_t kTop = bit(Section::Top), kOptions = bit(Section::Options), kRule = bit(Section::Rule),
                  kExclude = bit(Section::Exclude);

struct Row {
  uint8_t sections;
  std::string_view key;
  void (*handle)(K&, const V&);
  std::string_view type;  ///< what the value is, for completion and docs
};

/// "1 GiB", "500M", "0", "none" or an integer -> bytes.
std::optional<uint64_t> parse_size(const V& v) {
  if (v.kind == V::Kind::Integer) return v.integer >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(v.integer)) : std::nullopt;
  if (v.kind != V::Kind::String) return std::nullopt;
  const std::string& s = v.str;
  if (s == "none" || s == "unlimited") return 0;
  size_t i = 0;
  uint64_t n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (n > (UINT64_MAX - 9) / 10) return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(s[i++] - '0');
  }
  if (i == 0) return std::nullopt;
  while (i < s.size() && s[i] == ' ') ++i;
  const std::string unit = s.substr(i);
  static const std::pair<const char*, int> kUnits[] = {{"", 0},    {"B", 0},    {"K", 10},   {"KiB", 10}, {"M", 20},
                                                       {"MiB", 20}, {"G", 30},   {"GiB", 30}, {"T", 40},   {"TiB", 40}};
  for (const auto& [u, shift] : kUnits) {
    if (unit != u) continue;
    // At most INT64_MAX: TOML integers are signed 64-bit, and `config show` writes bytes.
    if (n > (static_cast<uint64_t>(INT64_MAX) >> shift)) return std::nullopt;
    return n << shift;
  }
  return std::nullopt;
}

/// read_timeout: an integer or float (seconds) or a duration string (base/duration.h, the
/// grammar the command line takes), at most a day.
Result<double> parse_seconds(const V& v, double max_seconds = 86400) {
  const DurationSpec spec{DurationSpec::kAllUnits, 0, max_seconds};
  if (v.kind == V::Kind::String) return parse_duration(v.str, spec);
  if (v.kind != V::Kind::Integer && v.kind != V::Kind::Float)
    return make_error(Errc::Usage, "must be seconds or a duration string, not " + std::string(v.type_name()));
  const double n = v.kind == V::Kind::Integer ? static_cast<double>(v.integer) : v.real;
  if (!(n >= 0 && n <= max_seconds))
    return make_error(Errc::Usage, "must be 0 to " + std::to_string(static_cast<long long>(max_seconds)) + " seconds");
  return n;
}

std::optional<uint32_t> file_type_bit(std::string_view name) {
  for (unsigned t = 1; t <= static_cast<unsigned>(FileType::BlockDev); ++t)
    if (file_type_name(static_cast<FileType>(t)) == name) return 1u << t;
  return std::nullopt;
}

/// "file, dir, ..., blockdev": the names file_type_bit() takes.
std::string file_type_names() {
  std::string out;
  for (unsigned t = 1; t <= static_cast<unsigned>(FileType::BlockDev); ++t)
    out += (t == 1 ? "" : ", ") + std::string(file_type_name(static_cast<FileType>(t)));
  return out;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 64) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_.:/=-", c) != nullptr;
  });
}

std::optional<Severity> severity_of(K& c, const V& v) {
  auto s = c.string(v);
  if (!s) return std::nullopt;
  if (auto sev = severity_from_name(*s)) return sev;
  c.error(v.where, c.what + ": unknown severity " + quote(*s) + " (info, low, medium, high, critical)");
  return std::nullopt;
}

std::optional<uint64_t> size_of(K& c, const V& v) {
  if (auto n = parse_size(v)) return n;
  c.error(v.where, c.what + " must be a size such as 1048576, \"512 MiB\" or \"none\"");
  return std::nullopt;
}

// --- the top level: the shape of each table; their contents are the rows below ---

void top_version(K& c, const V& v) {
  if (v.kind != V::Kind::Integer) c.error(v.where, "version must be an integer, not " + std::string(v.type_name()));
  else if (v.integer != 1)
    c.error(v.where, "policy format version " + std::to_string(v.integer) + " is not supported (this fimctl reads version 1)");
}
void top_include(K& c, const V& v) {
  if (auto l = c.strings(v)) c.includes = std::move(*l);
}
void top_table(K& c, const V& v) {
  if (v.kind != V::Kind::Table) c.error(v.where, quote(c.what) + " must be a table, not " + std::string(v.type_name()));
}
void top_array_of_tables(K& c, const V& v) {
  if (v.kind != V::Kind::Array || !v.array_of_tables)
    c.error(v.where, quote(c.what) + " must be an array of tables: write [[" + c.what + "]]");
}

// --- [options] ---

void opt_default_attrs(K& c, const V& v) {
  if (auto s = c.string(v)) c.default_attrs_expr = *s, c.default_attrs_pos = v.where;
}
void opt_severity(K& c, const V& v) {
  if (auto s = severity_of(c, v)) c.policy.default_severity = *s;
}
void opt_cross_fs(K& c, const V& v) {
  if (auto b = c.boolean(v)) c.policy.cross_fs = *b;
}
void opt_max_hash_size(K& c, const V& v) {
  if (auto n = size_of(c, v)) c.policy.max_hash_bytes = *n;
}
void opt_read_timeout(K& c, const V& v) {
  if (auto t = parse_seconds(v)) c.policy.read_timeout_seconds = *t;
  else c.error(v.where, c.what + ": " + t.error().message);
}
void opt_check_mode(K& c, const V& v) {
  auto s = c.string(v);
  if (!s) return;
  if (*s != "full" && *s != "fast") c.error(v.where, c.what + ": " + quote(*s) + " is not \"full\" or \"fast\"");
  else c.policy.check_mode = *s;
}
void opt_rehash_interval(K& c, const V& v) {
  auto t = parse_seconds(v, 366 * 86400.0);
  if (!t) c.error(v.where, c.what + ": " + t.error().message);
  else if (*t < 1) c.error(v.where, c.what + ": at least 1s (every entry is hashed again within it)");
  else c.policy.rehash_interval_seconds = *t;
}
void opt_package_mirrors(K& c, const V& v) {
  auto l = c.strings(v);
  if (!l) return;
  for (const auto& m : *l) {
    if (m.empty() || m[0] != '/') c.error(v.where, c.what + ": " + quote(m) + " is not an absolute path");
    else c.policy.package_mirrors.push_back(m);
  }
}

void opt_auto_accept(K& c, const V& v) {
  auto s = c.string(v);
  if (!s) return;
  if (*s != "package-verified" && *s != "off")
    c.error(v.where, c.what + ": " + quote(*s) + " is not \"package-verified\" or \"off\"");
  else c.policy.auto_accept = *s == "off" ? "" : *s;
}

void opt_content_deny(K& c, const V& v) {
  auto l = c.strings(v);
  if (!l) return;
  for (const auto& g : *l) {
    if (g.empty() || g[0] != '/') c.error(v.where, c.what + ": " + quote(g) + " is not an absolute path or glob");
    else c.policy.content_deny.push_back(g);
  }
}
void opt_content_store_max(K& c, const V& v) {
  if (auto n = size_of(c, v)) c.policy.content_store_max = *n;
}

// --- [[rule]] and [[exclude]] ---

template <SelectorKind kKind>
void rule_selector(K& c, const V& v) {
  ++c.selectors;
  c.selector_pos = v.where;
  if (auto s = c.string(v)) c.rule->pattern = *s, c.rule->kind = kKind;
}
void rule_depth(K& c, const V& v) {
  if (v.kind != V::Kind::Integer || v.integer < 0)
    c.error(v.where, c.what + " must be a non-negative integer (0: the matched entry only)");
  else c.rule->depth = static_cast<uint32_t>(std::min<int64_t>(v.integer, kAnyDepth - 1));
}
void rule_type(K& c, const V& v) {
  auto l = c.strings(v);
  if (!l) return;
  for (const auto& s : *l) {
    if (auto b = file_type_bit(s)) c.rule->types |= *b;
    else c.error(v.where, c.what + ": unknown file type " + quote(s) + " (" + file_type_names() + ")");
  }
}
void rule_fstype(K& c, const V& v) {
  auto l = c.strings(v);
  if (!l) return;
  const auto word = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
  for (const auto& s : *l) {
    if (s.empty() || s.size() > 32 || !std::all_of(s.begin(), s.end(), word))
      c.error(v.where, c.what + ": " + quote(s) + " is not a filesystem type name (ext4, tmpfs, nfs, fuse, ...)");
    else c.rule->fstypes.push_back(s);
  }
}
void rule_attrs(K& c, const V& v) {
  auto s = c.string(v);
  if (!s) return;
  auto a = parse_attr_expr(*s, c.policy.groups);
  if (a) c.rule->attrs = *a, c.rule->attrs_expr = *s;
  else c.error(v.where, c.what + ": " + a.error().message);
}
void rule_severity(K& c, const V& v) {
  if (auto s = severity_of(c, v)) c.rule->severity = *s;
}
void rule_tags(K& c, const V& v) {
  auto l = c.strings(v);
  if (!l) return;
  auto& tags = c.rule->tags;
  for (const auto& s : *l) {
    if (!valid_tag(s)) c.error(v.where, c.what + ": tag " + quote(s) + " must be 1-64 of A-Z a-z 0-9 _ . : / = -");
    else if (std::find(tags.begin(), tags.end(), s) == tags.end()) tags.push_back(s);
  }
  if (tags.size() > 32) c.error(v.where, c.what + ": more than 32 tags");
}
void rule_max_hash_size(K& c, const V& v) {
  if (auto n = size_of(c, v)) c.rule->max_hash_bytes = *n;
}
void rule_cross_fs(K& c, const V& v) {
  if (auto b = c.boolean(v)) c.rule->cross_fs = *b;
}
void rule_response(K& c, const V& v) {
  auto s = c.string(v);
  if (!s) return;
  if (*s == "kill") c.rule->response = Rule::Response::Kill;
  else if (*s == "kill_process") c.rule->response = Rule::Response::KillProcess;
  else if (*s != "none") c.error(v.where, c.what + ": unknown response " + quote(*s) + " (kill, kill_process, none)");
}
void rule_protect(K& c, const V& v) {
  if (auto b = c.boolean(v)) c.rule->protect = *b;
}
void rule_deny_unknown_exec(K& c, const V& v) {
  if (auto b = c.boolean(v)) c.rule->deny_unknown_exec = *b;
}
void rule_seal(K& c, const V& v) {
  if (auto b = c.boolean(v)) c.rule->seal = *b;
}
void rule_content(K& c, const V& v) {
  auto s = c.string(v);
  if (!s) return;
  if (*s != "diff" && *s != "none") c.error(v.where, c.what + ": " + quote(*s) + " is not \"diff\" or \"none\"");
  else c.rule->content_diff = *s == "diff";
}
void rule_content_max_size(K& c, const V& v) {
  auto n = size_of(c, v);
  if (!n) return;
  // The diff is bounded in memory by it (docs/design.md, Content store).
  if (*n == 0 || *n > (16u << 20)) c.error(v.where, c.what + " must be 1 byte to 16 MiB");
  else c.rule->content_max_bytes = *n;
}
void rule_content_private(K& c, const V& v) {
  if (auto b = c.boolean(v)) c.rule->content_private = *b;
}
void rule_content_mask(K& c, const V& v) {
  auto l = c.strings(v);
  if (!l) return;
  auto m = compile_content_masks(*l);
  if (!m) return c.error(v.where, c.what + ": " + m.error().message);
  c.rule->content_mask = *l;
  c.rule->masks = *m;
}

/// Every key, in the order fimctl.toml(5) lists them in each table.
const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {kTop, "version", top_version, "integer: 1"},
      {kTop, "include", top_include, "string or array of strings: files to load (globs)"},
      {kTop, "options", top_table, "table"},
      {kTop, "groups", top_table, "table: name = attribute expression"},
      {kTop, "rule", top_array_of_tables, "array of tables"},
      {kTop, "exclude", top_array_of_tables, "array of tables"},
      {kOptions, "default_attrs", opt_default_attrs, "attribute expression"},
      {kOptions, "severity", opt_severity, "info, low, medium, high or critical"},
      {kOptions, "cross_fs", opt_cross_fs, "boolean"},
      {kOptions, "max_hash_size", opt_max_hash_size, "size"},
      {kOptions, "read_timeout", opt_read_timeout, "duration"},
      {kOptions, "check_mode", opt_check_mode, "\"full\" or \"fast\""},
      {kOptions, "rehash_interval", opt_rehash_interval, "duration (1s to 366d)"},
      {kOptions, "package_mirrors", opt_package_mirrors, "array of absolute paths"},
      {kOptions, "auto_accept", opt_auto_accept, "\"package-verified\" or \"off\""},
      {kOptions, "content_deny", opt_content_deny, "array of absolute paths or globs"},
      {kOptions, "content_store_max", opt_content_store_max, "size"},
      {kRule | kExclude, "path", rule_selector<SelectorKind::Path>, "absolute path"},
      {kRule | kExclude, "glob", rule_selector<SelectorKind::Glob>, "glob"},
      {kRule | kExclude, "regex", rule_selector<SelectorKind::Regex>, "regular expression"},
      {kRule | kExclude, "depth", rule_depth, "non-negative integer"},
      {kRule | kExclude, "type", rule_type, "file types"},
      {kRule | kExclude, "fstype", rule_fstype, "filesystem types"},
      {kRule, "attrs", rule_attrs, "attribute expression"},
      {kRule, "severity", rule_severity, "info, low, medium, high or critical"},
      {kRule, "tags", rule_tags, "array of tags"},
      {kRule, "max_hash_size", rule_max_hash_size, "size"},
      {kRule, "cross_fs", rule_cross_fs, "boolean"},
      {kRule, "response", rule_response, "kill, kill_process or none"},
      {kRule, "protect", rule_protect, "boolean"},
      {kRule, "deny_unknown_exec", rule_deny_unknown_exec, "boolean"},
      {kRule, "seal", rule_seal, "boolean"},
      {kRule, "content", rule_content, "\"diff\" or \"none\""},
      {kRule, "content_max_size", rule_content_max_size, "size (1 byte to 16 MiB)"},
      {kRule, "content_private", rule_content_private, "boolean"},
      {kRule, "content_mask", rule_content_mask, "array of regular expressions"},
  };
  return kRows;
}

const Row* find_row(Section s, std::string_view key) {
  for (const auto& r : rows())
    if ((r.sections & bit(s)) && r.key == key) return &r;
  return nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    prev.swap(cur);
  }
  return prev[b.size()];
}

std::string unknown_key(std::string_view key, const ConfigTable& t) {
  std::string msg = "unknown key " + quote(key) + " in " + std::string(t.where);
  std::string_view best;
  size_t best_d = 3;
  for (auto k : t.keys)
    if (const size_t d = edit_distance(key, k); d < best_d) best_d = d, best = k;
  if (!best.empty()) return msg + " (did you mean '" + std::string(best) + "'?)";
  msg += " (known:";
  for (auto k : t.keys) msg += " " + std::string(k);
  return msg + ")";
}

constexpr std::string_view kTableNames[] = {"", "options", "rule", "exclude"};

}  // namespace

std::string_view ConfigValue::type_name() const {
  switch (kind) {
    case Kind::Table: return "a table";
    case Kind::Array: return "an array";
    case Kind::String: return "a string";
    case Kind::Integer: return "an integer";
    case Kind::Float: return "a float";
    case Kind::Boolean: return "a boolean";
    case Kind::Date: break;
  }
  return "a date or time";
}

std::optional<std::string> KeyContext::string(const ConfigValue& v) {
  if (v.kind == ConfigValue::Kind::String) return v.str;
  error(v.where, what + " must be a string, not " + std::string(v.type_name()));
  return std::nullopt;
}

std::optional<std::vector<std::string>> KeyContext::strings(const ConfigValue& v) {
  if (v.kind == ConfigValue::Kind::String) return std::vector<std::string>{v.str};
  if (v.kind != ConfigValue::Kind::Array) {
    error(v.where, what + " must be a string or an array of strings, not " + std::string(v.type_name()));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& e : v.items) {
    if (e.kind != ConfigValue::Kind::String) {
      error(e.where, what + " must hold strings, not " + std::string(e.type_name()));
      return std::nullopt;
    }
    out.push_back(e.str);
  }
  return out;
}

std::optional<bool> KeyContext::boolean(const ConfigValue& v) {
  if (v.kind == ConfigValue::Kind::Boolean) return v.boolean;
  error(v.where, what + " must be a boolean, not " + std::string(v.type_name()));
  return std::nullopt;
}

void dispatch(Section section, std::string_view key, const ConfigValue& v, const SourcePos& key_pos, KeyContext& ctx) {
  if (const Row* r = find_row(section, key)) return r->handle(ctx, v);
  if (section == Section::Exclude && find_row(Section::Rule, key))
    return ctx.error(key_pos, quote(key) + " has no meaning in an [[exclude]]: an excluded entry is not recorded at all");
  ctx.error(key_pos, unknown_key(key, config_table(kTableNames[static_cast<size_t>(section)])));
}

bool valid_group_name(std::string_view n) {
  if (n.empty() || n.size() > 64 || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

}  // namespace fim::rules

namespace fim {

const std::vector<ConfigTable>& config_keys() {
  // Derived from the rows: the loader dispatches through them, so this lists exactly what
  // it handles.
  static const std::vector<ConfigTable> kTables = [] {
    const std::string_view where[] = {"the top level", "[options]", "[[rule]]", "[[exclude]]"};
    std::vector<ConfigTable> out;
    for (size_t s = 0; s < std::size(rules::kTableNames); ++s) {
      ConfigTable t{rules::kTableNames[s], where[s], {}, {}};
      for (const auto& r : rules::rows())
        if (r.sections & (1u << s)) t.keys.push_back(r.key), t.types.push_back(r.type);
      out.push_back(std::move(t));
    }
    return out;
  }();
  return kTables;
}

const ConfigTable& config_table(std::string_view name) {
  for (const auto& t : config_keys())
    if (t.name == name) return t;
  std::abort();  // a caller in rules/ named a table that is not listed: a bug
}

}  // namespace fim
