// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl config check|show and fimctl explain: the policy, seen by the people who write it.
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cstdio>

#include "commands.h"
#include "fim/base/sys.h"

namespace fim::cli {
namespace {


std::string type_list(uint32_t types) {
  std::string out;
  for (unsigned t = 1; t < 8; ++t)
    if (types & (1u << t)) out += (out.empty() ? "" : ",") + std::string(file_type_name(static_cast<FileType>(t)));
  return out;
}

std::string describe_rule(const Policy& p, uint32_t idx) {
  const Rule& r = p.rules[idx];
  std::string s = r.label(idx) + ": " + std::string(selector_kind_name(r.kind)) + " = \"" + escape_terminal(r.pattern) + "\"";
  if (r.depth != kAnyDepth) s += ", depth = " + std::to_string(r.depth);
  if (r.types) s += ", type = " + type_list(r.types);
  if (!r.fstypes.empty()) {
    s += ", fstype = ";
    for (size_t i = 0; i < r.fstypes.size(); ++i) s += (i ? "," : "") + r.fstypes[i];
  }
  return s;
}

std::string levels(uint32_t d) {
  if (d == 0) return "matches the path itself";
  return "matches " + std::to_string(d) + (d == 1 ? " level" : " levels") + " up";
}

}  // namespace

Result<Policy> load_cli_policy(const Options& o) {
  LoadOptions lo;
  auto abs = absolute_path(o.config);
  if (!abs) return abs.error();
  lo.path = *abs;
  lo.builtin_fallback = !o.config_given;
  return load_policy(lo);
}

int cmd_config(const Options& o) {
  auto p = load_cli_policy(o);
  if (!p) return report_error(p.error());
  if (o.action == "show") {
    std::fputs(policy_to_toml(*p).c_str(), stdout);
    return 0;
  }
  size_t excludes = 0;
  for (const auto& r : p->rules) excludes += r.exclude;
  std::printf("policy ok: %s\n  %zu rules, %zu exclusions, %zu groups, %zu files\n  walk roots:",
              escape_terminal(p->source).c_str(), p->rules.size() - excludes, excludes, p->groups.size(),
              p->files.size());
  for (const auto& r : p->roots()) std::printf(" %s", escape_terminal(r).c_str());
  std::printf("\n  digest: %s\n", policy_digest(*p).c_str());
  return 0;
}

namespace {

/// Explains one path; true when it is recorded.
bool explain_one(const Policy& p, const Selector& sel, const Bytes& path) {
  struct stat st;
  const bool exists = ::lstat(path.c_str(), &st) == 0;
  const FileType type = exists ? file_type_of(st.st_mode) : FileType::Unknown;
  std::string fstype;
  if (sel.uses_fstype()) {  // the filesystem of the directory holding it, as the walk sees it
    Bytes dir, name;
    split_path(path, &dir, &name);
    struct statfs sf;
    if (::statfs(dir.c_str(), &sf) == 0) fstype = fstype_name(static_cast<int64_t>(sf.f_type));
  }
  std::printf("%s (%s%s%s)\n", escape_terminal(path).c_str(),
              exists ? std::string(file_type_name(type)).c_str() : "does not exist",
              fstype.empty() ? "" : ", in a directory on ", fstype.c_str());
  const Scope scope = sel.scope_of(path);  // one cover per rule, at its nearest match
  const int w = sel.winner(scope, type, fstype);
  if (w < 0) {
    std::printf("  not recorded: %s\n", scope.empty() ? "no rule covers it"
                                                     : "the rules that cover it do not apply to it (below)");
  } else {
    const Rule& r = p.rules[static_cast<size_t>(w)];
    const auto c = std::find_if(scope.begin(), scope.end(), [&](const Cover& x) { return x.rule == static_cast<uint32_t>(w); });
    std::printf("  %s by %s\n    (%s)\n", r.exclude ? "excluded" : "recorded", describe_rule(p, static_cast<uint32_t>(w)).c_str(),
                levels(c->distance).c_str());
    if (!r.exclude) {
      std::printf("  attributes: %s\n", attr_set_text(AttrSet{r.attrs.mask | attr_bit(Attr::Type), r.attrs.growing}).c_str());
      if (r.attrs_expr != "(default_attrs)") std::printf("    from: %s\n", escape_terminal(r.attrs_expr).c_str());
      std::printf("  severity: %s\n  tags: ", std::string(severity_name(r.severity)).c_str());
      for (size_t i = 0; i < r.tags.size(); ++i) std::printf("%s%s", i ? ", " : "", escape_terminal(r.tags[i]).c_str());
      std::printf("%s\n  hash limit: %s\n  cross filesystems below it: %s\n", r.tags.empty() ? "(none)" : "",
                  r.max_hash_bytes ? (std::to_string(r.max_hash_bytes) + " bytes").c_str() : "none",
                  r.cross_fs ? "yes" : "no");
    }
  }
  // Every other rule that covers it, in precedence order, and why it lost or does not apply.
  std::vector<Cover> ranked(scope.begin(), scope.end());
  std::sort(ranked.begin(), ranked.end(), [&](const Cover& a, const Cover& b) { return sel.precedes(a, b); });
  bool header = false;
  for (const Cover& c : ranked) {
    if (static_cast<int>(c.rule) == w) continue;
    const Rule& r = p.rules[c.rule];
    std::string why = "lower precedence";
    if (r.types && !(r.types & (1u << static_cast<unsigned>(type))))
      why = exists ? "does not apply to a " + std::string(file_type_name(type)) : "applies only to " + type_list(r.types);
    else if (!r.fstypes.empty() && std::find(r.fstypes.begin(), r.fstypes.end(), fstype) == r.fstypes.end())
      why = "filesystem type does not match";
    if (!header) std::printf("  other rules covering it:\n");
    header = true;
    std::printf("    %s\n      (%s; %s)\n", describe_rule(p, c.rule).c_str(), levels(c.distance).c_str(), why.c_str());
  }
  return w >= 0 && !p.rules[static_cast<size_t>(w)].exclude;
}

}  // namespace

int cmd_explain(const Options& o) {
  auto p = load_cli_policy(o);
  if (!p) return report_error(p.error());
  const Selector sel(*p);
  bool all = true;
  for (const auto& arg : o.paths) {
    auto abs = absolute_path(arg);
    if (!abs) return report_error(abs.error());
    all &= explain_one(*p, sel, *abs);
  }
  std::printf("policy: %s\n(mount points the walk does not cross and skipped_fs directories are not considered)\n",
              escape_terminal(p->source).c_str());
  return all ? 0 : 1;
}

}  // namespace fim::cli
