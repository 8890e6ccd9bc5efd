// SPDX-License-Identifier: GPL-2.0-or-later
// config_keys() is the one list of policy keys: the loader accepts every key on it (with a value
// of the right type) and refuses every other, so the man-page test (tests/cli/install_test.py,
// which reads the list from `fimctl completion list`) checks exactly what the loader reads.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>

#include "fim/rules.h"

using namespace fim;

namespace {

/// A valid value for every key: a key added to config_keys() needs one here, which shows
/// that the loader has a branch for it.
const std::map<std::string, std::string> kValues = {
    // the top level: a whole table or array of tables
    {"version", "version = 1\n"},
    {"include", "include = []\n"},
    {"options", "[options]\nseverity = \"high\"\n"},
    {"groups", "[groups]\nweb = \"R - mtime\"\n"},
    {"rule", "[[rule]]\npath = \"/srv\"\n"},
    {"exclude", "[[exclude]]\npath = \"/srv/cache\"\n"},
    // [options], [[rule]], [[exclude]]: the value only
    {"default_attrs", "\"R + xxh128\""},
    {"severity", "\"low\""},
    {"cross_fs", "true"},
    {"protect", "true"},
    {"deny_unknown_exec", "true"},
    {"seal", "true"},
    {"max_hash_size", "\"1 MiB\""},
    {"read_timeout", "\"30s\""},
    {"package_mirrors", "[\"/srv/mirror\"]"},
    {"auto_accept", "\"package-verified\""},
    {"check_mode", "\"fast\""},
    {"rehash_interval", "\"7d\""},
    {"response", "\"kill\""},
    {"path", "\"/srv\""},
    {"glob", "\"/srv/*\""},
    {"regex", "\"/srv/.*\""},
    {"depth", "1"},
    {"type", "[\"file\", \"dir\"]"},
    {"fstype", "\"ext4\""},
    {"attrs", "\"L\""},
    {"tags", "[\"web\"]"},
    {"content", "\"diff\""},
    {"content_max_size", "\"64 KiB\""},
    {"content_private", "true"},
    {"content_mask", "['(?i)(password=)[^ ]+']"},
    {"content_deny", "[\"/srv/secret/**\"]"},
    {"content_store_max", "\"64 MiB\""},
};

bool is_selector(const std::string& key) { return key == "path" || key == "glob" || key == "regex"; }

std::string policy_with(const ConfigTable& t, const std::string& key) {
  const std::string value = kValues.at(key);
  if (t.name.empty()) return value;
  if (t.name == "options") return "[options]\n" + key + " = " + value + "\n";
  const std::string head = "[[" + std::string(t.name) + "]]\n";
  return head + (is_selector(key) ? "" : "path = \"/srv\"\n") + key + " = " + value + "\n";
}

}  // namespace

TEST_CASE("config_keys: every table the man page documents, each key once") {
  std::map<std::string, int> tables;
  for (const auto& t : config_keys()) {
    tables[std::string(t.name)]++;
    CHECK(&config_table(t.name) == &t);
    CHECK(!t.where.empty());
    for (size_t i = 0; i < t.keys.size(); ++i)
      for (size_t j = i + 1; j < t.keys.size(); ++j) CHECK(t.keys[i] != t.keys[j]);
  }
  CHECK(tables == std::map<std::string, int>{{"", 1}, {"options", 1}, {"rule", 1}, {"exclude", 1}});
}

TEST_CASE("config_keys: the loader accepts every listed key") {
  for (const auto& t : config_keys()) {
    for (const auto k : t.keys) {
      const std::string key(k);
      INFO("key '", key, "' in ", t.where);
      REQUIRE(kValues.count(key) == 1);
      auto p = parse_policy_text(policy_with(t, key), "t.toml");
      CHECK_MESSAGE(p.has_value(), (p.has_value() ? std::string() : p.error().message));
    }
  }
}

TEST_CASE("config_keys: the loader refuses a key that is not listed") {
  for (const auto& t : config_keys()) {
    INFO("table ", t.where);
    const std::string text = t.name.empty()          ? "bogus = 1\n"
                             : t.name == "options" ? "[options]\nbogus = 1\n"
                                                   : "[[" + std::string(t.name) + "]]\npath = \"/srv\"\nbogus = 1\n";
    auto p = parse_policy_text(text, "t.toml");
    REQUIRE(!p.has_value());
    CHECK(p.error().message.find("unknown key 'bogus' in " + std::string(t.where)) != std::string::npos);
  }
  // A key of [[rule]] that [[exclude]] does not list is named as meaningless there.
  for (const auto k : config_table("rule").keys) {
    const auto& excl = config_table("exclude").keys;
    if (std::find(excl.begin(), excl.end(), k) != excl.end()) continue;
    auto p = parse_policy_text("[[exclude]]\npath = \"/srv\"\n" + std::string(k) + " = " + kValues.at(std::string(k)) + "\n",
                               "t.toml");
    REQUIRE(!p.has_value());
    CHECK(p.error().message.find("has no meaning in an [[exclude]]") != std::string::npos);
  }
}

TEST_CASE("protect and deny_unknown_exec: booleans; deny_unknown_exec on path rules only; digest kept without them") {
  auto p = parse_policy_text("[[rule]]\npath = \"/srv/bin\"\ndeny_unknown_exec = true\n[[rule]]\nglob = \"/srv/etc/*\"\nprotect = true\n",
                             "t.toml");
  REQUIRE(p.has_value());
  CHECK(p->rules[0].deny_unknown_exec);
  CHECK_FALSE(p->rules[0].protect);
  CHECK(p->rules[1].protect);
  auto g = parse_policy_text("[[rule]]\nglob = \"/srv/*\"\ndeny_unknown_exec = true\n", "t.toml");
  REQUIRE_FALSE(g.has_value());
  CHECK(g.error().message.find("deny_unknown_exec applies to 'path' rules only") != std::string::npos);
  auto b = parse_policy_text("[[rule]]\npath = \"/srv\"\nprotect = 1\n", "t.toml");
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().message.find("must be a boolean") != std::string::npos);
  // A policy that does not use them has the digest it had before they existed.
  auto plain = parse_policy_text("[[rule]]\npath = \"/srv\"\n", "t.toml");
  auto off = parse_policy_text("[[rule]]\npath = \"/srv\"\nprotect = false\n", "t.toml");
  auto on = parse_policy_text("[[rule]]\npath = \"/srv\"\nprotect = true\n", "t.toml");
  REQUIRE((plain.has_value() && off.has_value() && on.has_value()));
  CHECK(policy_digest(*plain) == policy_digest(*off));
  CHECK(policy_digest(*plain) != policy_digest(*on));
  CHECK(policy_canonical(*plain).find("protect") == std::string::npos);
}

TEST_CASE("seal: a boolean; refused on a growing log, on L and without sha256; not in the digest") {
  auto p = parse_policy_text("[[rule]]\npath = \"/srv/bin\"\nseal = true\n", "t.toml");
  REQUIRE(p.has_value());
  CHECK(p->rules[0].seal);
  CHECK(policy_to_toml(*p).find("seal = true") != std::string::npos);
  for (const char* attrs : {">", "L", "perms", "R - sha256"}) {
    auto bad = parse_policy_text("[[rule]]\npath = \"/srv/log\"\nattrs = \"" + std::string(attrs) + "\"\nseal = true\n",
                                 "t.toml");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message.find("seal needs attrs with sha256 and without '>'") != std::string::npos);
  }
  auto plain = parse_policy_text("[[rule]]\npath = \"/srv/bin\"\n", "t.toml");
  REQUIRE(plain.has_value());
  CHECK(policy_digest(*plain) == policy_digest(*p));
}

TEST_CASE("config_keys: every key says what its value is") {
  for (const auto& t : config_keys()) {
    INFO("table ", t.where);
    REQUIRE(t.types.size() == t.keys.size());
    for (const auto type : t.types) CHECK(!type.empty());
  }
}

TEST_CASE("built-in groups: masks over the attribute registry, the sets fimctl.toml(5) documents") {
  const std::map<std::string, std::string> documented = {
      {"R", "type+mode+uid+gid+size+mtime+ctime+inode+rdev+nlink+link+sha256+xattrs+acl_access+acl_default+caps+selinux+flags+"
            "btime+handle+verity"},
      {"L", "type+mode+uid+gid+inode+rdev+nlink+link+xattrs+acl_access+acl_default+caps+selinux+flags"},
      {">", "type+mode+uid+gid+size+inode+rdev+nlink+link+sha256+xattrs+acl_access+acl_default+caps+selinux+flags+growing"},
      {"H", "sha256"},
      {"X", "xattrs+acl_access+acl_default+caps+selinux+flags"},
      {"perms", "type+mode+uid+gid"},
      {"acl", "acl_access+acl_default"},
      {"all", "type+mode+uid+gid+size+mtime+ctime+inode+dev+rdev+nlink+link+sha256+xattrs+acl_access+acl_default+caps+"
              "selinux+flags+xxh128+btime+handle+verity"},
      {"none", "none"},
  };
  std::map<std::string, std::string> actual;
  for (const auto& g : builtin_groups()) actual[std::string(g.name)] = attr_set_text(g.attrs);
  CHECK(actual == documented);
  // R is the default; every group parses as an expression to its own set.
  for (const auto& g : builtin_groups()) {
    CAPTURE(g.name);
    auto parsed = parse_attr_expr(g.name, {});
    REQUIRE(parsed.has_value());
    CHECK(*parsed == g.attrs);
  }
  CHECK(builtin_groups()[0].attrs.mask == default_attrs());
  // The message for an unknown name lists every attribute of the registry.
  auto bad = parse_attr_expr("bogus", {});
  REQUIRE_FALSE(bad.has_value());
  for (size_t i = 0; i < kAttrCount; ++i)
    CHECK(bad.error().message.find(std::string(attr_info(static_cast<Attr>(i)).key)) != std::string::npos);
}
