// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl accept: differences of a report taken into the successor baseline, each exactly as
// it was reported (docs/design.md, Baseline), with a journal entry of its own. The report is
// the one the operator reviewed (--report ID, one of the last 20 kept in state.db), or the
// last one, shown and confirmed on a terminal or taken as it is with --yes.
// Named steps: the request, the report it acts on, the choice, the confirmation, the
// re-collection that refuses what changed again, the successor (which refuses an entry whose
// baseline row is no longer the one the report compared with).
#include <fcntl.h>

#include <map>
#include <optional>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/pipeline.h"
#include "fim/merge.h"
#include "content.h"
#include "progress.h"

namespace fim {
namespace {

using detail::row_digest;
/// Path -> its accepted state (none: removed).
using Accepted = std::map<Bytes, std::optional<Record>>;

/// The current state of one path, collected as the walk would (its rule's attributes), or
/// nothing when it is gone or no rule records it.
std::optional<Record> collect_one(const Selector& sel, int root_fd, const Bytes& path, Collector& c,
                                  std::atomic<uint64_t>* read_total) {
  Bytes dir, name;
  split_path(path, &dir, &name);
  UniqueFd dfd(open_in_root(root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) return std::nullopt;
  Target t;
  if (lstat_at(dfd.get(), name.c_str(), &t.st, &t.btime_ns) != 0) return std::nullopt;
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
  co.read_total = read_total;
  Record rec;
  c.collect(t, co, &rec);
  return rec;
}

bool has_glob_chars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

Status check_request(const RunOptions& opts) {
  if (!opts.window.empty()) {
    if (!opts.paths.empty() || opts.accept_all || !opts.accept_rules.empty() || opts.package_verified ||
        opts.drop_alternatives)
      return make_error(Errc::Usage, "accept --window takes what the window tags, and no PATHs, --all, --rule, "
                                     "--package-verified or --drop-alternatives");
    return detail::need_review(opts, "accept");
  }
  if (opts.reason.empty())
    return make_error(Errc::Usage, "accept needs --reason: why these changes are legitimate goes into the journal");
  if (opts.drop_alternatives) {
    if (opts.paths.empty() || opts.accept_all || !opts.accept_rules.empty() || opts.package_verified || opts.also)
      return make_error(Errc::Usage, "accept --drop-alternatives takes the PATHs whose alternatives end, and no "
                                     "--all, --rule, --package-verified or --also");
    return {};
  }
  if (!opts.accept_all && opts.paths.empty() && opts.accept_rules.empty() && !opts.package_verified)
    return make_error(Errc::Usage, "name what to accept: PATHs or GLOBs, --rule FILE:LINE:COLUMN, --package-verified "
                                   "or --all");
  return detail::need_review(opts, "accept");
}

/// What accept chooses from: the kept report --report names, or the last report.
struct Source {
  std::string id;  ///< --report: the kept report's full id; empty: the last report
  std::vector<StateStore::Reported> entries;
  std::string name() const { return id.empty() ? "the last report" : "report " + detail::short_id(id); }
};

Status same_policy(const RunOptions& opts, const BaselineMeta& meta) {
  if (meta.policy_digest != policy_digest(opts.policy))
    return make_error(Errc::Usage, "the policy changed since the baseline was written: accepting single entries would "
                                   "mix two policies in one baseline; use 'fimctl update' to re-baseline");
  return {};
}

/// The last report, when it was made against this baseline under this policy; or, with
/// --report, the kept report it names (its entries are checked one by one against the
/// baseline's rows as the successor is written, so it may be older than the baseline).
Result<Source> source(const RunOptions& opts, const BaselineMeta& meta, StateStore& state) {
  FIM_TRY(same_policy(opts, meta));
  if (!opts.report.empty()) {
    auto kept = state.find_report(opts.db_path, opts.report);
    if (!kept) return kept.error();
    return Source{kept->id, std::move(kept->entries)};
  }
  std::string report_of;
  auto rep = state.load_report(opts.db_path, &report_of);
  if (!rep) return rep.error();
  if (report_of != meta.content_sha256)
    return make_error(Errc::Usage, "there is no report of this baseline to accept from (the last one was made against "
                                   "another baseline, or none was): run 'fimctl check' first");
  return Source{"", std::move(*rep)};
}

/// The reported differences the command line names.
Result<std::vector<StateStore::Reported>> choose(const RunOptions& opts, const Source& src, const Window* window) {
  const std::vector<StateStore::Reported>& rep = src.entries;
  std::vector<StateStore::Reported> chosen;
  for (const auto& r : rep) {
    if (window) {  // what it covers; recollect() then shows which of them it tags
      if (window->covers(r.path)) chosen.push_back(r);
      continue;
    }
    // --package-verified alone: every reported difference is a candidate (its package decides).
    bool take = opts.accept_all || (opts.package_verified && opts.paths.empty() && opts.accept_rules.empty());
    for (const auto& p : opts.paths) take = take || (has_glob_chars(p) ? glob_match(p, r.path) : path_within(r.path, p));
    for (const auto& rule : opts.accept_rules) take = take || r.rule == rule;
    if (take) chosen.push_back(r);
  }
  if (chosen.empty() && window)
    return make_error(Errc::Usage, "nothing in " + src.name() + " is below window " + window->id + "'s paths (it lists " +
                                       std::to_string(rep.size()) + " differences; 'fimctl check' shows them)");
  if (chosen.empty())
    return make_error(Errc::Usage, "nothing in " + src.name() + " matches (it lists " + std::to_string(rep.size()) +
                                       " differences; 'fimctl check' shows them)");
  return chosen;
}

/// Path -> the row digest on disk now ("-": gone), of the chosen entries that are no longer
/// what the report showed.
using Stale = std::map<Bytes, std::string>;

/// accept --report ID refused: names ID and the report that shows the stale entries as they
/// are now (the last check's, when it does), so the operator reviews that one.
Error stale_report(const Source& src, const Stale& stale, const std::string& list, StateStore& state,
                   const Bytes& db_path) {
  std::string now = "no kept report shows them as they are now: run 'fimctl check', review its report and accept "
                    "with its id";
  if (auto latest = state.latest_report(db_path); latest && *latest && (*latest)->id != src.id) {
    const auto& entries = (*latest)->entries;
    size_t shown = 0;
    for (const auto& e : entries) shown += stale.count(e.path) && stale.at(e.path) == e.new_row;
    const std::string other = detail::short_id((*latest)->id);
    now = shown == stale.size() ? "the last check's report " + other + " shows them as they are now: review it, then "
                                  "'fimctl accept --report " + other + "'"
                                : "the last check's report " + other + " does not show them as they are now either: "
                                  "run 'fimctl check', review its report and accept with its id";
  }
  return make_error(Errc::Usage, src.name() + " is not what is there now: " + std::to_string(stale.size()) +
                                     " of the chosen entries changed since it was made (" + list + "); " + now +
                                     "; nothing was accepted");
}

/// Tripwire's high-security rule: what is accepted is exactly what was reported. An entry
/// that changed again since is refused, and then nothing is accepted.
Result<Accepted> recollect(const RunOptions& opts, const BaselineMeta& meta, const std::vector<StateStore::Reported>& chosen,
                           const Source& src, StateStore& state) {
  const Policy effective = detail::effective_policy(opts.policy, meta);
  const Selector sel(effective);
  Collector collector;
  Accepted now;
  Stale stale;
  detail::ProgressTracker progress(opts.progress);  // of the entries chosen (bytes: not known ahead)
  progress.set_totals(chosen.size(), 0);
  uint64_t done = 0;
  for (const auto& r : chosen) {
    auto cur = collect_one(sel, opts.sysroot_fd, r.path, collector, progress.live_bytes());
    const std::string digest = cur ? row_digest(*cur) : "-";
    if (digest != r.new_row) stale[r.path] = digest;
    else now[r.path] = std::move(cur);
    progress.tick(++done);
  }
  progress.finish(done);
  if (stale.empty()) return now;
  std::string list;
  size_t listed = 0;
  for (auto it = stale.begin(); it != stale.end() && listed < 5; ++it, ++listed)
    list += (list.empty() ? "" : ", ") + quote(it->first);
  if (stale.size() > 5) list += ", ...";
  if (!src.id.empty()) return stale_report(src, stale, list, state, opts.db_path);
  return make_error(Errc::Usage, std::to_string(stale.size()) + " of the chosen entries changed again since they were "
                                 "reported (" + list + "): nothing was accepted; run 'fimctl check' and accept again");
}

/// accept --window: of the entries below the window's paths, as they are now (recollect), only
/// those it tags stay; the rest stay reported, and an alert says how many.
Status keep_tagged(const WindowTags& tags, const Window& w, const std::vector<StateStore::Reported>& chosen,
                   Accepted* now, Sink& sink) {
  size_t left = 0;
  for (const auto& r : chosen) {
    auto it = now->find(r.path);
    Record gone;  // a removal: only its path counts
    gone.path = r.path;
    const ChangeKind kind = r.kind == "added" ? ChangeKind::Added : r.kind == "removed" ? ChangeKind::Removed
                                                                                      : ChangeKind::Changed;
    const Record* n = it->second ? &*it->second : nullptr;
    if (tags.tag(kind, n ? nullptr : &gone, n, w.id)) continue;
    now->erase(it);
    ++left;
  }
  if (now->empty())
    return make_error(Errc::Usage, "window " + w.id + " tags none of the " + std::to_string(chosen.size()) +
                                       " differences below its paths (changed before or after it, by another "
                                       "writer, or its tags were withdrawn): nothing was accepted");
  if (left)
    sink.alert("window_untagged", std::to_string(left) + " differences below window " + w.id + "'s paths are not "
                                  "tagged by it (changed before or after it, or by another writer): not accepted, "
                                  "still reported");
  return {};
}

/// Path -> the row digest the report compared with ("-": the baseline had none).
using Compared = std::map<Bytes, std::string>;

/// The successor's rows: the old ones (verified as they are read), with the accepted
/// entries replaced, dropped or inserted in path order; one journal entry each. An accepted
/// entry whose old row is not the one the report compared with (accepted or updated since,
/// or a report of an earlier baseline) is refused: a difference is accepted only as reported.
class SuccessorRows {
 public:
  SuccessorRows(const RunOptions& opts, const BaselineMeta& meta, const Accepted& now, const Compared& was,
                const std::string& report, const std::map<Bytes, std::string>& vouched, BaselineWriter& w, Summary* s,
                Sink& sink)
      : alternatives(meta, [this](const std::string& what, const Bytes& path, std::string o, std::string n) {
          journal.push_back({0, who_, "accept", what + ": " + why(path), path, "alternative", std::move(o), std::move(n),
                             "", opts_.ticket});
        }),
        opts_(opts), now_(now), was_(was), report_(report), vouched_(vouched), w_(w), s_(*s), sink_(sink),
        next_new_(now.begin()) {}

  Status write(BaselineReader& base) {
    FIM_TRY(detail::read_verified(base, [&](const Record& old) { return old_row(old); }));
    return added_before(nullptr);
  }
  std::vector<Acceptance> journal;
  /// The successor's alternatives: the predecessor's, with --also's added, and ended for an
  /// entry removed or changed without --also (a new state, a security fix, is the one good state).
  detail::SuccessorAlternatives alternatives;

 private:
  std::string why(const Bytes& path) const {
    auto v = vouched_.find(path);
    return v == vouched_.end() ? opts_.reason : opts_.reason + " (" + v->second + ")";
  }
  Status as_compared(const Bytes& path, const std::string& old_row) const {
    if (was_.at(path) == old_row) return {};
    return make_error(Errc::Usage, "the baseline's entry for " + quote(path) + " is no longer the one " + report_ +
                                       " compared with (accepted or updated since): nothing was accepted; run 'fimctl "
                                       "check' and accept from its report");
  }
  void note(const Bytes& path, const char* kind, std::string old_row, std::string new_row) {
    journal.push_back({0, who_, "accept", why(path), path, kind, std::move(old_row), std::move(new_row), "", opts_.ticket});
  }
  Status no_previous_state(const Bytes& path, const char* kind) const {
    return make_error(Errc::Usage, "--also keeps an entry's previous state beside its new one, but " + quote(path) +
                                       " was " + kind + ": there are not two states to keep; nothing was accepted");
  }
  /// Accepted additions sort in by path, before `limit` (null: the rest).
  Status added_before(const Bytes* limit) {
    for (; next_new_ != now_.end() && (!limit || next_new_->first < *limit); ++next_new_) {
      FIM_TRY(as_compared(next_new_->first, "-"));  // not in the baseline
      if (opts_.also) return no_previous_state(next_new_->first, "added");
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
    FIM_TRY(as_compared(old.path, row_digest(old)));
    if (next_new_ == it) ++next_new_;
    if (!it->second) {
      if (opts_.also) return no_previous_state(old.path, "removed");
      alternatives.ended(old.path, "alternatives ended with the entry");
      ++s_.removed;
      sink_.change(ChangeKind::Removed, &old, nullptr, 0, nullptr);
      note(old.path, "removed", row_digest(old), "-");
      return {};
    }
    FIM_TRY(w_.add(*it->second));
    ++s_.changed;
    sink_.change(ChangeKind::Changed, &old, &*it->second, compare(old, *it->second), nullptr);
    note(old.path, "changed", row_digest(old), row_digest(*it->second));
    if (opts_.also) return alternatives.also(old);
    alternatives.ended(old.path, "alternatives ended by a new state accepted without --also");
    return {};
  }

  const RunOptions& opts_;
  const Accepted& now_;
  const Compared& was_;
  const std::string report_;
  const std::map<Bytes, std::string>& vouched_;
  BaselineWriter& w_;
  Summary& s_;
  Sink& sink_;
  Accepted::const_iterator next_new_;
  const std::string who_ = detail::current_user();
};

}  // namespace

namespace detail {

std::string short_id(const std::string& id) { return id.substr(0, kReportIdShown); }

Status need_review(const RunOptions& opts, const char* command) {
  if (!opts.report.empty() || opts.yes || opts.confirm) return {};
  const std::string cmd = command;
  const std::string what = cmd == "update" ? "update without --report accepts whatever differs when it runs"
                                           : "accept without --report accepts from the last report, whatever the last "
                                             "check found";
  return make_error(Errc::Usage, what + ", which nobody may have reviewed, and there is no terminal to ask on: give the "
                                 "id of the report you reviewed ('fimctl " + cmd + " --report ID', as 'fimctl check' "
                                 "prints it), or --yes to " + cmd + " without review");
}

Status confirmed(const RunOptions& opts, const char* command, const std::vector<StateStore::Reported>& what) {
  if (!opts.report.empty() || opts.yes || what.empty()) return {};
  FIM_TRY(need_review(opts, command));
  const std::string n = std::to_string(what.size());
  if (opts.confirm(std::string(command) + " " + n + (what.size() == 1 ? " change" : " changes") + "? [y/N] ", what))
    return {};
  return make_error(Errc::Usage, std::string(command) + ": not confirmed, nothing was accepted");
}

/// update --report ID: the kept report the operator reviewed, found before the scan (an id
/// state.db does not keep fails at once); none without --report.
Result<std::optional<StateStore::KeptReport>> reviewed_report(const RunOptions& opts, detail::Trusted& t) {
  if (opts.report.empty()) return std::optional<StateStore::KeptReport>();
  if (!t.state)
    return make_error(Errc::Io, "update --report needs state.db, which keeps the reports: " + t.state.error().describe());
  auto kept = (*t.state)->find_report(opts.db_path, opts.report);
  if (!kept) return kept.error();
  return std::optional<StateStore::KeptReport>(std::move(*kept));
}

namespace {
/// The paths whose difference is not the same in `a` and `b` (up to five, quoted).
std::string differing(const std::vector<StateStore::Reported>& a, const std::vector<StateStore::Reported>& b) {
  std::map<Bytes, std::string> in_a, in_b;
  const auto key = [](const StateStore::Reported& r) { return r.kind + " " + r.old_row + " " + r.new_row; };
  for (const auto& r : a) in_a[r.path] = key(r);
  for (const auto& r : b) in_b[r.path] = key(r);
  std::set<Bytes> paths;
  for (const auto& [p, k] : in_a) if (!in_b.count(p) || in_b[p] != k) paths.insert(p);
  for (const auto& [p, k] : in_b) if (!in_a.count(p)) paths.insert(p);
  std::string list;
  size_t n = 0;
  for (auto it = paths.begin(); it != paths.end() && n < 5; ++it, ++n) list += (list.empty() ? "" : ", ") + quote(*it);
  if (paths.size() > 5) list += ", ...";
  return list;
}
}  // namespace

/// update is bound to the differences the operator reviewed (docs/design.md, Baseline:
/// acceptance): those of --report ID exactly, or confirmed on a terminal, or --yes.
Status update_reviewed(const RunOptions& opts, const std::optional<StateStore::KeptReport>& reviewed,
                       const std::string& id, const std::vector<StateStore::Reported>& found) {
  if (!reviewed) return confirmed(opts, "update", found);
  if (reviewed->id == id) return {};
  return make_error(Errc::Usage, "the differences update finds now (report " + short_id(id) +
                                     ") are not those of report " + short_id(reviewed->id) + " (they differ at " +
                                     differing(reviewed->entries, found) + "): nothing was written; run 'fimctl "
                                     "check', review its report and 'fimctl update --report ID' with its id");
}

Result<Summary> commit_accepted(const RunOptions& opts, const BaselineMeta& meta, detail::Trusted& trusted,
                                BaselineWriter& w, const std::optional<SigningKey>& key, std::vector<Acceptance> journal,
                                std::map<Bytes, std::vector<Record>> alternatives, const std::vector<Bytes>& accepted,
                                Sink& sink) {
  if (!trusted.state) return make_error(Errc::Io, "accept needs state.db: " + trusted.state.error().describe());
  StateStore& state = **trusted.state;
  BaselineMeta next = detail::successor_meta(opts.policy, meta.roots_source, meta.roots,
                                             std::max(meta.sequence, trusted.last_seq), meta.journal, std::move(journal),
                                             meta.baseline_id);
  detail::carry_image_origin(meta, &next);
  next.alternatives = std::move(alternatives);
  FIM_TRY(detail::commit_pinned(opts, state, w, &next, key, sink));
  FIM_TRY(state.accepted(opts.db_path, accepted, meta.content_sha256, next.content_sha256));
  Summary s;
  s.command = "accept";
  s.entries = next.entry_count;
  s.ticket = opts.ticket;
  s.baseline = detail::facts_of(opts.db_path, next);
  return s;
}

}  // namespace detail

namespace {

/// accept --drop-alternatives PATH...: the successor has the same rows, and the PATHs' entries
/// have no alternatives any more (each dropped one journalled). It only narrows what is good,
/// so it needs no report; the last report carries over to the successor.
Result<Summary> drop_alternatives(const RunOptions& opts, const BaselineMeta& meta, detail::Trusted& trusted,
                                  const std::optional<SigningKey>& key, Sink& sink) {
  FIM_TRY(same_policy(opts, meta));
  std::vector<Acceptance> journal;
  const std::string who = detail::current_user();
  detail::SuccessorAlternatives kept(meta, [&](const std::string& what, const Bytes& path, std::string o, std::string n) {
    journal.push_back({0, who, "accept", what + ": " + opts.reason, path, "alternative", std::move(o), std::move(n), "",
                       opts.ticket});
  });
  for (const Bytes& p : opts.paths) {
    if (!kept.has(p))
      return make_error(Errc::Usage, quote(p) + " has no alternatives in the baseline ('fimctl accept --also' keeps "
                                     "them): nothing was dropped");
    kept.ended(p, "alternatives dropped (--drop-alternatives)");
  }
  auto writer = BaselineWriter::create(opts.db_path, key ? &*key : nullptr);
  if (!writer) return writer.error();
  FIM_TRY(detail::read_verified(*trusted.base, [&](const Record& r) { return (*writer)->add(r); }));
  return detail::commit_accepted(opts, meta, trusted, **writer, key, std::move(journal), kept.take(false), {}, sink);
}

}  // namespace

Result<Summary> run_accept(const RunOptions& opts, Sink& sink) {
  const double t0 = monotonic_seconds();
  FIM_TRY(check_request(opts));
  auto writing = detail::open_for_writing(opts, sink);
  if (!writing) return writing.error();
  const std::optional<SigningKey>* key = &writing->key;
  detail::Trusted* trusted = &writing->trusted;
  const BaselineMeta& meta = trusted->base->meta();
  if (opts.drop_alternatives) {
    auto s = drop_alternatives(opts, meta, *trusted, *key, sink);
    if (s) s->seconds = monotonic_seconds() - t0;
    return s;
  }
  if (!trusted->state) return make_error(Errc::Io, "accept needs state.db, which holds the last report: " +
                                                      trusted->state.error().describe());
  StateStore& state = **trusted->state;
  // accept --window ID: the window's reason unless --reason, and only what it tags.
  std::optional<WindowTags> windows;
  const Window* window = nullptr;
  if (!opts.window.empty()) {
    windows.emplace(detail::window_tags(*trusted, sink));
    for (const Window& w : windows->windows()) if (w.id == opts.window) window = &w;
    if (!window) return make_error(Errc::Usage, "there is no window " + quote(opts.window) + " ('fimctl window list')");
  }
  RunOptions with_reason;
  const RunOptions& o = window && opts.reason.empty() ? (with_reason = opts, with_reason.reason = window->reason, with_reason)
                                                      : opts;
  auto src = source(opts, meta, state);
  if (!src) return src.error();
  auto chosen = choose(o, *src, window);
  if (!chosen) return chosen.error();
  FIM_TRY(detail::confirmed(opts, "accept", *chosen));
  auto now = recollect(opts, meta, *chosen, *src, state);
  if (!now) return now.error();
  if (window) FIM_TRY(keep_tagged(*windows, *window, *chosen, &*now, sink));
  Compared was;
  for (const auto& r : *chosen) was[r.path] = r.old_row;
  std::map<Bytes, std::string> vouched;  // --package-verified: path -> the package's word, for the journal
  if (opts.package_verified) {
    std::set<Bytes> reported;
    for (const auto& e : src->entries) reported.insert(e.path);
    FIM_TRY(detail::keep_package_verified(opts, meta, &state, reported, &*now, &vouched, sink));
  }

  auto writer = BaselineWriter::create(opts.db_path, *key ? &**key : nullptr);
  if (!writer) return writer.error();
  Summary counts;  // what SuccessorRows reports: added, removed, changed
  SuccessorRows rows(o, meta, *now, was, src->name(), vouched, **writer, &counts, sink);
  FIM_TRY(rows.write(*trusted->base));
  for (Acceptance& a : rows.journal) {
    a.report = src->id;  // --report's id; none for the last report
    a.window = opts.window;
  }
  std::vector<Bytes> paths;
  for (const auto& [p, _] : *now) paths.push_back(p);
  // content = "diff": the accepted states' content is kept; the other rows keep their versions.
  const auto keeper = detail::ContentKeeper::accepting(opts, meta, *now, sink);
  auto s = detail::commit_accepted(opts, meta, *trusted, **writer, *key, std::move(rows.journal), rows.alternatives.take(false),
                           paths, sink);
  if (!s) return s.error();
  if (keeper) {
    if (auto seq = state.last_sequence(opts.db_path)) keeper->committed(&state, *seq);
  }
  s->added = counts.added, s->removed = counts.removed, s->changed = counts.changed;
  s->seconds = monotonic_seconds() - t0;
  return s;
}

}  // namespace fim
