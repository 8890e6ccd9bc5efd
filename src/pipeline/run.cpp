// SPDX-License-Identifier: GPL-2.0-or-later
// init and check: the two consumers of scan().
//
// check is a streaming merge of two sequences sorted the same way: the walk (bytewise path
// order) and the baseline's primary key. Memory stays flat however large the tree, and an
// entry missing from either side is found in the same pass. The baseline's content digest is
// recomputed over the rows as they are merged; the sink holds the report until verify()
// passes, so a tampered baseline yields an error and no report at all.
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/pipeline.h"
#include "fim_config.h"
#include "merge.h"

namespace fim {
namespace detail {
std::string quoted(const Bytes& p) { return "'" + escape_terminal(p) + "'"; }
}  // namespace detail

namespace {

using detail::note_status;
using detail::quoted;
using detail::row_digest;
using detail::rule_at;

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

}  // namespace

namespace detail {
std::string host_id() {
  auto id = read_small_file("/etc/machine-id", 128);
  if (!id) return "unknown";
  std::string s = *id;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown" : s;
}
}  // namespace detail

namespace {

using detail::host_id;

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

}  // namespace

namespace detail {

BaselineFacts facts_of(const Bytes& path, const BaselineMeta& m) {
  return BaselineFacts{path, m.is_signed, m.key_id, m.created_ns, m.entry_count, m.content_sha256};
}


/// Who runs this, for the journal: the login name behind sudo when there is one.
std::string current_user() {
  const uid_t uid = ::getuid();
  std::string name = std::to_string(uid);
  if (const passwd* pw = ::getpwuid(uid)) name = pw->pw_name;
  if (const char* sudo = ::getenv("SUDO_USER"); sudo && uid == 0) name += " (sudo by " + std::string(sudo) + ")";
  return name;
}


/// state.db lives beside the baseline (docs/design.md, Formats).
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

}  // namespace detail

using detail::current_user;
using detail::facts_of;
using detail::open_state;
using detail::signing_key;

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

namespace detail {

Result<Trusted> open_trusted(const RunOptions& opts, Sink& sink) {
  Trusted t;
  if (::access(opts.db_path.c_str(), F_OK) == 0) {
    if (auto st = check_trusted_path(opts.db_path, "baseline"); !st)
      return make_error(Errc::Trust, st.error().message);
  }
  auto opened = BaselineReader::open(opts.db_path);
  if (!opened) return opened.error();
  t.base = std::move(*opened);
  const BaselineMeta& meta = t.base->meta();
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
  // A read-only state directory must not stop a check (docs/design.md, Threat model, T16): say so.
  t.state = open_state(opts.db_path);
  if (t.state) {
    auto l = (*t.state)->last_sequence(opts.db_path);
    if (l) t.last_seq = *l;
    else t.state = l.error();
  }
  if (!t.state) sink.alert("state", "cannot use state.db, so an older baseline put back would not be noticed: " +
                                        t.state.error().describe());
  const uint64_t last_seq = t.last_seq;
  if (meta.sequence < last_seq)
    return make_error(Errc::Trust, "baseline " + quoted(opts.db_path) + " is older than one already seen here "
                                       "(sequence " + std::to_string(meta.sequence) + " < " + std::to_string(last_seq) +
                                       "): a rolled-back or replayed baseline is refused");

  return t;
}

}  // namespace detail

namespace {

using detail::open_trusted;

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
  auto trusted = open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  BaselineReader& base = *trusted->base;
  const BaselineMeta& meta = base.meta();
  auto& state = trusted->state;
  const uint64_t last_seq = trusted->last_seq;
  if (update && meta.is_signed && !key)
    return make_error(Errc::Usage, "refusing to replace a signed baseline with an unsigned one: no signing key at " +
                                       quoted(join_path(opts.keys_dir, "signing.key")));

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
                   "files. " + (update ? std::string("The new baseline is written under the current policy")
                                       : std::string("Review them, then re-baseline with 'fimctl update' so checks "
                                                     "compare under one policy again")));
  }
  const auto selected = [&](const Bytes& path) {
    return !subset || std::any_of(roots.begin(), roots.end(), [&](const Bytes& r) { return path_within(path, r); });
  };
  // Every difference goes to the report, to state.db (what 'accept' may accept later: the
  // row digests it saw) and, for update, to the journal of the new baseline.
  bool recording = false;
  if (!update && state) {
    if (auto b = (*state)->begin_report(opts.db_path); b) recording = true;
    else sink.alert("state", "cannot record this report for 'fimctl accept': " + b.error().describe());
  }
  std::vector<Acceptance> accepted;
  const std::string who = current_user();
  std::optional<detail::Packages> packages;
  if (opts.packages && !update) {
    auto p = detail::open_packages(opts, state ? state->get() : nullptr, meta.created_ns);
    if (!p) return p.error();
    packages = std::move(*p);
  }
  const auto report = [&](ChangeKind k, const Record* o, const Record* n, AttrMask changed, const Rule* rule) -> Status {
    if (packages) {
      const PackageNote note = packages->explain(o, n);
      ++s.packages[note.verdict];
      sink.package_change(k, o, n, changed, rule, note);
    } else {
      sink.change(k, o, n, changed, rule);
    }
    StateStore::Reported r;
    r.path = (n ? n : o)->path;
    r.kind = std::string(change_kind_name(k));
    r.old_row = o ? row_digest(*o) : "-";
    r.new_row = n ? row_digest(*n) : "-";
    r.rule = rule ? rule->where.text() : "";
    if (recording) FIM_TRY((*state)->add_reported(opts.db_path, r));
    if (update) accepted.push_back(Acceptance{0, who, "update", opts.reason, r.path, r.kind, r.old_row, r.new_row});
    return {};
  };

  detail::Merge m{effective, sel, &s, sink, {}, selected, report, {}, {}};
  m.next_old = [&](Record* r) { return base.next(r); };
  if (writer) m.on_entry = [&](const Record& r) { return writer->add(r); };
  Ticker ticker(opts.progress);
  m.tick = [&](uint64_t n) { ticker.tick(n); };
  FIM_TRY(detail::merge_compare(scan_options(opts, sel, roots, subset), m));
  if (const auto m = s.packages.find("mismatch"); m != s.packages.end())
    sink.alert("package_mismatch", std::to_string(m->second) + " changed entries are not what their packages ship: "
                                   "look at those first (they are marked 'package: mismatch')");
  const Status verified = base.verify();
  if (recording) (void)(*state)->end_report(opts.db_path, meta.content_sha256, verified.has_value());
  FIM_TRY(verified);
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
    next.journal = meta.journal;
    const int64_t at = now_ns();
    for (auto& a : accepted) {
      a.at_ns = at;
      next.append_journal(a);
    }
    FIM_TRY(writer->commit(&next));
    if (!state) return make_error(Errc::Io, "the new baseline is installed but its sequence could not be recorded: " +
                                                state.error().describe());
    FIM_TRY((*state)->note_sequence(opts.db_path, next.sequence, next.content_sha256));
    // Everything reported was accepted: the new baseline starts with an empty report.
    FIM_TRY((*state)->begin_report(opts.db_path));
    FIM_TRY((*state)->end_report(opts.db_path, next.content_sha256, true));
    s.baseline = facts_of(opts.db_path, next);
  }
  s.seconds = monotonic_seconds() - t0;
  s.exit_code = exit_code_for(s);
  return s;
}

}  // namespace

Result<BaselineMeta> run_log(const RunOptions& opts, Sink& sink) {
  auto trusted = open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  BaselineReader& base = *trusted->base;
  Record r;
  for (;;) {  // the journal's head is covered by the content digest: read it all, then verify
    auto more = base.next(&r);
    if (!more) return more.error();
    if (!*more) break;
  }
  FIM_TRY(base.verify());
  return base.meta();
}

Result<Summary> run_check(const RunOptions& opts, Sink& sink) { return compare_with_baseline(opts, sink, false); }
Result<Summary> run_update(const RunOptions& opts, Sink& sink) { return compare_with_baseline(opts, sink, true); }

}  // namespace fim
