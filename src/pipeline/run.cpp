// SPDX-License-Identifier: GPL-2.0-or-later
// init, check and update: named steps over the pieces they share (the baseline opened and
// trusted, the policy it is compared under, the merge, the successor's manifest).
//
// check is a streaming merge of two sequences sorted the same way: the walk (bytewise path
// order) and the baseline's primary key. Memory stays flat however large the tree, and an
// entry missing from either side is found in the same pass. The baseline's content digest is
// recomputed over the rows as they are merged; the sink holds the report until verify()
// passes, so a tampered baseline yields an error and no report at all. update is the same
// merge with every entry seen also written to the successor, installed only once the old
// baseline verified.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <set>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/pipeline.h"
#include "fim/merge.h"
#include "content.h"
#include "fast.h"
#include "progress.h"
#include "replace.h"

namespace fim {
namespace {

using detail::current_user;
using detail::facts_of;
using detail::open_state;
using detail::open_trusted;
using detail::row_digest;
using detail::signing_key;

ScanOptions scan_options(const RunOptions& opts, const Selector& sel, std::vector<Bytes> roots, bool must_exist) {
  ScanOptions so;
  so.roots = std::move(roots);
  so.walk.selector = &sel;
  so.walk.roots_must_exist = must_exist;
  so.jobs = opts.jobs;
  so.read_timeout_seconds = opts.policy.read_timeout_seconds;
  so.walk.root_fd = opts.sysroot_fd;
  return so;
}

Summary finished(Summary s, double t0) {
  s.seconds = monotonic_seconds() - t0;
  s.exit_code = exit_code_for(s);
  return s;
}

// --- init ---

// --- check and update ---

/// The subtrees check compares: the command line's, each within the baseline's roots, or
/// all of the baseline's.
Result<std::vector<Bytes>> check_roots(const RunOptions& opts, const BaselineMeta& meta) {
  if (opts.paths.empty()) return meta.roots;
  for (const auto& p : opts.paths) {
    const bool inside = std::any_of(meta.roots.begin(), meta.roots.end(), [&](const Bytes& r) { return path_within(p, r); });
    if (inside) continue;
    std::string list;
    for (const auto& r : meta.roots) list += (list.empty() ? "" : ", ") + quote(r);
    return make_error(Errc::Usage, quote(p) + " is not covered by the baseline (its roots: " + list + ")");
  }
  return normalize_roots(opts.paths);
}

/// A policy other than the baseline's: differences may come from it, not from the files.
void note_policy_change(const RunOptions& opts, const BaselineMeta& meta, const std::string& advice, Summary* s,
                        Sink& sink) {
  if (!detail::policy_changed(opts.policy, meta)) return;
  s->policy_changed = true;
  sink.alert("policy_changed", "the policy changed since the baseline was written (" + meta.policy_source + " -> " +
                                   opts.policy.source + "); differences below may come from the new policy, not from the "
                                   "files. " + advice);
}

using Report = std::function<Status(ChangeKind, const Record*, const Record*, AttrMask, const Rule*)>;

/// The merge of the walk below `roots` with the baseline's rows, under the effective policy;
/// with `subset`, rows outside `roots` are not compared and the roots must exist.
Status compare_tree(const RunOptions& opts, detail::Trusted& t, const std::vector<Bytes>& roots, bool subset,
                    const Report& report, std::function<Status(const Record&, const Rule*)> on_entry, Summary* s, Sink& sink,
                    bool roots_must_exist = true, detail::FastPlan* fast = nullptr,
                    std::function<void(const Bytes&)> hashed_unchanged = {},
                    std::function<void(const Record&, const Record&, unsigned)> on_alternative = {}) {
  const Policy effective = detail::effective_policy(opts.policy, t.base->meta());
  const Selector sel(effective);
  const auto selected = [&](const Bytes& path) {
    return !subset || std::any_of(roots.begin(), roots.end(), [&](const Bytes& r) { return path_within(path, r); });
  };
  detail::Merge m{effective, sel, s, sink, {}, selected, report, {}, {}, {}, &t.base->meta().alternatives,
                  std::move(on_alternative), std::move(on_entry)};
  m.next_old = [&](Record* r) { return t.base->next(r); };
  detail::ProgressTracker progress(opts.progress);
  if (progress.on()) {
    // The baseline's own counts of what is compared (check --fast hashes only some: no bytes).
    if (auto total = t.base->totals(subset ? roots : std::vector<Bytes>{}))
      progress.set_totals(total->entries, fast ? 0 : total->bytes);
  }
  m.tick = [&](uint64_t n) { progress.tick(n); };
  m.hashed_unchanged = std::move(hashed_unchanged);
  ScanOptions so = scan_options(opts, sel, roots, subset && roots_must_exist);
  // Not recorded from an image, not collected against one (update keeps it so).
  if (t.base->meta().source == "image") not_in_image(&so);
  if (fast) so.plan = [fast](const WalkItem& item, CollectOptions* co) { fast->plan(item, co); };
  progress.attach(&so);
  const Status st = detail::merge_compare(so, m);
  progress.finish(s->entries);
  return st;
}

/// init's totals: those of the baseline it replaces (init --force), else a pre-walk's.
void init_totals(const RunOptions& opts, const std::vector<Bytes>& roots, const Policy& effective,
                 detail::ProgressTracker* progress) {
  if (!progress->on()) return;
  if (opts.force) {
    if (auto prev = BaselineReader::open(opts.db_path)) {
      if (auto total = (*prev)->totals(roots); total && total->entries > 0) {
        progress->set_totals(total->entries, total->bytes);
        return;
      }
    }
  }
  progress->count_in_background(roots, effective, opts.sysroot_fd);
}

}  // namespace

namespace detail {

Status differences_below(const RunOptions& opts, Trusted& t, const std::vector<Bytes>& paths, std::vector<Bytes>* found) {
  struct Quiet final : Sink {
    void change(ChangeKind, const Record*, const Record*, AttrMask, const Rule*) override {}
    void entry_status(const Record&, bool, const Rule*) override {}
    void alert(std::string_view, std::string_view) override {}
    Status finish(const Summary&) override { return {}; }
  } quiet;
  Summary s;
  const Report report = [&](ChangeKind, const Record* o, const Record* n, AttrMask, const Rule*) -> Status {
    found->push_back((n ? n : o)->path);
    return {};
  };
  FIM_TRY(compare_tree(opts, t, paths, true, report, {}, &s, quiet, false));
  return t.base->verify();
}

}  // namespace detail

namespace {

/// What state.db keeps of a reported difference (and update's journal): row digests.
StateStore::Reported reported_of(ChangeKind k, const Record* o, const Record* n, const Rule* rule) {
  StateStore::Reported r;
  r.path = (n ? n : o)->path;
  r.kind = std::string(change_kind_name(k));
  r.old_row = o ? row_digest(*o) : "-";
  r.new_row = n ? row_digest(*n) : "-";
  r.rule = rule ? rule->where.text() : "";
  return r;
}

/// state.db could not be written: the report still goes out whole, with an alert saying what
/// was not recorded and exit bit 8 (docs/design.md, Exit codes). A full disk must not turn a
/// report into an error with no records.
void state_unwritten(const std::string& what, const Error& e, Summary* s, Sink& sink) {
  sink.alert("state", what + ": " + e.describe());
  s->state_unwritten = true;
}

/// The verified baseline's sequence, remembered so an older one put back is refused.
void note_verified(const RunOptions& opts, detail::Trusted& t, Summary* s, Sink& sink) {
  // Without state.db (alerted when it was opened) no rollback check ran: never a clean run,
  // unless the baseline lies on read-only media.
  if (!t.state) {
    if (!t.read_only_media) s->state_unwritten = true;
    return;
  }
  const BaselineMeta& meta = t.base->meta();
  if (auto st = (*t.state)->note_sequence(opts.db_path, meta.sequence, meta.content_sha256); !st)
    state_unwritten("cannot record the verified sequence in state.db", st.error(), s, sink);
  if (t.repin) {
    if (auto st = detail::repin_verified(opts, meta, **t.state); !st)
      state_unwritten("cannot pin the baseline's identity in state.db", st.error(), s, sink);
  }
}

/// check --packages: what the package manager says of each change, and an alert when some
/// are not what their packages ship.
Result<std::optional<detail::Packages>> check_packages(const RunOptions& opts, detail::Trusted& t) {
  if (!opts.packages) return std::optional<detail::Packages>();
  auto p = detail::open_packages(opts, t.state ? t.state->get() : nullptr, t.base->meta().created_ns,
                                 t.base->meta().content_sha256);
  if (!p) return p.error();
  return std::optional<detail::Packages>(std::move(*p));
}

void alert_package_mismatch(const Summary& s, Sink& sink) {
  if (const auto m = s.packages.find("mismatch"); m != s.packages.end())
    sink.alert("package_mismatch", std::to_string(m->second) + " changed entries are not what their packages ship: "
                                   "look at those first (they are marked 'package: mismatch')");
}

}  // namespace

Result<Summary> run_init(const RunOptions& opts, Sink& sink) {
  auto key = signing_key(opts);
  if (!key) return key.error();
  const double t0 = monotonic_seconds();
  const bool from_cli = !opts.paths.empty();
  // Command-line PATHs are roots and rules of their own; the policy's rules still decide
  // what lies below them when they match nearer.
  const std::vector<Bytes> roots = from_cli ? normalize_roots(opts.paths) : opts.policy.roots();
  Policy effective = opts.policy;
  if (from_cli) add_path_rules(&effective, roots, "command line");
  const Selector sel(effective);
  auto lock = BaselineLock::acquire(opts.db_path);
  if (!lock) return lock.error();
  auto state = open_state(opts.db_path);
  if (!state) return state.error();
  auto sequence = detail::init_sequence(opts, **state);
  if (!sequence) return sequence.error();
  auto replacing = detail::init_replacing(opts, **state, *key, sink);
  if (!replacing) return replacing.error();
  auto writer = BaselineWriter::create(opts.db_path, *key ? &**key : nullptr);
  if (!writer) return writer.error();

  Summary s;
  s.command = "init";
  const StateStore::CheckClock init_clock = detail::clock_now("");
  ScanOptions so = scan_options(opts, sel, roots, from_cli);
  if (opts.image.source == "image") not_in_image(&so);
  const auto keeper = detail::ContentKeeper::make(opts, effective, sink);  // content = "diff"
  detail::ProgressTracker progress(opts.progress);
  init_totals(opts, roots, effective, &progress);
  progress.attach(&so);
  FIM_TRY(scan(so, [&](ScanEntry& e) -> Status {
    detail::note_status(e, effective, &s, sink);
    if (e.subtree_incomplete) return {};
    if (keeper) keeper->consider(e.rec, detail::rule_at(effective, e.rule));
    ++s.entries;
    progress.tick(s.entries);
    return (*writer)->add(e.rec);
  }, &s.bytes_hashed));
  progress.finish(s.entries);

  BaselineMeta meta = detail::successor_meta(opts.policy, from_cli ? "cli" : "policy", roots, *sequence, {},
                                             std::move(*replacing), "");
  if (!opts.image.source.empty()) meta.set_image_origin(opts.image.source, opts.image.digest, opts.image.index_digest, opts.image.ref);
  const bool replacing_one = !meta.journal.empty();
  if (replacing_one) FIM_TRY(detail::link_previous(opts.db_path));
  const Status installed = detail::commit_pinned(opts, **state, **writer, &meta, *key, sink);
  if (replacing_one) FIM_TRY(detail::keep_previous(opts.db_path, installed.has_value()));
  FIM_TRY(installed);
  if (keeper) keeper->committed(state->get(), meta.sequence);
  // Every entry was just hashed: the first fast check has a clock to compare with, and
  // hashes only what is due (docs/design.md, Evidence).
  StateStore::CheckClock clock = init_clock;
  clock.baseline_id = meta.baseline_id;
  clock.full_ns = init_clock.realtime_ns;
  if (auto st = (*state)->set_check_clock(opts.db_path, clock, {}, 0); !st)
    state_unwritten("cannot record the clock in state.db (the first fast check hashes every entry)", st.error(), &s, sink);
  if (!meta.is_signed) sink.alert("unsigned", detail::kUnsignedWarning);
  s.baseline = facts_of(opts.db_path, meta);
  return finished(std::move(s), t0);
}

Result<Summary> run_check(const RunOptions& opts, Sink& sink) {
  const double t0 = monotonic_seconds();
  auto trusted = open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  const BaselineMeta& meta = trusted->base->meta();
  auto& state = trusted->state;
  auto roots = check_roots(opts, meta);
  if (!roots) return roots.error();
  Summary s;
  s.command = "check";
  s.baseline = facts_of(opts.db_path, meta);
  note_policy_change(opts, meta, "Review them, then re-baseline with 'fimctl update' so checks compare under one policy again",
                     &s, sink);
  // Every difference goes to the report and to state.db: what 'accept' may accept later. When
  // state.db cannot take it the report still goes out whole; the previous report stays.
  std::optional<StateStore::ReportTxn> recording;
  static const std::string kUnrecorded = "cannot record this report in state.db for 'fimctl accept' (the report is complete)";
  if (state) {
    if (auto b = (*state)->begin_report(opts.db_path); b) recording.emplace(std::move(*b));
    else state_unwritten(kUnrecorded, b.error(), &s, sink);
  }
  auto packages = check_packages(opts, *trusted);
  if (!packages) return packages.error();
  if (*packages)
    for (const auto& a : (*packages)->alerts) sink.alert("hook_record_refused", a);
  auto evidence = detail::check_evidence(opts, *trusted, &s, sink);
  if (!evidence) return evidence.error();
  ReportDigest id;
  const WindowTags windows = detail::window_tags(*trusted, sink);
  // With --packages a directory's verdict waits for everything that changed inside it.
  struct Deferred {
    ChangeKind kind;
    std::optional<Record> o, n;
    AttrMask changed;
    std::optional<Rule> rule;  // a copy: compare_tree's effective policy ends with it
  };
  std::map<Bytes, Deferred, decltype(&detail::Packages::by_depth)> directories(&detail::Packages::by_depth);
  const auto store = detail::store_for_diffs(opts, sink);  // content = "diff": the kept versions
  const Report report = [&](ChangeKind k, const Record* o, const Record* n, AttrMask changed, const Rule* rule) -> Status {
    ChangeNotes notes;
    if (k == ChangeKind::Changed) detail::diff_notes(opts, store.get(), opts.policy, *o, *n, rule, &notes);
    if (*packages && detail::is_directory_change(o, n)) {
      directories.emplace((n ? n : o)->path, Deferred{k, o ? std::optional<Record>(*o) : std::nullopt,
                                                     n ? std::optional<Record>(*n) : std::nullopt, changed,
                                                     rule ? std::optional<Rule>(*rule) : std::nullopt});
    } else {
      windows.note(k, o, n, &notes, &s);
      if (*packages) ++s.packages[(notes.package = (*packages)->explain(o, n))->verdict];
      sink.noted_change(k, o, n, changed, rule, notes);
    }
    const StateStore::Reported r = reported_of(k, o, n, rule);
    id.add(r);
    if (recording) {
      if (auto st = recording->add(r); !st) {
        recording.reset();
        state_unwritten(kUnrecorded, st.error(), &s, sink);
      }
    }
    return {};
  };
  const auto hashed_unchanged = [&](const Bytes& path) {
    if (evidence->hashed.size() < detail::kMaxHashedRows) evidence->hashed.push_back(path);
    else evidence->hashed_overflow = true;
  };
  FIM_TRY(compare_tree(opts, *trusted, *roots, !opts.paths.empty(), report, {}, &s, sink, !opts.paths_may_be_absent,
                       evidence->plan.get(), evidence->fast ? std::function<void(const Bytes&)>(hashed_unchanged) : nullptr));
  for (const auto& [path, d] : directories) {
    const Record* o = d.o ? &*d.o : nullptr;
    const Record* n = d.n ? &*d.n : nullptr;
    ChangeNotes notes;
    windows.note(d.kind, o, n, &notes, &s);
    notes.package = (*packages)->explain_directory(o, n, detail::only_times_changed(d.changed));
    ++s.packages[notes.package->verdict];
    sink.noted_change(d.kind, o, n, d.changed, d.rule ? &*d.rule : nullptr, notes);
  }
  alert_package_mismatch(s, sink);
  const Status verified = trusted->base->verify();
  s.report_id = id.hex();
  if (recording && verified) {
    if (auto st = recording->commit(meta.content_sha256, s.report_id); !st)
      state_unwritten(kUnrecorded, st.error(), &s, sink);
  }
  recording.reset();  // rolls back the report of a baseline that did not verify
  FIM_TRY(verified);
  note_verified(opts, *trusted, &s, sink);
  if (auto st = detail::record_evidence(opts, *trusted, *evidence, &s, sink); !st)
    state_unwritten("cannot record this check's clock and hashes in state.db (the next fast check hashes more)",
                    st.error(), &s, sink);
  return finished(std::move(s), t0);
}

Result<Summary> run_update(const RunOptions& opts, Sink& sink) {
  const double t0 = monotonic_seconds();
  if (!opts.paths.empty())
    return make_error(Errc::Usage, "update rewrites the whole baseline: it takes no PATHs (check PATH... looks at a part)");
  FIM_TRY(detail::need_review(opts, "update"));
  auto writing = detail::open_for_writing(opts, sink);
  if (!writing) return writing.error();
  const std::optional<SigningKey>* key = &writing->key;
  detail::Trusted* trusted = &writing->trusted;
  const BaselineMeta& meta = trusted->base->meta();
  auto reviewed = detail::reviewed_report(opts, *trusted);
  if (!reviewed) return reviewed.error();
  Summary s;
  s.command = "update";
  s.baseline = facts_of(opts.db_path, meta);
  // The successor holds what the current policy selects (or the PATHs it was made from).
  const std::vector<Bytes> roots = meta.roots_source == "policy" ? opts.policy.roots() : meta.roots;
  auto writer = BaselineWriter::create(opts.db_path, *key ? &**key : nullptr);
  if (!writer) return writer.error();
  note_policy_change(opts, meta, "The new baseline is written under the current policy", &s, sink);
  // Every difference reported is accepted into the successor, with a journal entry.
  std::vector<Acceptance> accepted;
  std::vector<StateStore::Reported> found;
  ReportDigest id;
  const std::string who = current_user();
  // Alternatives stay good: one found in use becomes the entry's row and the row it replaces
  // takes its number; a new state (or the entry's removal) ends them; all journalled.
  detail::SuccessorAlternatives alternatives(meta, [&](const std::string& what, const Bytes& path, std::string o,
                                                       std::string n) {
    accepted.push_back(Acceptance{0, who, "update", what + ": " + opts.reason, path, "alternative", std::move(o),
                                  std::move(n), "", opts.ticket});
  });
  const WindowTags windows = detail::window_tags(*trusted, sink);
  const auto store = detail::store_for_diffs(opts, sink);  // the diffs update shows, as check would
  const auto keeper = detail::ContentKeeper::make(opts, opts.policy, sink);  // the successor's versions
  const Report report = [&](ChangeKind k, const Record* o, const Record* n, AttrMask changed, const Rule* rule) -> Status {
    ChangeNotes notes;
    windows.note(k, o, n, &notes, &s);
    if (k == ChangeKind::Changed) detail::diff_notes(opts, store.get(), opts.policy, *o, *n, rule, &notes);
    sink.noted_change(k, o, n, changed, rule, notes);
    StateStore::Reported r = reported_of(k, o, n, rule);
    id.add(r);
    accepted.push_back(Acceptance{0, who, "update", opts.reason, r.path, r.kind, r.old_row, r.new_row, "", opts.ticket});
    if (k != ChangeKind::Added) alternatives.ended(r.path, "alternatives ended by this " + r.kind + " entry");
    found.push_back(std::move(r));
    return {};
  };
  const auto on_entry = [&](const Record& r, const Rule* rule) {
    alternatives.present(r.path);
    if (keeper) keeper->consider(r, rule);
    return (*writer)->add(r);
  };
  const auto swapped = [&](const Record& row, const Record& now, unsigned n) { alternatives.swapped(row, now, n); };
  FIM_TRY(compare_tree(opts, *trusted, roots, false, report, on_entry, &s, sink, true, nullptr, {}, swapped));
  FIM_TRY(trusted->base->verify());
  s.report_id = id.hex();
  FIM_TRY(detail::update_reviewed(opts, *reviewed, s.report_id, found));
  for (Acceptance& a : accepted) a.report = s.report_id;  // what update reported is what it signs in
  s.ticket = opts.ticket;
  note_verified(opts, *trusted, &s, sink);
  // The old baseline verified: its successor may now replace it.
  BaselineMeta next = detail::successor_meta(opts.policy, meta.roots_source, roots,
                                             std::max(meta.sequence, trusted->last_seq), meta.journal, std::move(accepted),
                                             meta.baseline_id);
  detail::carry_image_origin(meta, &next);
  next.alternatives = alternatives.take(true);
  if (!trusted->state)
    return make_error(Errc::Io, "state.db cannot be used, so the new baseline's sequence and identity could not be "
                                "recorded: not written (" + trusted->state.error().describe() + ")");
  StateStore& state = **trusted->state;
  // This host's own update pins what it wrote: new roots after a policy change included.
  FIM_TRY(detail::commit_pinned(opts, state, **writer, &next, *key, sink));
  if (keeper) keeper->committed(&state, next.sequence);
  // Everything reported was accepted: the new baseline starts with an empty report.
  FIM_TRY(state.clear_report(opts.db_path, next.content_sha256));
  s.baseline = facts_of(opts.db_path, next);
  return finished(std::move(s), t0);
}

Result<BaselineMeta> run_log(const RunOptions& opts, Sink& sink) {
  auto trusted = open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  // The journal's head is covered by the content digest: read it all, then verify.
  FIM_TRY(detail::read_verified(*trusted->base, {}));
  return trusted->base->meta();
}

}  // namespace fim
