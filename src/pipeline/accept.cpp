// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl accept: differences of the last report taken into the successor baseline, each
// exactly as it was reported (docs/design.md, Baseline), with a journal entry of its own.
#include <fcntl.h>

#include <map>
#include <optional>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/pipeline.h"
#include "fim_config.h"
#include "merge.h"

namespace fim {
namespace {

using detail::current_user;
using detail::facts_of;
using detail::open_trusted;
using detail::quoted;
using detail::row_digest;
using detail::signing_key;

/// The current state of one path, collected as the walk would (its rule's attributes), or
/// nothing when it is gone or no rule records it.
std::optional<Record> collect_one(const Selector& sel, int root_fd, const Bytes& path, Collector& c) {
  Bytes dir, name;
  split_path(path, &dir, &name);
  UniqueFd dfd(open_in_root(root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) return std::nullopt;
  Target t;
  if (::fstatat(dfd.get(), name.c_str(), &t.st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
  t.dir = std::make_shared<const UniqueFd>(std::move(dfd));
  t.name = name;
  t.path = path;
  const int w = sel.winner(sel.scope_of(path), file_type_of(t.st.st_mode), {});
  if (w < 0 || sel.policy().rules[static_cast<size_t>(w)].exclude) return std::nullopt;
  const Rule& r = sel.policy().rules[static_cast<size_t>(w)];
  CollectOptions co;
  co.mask = r.attrs.mask | attr_bit(Attr::Type);
  co.max_hash_bytes = r.max_hash_bytes;
  Record rec;
  c.collect(t, co, &rec);
  return rec;
}

bool has_glob_chars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

}  // namespace

Result<Summary> run_accept(const RunOptions& opts, Sink& sink) {
  const double t0 = monotonic_seconds();
  if (opts.reason.empty())
    return make_error(Errc::Usage, "accept needs --reason: why these changes are legitimate goes into the journal");
  if (!opts.accept_all && opts.paths.empty() && opts.accept_rules.empty() && !opts.package_verified)
    return make_error(Errc::Usage, "name what to accept: PATHs or GLOBs, --rule FILE:LINE:COLUMN, --package-verified "
                                   "or --all");
  auto key = signing_key(opts);
  if (!key) return key.error();
  auto lock = BaselineLock::acquire(opts.db_path);
  if (!lock) return lock.error();
  auto trusted = open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  BaselineReader& base = *trusted->base;
  const BaselineMeta& meta = base.meta();
  if (meta.is_signed && !*key)
    return make_error(Errc::Usage, "refusing to replace a signed baseline with an unsigned one: no signing key at " +
                                       quoted(join_path(opts.keys_dir, "signing.key")));
  if (!trusted->state) return make_error(Errc::Io, "accept needs state.db, which holds the last report: " +
                                                      trusted->state.error().describe());
  StateStore& state = **trusted->state;
  std::string report_of;
  auto rep = state.load_report(opts.db_path, &report_of);
  if (!rep) return rep.error();
  if (meta.policy_digest != policy_digest(opts.policy))
    return make_error(Errc::Usage, "the policy changed since the baseline was written: accepting single entries would "
                                   "mix two policies in one baseline; use 'fimctl update' to re-baseline");
  if (report_of != meta.content_sha256)
    return make_error(Errc::Usage, "there is no report of this baseline to accept from (the last one was made against "
                                   "another baseline, or none was): run 'fimctl check' first");

  // Which reported differences.
  std::vector<StateStore::Reported> chosen;
  for (const auto& r : *rep) {
    // --package-verified alone: every reported difference is a candidate (its package decides).
    bool take = opts.accept_all || (opts.package_verified && opts.paths.empty() && opts.accept_rules.empty());
    for (const auto& p : opts.paths)
      take = take || (has_glob_chars(p) ? glob_match(p, r.path) : path_within(r.path, p));
    for (const auto& rule : opts.accept_rules) take = take || r.rule == rule;
    if (take) chosen.push_back(r);
  }
  if (chosen.empty())
    return make_error(Errc::Usage, "nothing in the last report matches (it lists " + std::to_string(rep->size()) +
                                       " differences; 'fimctl check' shows them)");

  // Tripwire's high-security rule: what is accepted is exactly what was reported. An entry
  // that changed again since is refused, and then nothing is accepted.
  Policy effective = opts.policy;
  if (meta.roots_source == "cli") add_path_rules(&effective, meta.roots, "baseline roots (init PATH)");
  const Selector sel(effective);
  Collector collector;
  std::map<Bytes, std::optional<Record>> now;  // path -> its accepted state (none: removed)
  std::vector<Bytes> stale;
  for (const auto& r : chosen) {
    auto cur = collect_one(sel, opts.sysroot_fd, r.path, collector);
    const std::string digest = cur ? row_digest(*cur) : "-";
    if (digest != r.new_row) {
      stale.push_back(r.path);
      continue;
    }
    now[r.path] = std::move(cur);
  }
  if (!stale.empty()) {
    std::string list;
    for (size_t i = 0; i < stale.size() && i < 5; ++i) list += (i ? ", " : "") + quoted(stale[i]);
    if (stale.size() > 5) list += ", ...";
    return make_error(Errc::Usage, std::to_string(stale.size()) + " of the chosen entries changed again since they were "
                                   "reported (" + list + "): nothing was accepted; run 'fimctl check' and accept again");
  }
  std::map<Bytes, std::string> vouched;  // --package-verified: path -> the package's word, for the journal
  if (opts.package_verified) FIM_TRY(detail::keep_package_verified(opts, meta, &state, &now, &vouched, sink));
  const auto why = [&](const Bytes& path) {
    auto v = vouched.find(path);
    return v == vouched.end() ? opts.reason : opts.reason + " (" + v->second + ")";
  };

  // The successor: the old rows, with the accepted entries replaced, dropped or inserted.
  auto writer = BaselineWriter::create(opts.db_path, *key ? &**key : nullptr);
  if (!writer) return writer.error();
  Summary s;
  s.command = "accept";
  std::vector<Acceptance> journal;
  const std::string who = current_user();
  auto next_new = now.begin();
  const auto put_added_before = [&](const Bytes* limit) -> Status {  // accepted additions sort in by path
    for (; next_new != now.end() && (!limit || next_new->first < *limit); ++next_new) {
      if (!next_new->second) continue;
      FIM_TRY((*writer)->add(*next_new->second));
      ++s.added;
      sink.change(ChangeKind::Added, nullptr, &*next_new->second, 0, nullptr);
      journal.push_back({0, who, "accept", why(next_new->first), next_new->first, "added", "-", row_digest(*next_new->second)});
    }
    return {};
  };
  Record old;
  for (;;) {
    auto more = base.next(&old);
    if (!more) return more.error();
    if (!*more) break;
    FIM_TRY(put_added_before(&old.path));
    auto it = now.find(old.path);
    if (it == now.end()) {
      FIM_TRY((*writer)->add(old));
      continue;
    }
    if (next_new == it) ++next_new;
    if (it->second) {
      FIM_TRY((*writer)->add(*it->second));
      ++s.changed;
      sink.change(ChangeKind::Changed, &old, &*it->second, compare(old, *it->second), nullptr);
      journal.push_back({0, who, "accept", why(old.path), old.path, "changed", row_digest(old), row_digest(*it->second)});
    } else {
      ++s.removed;
      sink.change(ChangeKind::Removed, &old, nullptr, 0, nullptr);
      journal.push_back({0, who, "accept", why(old.path), old.path, "removed", row_digest(old), "-"});
    }
  }
  FIM_TRY(put_added_before(nullptr));
  FIM_TRY(base.verify());

  BaselineMeta next = meta;  // same roots and policy: accept changes entries, nothing else
  next.created_ns = now_ns();
  next.fimctl_version = FIM_VERSION;
  next.sequence = std::max(meta.sequence, trusted->last_seq) + 1;
  next.is_signed = false;
  next.key_id.clear();
  next.signature.clear();
  for (auto& a : journal) {
    a.at_ns = next.created_ns;
    next.append_journal(a);
  }
  FIM_TRY((*writer)->commit(&next));
  FIM_TRY(state.note_sequence(opts.db_path, next.sequence, next.content_sha256));
  std::vector<Bytes> paths;
  for (const auto& [p, _] : now) paths.push_back(p);
  FIM_TRY(state.accepted(opts.db_path, paths, next.content_sha256));
  s.entries = next.entry_count;
  s.baseline = facts_of(opts.db_path, next);
  s.seconds = monotonic_seconds() - t0;
  s.exit_code = 0;
  return s;
}


}  // namespace fim
