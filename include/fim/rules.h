// SPDX-License-Identifier: GPL-2.0-or-later
// rules: the policy (which entries, which attributes, how they are labelled) and the matcher
// that answers, for any path, which rule decides it.
//
// Precedence, the one rule users must be able to predict (fimctl.toml(5), `fimctl explain`):
// a rule *covers* an entry when its selector matches the entry itself or one of its ancestors
// no more than `depth` levels up. Of the rules that cover an entry and accept its file type
// and filesystem type, the winner is
//   1. the one whose match is nearest the entry (fewest levels up; 0 = the entry itself),
//   2. then path over glob over regex,
//   3. then the one defined last (conf.d files load after the main file, in name order).
// An exclusion that wins drops the entry; an entry no rule covers is not recorded. The walk
// skips a directory only when nothing below it can be selected.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fim/attr.h"
#include "fim/base/bytes.h"
#include "fim/base/result.h"

namespace fim {

enum class Severity : uint8_t { Info, Low, Medium, High, Critical };
std::string_view severity_name(Severity s);
std::optional<Severity> severity_from_name(std::string_view name);

/// An attribute selection: the mask, plus `growing` (a log: a size increase is not a change).
struct AttrSet {
  AttrMask mask = 0;
  bool growing = false;
  bool operator==(const AttrSet&) const = default;
};

/// Named sets every policy can use (AIDE's R, L, >, H, X plus readable names).
/// Each is a mask over the attribute registry (include/fim/attr.h), so a new attribute needs
/// no edit here; attr_set_text(attrs) writes one out.
struct BuiltinGroup {
  std::string_view name;
  AttrSet attrs;
  std::string_view help;
};
const std::vector<BuiltinGroup>& builtin_groups();

/// Parses "R + xxh128 - mtime": group names and attribute keys joined by + and -, applied
/// left to right. `groups` holds the user's groups already resolved. The error message has
/// no position; the caller adds one.
Result<AttrSet> parse_attr_expr(std::string_view expr, const std::map<std::string, AttrSet, std::less<>>& groups);
/// "type+mode+uid+...+growing": canonical, parseable.
std::string attr_set_text(const AttrSet& s);

enum class SelectorKind : uint8_t { Path, Glob, Regex };
std::string_view selector_kind_name(SelectorKind k);

/// Where something was defined: "file:line:column", or a description ("command line").
struct SourcePos {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
  std::string text() const;
};

struct CompiledSelector;  // match.cpp
struct ContentMasks;      // content_mask.cpp

inline constexpr uint32_t kAnyDepth = UINT32_MAX;

struct Rule {
  bool exclude = false;
  SelectorKind kind = SelectorKind::Path;
  Bytes pattern;                      ///< as written (a path is normalised)
  uint32_t depth = kAnyDepth;         ///< levels below the match it still covers (0: the match only)
  uint32_t types = 0;                 ///< bit (1 << FileType) per accepted type; 0 = every type
  std::vector<std::string> fstypes;   ///< accepted filesystem types; empty = every type
  // What an include rule records; meaningless for an exclusion.
  AttrSet attrs;
  std::string attrs_expr;             ///< as written, for show and explain
  Severity severity = Severity::Medium;
  std::vector<std::string> tags;
  uint64_t max_hash_bytes = 0;        ///< 0 = no limit
  bool cross_fs = false;              ///< descend into other mounts below entries it selects
  /// response: what check/watch --containers do to a container whose drift this rule reports
  /// (opt-in, as a failed liveness probe would): "kill" its processes, or "kill_process" only
  /// the one that made the change (watch knows it from the event). Not in the digest.
  enum class Response : uint8_t { None, Kill, KillProcess };
  Response response = Response::None;
  /// watch with the BPF LSM sensors: the entries it selects are protected (changes denied
  /// with --enforce, like fimctl's own files).
  bool protect = false;
  /// watch --enforce with the sensors: executing a file below this rule's path that the
  /// baseline does not record (as it is now) is denied. Path rules only.
  bool deny_unknown_exec = false;
  /// `fimctl seal` may enable fs-verity on the regular files this rule selects (binaries and
  /// libraries: never written in place). Only with sha256 and without `>` (checked at load).
  /// Not in the digest: it changes nothing recorded.
  bool seal = false;
  /// content = "diff" (docs/design.md, Content store): the content of the text files it selects
  /// is kept at baseline time (masked) and a change of one carries a unified diff. Not in the
  /// digest: it changes nothing recorded.
  bool content_diff = false;
  uint64_t content_max_bytes = 64 * 1024;  ///< content_max_size: larger files are not kept
  bool content_private = false;            ///< content_private: also files not world-readable
  std::vector<std::string> content_mask;   ///< content_mask: regexes, as written
  std::shared_ptr<const ContentMasks> masks;  ///< content_mask compiled (null: none)
  SourcePos where;
  std::shared_ptr<const CompiledSelector> compiled;

  /// "rule 3 (fimctl.toml:12:1)" / "exclude 2 (...)": numbered from 1 in load order.
  std::string label(size_t index) const;
};

/// Compiles `r.pattern` into r.compiled; checks it (absolute, normalised, bounded regex).
Status compile_rule(Rule* r);

struct Policy {
  std::vector<Rule> rules;             ///< includes and exclusions, in load order
  std::map<std::string, AttrSet, std::less<>> groups;  ///< user-defined groups, resolved
  AttrSet default_attrs;               ///< for rules that name none and for command-line PATHs
  Severity default_severity = Severity::Medium;
  bool cross_fs = false;
  uint64_t max_hash_bytes = 0;
  /// [options] read_timeout: an entry whose read makes no progress this long gets status
  /// timeout (0: wait forever). Not in the digest: it changes no recorded attribute.
  double read_timeout_seconds = 60;
  /// [options] package_mirrors: directories holding the Filename paths of apt's indexes,
  /// where check --packages also looks for .debs. Not in the digest.
  std::vector<std::string> package_mirrors;
  /// [options] auto_accept: "" (off) or "package-verified": check --packages accepts by itself
  /// the changes of recorded apt runs that deb-sha256 or derived evidence verifies, journalled
  /// with the run as reason. Not in the digest (it decides what is accepted, not recorded).
  std::string auto_accept;
  /// [options] check_mode: "full" (every selected byte hashed) or "fast" (docs/design.md,
  /// Evidence): check without --full/--fast runs this. Not in the digest.
  std::string check_mode = "full";
  /// [options] rehash_interval: fast checks hash every entry again within this (the rolling
  /// re-hash). Not in the digest.
  double rehash_interval_seconds = 7 * 86400.0;
  /// [options] content_deny: paths or globs whose content is never kept, on top of
  /// kBuiltinContentDeny (a rule cannot override either). Not in the digest.
  std::vector<std::string> content_deny;
  /// [options] content_store_max: the content store's size limit in bytes. Not in the digest.
  uint64_t content_store_max = 64ull << 20;
  std::string source;                  ///< for reports: "/etc/fimctl/fimctl.toml (+1 included)"
  std::vector<std::string> files;      ///< every file loaded, in order

  /// Where walks start: the fixed leading part of every include rule, normalised.
  std::vector<Bytes> roots() const;
};

/// Content never kept whatever the policy says (docs/design.md, Content store): globs.
inline constexpr const char* kBuiltinContentDeny[] = {
    "/**/shadow", "/**/gshadow", "/**/shadow-", "/**/gshadow-", "/**/ssh/ssh_host_*_key",
    "/**/ssl/private/**", "/**/fimctl/keys/**"};  // "/**/": container roots and copies too

/// Compiles content_mask patterns (POSIX extended regexes, glibc's \s \S \w allowed; a
/// leading "(?i)" makes one case-insensitive), each checked like a rule's regex for size and
/// back-references. Errc::Usage naming the pattern.
Result<std::shared_ptr<const ContentMasks>> compile_content_masks(const std::vector<std::string>& patterns);
/// `text` with every match of each mask replaced by "***", line by line; a pattern with a group
/// keeps the text of its first group before the "***" (`(key\s*=\s*)\S+` -> "key = ***").
std::string mask_content(const ContentMasks* masks, std::string_view text);
/// Whether `path` is on the built-in deny list or `extra` (paths or globs).
bool content_denied(std::string_view path, const std::vector<std::string>& extra);

/// Attributes recorded when nothing narrows them: everything but `dev` (device numbers of
/// tmpfs and some other filesystems change at every mount) and `xxh128` (not a security
/// digest; only on request). The same as group R.
AttrMask default_attrs();

/// Appends one include rule per path (command-line PATHs: they beat any policy rule that
/// matches higher up, and lose to rules that match below them).
void add_path_rules(Policy* p, const std::vector<Bytes>& paths, const std::string& where);

/// Canonical text of the policy's meaning (rules, options; not comments or positions) and its
/// SHA-256 in hex: what `check` compares to detect a policy change.
std::string policy_canonical(const Policy& p);
std::string policy_digest(const Policy& p);

/// Sorts roots, removes duplicates and roots that lie below another root.
std::vector<Bytes> normalize_roots(std::vector<Bytes> roots);

// --- loading (config_toml.cpp) ---

struct LoadOptions {
  std::string path;            ///< the main file
  bool builtin_fallback = false;  ///< a missing main file means the built-in default policy
  size_t max_file_bytes = 1 << 20;
};

/// The keys one table of a policy file may hold (fimctl.toml(5), FILE FORMAT).
struct ConfigTable {
  std::string_view name;               ///< "" (the top level), "options", "rule", "exclude"
  std::string_view where;              ///< as messages name it: "the top level", "[options]", ...
  std::vector<std::string_view> keys;  ///< in the order the man page lists them
  std::vector<std::string_view> types; ///< per key: what its value is ("boolean", "duration", ...)
};
/// Every policy key, table by table, derived from the loader's table of key handlers
/// (rules/policy_keys.cpp): the loader refuses any other key (naming the nearest of these,
/// "did you mean") and `fimctl completion list` prints them, so the man-page test and
/// completion see exactly what the loader handles. [groups] is absent: its keys are the
/// user's group names.
const std::vector<ConfigTable>& config_keys();
/// The entry of config_keys() for `name`; one exists for every name listed there.
const ConfigTable& config_table(std::string_view name);

/// One problem in a policy file: "file:line:column: message".
struct ConfigDiag {
  SourcePos where;
  std::string message;
};

/// Loads the main file and its includes. On failure the error lists every problem found
/// (up to a limit), one per line, each with its position; Errc::Usage.
Result<Policy> load_policy(const LoadOptions& opts);
/// Parses one document from memory (the built-in policy, the fuzz target, unit tests): `name`
/// is used in positions; an `include` key is checked but not followed.
Result<Policy> parse_policy_text(std::string_view text, const std::string& name);
/// The built-in default policy: share/fimctl.toml, embedded at build time.
std::string_view builtin_policy_text();
Policy default_policy();
/// The effective policy as TOML, with each rule's origin as a comment (`config show`).
std::string policy_to_toml(const Policy& p);

// --- matching (match.cpp) ---

/// Rules that cover a path: (rule index, levels up to where its selector matched).
struct Cover {
  uint32_t rule;
  uint32_t distance;
};
using Scope = std::vector<Cover>;

/// Evaluates a policy for paths, incrementally along a walk (a child's scope comes from its
/// parent's) or from scratch for one path. Immutable; safe to share between threads.
class Selector {
 public:
  explicit Selector(const Policy& p);

  /// The scope of `path` (absolute, normalised) given its parent's scope.
  void child_scope(const Scope& parent, std::string_view path, Scope* out) const;
  /// The scope of `path`, computed from "/" down.
  Scope scope_of(std::string_view path) const;
  /// The winning rule for an entry with this scope, file type and filesystem type (empty:
  /// unknown, rules with a filesystem filter then do not apply); -1 when no rule covers it.
  /// `extra` adds levels (1: a hypothetical child with no selector of its own).
  int winner(const Scope& s, FileType t, std::string_view fstype, uint32_t extra = 0) const;
  /// Whether the walk must list directory `dir` (scope `s`): something below it may be selected.
  bool descend(std::string_view dir, const Scope& s) const;
  /// Whether a selector could match a path strictly below `dir`.
  bool may_match_below(std::string_view dir) const;
  bool uses_fstype() const { return uses_fstype_; }
  const Policy& policy() const { return p_; }
  /// True when `a` beats `b` (the precedence at the top of this file).
  bool precedes(const Cover& a, const Cover& b) const;

 private:
  const Policy& p_;
  bool uses_fstype_ = false;
};

/// Glob match on whole paths: `*` and `?` within one component, `[...]` classes, `\` escapes,
/// `**` as a whole component for any number of components (zero included).
bool glob_match(std::string_view pattern, std::string_view path);
/// Filesystem type name from statfs f_type ("ext4", "tmpfs", "nfs", ..., or "0x1234abcd").
std::string fstype_name(int64_t f_type);

}  // namespace fim
