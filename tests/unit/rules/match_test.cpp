// SPDX-License-Identifier: GPL-2.0-or-later
// The policy language: selectors, precedence, depth, type filters, groups, pruning. Each
// case is a small policy text and a table of paths with the expected decision.
#include <doctest/doctest.h>

#include <algorithm>

#include "fim/rules.h"

using namespace fim;

namespace {

Policy load(const std::string& text) {
  auto p = parse_policy_text(text, "t.toml");
  if (!p) FAIL_CHECK(p.error().message);
  REQUIRE(p.has_value());
  return std::move(*p);
}

/// "-" not covered, "x" excluded, otherwise the line of the winning rule's [[rule]] header.
std::string decide(const Policy& p, std::string_view path, FileType t = FileType::File, std::string_view fs = "") {
  const Selector sel(p);
  const int w = sel.winner(sel.scope_of(path), t, fs);
  if (w < 0) return "-";
  const Rule& r = p.rules[static_cast<size_t>(w)];
  return r.exclude ? "x" + std::to_string(r.where.line) : std::to_string(r.where.line);
}

Status load_error(const std::string& text, std::string* msg) {
  auto p = parse_policy_text(text, "t.toml");
  if (p) return {};
  *msg = p.error().message;
  return p.error();
}

}  // namespace

TEST_CASE("glob: components, classes, escapes and **") {
  struct {
    const char* pattern;
    const char* path;
    bool match;
  } cases[] = {
      {"/etc/cron*", "/etc/cron.d", true},
      {"/etc/cron*", "/etc/cron.d/job", false},  // * stays within one component
      {"/etc/cron*", "/etc/crontab", true},
      {"/home/*/.ssh/authorized_keys*", "/home/al/.ssh/authorized_keys2", true},
      {"/home/*/.ssh/authorized_keys*", "/home/.ssh/authorized_keys", false},
      {"/usr/**/*.pyc", "/usr/a.pyc", true},  // ** matches zero components
      {"/usr/**/*.pyc", "/usr/lib/python3/x/y.pyc", true},
      {"/usr/**/*.pyc", "/usr/lib/python3/x/y.py", false},
      {"/usr/**", "/usr", true},
      {"/a/[bc]?", "/a/cx", true},
      {"/a/[!bc]?", "/a/cx", false},
      {"/a/[a-c]", "/a/b", true},
      {"/a/\\*", "/a/*", true},
      {"/a/\\*", "/a/b", false},
      {"/a/[", "/a/[", true},  // an unclosed class is a literal '['
      {"/a/*b*c*d", "/a/xxbxxcxxd", true},
      {"/a/*b*c*d", "/a/xxbxxcxx", false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.pattern);
    CAPTURE(c.path);
    CHECK(glob_match(c.pattern, c.path) == c.match);
  }
}

TEST_CASE("precedence: nearest match, then path > glob > regex, then the later rule") {
  const Policy p = load(R"P(
[[rule]]
path = "/usr"
[[exclude]]
glob = "/usr/**/*.pyc"
[[rule]]
regex = "/usr/lib/keep\\.pyc"
[[exclude]]
path = "/usr/lib/cache"
[[rule]]
glob = "/usr/lib/cache"
[[rule]]
path = "/usr/lib/cache/important"
[[exclude]]
path = "/usr/share"
depth = 0
)P");
  CHECK(decide(p, "/usr/bin/ls") == "2");          // covered from /usr, 2 levels up
  CHECK(decide(p, "/usr/lib/x.pyc") == "x4");       // the glob matches the entry itself
  CHECK(decide(p, "/usr/lib/keep.pyc") == "x4");    // same distance: a glob beats a regex
  CHECK(decide(p, "/usr/lib/cache", FileType::Dir) == "x8");  // same distance: a path beats a glob
  CHECK(decide(p, "/usr/lib/cache/f") == "x8");
  CHECK(decide(p, "/usr/lib/cache/important") == "12");  // nearer than the exclusion
  CHECK(decide(p, "/usr/lib/cache/important/deep") == "12");
  CHECK(decide(p, "/usr/share", FileType::Dir) == "x14");  // depth 0: the entry only...
  CHECK(decide(p, "/usr/share/doc") == "2");                // ...its contents are not excluded
  CHECK(decide(p, "/etc/passwd") == "-");
}

TEST_CASE("the later of two equal rules wins, so a drop-in can override the main file") {
  const Policy p = load(R"P(
[[rule]]
path = "/etc"
severity = "low"
[[rule]]
path = "/etc"
severity = "critical"
)P");
  const Selector sel(p);
  const int w = sel.winner(sel.scope_of("/etc/hosts"), FileType::File, "");
  REQUIRE(w == 1);
  CHECK(p.rules[1].severity == Severity::Critical);
}

TEST_CASE("depth limits how far below its match a rule reaches") {
  const Policy p = load(R"P(
[[rule]]
path = "/etc/cron.d"
depth = 1
)P");
  CHECK(decide(p, "/etc/cron.d", FileType::Dir) == "2");
  CHECK(decide(p, "/etc/cron.d/job") == "2");
  CHECK(decide(p, "/etc/cron.d/sub/job") == "-");
}

TEST_CASE("type and fstype filters: a rule that does not apply leaves the decision to the next") {
  const Policy p = load(R"P(
[[rule]]
path = "/srv"
[[exclude]]
path = "/srv"
type = ["symlink", "fifo"]
[[rule]]
path = "/srv"
type = "dir"
attrs = "perms"
[[exclude]]
path = "/srv/nfs"
fstype = ["nfs", "fuse"]
)P");
  CHECK(decide(p, "/srv/a") == "2");
  CHECK(decide(p, "/srv/l", FileType::Symlink) == "x4");
  CHECK(decide(p, "/srv/d", FileType::Dir) == "7");
  CHECK(p.rules[2].attrs.mask == (attr_bit(Attr::Type) | attr_bit(Attr::Mode) | attr_bit(Attr::Uid) | attr_bit(Attr::Gid)));
  CHECK(decide(p, "/srv/nfs/f", FileType::File, "nfs") == "x11");
  CHECK(decide(p, "/srv/nfs/f", FileType::File, "ext4") == "2");
}

TEST_CASE("attribute groups and expressions") {
  const Policy p = load(R"P(
[groups]
Web = "Base + xxh128"
Base = "R - mtime - ctime"
[[rule]]
path = "/var/www"
attrs = "Web"
[[rule]]
path = "/var/log/wtmp"
attrs = ">"
[[rule]]
path = "/x"
attrs = "none"
)P");
  const AttrSet web = p.groups.at("Web");
  CHECK((web.mask & attr_bit(Attr::Xxh128)) != 0);
  CHECK((web.mask & attr_bit(Attr::Mtime)) == 0);
  CHECK((web.mask & attr_bit(Attr::Sha256)) != 0);
  CHECK(p.rules[0].attrs.mask == (web.mask | attr_bit(Attr::Type)));
  CHECK(p.rules[1].attrs.growing);
  CHECK((p.rules[1].attrs.mask & attr_bit(Attr::Size)) != 0);
  CHECK((p.rules[1].attrs.mask & attr_bit(Attr::Sha256)) != 0);  // of the recorded size only
  CHECK(p.rules[2].attrs.mask == attr_bit(Attr::Type));  // the type is always recorded

  std::string msg;
  CHECK_FALSE(load_error("[groups]\nA = \"B\"\nB = \"A\"\n", &msg).has_value());
  CHECK(msg.find("refers to itself") != std::string::npos);
  CHECK_FALSE(load_error("[groups]\nR = \"sha256\"\n", &msg).has_value());
  CHECK(msg.find("built-in") != std::string::npos);
  CHECK_FALSE(load_error("[[rule]]\npath = \"/a\"\nattrs = \"R + nosuch\"\n", &msg).has_value());
  CHECK(msg.find("t.toml:3:9: [[rule]].attrs: unknown attribute or group 'nosuch'") == 0);
}

TEST_CASE("errors carry file:line:column, name the key, and suggest the near miss") {
  struct {
    const char* text;
    const char* expect;
  } cases[] = {
      {"[[rule]]\npath = \"/a\"\natrs = \"R\"\n", "t.toml:3:1: unknown key 'atrs' in [[rule]] (did you mean 'attrs'?)"},
      {"[[rule]]\npath = 5\n", "t.toml:2:8: [[rule]].path must be a string, not an integer"},
      {"[[rule]]\nglob = \"/a\"\npath = \"/b\"\n", "needs exactly one of 'path', 'glob' or 'regex'"},
      {"[[exclude]]\npath = \"/a\"\nseverity = \"high\"\n", "'severity' has no meaning in an [[exclude]]"},
      {"[[rule]]\npath = \"a/b\"\n", "must be an absolute path"},
      {"[[rule]]\npath = \"/a/../b\"\n", "'.' or '..'"},
      {"[[rule]]\nregex = \".*\\\\.conf\"\n", "a regex must start with '/'"},
      {"[[rule]]\nregex = \"/a|/b\"\n", "'|' at the top level"},
      {"[[rule]]\nregex = \"/(a)\\\\1\"\n", "back-references"},
      {"[[rule]]\nregex = \"/(a{1,100}){1,100}\"\n", "regex too complex"},
      {"[[rule]]\nregex = \"/a[\"\n", "invalid regex"},
      {"[[rule]]\nglob = \"/a/x**\"\n", "'**' must be a whole component"},
      {"[[rule]]\npath = \"/a\"\nseverity = \"urgent\"\n", "unknown severity 'urgent'"},
      {"[[rule]]\npath = \"/a\"\ntype = \"file\"\ndepth = -1\n", "must be a non-negative integer"},
      {"[[rule]]\npath = \"/a\"\ntype = [\"regular\"]\n", "unknown file type 'regular'"},
      {"[[rule]]\npath = \"/a\"\nmax_hash_size = \"12 parsecs\"\n", "must be a size"},
      {"[rule]\npath = \"/a\"\n", "must be an array of tables: write [[rule]]"},
      {"version = 2\n", "t.toml:1:11: policy format version 2 is not supported"},
      {"verison = 1\n", "did you mean 'version'"},
      {"[options]\ncross_fs = \"yes\"\n", "t.toml:2:12: options.cross_fs must be a boolean, not a string"},
      {"[[rule]]\npath = \"/a\"\npath = \"/b\"\n", "t.toml:3:"},  // duplicate key: toml++'s message
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    std::string msg;
    const Status st = load_error(c.text, &msg);
    REQUIRE_FALSE(st.has_value());
    CHECK(st.error().code == Errc::Usage);
    CHECK(msg.rfind("t.toml:", 0) == 0);
    CHECK(msg.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("several problems are all reported, one per line") {
  std::string msg;
  REQUIRE_FALSE(load_error("[[rule]]\npath = 1\n[[rule]]\nglob = 2\nfoo = 3\n", &msg).has_value());
  CHECK(std::count(msg.begin(), msg.end(), '\n') == 2);
}

TEST_CASE("walk roots are the fixed beginnings of include rules") {
  const Policy p = load(R"P(
[[rule]]
glob = "/home/*/.ssh/authorized_keys"
[[rule]]
regex = "/var/log/(wtmp|btmp)"
[[rule]]
regex = "^/opt/app\\.d/x*"
[[rule]]
path = "/etc/ssh"
[[rule]]
path = "/etc/ssh/sshd_config.d"
[[exclude]]
path = "/srv"
)P");
  CHECK(p.roots() == std::vector<Bytes>{"/etc/ssh", "/home", "/opt/app.d", "/var/log"});
}

TEST_CASE("the walk lists only directories below which something can be selected") {
  const Policy p = load(R"P(
[[rule]]
glob = "/home/*/.ssh/authorized_keys"
[[rule]]
path = "/usr"
[[exclude]]
path = "/usr/share"
[[rule]]
path = "/usr/share/keep"
)P");
  const Selector sel(p);
  CHECK(sel.descend("/home", sel.scope_of("/home")));
  CHECK(sel.descend("/home/al", sel.scope_of("/home/al")));
  CHECK(sel.descend("/home/al/.ssh", sel.scope_of("/home/al/.ssh")));
  CHECK_FALSE(sel.descend("/home/al/src", sel.scope_of("/home/al/src")));
  CHECK(sel.descend("/usr/lib", sel.scope_of("/usr/lib")));
  CHECK(sel.descend("/usr/share", sel.scope_of("/usr/share")));  // keep lies below it
  CHECK_FALSE(sel.descend("/usr/share/doc", sel.scope_of("/usr/share/doc")));
  CHECK(decide(p, "/home/al/.ssh/authorized_keys") == "2");
  CHECK(decide(p, "/home/al/.ssh/id_rsa") == "-");
}

TEST_CASE("config show loads back to the same policy") {
  const Policy p = load(std::string(builtin_policy_text()));
  auto again = parse_policy_text(policy_to_toml(p), "shown.toml");
  REQUIRE(again.has_value());
  CHECK(policy_digest(*again) == policy_digest(p));
  CHECK(again->rules.size() == p.rules.size());
}

TEST_CASE("the digest follows meaning, not layout") {
  const Policy a = load("[[rule]]\npath = \"/a\"\nattrs = \"R\"\n");
  const Policy b = load("# comment\n\n[[rule]]\n  attrs = \"R + xxh128 - xxh128\"\n  path = \"/a/\"\n");
  const Policy c = load("[[rule]]\npath = \"/a\"\nattrs = \"R - sha256\"\n");
  CHECK(policy_digest(a) == policy_digest(b));
  CHECK(policy_digest(a) != policy_digest(c));
}

TEST_CASE("command-line paths are rules: nearer than a policy exclusion, farther than a rule below") {
  Policy p = load(R"P(
[[exclude]]
path = "/tmp"
[[rule]]
path = "/tmp/x/logs"
attrs = ">"
)P");
  add_path_rules(&p, {"/tmp/x"}, "command line");
  CHECK(decide(p, "/tmp/x/a") == "0");  // the command-line rule (line 0)
  CHECK(decide(p, "/tmp/x/logs/l") == "4");
  CHECK(decide(p, "/tmp/y") == "x2");
}
