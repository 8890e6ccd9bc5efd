// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl accept: differences of the last report taken into the successor baseline, each
// exactly as it was reported (docs/design.md, Baseline), with a journal entry of its own.
// Named steps: the request, the report it acts on, the choice, the re-collection that
// refuses what changed again, the successor.
#include <fcntl.h>

#include <map>
#include <optional>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/pipeline.h"
#include "merge.h"

namespace fim {
namespace {

using detail::row_digest;
/// Path -> its accepted state (none: removed).
using Accepted = std::map<Bytes, std::optional<Record>>;

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
  co.growing = r.attrs.growing;
  Record rec;
  c.collect(t, co, &rec);
  return rec;
}

bool has_glob_chars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

Status check_request(const RunOptions& opts) {
  if (opts.reason.empty())
    return make_error(Errc::Usage, "accept needs --reason: why these changes are legitimate goes into the journal");
  if (!opts.accept_all && opts.paths.empty() && opts.accept_rules.empty() && !opts.package_verified)
    return make_error(Errc::Usage, "name what to accept: PATHs or GLOBs, --rule FILE:LINE:COLUMN, --package-verified "
                                   "or --all");
  return {};
}

/// The last report, when it was made against this baseline under this policy.
Result<std::vector<StateStore::Reported>> last_report(const RunOptions& opts, const BaselineMeta& meta, StateStore& state) {
  std::string report_of;
  auto rep = state.load_report(opts.db_path, &report_of);
  if (!rep) return rep.error();
  if (meta.policy_digest != policy_digest(opts.policy))
    return make_error(Errc::Usage, "the policy changed since the baseline was written: accepting single entries would "
                                   "mix two policies in one baseline; use 'fimctl update' to re-baseline");
  if (report_of != meta.content_sha256)
    return make_error(Errc::Usage, "there is no report of this baseline to accept from (the last one was made against "
                                   "another baseline, or none was): run 'fimctl check' first");
  return rep;
}

/// The reported differences the command line names.
Result<std::vector<StateStore::Reported>> choose(const RunOptions& opts, const std::vector<StateStore::Reported>& rep) {
  std::vector<StateStore::Reported> chosen;
  for (const auto& r : rep) {
    // --package-verified alone: every reported difference is a candidate (its package decides).
    bool take = opts.accept_all || (opts.package_verified && opts.paths.empty() && opts.accept_rules.empty());
    for (const auto& p : opts.paths) take = take || (has_glob_chars(p) ? glob_match(p, r.path) : path_within(r.path, p));
    for (const auto& rule : opts.accept_rules) take = take || r.rule == rule;
    if (take) chosen.push_back(r);
  }
  if (chosen.empty())
    return make_error(Errc::Usage, "nothing in the last report matches (it lists " + std::to_string(rep.size()) +
                                       " differences; 'fimctl check' shows them)");
  return chosen;
}

/// Tripwire's high-security rule: what is accepted is exactly what was reported. An entry
/// that changed again since is refused, and then nothing is accepted.
Result<Accepted> recollect(const RunOptions& opts, const BaselineMeta& meta, const std::vector<StateStore::Reported>& chosen) {
  const Policy effective = detail::effective_policy(opts.policy, meta);
  const Selector sel(effective);
  Collector collector;
  Accepted now;
  std::vector<Bytes> stale;
  for (const auto& r : chosen) {
    auto cur = collect_one(sel, opts.sysroot_fd, r.path, collector);
    const std::string digest = cur ? row_digest(*cur) : "-";
    if (digest != r.new_row) stale.push_back(r.path);
    else now[r.path] = std::move(cur);
  }
  if (stale.empty()) return now;
  std::string list;
  for (size_t i = 0; i < stale.size() && i < 5; ++i) list += (i ? ", " : "") + quote(stale[i]);
  if (stale.size() > 5) list += ", ...";
  return make_error(Errc::Usage, std::to_string(stale.size()) + " of the chosen entries changed again since they were "
                                 "reported (" + list + "): nothing was accepted; run 'fimctl check' and accept again");
}

/// The successor's rows: the old ones (verified as they are read), with the accepted
/// entries replaced, dropped or inserted in path order; one journal entry each.
class SuccessorRows {
 public:
  SuccessorRows(const RunOptions& opts, const Accepted& now, const std::map<Bytes, std::string>& vouched,
                BaselineWriter& w, Summary* s, Sink& sink)
      : opts_(opts), now_(now), vouched_(vouched), w_(w), s_(*s), sink_(sink), next_new_(now.begin()) {}

  Status write(BaselineReader& base) {
    FIM_TRY(detail::read_verified(base, [&](const Record& old) { return old_row(old); }));
    return added_before(nullptr);
  }
  std::vector<Acceptance> journal;

 private:
  std::string why(const Bytes& path) const {
    auto v = vouched_.find(path);
    return v == vouched_.end() ? opts_.reason : opts_.reason + " (" + v->second + ")";
  }
  void note(const Bytes& path, const char* kind, std::string old_row, std::string new_row) {
    journal.push_back({0, who_, "accept", why(path), path, kind, std::move(old_row), std::move(new_row)});
  }
  /// Accepted additions sort in by path, before `limit` (null: the rest).
  Status added_before(const Bytes* limit) {
    for (; next_new_ != now_.end() && (!limit || next_new_->first < *limit); ++next_new_) {
      if (!next_new_->second) continue;
      const Record& rec = *next_new_->second;
      FIM_TRY(w_.add(rec));
      ++s_.added;
      sink_.change(ChangeKind::Added, nullptr, &rec, 0, nullptr);
      note(next_new_->first, "added", "-", row_digest(rec));
    }
    return {};
  }
  Status old_row(const Record& old) {
    FIM_TRY(added_before(&old.path));
    auto it = now_.find(old.path);
    if (it == now_.end()) return w_.add(old);
    if (next_new_ == it) ++next_new_;
    if (!it->second) {
      ++s_.removed;
      sink_.change(ChangeKind::Removed, &old, nullptr, 0, nullptr);
      note(old.path, "removed", row_digest(old), "-");
      return {};
    }
    FIM_TRY(w_.add(*it->second));
    ++s_.changed;
    sink_.change(ChangeKind::Changed, &old, &*it->second, compare(old, *it->second), nullptr);
    note(old.path, "changed", row_digest(old), row_digest(*it->second));
    return {};
  }

  const RunOptions& opts_;
  const Accepted& now_;
  const std::map<Bytes, std::string>& vouched_;
  BaselineWriter& w_;
  Summary& s_;
  Sink& sink_;
  Accepted::const_iterator next_new_;
  const std::string who_ = detail::current_user();
};

}  // namespace

Result<Summary> run_accept(const RunOptions& opts, Sink& sink) {
  const double t0 = monotonic_seconds();
  FIM_TRY(check_request(opts));
  auto key = detail::signing_key(opts);
  if (!key) return key.error();
  auto lock = BaselineLock::acquire(opts.db_path);
  if (!lock) return lock.error();
  auto trusted = detail::open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  const BaselineMeta& meta = trusted->base->meta();
  FIM_TRY(detail::check_successor_key(opts, meta, *key));
  if (!trusted->state) return make_error(Errc::Io, "accept needs state.db, which holds the last report: " +
                                                      trusted->state.error().describe());
  StateStore& state = **trusted->state;
  auto rep = last_report(opts, meta, state);
  if (!rep) return rep.error();
  auto chosen = choose(opts, *rep);
  if (!chosen) return chosen.error();
  auto now = recollect(opts, meta, *chosen);
  if (!now) return now.error();
  std::map<Bytes, std::string> vouched;  // --package-verified: path -> the package's word, for the journal
  if (opts.package_verified) FIM_TRY(detail::keep_package_verified(opts, meta, &state, &*now, &vouched, sink));

  auto writer = BaselineWriter::create(opts.db_path, *key ? &**key : nullptr);
  if (!writer) return writer.error();
  Summary s;
  s.command = "accept";
  SuccessorRows rows(opts, *now, vouched, **writer, &s, sink);
  FIM_TRY(rows.write(*trusted->base));
  // Same roots and policy: accept changes entries, nothing else.
  BaselineMeta next = detail::successor_meta(opts.policy, meta.roots_source, meta.roots,
                                             std::max(meta.sequence, trusted->last_seq), meta.journal, std::move(rows.journal),
                                             meta.baseline_id);
  FIM_TRY(detail::commit_pinned(opts, state, **writer, &next, *key, sink));
  std::vector<Bytes> paths;
  for (const auto& [p, _] : *now) paths.push_back(p);
  FIM_TRY(state.accepted(opts.db_path, paths, next.content_sha256));
  s.entries = next.entry_count;
  s.baseline = detail::facts_of(opts.db_path, next);
  s.seconds = monotonic_seconds() - t0;
  s.exit_code = 0;
  return s;
}

}  // namespace fim
