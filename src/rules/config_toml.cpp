// SPDX-License-Identifier: GPL-2.0-or-later
// TOML -> Policy. The only translation unit that sees toml++ (compile time: toml++ is
// header-only here, and every other file stays free of it).
//
// toml++ 3.3.0 (Debian 12) is used header-only with exceptions, caught here, and
// TOML_MAX_NESTED_VALUES=64 (deep nesting overflowed a 1 MiB stack). Its known crashers are
// kept away before it sees a byte: files over 1 MiB, NUL bytes, invalid UTF-8 and any
// non-ASCII character outside a string or comment are refused by prescan_toml() (prescan.cpp)
// with a position (the UB in is_non_ascii_horizontal_whitespace is reached only through
// non-ASCII code points where TOML allows none). Each key's value goes to its handler in the
// key table (policy_keys.cpp); this file holds the documents, includes, groups and rules.
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
// preprocessor header and before the rest: a broken assertion throws, in every build type,
// and the parser (not noexcept) lets it through to the catch in parse() below: a parse error.
// A few of its assertions sit in noexcept functions (the reader's step_back, the UTF-8
// decoder, path accessors and value_exact<T> after their own type check): g++ warns that a
// throw there calls std::terminate. That is the intended outcome for those: they guard
// toml++'s own bookkeeping, which no input reaches (the decoder sees only what prescan_toml
// validated as UTF-8), and ending the process beats the undefined behaviour of an assumed
// condition. Hence the throw sits in a function of its own (g++'s -Wterminate looks for a
// throw written inside a noexcept body). Its
// TOML_UNREACHABLE in the Unicode tables (upstream #190) cannot be redefined that way
// (noexcept, void and bool functions share it): prescan_toml() keeps non-ASCII away from
// where the parser looks for whitespace instead.
#include <toml++/impl/preprocessor.h>
namespace fim {
struct TomlInternalError : std::runtime_error {
  TomlInternalError() : std::runtime_error("input the TOML parser cannot handle") {}
};
[[noreturn]] inline void toml_assertion_failed() { throw TomlInternalError(); }
}  // namespace fim
#undef TOML_ASSERT
#undef TOML_ASSERT_ASSUME
#define TOML_ASSERT(expr) ((expr) ? static_cast<void>(0) : ::fim::toml_assertion_failed())
#define TOML_ASSERT_ASSUME(expr) TOML_ASSERT(expr)
#include <toml++/toml.h>

#include "fim/base/fd.h"
#include "fim/base/sys.h"
#include "fim/rules.h"
#include "policy_keys.h"
#include "prescan.h"

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

  /// Parses one document; nothing is added on failure (the diagnostic says why).
  std::optional<toml::table> parse(const std::string& file, std::string_view text) {
    if (text.size() >= 2 && ((text[0] == '\xFF' && text[1] == '\xFE') || (text[0] == '\xFE' && text[1] == '\xFF'))) {
      error(file, 1, 1, "UTF-16 byte-order mark: save the policy as UTF-8");
      return std::nullopt;
    }
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 BOM is harmless
    if (auto bad = rules::prescan_toml(text)) {
      error(file, bad->line, bad->column, std::move(bad->message));
      return std::nullopt;
    }
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

SourcePos pos_of(const std::string& file, const toml::source_region& r) {
  return SourcePos{file, r.begin.line, r.begin.column};
}

/// A TOML node as the key handlers see it (rules::ConfigValue): scalars, and arrays one
/// level deep, each with its position.
rules::ConfigValue value_of(const std::string& file, const toml::node& n, bool items = true) {
  using Kind = rules::ConfigValue::Kind;
  rules::ConfigValue v;
  v.where = pos_of(file, n.source());
  switch (n.type()) {
    case toml::node_type::string: v.kind = Kind::String, v.str = *n.value_exact<std::string>(); break;
    case toml::node_type::integer: v.kind = Kind::Integer, v.integer = *n.value_exact<int64_t>(); break;
    case toml::node_type::floating_point: v.kind = Kind::Float, v.real = *n.value_exact<double>(); break;
    case toml::node_type::boolean: v.kind = Kind::Boolean, v.boolean = *n.value_exact<bool>(); break;
    case toml::node_type::table: v.kind = Kind::Table; break;
    case toml::node_type::array: {
      v.kind = Kind::Array;
      const auto& a = *n.as_array();
      v.array_of_tables = a.is_array_of_tables();
      if (items)
        for (const auto& e : a) v.items.push_back(value_of(file, e, false));
      break;
    }
    default: v.kind = Kind::Date; break;
  }
  return v;
}

/// Dispatches every key of `t` to its row of the key table (policy_keys.cpp).
void dispatch_table(const std::string& file, const toml::table& t, rules::Section section, const std::string& prefix,
                    rules::KeyContext& ctx) {
  for (auto&& [k, v] : t) {
    const std::string key(k.str());
    ctx.what = prefix + key;
    rules::dispatch(section, key, value_of(file, v), pos_of(file, k.source()), ctx);
  }
}

class Builder {
 public:
  Builder(Loader& l, Policy& p) : l_(l), p_(p) {}

  /// The top level's keys: known ones, each of the shape its table needs.
  void top(const Doc& d) {
    auto ctx = context();
    dispatch_table(d.name, d.table, rules::Section::Top, "", ctx);
  }

  void options(const Doc& d) {
    const auto* opts = d.table.get("options");
    if (!opts || !opts->is_table()) return;  // top() said what is wrong
    auto ctx = context();
    dispatch_table(d.name, *opts->as_table(), rules::Section::Options, "options.", ctx);
    default_attrs_expr_ = ctx.default_attrs_expr;
    default_attrs_pos_ = ctx.default_attrs_pos;
  }

  void collect_groups(const Doc& d) {
    const auto* g = d.table.get("groups");
    if (!g || !g->is_table()) return;  // top() said what is wrong
    for (auto&& [k, v] : *g->as_table()) {
      const std::string name(k.str());
      const SourcePos at = pos_of(d.name, k.source());
      if (!rules::valid_group_name(name)) {
        error(at, "group name " + quote(name) + " must be a letter or '_' followed by letters, digits or '_'");
        continue;
      }
      const bool builtin = std::any_of(builtin_groups().begin(), builtin_groups().end(), [&](const auto& b) { return b.name == name; });
      if (builtin || attr_from_key(name) || name == "growing") {
        error(at, "group " + quote(name) + " would redefine a built-in group or attribute");
        continue;
      }
      auto ctx = context();
      ctx.what = "groups." + name;
      auto s = ctx.string(value_of(d.name, v));
      if (!s) continue;
      if (auto it = group_src_.find(name); it != group_src_.end()) {
        error(at, "group " + quote(name) + " is already defined at " + it->second.pos.text());
        continue;
      }
      group_src_[name] = {*s, at};
    }
  }

  void resolve_groups() {
    for (const auto& [name, src] : group_src_) resolve_group(name, 0);
    if (!default_attrs_expr_.empty()) {
      auto a = parse_attr_expr(default_attrs_expr_, p_.groups);
      if (a) p_.default_attrs = *a;
      else error(default_attrs_pos_, "options.default_attrs: " + a.error().message);
    } else {
      p_.default_attrs = AttrSet{default_attrs(), false};
    }
  }

  /// [[rule]] and [[exclude]] tables of one document, in the order they appear in it (TOML
  /// keeps them in two arrays; "defined last wins" needs the file's order).
  void rules(const Doc& d) {
    std::vector<std::pair<const toml::table*, bool>> all;
    for (const bool exclude : {false, true}) {
      const auto* arr = d.table.get(exclude ? "exclude" : "rule");
      const auto* a = arr ? arr->as_array() : nullptr;
      if (!a || !a->is_array_of_tables()) continue;  // absent, or top() said what is wrong
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
  struct GroupSrc {
    std::string expr;
    SourcePos pos;
  };

  void error(const SourcePos& at, std::string msg) { l_.error(at.file, at.line, at.column, std::move(msg)); }
  rules::KeyContext context() {
    return rules::KeyContext(p_, "", [this](const SourcePos& at, std::string msg) { error(at, std::move(msg)); });
  }

  void resolve_group(const std::string& name, int depth) {
    if (p_.groups.count(name)) return;
    const GroupSrc& src = group_src_.at(name);
    if (depth > 32 || resolving_.count(name)) {
      error(src.pos, "group " + quote(name) + " refers to itself");
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
    if (!a) error(src.pos, "groups." + name + ": " + a.error().message);
    p_.groups[name] = a ? *a : AttrSet{};
  }

  /// One [[rule]] or [[exclude]]: the options' defaults, then its keys through the table.
  void rule(const Doc& d, const toml::table& t, bool exclude) {
    const std::string where = exclude ? "[[exclude]]" : "[[rule]]";
    Rule r;
    r.exclude = exclude;
    r.where = pos_of(d.name, t.source());
    r.attrs = p_.default_attrs;
    r.attrs_expr = "(default_attrs)";
    r.severity = p_.default_severity;
    r.max_hash_bytes = p_.max_hash_bytes;
    r.cross_fs = p_.cross_fs;
    const size_t before = l_.diags.size();
    auto ctx = context();
    ctx.rule = &r;
    ctx.selector_pos = r.where;
    dispatch_table(d.name, t, exclude ? rules::Section::Exclude : rules::Section::Rule, where + ".", ctx);
    if (ctx.selectors != 1)
      return error(ctx.selectors ? ctx.selector_pos : r.where, where + " needs exactly one of 'path', 'glob' or 'regex'");
    // The kernel side guards a directory by its inode: a glob or regex names none.
    if (r.deny_unknown_exec && r.kind != SelectorKind::Path)
      return error(ctx.selector_pos, where + ".deny_unknown_exec applies to 'path' rules only");
    // A sealed file can never be written again: only content recorded whole and read-only.
    if (r.seal && (r.attrs.growing || !(r.attrs.mask & attr_bit(Attr::Sha256))))
      return error(ctx.selector_pos, where + ".seal needs attrs with sha256 and without '>' (a sealed file can no "
                                             "longer be written: binaries and libraries, not files written in place)");
    if (l_.diags.size() != before) return;
    r.attrs.mask |= attr_bit(Attr::Type);  // the type is always recorded: it says what the entry is
    if (auto st = compile_rule(&r); !st)
      return error(ctx.selector_pos, where + "." + std::string(selector_kind_name(r.kind)) + ": " + st.error().message);
    p_.rules.push_back(std::move(r));
  }

  Loader& l_;
  Policy& p_;
  std::string default_attrs_expr_;
  SourcePos default_attrs_pos_;
  std::map<std::string, GroupSrc> group_src_;
  std::set<std::string> resolving_;
};

Policy build(Loader& l, const std::vector<Doc>& docs) {
  Policy p;
  Builder b(l, p);
  for (const auto& d : docs) b.top(d);
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
  // A policy others could rewrite decides what is watched: refuse it (docs/design.md, Threat model).
  if (::access(path.c_str(), F_OK) == 0) FIM_TRY(check_trusted_path(path, "policy"));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return make_error(Errc::Usage, "cannot open policy " + quote(path), errno);
  if (::fstat(fd.get(), st) != 0) return make_error(Errc::Usage, "cannot stat policy " + quote(path), errno);
  if (!S_ISREG(st->st_mode)) return make_error(Errc::Usage, "policy " + quote(path) + " is not a regular file");
  if (static_cast<uint64_t>(st->st_size) > limit)
    return make_error(Errc::Usage, "policy " + quote(path) + " is larger than " + std::to_string(limit >> 10) + " KiB");
  std::string text(static_cast<size_t>(st->st_size) + 1, '\0');
  size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::Usage, "cannot read policy " + quote(path), errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (got == text.size()) return make_error(Errc::Usage, "policy " + quote(path) + " grew while it was read");
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
    // Its row of the key table checks the value and hands back the patterns.
    inc_pos = pos_of(path, inc->source());
    Policy unused;
    rules::KeyContext ctx(unused, "include", [&](const SourcePos& at, std::string msg) {
      l.error(at.file, at.line, at.column, std::move(msg));
    });
    rules::dispatch(rules::Section::Top, "include", value_of(path, *inc), inc_pos, ctx);
    patterns = std::move(ctx.includes);
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
      l.error(inc_pos.file, inc_pos.line, inc_pos.column, "include " + quote(pat) + ": no such file");
    } else if (rc != GLOB_NOMATCH) {
      l.error(inc_pos.file, inc_pos.line, inc_pos.column,
              "include " + quote(pat) + ": cannot list the directory (" + errno_name(glob_errno) + ")");
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
