// SPDX-License-Identifier: GPL-2.0-or-later
// Hostile policy input: each case is refused with Errc::Usage, a "file:line:col:" position and a
// message that says what is wrong (or, for a UTF-8 BOM and a diamond include, accepted), and
// nothing crashes, hangs or reads without bound. The toml++ 3.3.0 crashers of
// docs/design.md, Policy, are among them; tests/fuzz/corpus/policy/ holds the same bytes.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "fim/rules.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;
using fim::test::write_file;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// "name:LINE:COL: " with LINE and COL from 1 at the start of `line`; returns the rest.
bool split_position(std::string_view line, std::string_view name, std::string_view* rest) {
  if (line.substr(0, name.size() + 1) != std::string(name) + ":") return false;
  size_t i = name.size() + 1;
  for (int field = 0; field < 2; ++field) {
    const size_t start = i;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
    if (i == start || line[start] == '0' || i >= line.size() || line[i] != ':') return false;
    ++i;
  }
  if (line.substr(i, 1) != " ") return false;
  *rest = line.substr(i + 1);
  return true;
}

/// Parses `text`, which must be refused: Usage, every line positioned, the first line's
/// position `line`:`col` (0: any) and its message containing `want`.
std::string refused(std::string_view text, const std::string& want, uint32_t line = 0, uint32_t col = 0) {
  const auto t0 = Clock::now();
  auto p = parse_policy_text(text, "t.toml");
  CHECK(seconds_since(t0) < 1.0);
  REQUIRE_FALSE(p.has_value());
  const Error& e = p.error();
  CAPTURE(e.message);
  CHECK(e.code == Errc::Usage);
  const std::string& m = e.message;
  std::string_view rest;
  const std::string_view first = std::string_view(m).substr(0, m.find('\n'));
  REQUIRE(split_position(first, "t.toml", &rest));
  for (size_t start = 0; start < m.size();) {
    size_t nl = m.find('\n', start);
    if (nl == std::string::npos) nl = m.size();
    const std::string_view l = std::string_view(m).substr(start, nl - start);
    std::string_view ignored;
    CHECK((l == "(more problems not shown)" || split_position(l, "t.toml", &ignored)));
    start = nl + 1;
  }
  if (line) CHECK(first.substr(0, 7 + std::to_string(line).size() + 1) == "t.toml:" + std::to_string(line) + ":");
  if (line && col) CHECK(first.substr(0, first.find(": ")) == "t.toml:" + std::to_string(line) + ":" + std::to_string(col));
  CHECK(rest.find(want) != std::string_view::npos);
  return m;
}

Policy accepted(std::string_view text) {
  auto p = parse_policy_text(text, "t.toml");
  if (!p) FAIL_CHECK(p.error().message);
  REQUIRE(p.has_value());
  return std::move(*p);
}

std::string nested(const std::string& open, const std::string& close, int depth) {
  std::string s = "a = ";
  for (int i = 0; i < depth; ++i) s += open;
  s += "1";
  for (int i = 0; i < depth; ++i) s += close;
  return s + "\n";
}

/// A one-rule policy for matcher timing.
struct OneRule {
  Policy p;
  explicit OneRule(SelectorKind k, const std::string& pattern) {
    Rule r;
    r.kind = k;
    r.pattern = pattern;
    const Status st = compile_rule(&r);
    REQUIRE(st.has_value());
    p.rules.push_back(std::move(r));
  }
  /// Winner for `path`; the match of `path` itself (given its parent's scope) is timed.
  int decide(const std::string& path, double* secs) const {
    const Selector sel(p);
    const size_t slash = path.rfind('/');
    const Scope parent = sel.scope_of(slash == 0 ? std::string("/") : path.substr(0, slash));
    Scope s;
    const auto t0 = Clock::now();
    sel.child_scope(parent, path, &s);
    const int w = sel.winner(s, FileType::File, "");
    *secs = seconds_since(t0);
    return w;
  }
};

}  // namespace

// --- toml++ 3.3.0 crashers and nesting -------------------------------------------------------

TEST_CASE("hostile: 255-deep arrays are refused at the nesting limit, no stack overflow") {
  refused(nested("[", "]", 255), "exceeded maximum nested value depth of 64", 1);
}

TEST_CASE("hostile: 255-deep inline tables are refused at the nesting limit, no stack overflow") {
  refused(nested("{a=", "}", 255), "exceeded maximum nested value depth of 64", 1);
  refused(nested("{b=", "}", 255), "exceeded maximum nested value depth of 64", 1);
  // Mixed, and nesting inside a rule where a value is expected.
  std::string mixed = "[[rule]]\npath = ";
  for (int i = 0; i < 200; ++i) mixed += i % 2 ? "{x=" : "[";
  refused(mixed + "\n", "", 2);
}

TEST_CASE("hostile: nesting within the limit still parses (and is then refused by key)") {
  refused(nested("[", "]", 60), "unknown key 'a' in the top level", 1, 1);
}

TEST_CASE("hostile: a UTF-8 byte-order mark is accepted and positions still count from 1") {
  const Policy p = accepted("\xEF\xBB\xBF[[rule]]\npath = \"/etc\"\n");
  REQUIRE(p.rules.size() == 1);
  CHECK(p.rules[0].pattern == "/etc");
  CHECK(p.rules[0].where.line == 1);
  CHECK(p.rules[0].where.column == 1);
  refused("\xEF\xBB\xBF[[rule]]\npath = 1\n", "[[rule]].path must be a string, not an integer", 2, 8);
}

TEST_CASE("hostile: a UTF-16 byte-order mark is refused") {
  const std::string le("\xFF\xFE[\0[\0r\0u\0l\0e\0]\0]\0\n\0", 20);
  refused(le, "UTF-16 byte-order mark: save the policy as UTF-8", 1, 1);
  const std::string be("\xFE\xFF\0[\0[\0r\0u\0l\0e\0]\0]\0\n", 20);
  refused(be, "UTF-16 byte-order mark: save the policy as UTF-8", 1, 1);
}

TEST_CASE("hostile: NUL bytes are refused before toml++ sees them ([\\0\\x02 asserted in parse_key)") {
  refused(std::string("[\0\x02", 3), "NUL byte in the file", 1, 2);
  refused(std::string("[[rule]]\npath = \"/e\0tc\"\n", 24), "NUL byte in the file", 2, 11);
  refused(std::string("# comment \0\n", 12), "NUL byte in the file", 1, 11);
}

TEST_CASE("hostile: invalid UTF-8 is refused, in strings and comments too") {
  refused("[[rule]]\npath = \"/\xC3\x28\"\n", "invalid UTF-8", 2, 10);
  refused("# \xFF\n", "invalid UTF-8", 1, 3);
  refused("# \xC0\xAF overlong\n", "invalid UTF-8", 1, 3);
  refused("# \xED\xA0\x80 surrogate\n", "invalid UTF-8", 1, 3);
  refused("# \xF4\x90\x80\x80 above U+10FFFF\n", "invalid UTF-8", 1, 3);
  refused("# truncated \xE2\x82", "invalid UTF-8", 1, 13);
}

TEST_CASE("hostile: a non-ASCII bare key is refused (quote it)") {
  refused("[[rule]]\n\xC3\xA9t\xC3\xA9 = \"/x\"\n", "non-ASCII character outside a string or comment", 2, 1);
  // Non-ASCII inside strings and comments is fine.
  const Policy p = accepted("# \xC3\xA9t\xC3\xA9\n[[rule]]\npath = \"/srv/\xC3\xA9t\xC3\xA9\"\n");
  CHECK(p.rules.at(0).pattern == "/srv/\xC3\xA9t\xC3\xA9");
}

TEST_CASE("hostile: U+FEFE outside a string (EF BB BE, UB in is_non_ascii_horizontal_whitespace)") {
  refused("\xEF\xBB\xBE\n", "non-ASCII character outside a string or comment", 1, 1);
  refused("version = 1\n\xEF\xBB\xBE = 2\n", "non-ASCII character outside a string or comment", 2, 1);
  refused("version = 1 \xEF\xBB\xBE\n", "non-ASCII character outside a string or comment", 1, 13);
}

// toml++ 3.3.0 parse_key() has TOML_ASSERT_ASSUME(is_bare_key_character || is_string_delimiter):
// abort() without NDEBUG (this whole executable would die), undefined behaviour with it. Found by
// tests/fuzz/policy_fuzz; prescan() does not keep it away yet. Skipped until src/rules is fixed:
// run with `unit_rules --no-skip -tc='*punctuation*'` to check a fix.
TEST_CASE("hostile: a table header starting with punctuation is refused, not asserted on") {
  refused("[`]\n", "expected bare key starting character or string delimiter", 1, 2);
  refused("version = 1\n[[!]]\n", "expected bare key starting character or string delimiter", 2, 3);
  refused("[#]\n", "expected bare key starting character or string delimiter", 1, 2);
}

TEST_CASE("hostile: literal strings that run to the end of the file (toml11 3.7.1 overflow shape)") {
  std::string s = "a = '" + std::string(75, '/');  // 80 bytes, unterminated
  REQUIRE(s.size() == 80);
  refused(s, "", 1);
  std::string ml = "p = '''" + std::string(71, 'x') + "''";  // 80 bytes, unterminated multi-line
  REQUIRE(ml.size() == 80);
  refused(ml, "", 1);
}

// --- files: size limit and includes ----------------------------------------------------------

TEST_CASE("hostile: a 100 MB policy is refused quickly by the 1 MiB limit") {
  TempDir dir;
  const std::string path = dir / "huge.toml";
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    const std::string chunk(1 << 20, '#');
    for (int i = 0; i < 100; ++i) REQUIRE(::write(fd, chunk.data(), chunk.size()) == static_cast<ssize_t>(chunk.size()));
    ::close(fd);
  }
  LoadOptions o;
  o.path = path;
  const auto t0 = Clock::now();
  auto p = load_policy(o);
  CHECK(seconds_since(t0) < 0.5);
  REQUIRE_FALSE(p.has_value());
  CAPTURE(p.error().message);
  CHECK(p.error().code == Errc::Usage);
  // The main file has no line to point at: the message names it.
  CHECK(p.error().message.find("policy '" + path + "' is larger than 1024 KiB") != std::string::npos);

  // Included, it is reported where the include is.
  write_file(dir / "main.toml", "include = \"huge.toml\"\n");
  o.path = dir / "main.toml";
  const auto t1 = Clock::now();
  p = load_policy(o);
  CHECK(seconds_since(t1) < 0.5);
  REQUIRE_FALSE(p.has_value());
  CAPTURE(p.error().message);
  CHECK(p.error().code == Errc::Usage);
  std::string_view rest;
  CHECK(split_position(p.error().message, dir / "main.toml", &rest));
  CHECK(p.error().message.find(dir / "main.toml:1:11: ") == 0);
  CHECK(rest.find("is larger than 1024 KiB") != std::string_view::npos);
}

TEST_CASE("hostile: an include loop is refused with the chain and a position") {
  TempDir dir;
  write_file(dir / "a.toml", "include = \"b.toml\"\n[[rule]]\npath = \"/a\"\n");
  write_file(dir / "b.toml", "version = 1\n\n\ninclude = [\"a.toml\"]\n[[rule]]\npath = \"/b\"\n");
  LoadOptions o;
  o.path = dir / "a.toml";
  auto p = load_policy(o);
  REQUIRE_FALSE(p.has_value());
  CAPTURE(p.error().message);
  CHECK(p.error().code == Errc::Usage);
  // Reported where b.toml includes a.toml (line 4, column 11), naming the whole chain.
  CHECK(p.error().message == dir / "b.toml:4:11: include loop: " + dir / "a.toml -> " + dir / "b.toml -> " + dir / "a.toml");
}

TEST_CASE("hostile: a file that includes itself is a loop too") {
  TempDir dir;
  write_file(dir / "a.toml", "include = \"*.toml\"\n");
  LoadOptions o;
  o.path = dir / "a.toml";
  auto p = load_policy(o);
  REQUIRE_FALSE(p.has_value());
  CAPTURE(p.error().message);
  CHECK(p.error().message.find(dir / "a.toml:1:11: include loop: ") == 0);
}

TEST_CASE("hostile: a diamond include loads the shared file once") {
  TempDir dir;
  write_file(dir / "a.toml", "include = [\"b.toml\", \"c.toml\"]\n[[rule]]\npath = \"/a\"\n");
  write_file(dir / "b.toml", "include = \"d.toml\"\n[[rule]]\npath = \"/b\"\n");
  write_file(dir / "c.toml", "include = \"d.toml\"\n[[rule]]\npath = \"/c\"\n");
  write_file(dir / "d.toml", "[[rule]]\npath = \"/d\"\n");
  LoadOptions o;
  o.path = dir / "a.toml";
  auto p = load_policy(o);
  if (!p) FAIL_CHECK(p.error().message);
  REQUIRE(p.has_value());
  REQUIRE(p->files.size() == 4);
  CHECK(p->files[0] == dir / "a.toml");
  CHECK(p->files[1] == dir / "b.toml");
  CHECK(p->files[2] == dir / "d.toml");
  CHECK(p->files[3] == dir / "c.toml");
  size_t d_rules = 0;
  for (const auto& r : p->rules) d_rules += r.pattern == "/d";
  CHECK(d_rules == 1);
  CHECK(p->rules.size() == 4);
  CHECK(p->source == dir / "a.toml (+3 included)");
}

// --- keys, types, duplicates -----------------------------------------------------------------

TEST_CASE("hostile: an unknown key suggests the near miss") {
  refused("[[rule]]\npath = \"/etc\"\natrs = \"R\"\n", "unknown key 'atrs' in [[rule]] (did you mean 'attrs'?)", 3, 1);
  refused("[options]\nseverty = \"high\"\n", "unknown key 'severty' in [options] (did you mean 'severity'?)", 2, 1);
  // A key far from every known one lists them instead, escaped for the terminal.
  const std::string m = refused("zzzzzzzz = 1\n", "unknown key 'zzzzzzzz' in the top level (known:", 1, 1);
  CHECK(m.find("did you mean") == std::string::npos);
}

TEST_CASE("hostile: wrong types are named") {
  refused("[[rule]]\npath = 1\n", "[[rule]].path must be a string, not an integer", 2, 8);
  refused("[[rule]]\npath = \"/etc\"\nseverity = 3\n", "[[rule]].severity must be a string, not an integer", 3, 12);
  refused("[[rule]]\nglob = [\"/a\"]\n", "[[rule]].glob must be a string, not an array", 2, 8);
  refused("[options]\ncross_fs = \"yes\"\n", "options.cross_fs must be a boolean, not a string", 2, 12);
  refused("version = 1.0\n", "version must be an integer, not a float", 1, 11);
  refused("[[rule]]\npath = \"/x\"\ntags = [1]\n", "[[rule]].tags must hold strings, not an integer", 3, 9);
  refused("rule = 1\n", "'rule' must be an array of tables: write [[rule]]", 1, 8);
  refused("options = 1979-05-27\n", "'options' must be a table, not a date or time", 1, 11);
}

TEST_CASE("hostile: duplicate keys and tables are refused") {
  refused("[[rule]]\npath = \"/a\"\npath = \"/b\"\n", "cannot redefine existing string 'path'", 3, 8);
  refused("[groups]\nx = \"R\"\n[groups]\ny = \"L\"\n", "cannot redefine existing table 'groups'", 3, 1);
  refused("version = 1\nversion = 1\n", "cannot redefine existing integer 'version'", 2);
  refused("[[rule]]\npath = \"/a\"\nglob = \"/b\"\n", "[[rule]] needs exactly one of 'path', 'glob' or 'regex'");
}

// --- selectors -------------------------------------------------------------------------------

TEST_CASE("hostile: a bad regex is refused with glibc's reason") {
  refused("[[rule]]\nregex = \"/a([\"\n", "[[rule]].regex: invalid regex:", 2, 9);
  refused("[[rule]]\nregex = \"/a(\"\n", "[[rule]].regex: invalid regex:", 2, 9);
  refused("[[rule]]\nregex = \"a.*\"\n", "a regex must start with '/'", 2, 9);
  refused("[[rule]]\nregex = \"/a|/b\"\n", "has no fixed beginning", 2, 9);
  refused("[[rule]]\nregex = \"/" + std::string(1100, 'a') + "\"\n", "regex longer than 1024 bytes", 2, 9);
}

TEST_CASE("hostile: regex /(a{1,100}){1,100} is refused (glibc expands intervals at compile time)") {
  refused("[[rule]]\nregex = \"/(a{1,100}){1,100}\"\n", "regex too complex", 2, 9);
  refused("[[rule]]\nregex = \"/a{0,255}{0,255}\"\n", "stacked repetitions", 2, 9);
  // Repetitions side by side add up, they do not multiply.
  accepted("[[rule]]\nregex = \"/(a{16}b{16})\"\n");
  // Within the bound it compiles, and a brace in a bracket expression is not an interval.
  accepted("[[rule]]\nregex = \"/(a{1,15}){1,15}\"\n[[rule]]\nregex = \"/x[{]{1,200}\"\n");
}

TEST_CASE("hostile: a regex with a back-reference is refused") {
  refused("[[rule]]\nregex = \"/(a*)\\\\1\"\n", "back-references (\\1...) are not supported", 2, 9);
  refused("[[rule]]\nregex = \"/(a)(b)\\\\2$\"\n", "back-references", 2, 9);
  // An escaped backslash followed by a digit is a literal, not a back-reference.
  accepted("[[rule]]\nregex = \"/a\\\\\\\\1\"\n");
}

TEST_CASE("hostile: '**' inside a glob component is refused") {
  refused("[[rule]]\nglob = \"/usr/lib**/x\"\n", "'**' must be a whole component", 2, 8);
  refused("[[exclude]]\nglob = \"/usr/***\"\n", "[[exclude]].glob: '**' must be a whole component", 2, 8);
  accepted("[[rule]]\nglob = \"/usr/**/x\"\n");
}

TEST_CASE("hostile: relative selectors are refused") {
  refused("[[rule]]\npath = \"etc/passwd\"\n", "[[rule]].path: path must be an absolute path", 2, 8);
  refused("[[rule]]\npath = \"\"\n", "must be an absolute path", 2, 8);
  refused("[[rule]]\nglob = \"*/x\"\n", "[[rule]].glob: glob must be an absolute path", 2, 8);
}

TEST_CASE("hostile: '.' and '..' components are refused") {
  refused("[[rule]]\npath = \"/etc/../root\"\n", "must not contain '.' or '..' components", 2, 8);
  refused("[[rule]]\npath = \"/..\"\n", "must not contain '.' or '..' components", 2, 8);
  refused("[[rule]]\nglob = \"/home/*/./x\"\n", "must not contain '.' or '..' components", 2, 8);
  refused("[[rule]]\npath = \"/a//b\"\n", "contains '//'", 2, 8);
}

// --- matcher bounds --------------------------------------------------------------------------

TEST_CASE("hostile: glob /**/**/**/**/**/* against a 4096-byte name completes quickly") {
  const OneRule g(SelectorKind::Glob, "/**/**/**/**/**/*");
  const std::string name = "/" + std::string(4096, 'a');
  double secs = 0;
  CHECK(g.decide(name, &secs) == 0);
  CHECK(secs < 0.25);
  auto t0 = Clock::now();
  CHECK(glob_match("/**/**/**/**/**/*", name));
  CHECK_FALSE(glob_match("/**/**/**/**/**/*b", name));
  CHECK(seconds_since(t0) < 0.25);
  // A 4096-byte path of 2048 components: the single match of the entry is still quick.
  std::string deep;
  for (int i = 0; i < 2048; ++i) deep += "/a";
  CHECK(g.decide(deep, &secs) == 0);
  CHECK(secs < 0.25);
  const OneRule g2(SelectorKind::Glob, "/**/a/**/a/**/a/**/b");
  CHECK(g2.decide(deep, &secs) == -1);
  CHECK(secs < 0.25);
  t0 = Clock::now();
  CHECK_FALSE(glob_match("/**/a/**/a/**/a/**/b", deep));
  CHECK(glob_match("/usr/**/**/**/**/**/*", "/usr" + deep));
  CHECK(seconds_since(t0) < 0.25);
  // Many stars within one component: one backtrack point, no blow-up.
  t0 = Clock::now();
  CHECK_FALSE(glob_match("/*a*a*a*a*a*a*a*a*b", name));
  CHECK(seconds_since(t0) < 0.25);
}

TEST_CASE("hostile: regex /(a+)+$ against a 4096-byte name completes quickly") {
  const OneRule r(SelectorKind::Regex, "/(a+)+$");
  double secs = 0;
  CHECK(r.decide("/" + std::string(4096, 'a'), &secs) == 0);
  CHECK(secs < 0.25);
  CHECK(r.decide("/" + std::string(4095, 'a') + "!", &secs) == -1);
  CHECK(secs < 0.25);
  const OneRule r2(SelectorKind::Regex, "/((a|aa)+)+c");
  CHECK(r2.decide("/" + std::string(4096, 'a'), &secs) == -1);
  CHECK(secs < 0.25);
  const OneRule r3(SelectorKind::Regex, "/(a*)*b");
  CHECK(r3.decide("/" + std::string(4096, 'a'), &secs) == -1);
  CHECK(secs < 0.25);
}

// --- found by the fuzzers; skipped until src/rules is fixed (run with --no-skip) -------------

TEST_CASE("hostile: a non-ASCII character in a string right after a number is refused, not UB") {
  // toml++ 3.3.0 scans the number token to its end with is_value_terminator() ->
  // is_non_ascii_horizontal_whitespace(), which reaches TOML_UNREACHABLE for U+00E9 and U+FEFB
  // (UBSan: unicode_autogenerated.h:44). prescan() thinks the '"' opened a string.
  refused("a=1\"\xC3\xA9\"", "", 1);
  refused("5=5\"\xEF\xBB\xBB", "", 1);
}

TEST_CASE("hostile: stacked '+' quantifiers are refused (glibc duplicates the tree per '+')") {
  // "/a" + 20 '+' takes ~2 s and 170 MB in regcomp, 22 '+' over 7 s and 700 MB.
  const auto t0 = Clock::now();
  refused("[[rule]]\nregex = \"/a" + std::string(24, '+') + "\"\n", "", 2, 9);
  CHECK(seconds_since(t0) < 0.25);
  refused("[[rule]]\nregex = \"/" + std::string(20, '(') + "a+" + [] {
    std::string s;
    for (int i = 0; i < 20; ++i) s += ")+";
    return s;
  }() + "\"\n", "", 2, 9);
}

TEST_CASE("hostile: toml++'s own messages quoting raw input stay one escaped line") {
  // Fuzz-found: "Error while parsing boolean: expected 'true', saw 't\n'" split the message.
  const std::string m = refused("a = t\n", "", 1);
  CHECK(m.find('\n') == std::string::npos);
}

TEST_CASE("hostile: an unmatched ')' and stacked repetitions are refused") {
  // Fuzz-found: glibc takes a lone ')' as a literal, but it also closes the group the pattern
  // is wrapped in, and the repetitions after it then apply to the whole pattern.
  refused("[[rule]]\nregex = \"/a)" + std::string(24, '+') + "\"\n", "unbalanced ')'", 2, 9);
  refused("[[rule]]\nregex = \"/a+)+**+++++\"\n", "unbalanced ')'", 2, 9);
  refused("[[rule]]\nregex = \"/a{" + std::string(24, '+') + "\"\n", "stacked repetitions", 2, 9);
  refused("[[rule]]\nregex = \"/a+*\"\n", "stacked repetitions", 2, 9);
  accepted("[[rule]]\nregex = \"/(a+)*b{2}[+*]+\"\n");
}

TEST_CASE("hostile: a quote or '=' inside a bare value is refused before toml++ reads it") {
  // Fuzz-found: "1=1=\"max_hascrosse\xc3\xa9\"" reached toml++'s Unicode UB through the value "1=...".
  refused("1=1=\"x\xc3\xa9\"\n", "unexpected '=' in a value", 1, 4);
  refused("a = 12\"\xc3\xa9\"\n", "unexpected '\"' in a value", 1, 7);
  accepted("[[rule]]\npath = \"/a\"\ndepth = 2\ntags = [\"a\", \"b\"]\n[groups]\nG = \"R\"\n");
}

TEST_CASE("options.read_timeout: seconds or a duration, at most a day, not in the digest") {
  const auto load = [](const std::string& v) { return parse_policy_text("[options]\nread_timeout = " + v + "\n", "t.toml"); };
  auto p = load("30");
  REQUIRE(p);
  CHECK(p->read_timeout_seconds == 30);
  p = load("\"2m\"");
  REQUIRE(p);
  CHECK(p->read_timeout_seconds == 120);
  p = load("\"500ms\"");
  REQUIRE(p);
  CHECK(p->read_timeout_seconds == doctest::Approx(0.5));
  p = load("0");
  REQUIRE(p);
  CHECK(p->read_timeout_seconds == 0);
  // The grammar of the command line's durations (base/duration.h): fractions and days too.
  const std::pair<const char*, double> also[] = {{"\"1.5h\"", 5400}, {"\"1d\"", 86400}, {"2.5", 2.5}};
  for (const auto& row : also) {  // no structured binding: clang 14 cannot capture one in CAPTURE
    CAPTURE(row.first);
    auto q = load(row.first);
    REQUIRE(q);
    CHECK(q->read_timeout_seconds == row.second);
  }
  for (const char* bad : {"-1", "\"2d\"", "\"25h\"", "\"x\"", "true", "\"\"", "90000", "-0.5", "\"1e3\""}) {
    CAPTURE(bad);
    CHECK(!load(bad));
  }
  auto a = load("5");
  auto b = load("50");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(policy_digest(*a) == policy_digest(*b));
}
