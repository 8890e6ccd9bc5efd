// SPDX-License-Identifier: GPL-2.0-or-later
// TOML -> Policy. The only translation unit that sees toml++ (docs/design.md, Conventions 12).
//
// toml++ 3.3.0 (Debian 12) is used header-only with exceptions, caught here, and
// TOML_MAX_NESTED_VALUES=64 (deep nesting overflowed a 1 MiB stack). Its known crashers
// (docs/design.md, Policy) are kept away before it sees a byte: files over 1 MiB, NUL
// bytes, invalid UTF-8 and any non-ASCII character outside a string or comment are refused
// by prescan() with a position (the UB in is_non_ascii_horizontal_whitespace is reached only
// through non-ASCII code points where TOML allows none).
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 1
#define TOML_MAX_NESTED_VALUES 64
#define TOML_ENABLE_FORMATTERS 0
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>

// toml++ 3.3.0 asserts (or, under NDEBUG, *assumes*) conditions that hostile input breaks
// (parse_key on "[`", fuzz-found). Its assertion macros are redefined after its
// preprocessor header and before the rest: a broken assertion throws (the parser is not
// noexcept; caught below as a parse error) in every build type. Its TOML_UNREACHABLE in the
// Unicode tables (upstream #190) cannot be redefined that way (noexcept, void and bool
// functions share it): prescan() keeps non-ASCII away from where the parser looks for
// whitespace instead.
#include <toml++/impl/preprocessor.h>
namespace fim {
struct TomlInternalError : std::runtime_error {
  TomlInternalError() : std::runtime_error("input the TOML parser cannot handle") {}
};
}  // namespace fim
#undef TOML_ASSERT
#undef TOML_ASSERT_ASSUME
#define TOML_ASSERT(expr) ((expr) ? static_cast<void>(0) : throw ::fim::TomlInternalError())
#define TOML_ASSERT_ASSUME(expr) TOML_ASSERT(expr)
#include <toml++/toml.h>

#include "fim/base/fd.h"
#include "fim/base/sys.h"
#include "fim/rules.h"

namespace fim {
namespace {

constexpr size_t kMaxDiags = 20;
constexpr size_t kMaxFiles = 256;
constexpr size_t kMaxRules = 100000;
constexpr int kMaxIncludeDepth = 8;

struct Doc {
  std::string name;  // as shown in positions
  std::string dir;   // directory includes are relative to
  toml::table table;
};

class Loader {
 public:
  std::vector<ConfigDiag> diags;

  bool dropped = false;  // more problems than kMaxDiags

  void error(const std::string& file, uint32_t line, uint32_t col, std::string msg) {
    if (diags.size() < kMaxDiags) diags.push_back({SourcePos{file, line, col}, std::move(msg)});
    else dropped = true;
  }
  void error(const std::string& file, const toml::source_region& where, std::string msg) {
    error(file, where.begin.line, where.begin.column, std::move(msg));
  }

  /// Refuses what toml++ must not see; returns false with a diagnostic.
  bool prescan(const std::string& file, std::string_view text) {
    uint32_t line = 1, col = 1;
    enum { Code, Comment, Basic, Literal, MlBasic, MlLiteral } st = Code;
    char last = '\n';  // the last significant byte in code ('\n': the start of a line)
    std::string open;  // brackets open in values: '[' array, '{' inline table
    bool bare = false; // inside a bare value (number, boolean, date): up to a terminator
    for (size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c == 0) return error(file, line, col, "NUL byte in the file"), false;
      size_t len = 1;
      if (c >= 0x80) {
        len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
        bool ok = len != 0 && i + len <= text.size();
        for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
        if (ok && len == 3) {  // overlong or surrogate
          const auto c1 = static_cast<unsigned char>(text[i + 1]);
          ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
        }
        if (ok && len == 4) {
          const auto c1 = static_cast<unsigned char>(text[i + 1]);
          ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
        }
        if (!ok) return error(file, line, col, "invalid UTF-8 (the policy must be UTF-8 text)"), false;
        if (st == Code)
          return error(file, line, col, "non-ASCII character outside a string or comment (quote the key or value)"), false;
      }
      const auto at = [&](std::string_view s) { return text.substr(i, s.size()) == s; };
      switch (st) {
        case Code:
          // toml++ reads a bare value up to a terminator; a quote, '=' or non-ASCII inside
          // it reaches its Unicode UB ("1=1=\"é\"", fuzz-found): refuse them there.
          if (bare && std::strchr(" \t\r\n,]}#", c)) {
            bare = false;
          } else if (!bare && (last == '=' || (!open.empty() && open.back() == '[' && (last == '[' || last == ','))) &&
                     !std::strchr(" \t\r\n\"'[{#", c)) {
            bare = true;
          }
          if (bare && (c == '"' || c == '\'' || c == '='))
            return error(file, line, col, std::string("unexpected '") + static_cast<char>(c) + "' in a value"), false;
          if ((c == '"' || c == '\'') && !std::strchr("\n=[,{.", last)) {
            // Valid TOML opens a string only where a key or a value starts. Elsewhere
            // ("a=1\"é\"") toml++ would still be reading a bare token when it meets non-ASCII.
            return error(file, line, col, "unexpected quote (a string can only start a key or a value)"), false;
          }
          if (c == '[' && open.empty() && last == '\n') {
            // A table header. toml++ asserts (UB under NDEBUG) when its name starts with
            // anything but a bare-key character or a quote ("[`]", fuzz-found): say so here.
            size_t k = i + 1;
            if (k < text.size() && text[k] == '[') ++k;
            while (k < text.size() && (text[k] == ' ' || text[k] == '\t')) ++k;
            const auto n = k < text.size() ? static_cast<unsigned char>(text[k]) : '\n';
            if (!(std::isalnum(n) || n == '_' || n == '-' || n == '"' || n == '\'' || n == ']' || n == '\n' || n == '\r' || n == 0))
              return error(file, line, col + static_cast<uint32_t>(k - i),
                           "expected bare key starting character or string delimiter in a table name"), false;
          } else if (c == '[' || c == '{') {
            open.push_back(static_cast<char>(c));  // an array or inline table value
          } else if ((c == ']' || c == '}') && !open.empty()) {
            open.pop_back();
          }
          if (c == '#') st = Comment;
          else if (at("\"\"\"")) st = MlBasic, len = 3;
          else if (at("'''")) st = MlLiteral, len = 3;
          else if (c == '"') st = Basic;
          else if (c == '\'') st = Literal;
          if (c == '\n') last = '\n';
          else if (c != ' ' && c != '\t' && c != '\r') last = static_cast<char>(c);
          break;
        case Comment:
          if (c == '\n') st = Code, last = '\n';
          break;
        case Basic:
          if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') len = 2;
          else if (c == '"' || c == '\n') st = Code, last = c == '"' ? 's' : '\n';
          break;
        case Literal:
          if (c == '\'' || c == '\n') st = Code, last = c == '\'' ? 's' : '\n';
          break;
        case MlBasic:
          if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') len = 2;
          else if (at("\"\"\"")) {
            len = 3;
            while (i + len < text.size() && text[i + len] == '"' && len < 5) ++len;
            st = Code, last = 's';
          }
          break;
        case MlLiteral:
          if (at("'''")) {
            len = 3;
            while (i + len < text.size() && text[i + len] == '\'' && len < 5) ++len;
            st = Code, last = 's';
          }
          break;
      }
      for (size_t k = 0; k < len && i + k < text.size(); ++k) {
        if (text[i + k] == '\n') line++, col = 1;
        else if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) col++;
      }
      i += len;
    }
    return true;
  }

  /// Parses one document; nothing is added on failure (the diagnostic says why).
  std::optional<toml::table> parse(const std::string& file, std::string_view text) {
    if (text.size() >= 2 && ((text[0] == '\xFF' && text[1] == '\xFE') || (text[0] == '\xFE' && text[1] == '\xFF'))) {
      error(file, 1, 1, "UTF-16 byte-order mark: save the policy as UTF-8");
      return std::nullopt;
    }
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 BOM is harmless
    if (!prescan(file, text)) return std::nullopt;
    try {
      return toml::parse(text, file);
    } catch (const toml::parse_error& e) {
      error(file, e.source(), escape_terminal(e.description()));  // it may quote raw input
    } catch (const TomlInternalError&) {
      error(file, 1, 1, "the TOML parser cannot read this file (malformed input it does not reject cleanly)");
    } catch (const std::exception& e) {  // bad_alloc and the like: still one clear line
      error(file, 0, 0, std::string("cannot parse: ") + e.what());
    }
    return std::nullopt;
  }
};

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date or time";
  }
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

std::string unknown_key(std::string_view key, std::string_view where, const std::vector<std::string_view>& known) {
  std::string msg = "unknown key '" + escape_terminal(key) + "' in " + std::string(where);
  std::string_view best;
  size_t best_d = 3;
  for (auto k : known)
    if (const size_t d = edit_distance(key, k); d < best_d) best_d = d, best = k;
  if (!best.empty()) msg += " (did you mean '" + std::string(best) + "'?)";
  else {
    msg += " (known:";
    for (auto k : known) msg += " " + std::string(k);
    msg += ")";
  }
  return msg;
}

bool is_known(const ConfigTable& t, std::string_view key) {
  return std::find(t.keys.begin(), t.keys.end(), key) != t.keys.end();
}

/// 30 (seconds), "30s", "500ms", "2m", "1h" or "0" -> seconds, at most a day.
std::optional<double> parse_seconds(const toml::node& n) {
  double v = -1;
  if (auto i = n.value_exact<int64_t>()) {
    v = static_cast<double>(*i);
  } else if (auto s = n.value_exact<std::string>()) {
    const std::string& t = *s;
    size_t digits = 0;
    while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
    if (digits == 0 || digits > 9) return std::nullopt;
    const double num = std::strtod(t.substr(0, digits).c_str(), nullptr);
    const std::string unit = t.substr(digits);
    if (unit.empty() || unit == "s") v = num;
    else if (unit == "ms") v = num / 1000;
    else if (unit == "m") v = num * 60;
    else if (unit == "h") v = num * 3600;
    else return std::nullopt;
  }
  if (v < 0 || v > 86400) return std::nullopt;
  return v;
}

/// "1 GiB", "500M", "0", "none" or an integer -> bytes.
std::optional<uint64_t> parse_size(const toml::node& n) {
  if (auto i = n.value_exact<int64_t>()) return *i >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(*i)) : std::nullopt;
  auto s = n.value_exact<std::string>();
  if (!s) return std::nullopt;
  if (*s == "none" || *s == "unlimited") return 0;
  size_t i = 0;
  uint64_t v = 0;
  while (i < s->size() && std::isdigit(static_cast<unsigned char>((*s)[i]))) {
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>((*s)[i++] - '0');
  }
  if (i == 0) return std::nullopt;
  while (i < s->size() && (*s)[i] == ' ') ++i;
  const std::string unit = s->substr(i);
  static const std::pair<const char*, int> kUnits[] = {{"", 0},    {"B", 0},    {"K", 10},   {"KiB", 10}, {"M", 20},
                                                       {"MiB", 20}, {"G", 30},   {"GiB", 30}, {"T", 40},   {"TiB", 40}};
  for (const auto& [u, shift] : kUnits) {
    if (unit != u) continue;
    // At most INT64_MAX: TOML integers are signed 64-bit, and `config show` writes bytes.
    if (v > (static_cast<uint64_t>(INT64_MAX) >> shift)) return std::nullopt;
    return v << shift;
  }
  return std::nullopt;
}

std::optional<uint32_t> file_type_bit(std::string_view name) {
  static const std::pair<const char*, FileType> kTypes[] = {
      {"file", FileType::File},      {"dir", FileType::Dir},        {"symlink", FileType::Symlink},
      {"fifo", FileType::Fifo},      {"socket", FileType::Socket},  {"chardev", FileType::CharDev},
      {"blockdev", FileType::BlockDev},
  };
  for (const auto& [n, t] : kTypes)
    if (name == n) return 1u << static_cast<unsigned>(t);
  return std::nullopt;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 64) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_.:/=-", c) != nullptr;
  });
}

bool valid_group_name(std::string_view n) {
  if (n.empty() || n.size() > 64 || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

class Builder {
 public:
  Builder(Loader& l, Policy& p) : l_(l), p_(p) {}

  void options(const Doc& d) {
    const auto* opts = d.table.get("options");
    if (!opts) return;
    if (!opts->is_table()) return l_.error(d.name, opts->source(), "'options' must be a table, not " + type_name(*opts));
    const ConfigTable& known = config_table("options");
    for (auto&& [k, v] : *opts->as_table()) {
      const std::string key(k.str());
      if (!is_known(known, key)) {
        l_.error(d.name, k.source(), unknown_key(key, known.where, known.keys));
      } else if (key == "default_attrs") {
        if (auto s = string_of(d, v, "options.default_attrs")) default_attrs_expr_ = *s, default_attrs_pos_ = {d.name, v.source()};
      } else if (key == "severity") {
        if (auto s = string_of(d, v, "options.severity")) {
          if (auto sev = severity_from_name(*s)) p_.default_severity = *sev;
          else l_.error(d.name, v.source(), "options.severity: unknown severity '" + escape_terminal(*s) + "' (info, low, medium, high, critical)");
        }
      } else if (key == "cross_fs") {
        if (auto b = v.value_exact<bool>()) p_.cross_fs = *b;
        else l_.error(d.name, v.source(), "options.cross_fs must be a boolean, not " + type_name(v));
      } else if (key == "max_hash_size") {
        if (auto n = parse_size(v)) p_.max_hash_bytes = *n;
        else l_.error(d.name, v.source(), "options.max_hash_size must be a size such as 1048576, \"512 MiB\" or \"none\"");
      } else if (key == "read_timeout") {
        if (auto t = parse_seconds(v)) p_.read_timeout_seconds = *t;
        else l_.error(d.name, v.source(), "options.read_timeout must be seconds (an integer) or a duration such as \"30s\", \"2m\" or \"0\" (wait forever), at most a day");
      } else if (key == "package_mirrors") {
        if (auto l = strings_of(d, v, "options.package_mirrors")) {
          for (const auto& m : *l) {
            if (m.empty() || m[0] != '/') l_.error(d.name, v.source(), "options.package_mirrors: '" + escape_terminal(m) + "' is not an absolute path");
            else p_.package_mirrors.push_back(m);
          }
        }
      } else {
        l_.error(d.name, k.source(), "internal error: options." + key + " is listed but not handled");
      }
    }
  }

  void collect_groups(const Doc& d) {
    const auto* g = d.table.get("groups");
    if (!g) return;
    if (!g->is_table()) return l_.error(d.name, g->source(), "'groups' must be a table, not " + type_name(*g));
    for (auto&& [k, v] : *g->as_table()) {
      const std::string name(k.str());
      if (!valid_group_name(name)) {
        l_.error(d.name, k.source(), "group name '" + escape_terminal(name) + "' must be a letter or '_' followed by letters, digits or '_'");
        continue;
      }
      const bool builtin = std::any_of(builtin_groups().begin(), builtin_groups().end(), [&](const auto& b) { return b.name == name; });
      if (builtin || attr_from_key(name) || name == "growing") {
        l_.error(d.name, k.source(), "group '" + name + "' would redefine a built-in group or attribute");
        continue;
      }
      auto s = string_of(d, v, "groups." + name);
      if (!s) continue;
      if (auto it = group_src_.find(name); it != group_src_.end()) {
        l_.error(d.name, k.source(), "group '" + name + "' is already defined at " + it->second.pos.text());
        continue;
      }
      group_src_[name] = {*s, SourcePos{d.name, k.source().begin.line, k.source().begin.column}};
    }
  }

  void resolve_groups() {
    for (const auto& [name, src] : group_src_) resolve_group(name, 0);
    if (!default_attrs_expr_.empty()) {
      auto a = parse_attr_expr(default_attrs_expr_, p_.groups);
      if (a) p_.default_attrs = *a;
      else l_.error(default_attrs_pos_.file, default_attrs_pos_.line, default_attrs_pos_.column, "options.default_attrs: " + a.error().message);
    } else {
      p_.default_attrs = AttrSet{default_attrs(), false};
    }
  }

  /// [[rule]] and [[exclude]] tables of one document, in the order they appear in it (TOML
  /// keeps them in two arrays; "defined last wins" needs the file's order).
  void rules(const Doc& d) {
    std::vector<std::pair<const toml::table*, bool>> all;
    for (const bool exclude : {false, true}) {
      const char* key = exclude ? "exclude" : "rule";
      const auto* arr = d.table.get(key);
      if (!arr) continue;
      const auto* a = arr->as_array();
      if (!a || !a->is_array_of_tables()) {
        l_.error(d.name, arr->source(), std::string("'") + key + "' must be an array of tables: write [[" + key + "]]");
        continue;
      }
      for (const auto& n : *a) all.emplace_back(n.as_table(), exclude);
    }
    std::stable_sort(all.begin(), all.end(), [](const auto& x, const auto& y) {
      const auto& a = x.first->source().begin;
      const auto& b = y.first->source().begin;
      return a.line != b.line ? a.line < b.line : a.column < b.column;
    });
    for (const auto& [t, exclude] : all) {
      if (p_.rules.size() >= kMaxRules) return l_.error(d.name, t->source(), "more than 100000 rules");
      rule(d, *t, exclude);
    }
  }

 private:
  struct PosOf {
    std::string file;
    uint32_t line = 0, column = 0;
    PosOf() = default;
    PosOf(std::string f, const toml::source_region& r) : file(std::move(f)), line(r.begin.line), column(r.begin.column) {}
  };
  struct GroupSrc {
    std::string expr;
    SourcePos pos;
  };

  std::optional<std::string> string_of(const Doc& d, const toml::node& v, const std::string& what) {
    if (auto s = v.value_exact<std::string>()) return s;
    l_.error(d.name, v.source(), what + " must be a string, not " + type_name(v));
    return std::nullopt;
  }

  /// A string or an array of strings.
  std::optional<std::vector<std::string>> strings_of(const Doc& d, const toml::node& v, const std::string& what) {
    std::vector<std::string> out;
    if (auto s = v.value_exact<std::string>()) return std::vector<std::string>{*s};
    const auto* a = v.as_array();
    if (!a) {
      l_.error(d.name, v.source(), what + " must be a string or an array of strings, not " + type_name(v));
      return std::nullopt;
    }
    for (const auto& e : *a) {
      auto s = e.value_exact<std::string>();
      if (!s) {
        l_.error(d.name, e.source(), what + " must hold strings, not " + type_name(e));
        return std::nullopt;
      }
      out.push_back(*s);
    }
    return out;
  }

  void resolve_group(const std::string& name, int depth) {
    if (p_.groups.count(name)) return;
    const GroupSrc& src = group_src_.at(name);
    if (depth > 32 || resolving_.count(name)) {
      l_.error(src.pos.file, src.pos.line, src.pos.column, "group '" + name + "' refers to itself");
      p_.groups[name] = AttrSet{};
      return;
    }
    resolving_.insert(name);
    // Resolve the user groups it names first (any order in the files).
    for (size_t i = 0; i < src.expr.size();) {
      const auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
      if (!word(src.expr[i])) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < src.expr.size() && word(src.expr[j])) ++j;
      const std::string ref = src.expr.substr(i, j - i);
      if (group_src_.count(ref)) resolve_group(ref, depth + 1);
      i = j;
    }
    auto a = parse_attr_expr(src.expr, p_.groups);
    resolving_.erase(name);
    if (!a) l_.error(src.pos.file, src.pos.line, src.pos.column, "groups." + name + ": " + a.error().message);
    p_.groups[name] = a ? *a : AttrSet{};
  }

  void rule(const Doc& d, const toml::table& t, bool exclude) {
    const std::string where = exclude ? "[[exclude]]" : "[[rule]]";
    const ConfigTable& known = config_table(exclude ? "exclude" : "rule");
    Rule r;
    r.exclude = exclude;
    r.where = SourcePos{d.name, t.source().begin.line, t.source().begin.column};
    r.attrs = p_.default_attrs;
    r.attrs_expr = "(default_attrs)";
    r.severity = p_.default_severity;
    r.max_hash_bytes = p_.max_hash_bytes;
    r.cross_fs = p_.cross_fs;
    const size_t before = l_.diags.size();
    int selectors = 0;
    toml::source_region sel_pos = t.source();
    for (auto&& [k, v] : t) {
      const std::string key(k.str());
      const std::string what = where + "." + key;
      if (!is_known(known, key)) {
        if (exclude && is_known(config_table("rule"), key))
          l_.error(d.name, k.source(), "'" + key + "' has no meaning in an [[exclude]]: an excluded entry is not recorded at all");
        else
          l_.error(d.name, k.source(), unknown_key(key, where, known.keys));
      } else if (key == "path" || key == "glob" || key == "regex") {
        ++selectors;
        sel_pos = v.source();
        if (auto s = string_of(d, v, what)) {
          r.pattern = *s;
          r.kind = key == "path" ? SelectorKind::Path : key == "glob" ? SelectorKind::Glob : SelectorKind::Regex;
        }
      } else if (key == "depth") {
        auto n = v.value_exact<int64_t>();
        if (!n || *n < 0) l_.error(d.name, v.source(), what + " must be a non-negative integer (0: the matched entry only)");
        else r.depth = static_cast<uint32_t>(std::min<int64_t>(*n, kAnyDepth - 1));
      } else if (key == "type") {
        if (auto list = strings_of(d, v, what)) {
          for (const auto& s : *list) {
            if (auto bit = file_type_bit(s)) r.types |= *bit;
            else l_.error(d.name, v.source(), what + ": unknown file type '" + escape_terminal(s) + "' (file, dir, symlink, fifo, socket, chardev, blockdev)");
          }
        }
      } else if (key == "fstype") {
        if (auto list = strings_of(d, v, what)) {
          for (const auto& s : *list) {
            if (s.empty() || s.size() > 32 || !std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }))
              l_.error(d.name, v.source(), what + ": '" + escape_terminal(s) + "' is not a filesystem type name (ext4, tmpfs, nfs, fuse, ...)");
            else r.fstypes.push_back(s);
          }
        }
      } else if (key == "attrs") {
        if (auto s = string_of(d, v, what)) {
          auto a = parse_attr_expr(*s, p_.groups);
          if (a) r.attrs = *a, r.attrs_expr = *s;
          else l_.error(d.name, v.source(), what + ": " + a.error().message);
        }
      } else if (key == "severity") {
        if (auto s = string_of(d, v, what)) {
          if (auto sev = severity_from_name(*s)) r.severity = *sev;
          else l_.error(d.name, v.source(), what + ": unknown severity '" + escape_terminal(*s) + "' (info, low, medium, high, critical)");
        }
      } else if (key == "tags") {
        if (auto list = strings_of(d, v, what)) {
          for (const auto& s : *list) {
            if (!valid_tag(s)) l_.error(d.name, v.source(), what + ": tag '" + escape_terminal(s) + "' must be 1-64 of A-Z a-z 0-9 _ . : / = -");
            else if (std::find(r.tags.begin(), r.tags.end(), s) == r.tags.end()) r.tags.push_back(s);
          }
          if (r.tags.size() > 32) l_.error(d.name, v.source(), what + ": more than 32 tags");
        }
      } else if (key == "max_hash_size") {
        if (auto n = parse_size(v)) r.max_hash_bytes = *n;
        else l_.error(d.name, v.source(), what + " must be a size such as 1048576, \"512 MiB\" or \"none\"");
      } else if (key == "cross_fs") {
        if (auto b = v.value_exact<bool>()) r.cross_fs = *b;
        else l_.error(d.name, v.source(), what + " must be a boolean, not " + type_name(v));
      } else if (key == "response") {
        if (auto s = string_of(d, v, what)) {
          if (*s == "kill") r.response = Rule::Response::Kill;
          else if (*s == "kill_process") r.response = Rule::Response::KillProcess;
          else if (*s != "none")
            l_.error(d.name, v.source(), what + ": unknown response '" + escape_terminal(*s) + "' (kill, kill_process, none)");
        }
      } else if (key == "protect") {
        if (auto b = v.value_exact<bool>()) r.protect = *b;
        else l_.error(d.name, v.source(), what + " must be a boolean, not " + type_name(v));
      } else if (key == "deny_unknown_exec") {
        if (auto b = v.value_exact<bool>()) r.deny_unknown_exec = *b;
        else l_.error(d.name, v.source(), what + " must be a boolean, not " + type_name(v));
      } else {
        l_.error(d.name, k.source(), "internal error: " + what + " is listed but not handled");
      }
    }
    if (selectors != 1) {
      l_.error(d.name, selectors ? sel_pos : t.source(), where + " needs exactly one of 'path', 'glob' or 'regex'");
      return;
    }
    if (r.deny_unknown_exec && r.kind != SelectorKind::Path) {
      // The kernel side guards a directory by its inode: a glob or regex names none.
      l_.error(d.name, sel_pos, where + ".deny_unknown_exec applies to 'path' rules only");
      return;
    }
    if (l_.diags.size() != before) return;
    r.attrs.mask |= attr_bit(Attr::Type);  // the type is always recorded: it says what the entry is
    if (auto st = compile_rule(&r); !st) {
      l_.error(d.name, sel_pos, where + "." + std::string(selector_kind_name(r.kind)) + ": " + st.error().message);
      return;
    }
    p_.rules.push_back(std::move(r));
  }

  Loader& l_;
  Policy& p_;
  std::string default_attrs_expr_;
  PosOf default_attrs_pos_;
  std::map<std::string, GroupSrc> group_src_;
  std::set<std::string> resolving_;
};

void check_top_keys(Loader& l, const Doc& d) {
  const ConfigTable& top = config_table("");
  for (auto&& [k, v] : d.table) {
    const std::string key(k.str());
    if (!is_known(top, key)) l.error(d.name, k.source(), unknown_key(key, top.where, top.keys));
    if (key == "version") {
      auto n = v.value_exact<int64_t>();
      if (!n) l.error(d.name, v.source(), "version must be an integer, not " + type_name(v));
      else if (*n != 1) l.error(d.name, v.source(), "policy format version " + std::to_string(*n) + " is not supported (this fimctl reads version 1)");
    }
  }
}

Policy build(Loader& l, const std::vector<Doc>& docs) {
  Policy p;
  Builder b(l, p);
  for (const auto& d : docs) check_top_keys(l, d);
  if (!docs.empty()) b.options(docs[0]);
  for (size_t i = 1; i < docs.size(); ++i)
    if (docs[i].table.get("options"))
      l.error(docs[i].name, docs[i].table.get("options")->source(), "[options] belongs in the main policy file only");
  for (const auto& d : docs) b.collect_groups(d);
  b.resolve_groups();
  for (const auto& d : docs) b.rules(d);
  for (const auto& d : docs) p.files.push_back(d.name);
  return p;
}

Error diag_error(const Loader& l) {
  std::string msg;
  for (size_t i = 0; i < l.diags.size(); ++i) {
    if (i) msg += "\n";
    const std::string where = l.diags[i].where.text();
    msg += (where.empty() ? "" : where + ": ") + l.diags[i].message;
  }
  if (l.dropped) msg += "\n(more problems not shown)";
  return make_error(Errc::Usage, msg);
}

Result<std::string> read_policy_file(const std::string& path, size_t limit, struct stat* st) {
  // A policy others could rewrite decides what is watched: refuse it (docs/design.md, Threat model,
  // trusted paths).
  if (::access(path.c_str(), F_OK) == 0) FIM_TRY(check_trusted_path(path, "policy"));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return make_error(Errc::Usage, "cannot open policy '" + escape_terminal(path) + "'", errno);
  if (::fstat(fd.get(), st) != 0) return make_error(Errc::Usage, "cannot stat policy '" + escape_terminal(path) + "'", errno);
  if (!S_ISREG(st->st_mode)) return make_error(Errc::Usage, "policy '" + escape_terminal(path) + "' is not a regular file");
  if (static_cast<uint64_t>(st->st_size) > limit)
    return make_error(Errc::Usage, "policy '" + escape_terminal(path) + "' is larger than " + std::to_string(limit >> 10) + " KiB");
  std::string text(static_cast<size_t>(st->st_size) + 1, '\0');
  size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::Usage, "cannot read policy '" + escape_terminal(path) + "'", errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (got == text.size()) return make_error(Errc::Usage, "policy '" + escape_terminal(path) + "' grew while it was read");
  }
  text.resize(got);
  return text;
}

std::string dir_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

thread_local int glob_errno = 0;  // set by the glob() error callback, which cannot capture

struct FileId {
  dev_t dev;
  ino_t ino;
  bool operator<(const FileId& o) const { return dev != o.dev ? dev < o.dev : ino < o.ino; }
};

using Chain = std::vector<std::pair<FileId, std::string>>;

void load_file(Loader& l, const std::string& path, const LoadOptions& opts, std::vector<Doc>* docs, Chain* chain,
               std::set<FileId>* seen, const SourcePos& from);

/// Loads what document `idx` includes, depth first: its `include` patterns (relative to its
/// directory), or for the main document without one, conf.d/*.toml beside it.
void follow_includes(Loader& l, size_t idx, const LoadOptions& opts, std::vector<Doc>* docs, Chain* chain,
                     std::set<FileId>* seen) {
  const std::string path = (*docs)[idx].name, dir = (*docs)[idx].dir;
  std::vector<std::string> patterns;
  SourcePos inc_pos{path, 1, 1};
  if (const auto* inc = (*docs)[idx].table.get("include")) {
    inc_pos = SourcePos{path, inc->source().begin.line, inc->source().begin.column};
    if (auto s = inc->value_exact<std::string>()) {
      patterns.push_back(*s);
    } else if (const auto* a = inc->as_array()) {
      for (const auto& e : *a) {
        if (auto s = e.value_exact<std::string>()) patterns.push_back(*s);
        else l.error(path, e.source(), "include must hold strings, not " + type_name(e));
      }
    } else {
      l.error(path, inc->source(), "include must be a string or an array of strings, not " + type_name(*inc));
    }
  } else if (idx == 0) {
    patterns.push_back("conf.d/*.toml");  // the main file's drop-in directory
  }
  if (!patterns.empty() && chain->size() > static_cast<size_t>(kMaxIncludeDepth))
    return l.error(inc_pos.file, inc_pos.line, inc_pos.column, "includes nested more than 8 deep");
  for (const auto& pat : patterns) {
    if (pat.empty() || pat.find('\0') != std::string::npos) {
      l.error(inc_pos.file, inc_pos.line, inc_pos.column, "include: empty pattern");
      continue;
    }
    const std::string full = pat[0] == '/' ? pat : dir + "/" + pat;
    glob_t g{};
    glob_errno = 0;
    // A missing directory is no drop-ins; one that cannot be read is an error, not silence.
    const int rc = ::glob(full.c_str(), 0, [](const char*, int err) { return err == ENOENT || err == ENOTDIR ? 0 : (glob_errno = err, 1); }, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) load_file(l, g.gl_pathv[i], opts, docs, chain, seen, inc_pos);
    } else if (rc == GLOB_NOMATCH && full.find_first_of("*?[") == std::string::npos) {
      // A named file (no wildcard) that is missing is a typo, not an empty drop-in directory.
      l.error(inc_pos.file, inc_pos.line, inc_pos.column, "include '" + escape_terminal(pat) + "': no such file");
    } else if (rc != GLOB_NOMATCH) {
      l.error(inc_pos.file, inc_pos.line, inc_pos.column,
              "include '" + escape_terminal(pat) + "': cannot list the directory (" + errno_name(glob_errno) + ")");
    }
    ::globfree(&g);
  }
}

/// Loads `path` and, depth first, what it includes. `chain` holds the files being loaded
/// (a loop), `seen` every file loaded (a file included twice is read once).
void load_file(Loader& l, const std::string& path, const LoadOptions& opts, std::vector<Doc>* docs, Chain* chain,
               std::set<FileId>* seen, const SourcePos& from) {
  struct stat st;
  auto text = read_policy_file(path, opts.max_file_bytes, &st);
  if (!text) {
    l.error(from.file, from.line, from.column, text.error().describe());
    return;
  }
  const FileId id{st.st_dev, st.st_ino};
  for (const auto& [cid, cname] : *chain) {
    if (cid.dev == id.dev && cid.ino == id.ino) {
      std::string loop;
      for (const auto& [_, n] : *chain) loop += n + " -> ";
      l.error(from.file, from.line, from.column, "include loop: " + loop + path);
      return;
    }
  }
  if (seen->count(id)) return;
  seen->insert(id);
  if (docs->size() >= kMaxFiles) return l.error(from.file, from.line, from.column, "more than 256 policy files");
  auto table = l.parse(path, *text);
  if (!table) return;
  docs->push_back(Doc{path, dir_name(path), std::move(*table)});
  chain->push_back({id, path});
  follow_includes(l, docs->size() - 1, opts, docs, chain, seen);
  chain->pop_back();
}

Result<Policy> finish(Loader& l, std::vector<Doc>& docs, std::string source) {
  if (!l.diags.empty()) return diag_error(l);
  Policy p = build(l, docs);
  if (!l.diags.empty()) return diag_error(l);
  p.source = std::move(source);
  if (docs.size() > 1) p.source += " (+" + std::to_string(docs.size() - 1) + " included)";
  return p;
}

}  // namespace

const std::vector<ConfigTable>& config_keys() {
  // Builder::options, Builder::rule and check_top_keys refuse any key not listed here before
  // their branches see it: a branch for a key missing here is unreachable, and a key listed
  // here without a branch is reported as an internal error.
  static const std::vector<ConfigTable> kTables = {
      {"", "the top level", {"version", "include", "options", "groups", "rule", "exclude"}},
      {"options", "[options]", {"default_attrs", "severity", "cross_fs", "max_hash_size", "read_timeout", "package_mirrors"}},
      {"rule", "[[rule]]",
       {"path", "glob", "regex", "depth", "type", "fstype", "attrs", "severity", "tags", "max_hash_size", "cross_fs",
        "response", "protect", "deny_unknown_exec"}},
      {"exclude", "[[exclude]]", {"path", "glob", "regex", "depth", "type", "fstype"}},
  };
  return kTables;
}

const ConfigTable& config_table(std::string_view name) {
  for (const auto& t : config_keys())
    if (t.name == name) return t;
  std::abort();  // a caller in this file named a table that is not listed: a bug
}

Result<Policy> parse_policy_text(std::string_view text, const std::string& name) {
  Loader l;
  std::vector<Doc> docs;
  if (auto t = l.parse(name, text)) docs.push_back(Doc{name, ".", std::move(*t)});
  return finish(l, docs, name);
}

Result<Policy> load_policy(const LoadOptions& opts) {
  Loader l;
  std::vector<Doc> docs;
  Chain chain;
  std::set<FileId> seen;
  if (opts.builtin_fallback && ::access(opts.path.c_str(), F_OK) != 0 && errno == ENOENT) {
    // No main file: the built-in one stands in for it, drop-ins beside it still load.
    auto t = l.parse("built-in default policy", builtin_policy_text());
    if (!t) return make_error(Errc::Bug, "the built-in policy does not load: " + l.diags.at(0).message);
    docs.push_back(Doc{"built-in default policy", dir_name(opts.path), std::move(*t)});
    follow_includes(l, 0, opts, &docs, &chain, &seen);
    return finish(l, docs, "built-in default policy");
  }
  load_file(l, opts.path, opts, &docs, &chain, &seen, SourcePos{});
  return finish(l, docs, opts.path);
}

Policy default_policy() {
  auto p = parse_policy_text(builtin_policy_text(), "built-in default policy");
  return p ? std::move(*p) : Policy{};
}

}  // namespace fim
