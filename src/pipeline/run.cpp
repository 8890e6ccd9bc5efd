// SPDX-License-Identifier: GPL-2.0-or-later
// init and check: the two consumers of scan().
//
// check is a streaming merge of two sequences sorted the same way: the walk (bytewise path
// order) and the baseline's primary key. Memory stays flat however large the tree, and an
// entry missing from either side is found in the same pass. The baseline's content digest is
// recomputed over the rows as they are merged; the sink holds the report until verify()
// passes, so a tampered baseline yields an error and no report at all.
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/pipeline.h"
#include "fim_config.h"

namespace fim {
namespace {

std::string quoted(const Bytes& p) { return "'" + escape_terminal(p) + "'"; }

constexpr const char* kUnsignedWarning =
    "the baseline is not signed: anyone who can write it can rewrite it undetected";

/// Calls `progress` at most every 250 ms.
class Ticker {
 public:
  explicit Ticker(const std::function<void(const ScanProgress&)>& f) : f_(f) {}
  void tick(uint64_t entries) {
    if (!f_ || (++calls_ & 255) != 0) return;
    const double now = monotonic_seconds();
    if (now - last_ < 0.25) return;
    last_ = now;
    f_(ScanProgress{entries});
  }

 private:
  const std::function<void(const ScanProgress&)>& f_;
  uint64_t calls_ = 0;
  double last_ = 0;
};

std::string host_id() {
  auto id = read_small_file("/etc/machine-id", 128);
  if (!id) return "unknown";
  std::string s = *id;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown" : s;
}

const Rule* rule_at(const Policy& p, int idx) {
  return idx >= 0 ? &p.rules[static_cast<size_t>(idx)] : nullptr;
}

/// Counts an entry's status into the summary and reports it when it is not ok.
void note_status(const ScanEntry& e, const Policy& p, Summary* s, Sink& sink) {
  if (e.rec.status == EntryStatus::Ok) return;
  if (entry_status_is_failure(e.rec.status))
    ++s->incomplete;
  else
    ++s->skipped;
  // Labels come from the rule that records the entry; an exclusion (skipped_fs) has none.
  const Rule* rule = rule_at(p, e.rule);
  sink.entry_status(e.rec, e.subtree_incomplete, rule && !rule->exclude ? rule : nullptr);
}

ScanOptions scan_options(const RunOptions& opts, const Selector& sel, std::vector<Bytes> roots, bool must_exist) {
  ScanOptions so;
  so.roots = std::move(roots);
  so.walk.selector = &sel;
  so.walk.roots_must_exist = must_exist;
  so.jobs = opts.jobs;
  return so;
}

BaselineFacts facts_of(const Bytes& path, const BaselineMeta& m) {
  return BaselineFacts{path, m.is_signed, m.key_id, m.created_ns, m.entry_count, m.content_sha256};
}


/// state.db lives beside the baseline (DESIGN.md, Files).
Result<std::unique_ptr<StateStore>> open_state(const Bytes& db_path) {
  Bytes dir, name;
  split_path(db_path, &dir, &name);
  return StateStore::open(dir);
}

/// The key that signs a new baseline: required unless --unsigned (then used when present).
Result<std::optional<SigningKey>> signing_key(const RunOptions& opts) {
  const Bytes key_path = join_path(opts.keys_dir, "signing.key");
  if (::access(key_path.c_str(), F_OK) == 0) {
    auto k = SigningKey::load(key_path);
    if (!k) return k.error();
    return std::optional<SigningKey>(std::move(*k));
  }
  if (!opts.allow_unsigned)
    return make_error(Errc::Usage, "no signing key at " + quoted(key_path) +
                                       ": create one with 'fimctl key generate', or pass --unsigned to write an "
                                       "unsigned baseline (every later command then needs --unsigned and every "
                                       "report says so)");
  return std::optional<SigningKey>();
}

}  // namespace

Result<Summary> run_init(const RunOptions& opts, Sink& sink) {
  auto key = signing_key(opts);
  if (!key) return key.error();
  const double t0 = monotonic_seconds();
  const bool from_cli = !opts.paths.empty();
  // Command-line PATHs are roots and rules of their own; the policy's rules still decide
  // what lies below them when they match nearer.
  Policy effective = opts.policy;
  if (from_cli) add_path_rules(&effective, normalize_roots(opts.paths), "command line");
  const Selector sel(effective);
  const std::vector<Bytes> roots = from_cli ? normalize_roots(opts.paths) : opts.policy.roots();
  auto lock = BaselineLock::acquire(opts.db_path);
  if (!lock) return lock.error();
  // The sequence continues from the baseline it replaces and from what state.db has seen,
  // so no baseline written here can look newer than its successor.
  auto state = open_state(opts.db_path);
  if (!state) return state.error();
  auto last_seq = (*state)->last_sequence(opts.db_path);
  if (!last_seq) return last_seq.error();
  uint64_t sequence = *last_seq;
  if (auto old = BaselineReader::open(opts.db_path)) sequence = std::max(sequence, (*old)->meta().sequence);
  auto writer = BaselineWriter::create(opts.db_path, *key ? &**key : nullptr);
  if (!writer) return writer.error();

  Summary s;
  s.command = "init";
  Ticker ticker(opts.progress);
  const Status st = scan(scan_options(opts, sel, roots, from_cli), [&](ScanEntry& e) -> Status {
    note_status(e, effective, &s, sink);
    if (e.subtree_incomplete) return {};
    ++s.entries;
    ticker.tick(s.entries);
    return (*writer)->add(e.rec);
  }, &s.bytes_hashed);
  if (!st) return st.error();

  BaselineMeta meta;
  meta.created_ns = now_ns();
  meta.fimctl_version = FIM_VERSION;
  meta.host_id = host_id();
  meta.policy_digest = policy_digest(opts.policy);
  meta.policy_source = opts.policy.source;
  meta.roots_source = from_cli ? "cli" : "policy";
  meta.roots = roots;
  meta.sequence = sequence + 1;
  FIM_TRY((*writer)->commit(&meta));
  FIM_TRY((*state)->note_sequence(opts.db_path, meta.sequence, meta.content_sha256));
  if (!meta.is_signed) sink.alert("unsigned", kUnsignedWarning);
  s.baseline = facts_of(opts.db_path, meta);
  s.seconds = monotonic_seconds() - t0;
  s.exit_code = exit_code_for(s);
  return s;
}

namespace {

/// check, and with `update` also the writing of its successor: the same merge, every entry
/// seen also goes to a new baseline, installed (sequence + 1) only once the old one verified.
Result<Summary> compare_with_baseline(const RunOptions& opts, Sink& sink, bool update) {
  const double t0 = monotonic_seconds();
  std::optional<BaselineLock> lock;
  std::optional<SigningKey> key;
  if (update) {
    if (!opts.paths.empty())
      return make_error(Errc::Usage, "update rewrites the whole baseline: it takes no PATHs (check PATH... looks at a part)");
    auto k = signing_key(opts);
    if (!k) return k.error();
    key = std::move(*k);
    auto l = BaselineLock::acquire(opts.db_path);
    if (!l) return l.error();
    lock.emplace(std::move(*l));
  }
  if (::access(opts.db_path.c_str(), F_OK) == 0) {
    if (auto st = check_trusted_path(opts.db_path, "baseline"); !st)
      return make_error(Errc::Trust, st.error().message);
  }
  auto opened = BaselineReader::open(opts.db_path);
  if (!opened) return opened.error();
  BaselineReader& base = **opened;
  const BaselineMeta& meta = base.meta();
  // Trust before any result: signature, host, sequence. The rows are verified as they stream.
  const Bytes pub_path = join_path(opts.keys_dir, "signing.pub");
  const bool have_pub = ::access(pub_path.c_str(), F_OK) == 0;
  if (meta.is_signed) {
    if (!have_pub)
      return make_error(Errc::Trust, "baseline " + quoted(opts.db_path) + " is signed (key " + meta.key_id +
                                         ") but there is no public key at " + quoted(pub_path) + " to verify it");
    auto vk = VerifyKey::load(pub_path);
    if (!vk) return vk.error();
    if (vk->key_id() != meta.key_id)
      return make_error(Errc::Trust, "baseline " + quoted(opts.db_path) + " is signed by key " + escape_terminal(meta.key_id) +
                                         ", not by the configured key " + vk->key_id() + " (" + quoted(pub_path) + ")");
    if (!vk->verify(manifest_text(meta), meta.signature))
      return make_error(Errc::Trust, "baseline " + quoted(opts.db_path) +
                                         " failed verification: its signature does not match its manifest (edited "
                                         "or forged); no result of this run can be trusted");
  } else if (!opts.allow_unsigned) {
    return make_error(Errc::Trust, "baseline " + quoted(opts.db_path) + " is not signed" +
                                       (have_pub ? " although a public key is configured (" + quoted(pub_path) +
                                                       "): refusing what could be a downgrade"
                                                 : std::string()) +
                                       "; pass --unsigned to use an unsigned baseline");
  } else {
    sink.alert("unsigned", kUnsignedWarning);
  }
  if (meta.host_id != host_id())
    return make_error(Errc::Trust, "baseline " + quoted(opts.db_path) + " was made on host " +
                                       escape_terminal(meta.host_id) + ", this is host " + host_id());
  // A read-only state directory must not stop a check (notes/reliability.md T16): say so.
  auto state = open_state(opts.db_path);
  uint64_t last_seq = 0;
  if (state) {
    auto l = (*state)->last_sequence(opts.db_path);
    if (l) last_seq = *l;
  }
  if (!state) sink.alert("state", "cannot use state.db, so an older baseline put back would not be noticed: " +
                                      state.error().describe());
  if (meta.sequence < last_seq)
    return make_error(Errc::Trust, "baseline " + quoted(opts.db_path) + " is older than one already seen here "
                                       "(sequence " + std::to_string(meta.sequence) + " < " + std::to_string(last_seq) +
                                       "): a rolled-back or replayed baseline is refused");

  Summary s;
  s.command = update ? "update" : "check";
  s.baseline = facts_of(opts.db_path, meta);

  // Which subtrees: the command line's (each within the baseline's roots) or all of them;
  // update walks what the new baseline will hold (the current policy's roots, or the PATHs
  // the baseline was made from).
  std::vector<Bytes> roots = update && meta.roots_source == "policy" ? opts.policy.roots() : meta.roots;
  std::unique_ptr<BaselineWriter> writer;
  if (update) {
    auto w = BaselineWriter::create(opts.db_path, key ? &*key : nullptr);
    if (!w) return w.error();
    writer = std::move(*w);
  }
  const bool subset = !opts.paths.empty();
  if (subset) {
    for (const auto& p : opts.paths) {
      const bool inside = std::any_of(meta.roots.begin(), meta.roots.end(), [&](const Bytes& r) { return path_within(p, r); });
      if (!inside)
        return make_error(Errc::Usage, quoted(p) + " is not covered by the baseline (its roots: " +
                                           [&] {
                                             std::string l;
                                             for (const auto& r : meta.roots) l += (l.empty() ? "" : ", ") + quoted(r);
                                             return l;
                                           }() + ")");
    }
    roots = normalize_roots(opts.paths);
  }
  // Roots given to 'init PATH...' are rules of their own again, as they were then.
  Policy effective = opts.policy;
  if (meta.roots_source == "cli") add_path_rules(&effective, meta.roots, "baseline roots (init PATH)");
  const Selector sel(effective);
  const bool roots_changed = meta.roots_source == "policy" && opts.policy.roots() != meta.roots;
  if (meta.policy_digest != policy_digest(opts.policy) || roots_changed) {
    s.policy_changed = true;
    sink.alert("policy_changed",
               "the policy changed since the baseline was written (" + meta.policy_source + " -> " +
                   opts.policy.source + "); differences below may come from the new policy, not from the "
                   "files. Review them, then re-baseline with 'fimctl update' so checks compare under one "
                   "policy again");
  }
  const auto selected = [&](const Bytes& path) {
    return !subset || std::any_of(roots.begin(), roots.end(), [&](const Bytes& r) { return path_within(path, r); });
  };

  // The baseline side of the merge: the next selected row, if any.
  Record old_rec;
  bool have_old = false;
  const auto advance = [&]() -> Status {
    for (;;) {
      auto more = base.next(&old_rec);
      if (!more) return more.error();
      have_old = *more;
      if (!have_old || selected(old_rec.path)) return {};
    }
  };
  std::vector<Bytes> unreadable_dirs;  // contents not listed: their baseline entries are unverified
  const auto missing = [&](const Record& r) {
    const bool unknown = std::any_of(unreadable_dirs.begin(), unreadable_dirs.end(),
                                     [&](const Bytes& d) { return r.path != d && path_within(r.path, d); });
    if (unknown) {
      ++s.unverified;
    } else {
      ++s.removed;
      const int w = sel.winner(sel.scope_of(r.path), r.type(), {});
      sink.change(ChangeKind::Removed, &r, nullptr, 0, w >= 0 && !effective.rules[static_cast<size_t>(w)].exclude ? rule_at(effective, w) : nullptr);
    }
  };
  FIM_TRY(advance());

  Ticker ticker(opts.progress);
  const Status st = scan(scan_options(opts, sel, roots, subset), [&](ScanEntry& e) -> Status {
    const Bytes& path = e.rec.path;
    while (have_old && old_rec.path < path) {  // in the baseline, not on disk (any more)
      missing(old_rec);
      FIM_TRY(advance());
    }
    note_status(e, effective, &s, sink);
    const Rule* rule = rule_at(effective, e.rule);
    if (e.subtree_incomplete) {
      unreadable_dirs.push_back(path);
      return {};
    }
    if (writer) FIM_TRY(writer->add(e.rec));
    ++s.entries;
    ticker.tick(s.entries);
    if (have_old && old_rec.path == path) {
      // An entry that could not even be lstat'ed has nothing to compare; its status says so.
      const bool comparable = !(e.rec.status != EntryStatus::Ok && e.rec.type() == FileType::Unknown);
      const bool growing = rule && rule->attrs.growing;
      if (const AttrMask changed = comparable ? compare(old_rec, e.rec, growing) : 0; changed) {
        ++s.changed;
        sink.change(ChangeKind::Changed, &old_rec, &e.rec, changed, rule);
      }
      return advance();
    }
    ++s.added;
    sink.change(ChangeKind::Added, nullptr, &e.rec, 0, rule);
    return {};
  }, &s.bytes_hashed);
  if (!st) return st.error();
  while (have_old) {
    missing(old_rec);
    FIM_TRY(advance());
  }
  FIM_TRY(base.verify());
  if (state) {
    if (auto st = (*state)->note_sequence(opts.db_path, meta.sequence, meta.content_sha256); !st)
      sink.alert("state", "cannot record the verified sequence: " + st.error().describe());
  }
  if (writer) {
    // The old baseline verified: its successor may now replace it.
    BaselineMeta next;
    next.created_ns = now_ns();
    next.fimctl_version = FIM_VERSION;
    next.host_id = host_id();
    next.policy_digest = policy_digest(opts.policy);
    next.policy_source = opts.policy.source;
    next.roots_source = meta.roots_source;
    next.roots = roots;
    next.sequence = std::max(meta.sequence, last_seq) + 1;
    FIM_TRY(writer->commit(&next));
    if (!state) return make_error(Errc::Io, "the new baseline is installed but its sequence could not be recorded: " +
                                                state.error().describe());
    FIM_TRY((*state)->note_sequence(opts.db_path, next.sequence, next.content_sha256));
    s.baseline = facts_of(opts.db_path, next);
  }
  s.seconds = monotonic_seconds() - t0;
  s.exit_code = exit_code_for(s);
  return s;
}

}  // namespace

Result<Summary> run_check(const RunOptions& opts, Sink& sink) { return compare_with_baseline(opts, sink, false); }
Result<Summary> run_update(const RunOptions& opts, Sink& sink) { return compare_with_baseline(opts, sink, true); }

}  // namespace fim
