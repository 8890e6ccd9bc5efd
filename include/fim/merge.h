// SPDX-License-Identifier: GPL-2.0-or-later
// The compare at the heart of check, update and watch: a streaming merge of the walk (in
// bytewise path order) with baseline rows in the same order. The pipeline module owns it
// (src/pipeline/); the daemon (src/daemon/) is its one other user.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "fim/pipeline.h"
#include "fim/window.h"

namespace fim::detail {

/// Said in every report of a run over an unsigned baseline.
inline constexpr const char* kUnsignedWarning =
    "the baseline is not signed: anyone who can write it can rewrite it undetected";

// --- baseline.cpp: the pieces init, check, update, accept, log and watch share ---

/// A baseline opened for use: verified as far as it can be before its rows are read.
struct Trusted {
  std::unique_ptr<BaselineReader> base;
  Result<std::unique_ptr<StateStore>> state = make_error(Errc::Bug, "unset");
  uint64_t last_seq = 0;  ///< the highest sequence state.db has seen for this path
  bool repin = false;     ///< verified, then pinned anew: first signature, or a baseline from before ids
  /// state.db cannot be used and the baseline's directory is on a read-only filesystem (a
  /// baseline kept on read-only media): nobody can have put another file there since.
  bool read_only_media = false;
};

/// What a command that writes the next baseline (update, accept, window) holds: the key that
/// signs it (none with --unsigned and no key), the lock, and the predecessor opened for use,
/// whose key the successor's must match (check_successor_key).
struct Writing {
  std::optional<SigningKey> key;
  BaselineLock lock;
  Trusted trusted;
};
Result<Writing> open_for_writing(const RunOptions& opts, Sink& sink);

/// Trust before any result (docs/design.md, Baseline): a signed baseline must verify against
/// the configured key; an unsigned one needs --unsigned and is said to be one.
Status check_signature(const RunOptions& opts, const BaselineMeta& meta, Sink& sink);

/// Trust before any result (docs/design.md, Baseline): trusted path, signature and key id,
/// host, and a sequence not older than one seen before. The rows are verified as they stream
/// (BaselineReader::verify at the end). Alerts (unsigned, state) go to `sink`.
Result<Trusted> open_trusted(const RunOptions& opts, Sink& sink);

/// window open: the differences from the baseline at or below `paths` now (a compare like
/// check's that reports nothing and records nothing), each path into `found`.
Status differences_below(const RunOptions& opts, Trusted& t, const std::vector<Bytes>& paths, std::vector<Bytes>* found);

/// The window tags of a check or update (fim/window.h): the baseline's windows, and what the
/// watch daemon recorded of them in state.db (none when state.db cannot be read).
WindowTags window_tags(Trusted& t, Sink& sink);

// --- identity.cpp ---

/// The baseline against the identity pinned for its path in state.db and in its
/// trusted.fimctl.identity attribute (docs/design.md, Baseline: identity): another baseline,
/// other roots, another key, a state.db reset or an attribute missing are refused (Trust,
/// alerts key_changed and state_reset). Called by open_trusted().
Status check_identity(const RunOptions& opts, const BaselineMeta& meta, Trusted& t, Sink& sink);
/// After a verified read with t.repin: pins the identity (and sets the attribute, as root).
Status repin_verified(const RunOptions& opts, const BaselineMeta& meta, StateStore& state);
/// Commits `w` as this host's baseline: its identity announced in state.db first (pin_next),
/// then installed, then pinned (pin_written).
Status commit_pinned(const RunOptions& opts, StateStore& state, BaselineWriter& w, BaselineMeta* meta,
                     const std::optional<SigningKey>& key, Sink& sink);
/// After this host wrote `meta` with `w`: records its sequence and pins its identity; an
/// attribute the filesystem cannot hold is the alert identity_xattr.
Status pin_written(const RunOptions& opts, StateStore& state, const BaselineMeta& meta, const BaselineWriter& w,
                   Sink& sink);

/// Reads every row (each one to `each`, which may be empty), then verifies the content
/// digest: nothing read is trusted before this returns success.
Status read_verified(BaselineReader& base, const std::function<Status(const Record&)>& each);

/// The policy a baseline is compared under: the loaded one, plus the roots given to
/// 'init PATH...' as rules of their own again, as they were then.
Policy effective_policy(const Policy& policy, const BaselineMeta& meta);
/// Whether `policy` differs from the one the baseline was written under (digest or roots).
bool policy_changed(const Policy& policy, const BaselineMeta& meta);

/// The manifest of a new baseline, written now by this fimctl on this host under `policy`,
/// for `roots`: sequence `after` + 1, the journal carried over with `accepted` appended
/// (stamped with the creation time). Its digests and signature are the writer's commit's.
/// `baseline_id`: the predecessor's (empty: a new one, for init or a baseline from before ids).
BaselineMeta successor_meta(const Policy& policy, const std::string& roots_source, std::vector<Bytes> roots,
                            uint64_t after, std::vector<JournalEntry> journal, std::vector<Acceptance> accepted,
                            const std::string& baseline_id);
/// Whether a per-image baseline is used as one, for the image it is named for (and a host's
/// baseline as a host's): RunOptions::image_baseline, ImageOrigin::digest.
Status check_image_origin(const RunOptions& opts, const BaselineMeta& meta);
/// The image-signing key in KEYS/images/*.pub with `key_id` (none: empty); a matching key
/// file on a path others could write is refused.
Result<std::optional<VerifyKey>> find_image_key(const Bytes& keys_dir, const std::string& key_id);
/// A successor of a per-image baseline (update, accept) stays the baseline of that image.
void carry_image_origin(const BaselineMeta& from, BaselineMeta* to);

BaselineFacts facts_of(const Bytes& path, const BaselineMeta& m);
/// Who runs this, for the journal: the login name behind sudo when there is one.
std::string current_user();
/// state.db beside the baseline (docs/design.md, Formats).
Result<std::unique_ptr<StateStore>> open_state(const Bytes& db_path);
/// The key that signs a new baseline: required unless --unsigned (then used when present).
Result<std::optional<SigningKey>> signing_key(const RunOptions& opts);
/// A signed baseline is replaced only by a signed one (update, accept).
Status check_successor_key(const RunOptions& opts, const BaselineMeta& meta, const std::optional<SigningKey>& key);

// --- merge.cpp ---

/// What 'accept' and the watch daemon compare: the SHA-256 of an entry's canonical row (every
/// attribute and status), hex.
std::string row_digest(const Record& r);

const Rule* rule_at(const Policy& p, int idx);

/// accept and update act on reviewed differences (docs/design.md, Baseline: acceptance): with
/// --report ID, or --yes, or a terminal to ask on (RunOptions::confirm). Errc::Usage, naming
/// both ways, before anything is read, when there is none of them.
Status need_review(const RunOptions& opts, const char* command);
/// Without --report and --yes: shows `what` through RunOptions::confirm and asks; Errc::Usage
/// when the answer is no.
Status confirmed(const RunOptions& opts, const char* command, const std::vector<StateStore::Reported>& what);
/// update --report ID: the kept report the operator reviewed, found before the scan (an id
/// state.db does not keep fails at once); none without --report.
Result<std::optional<StateStore::KeptReport>> reviewed_report(const RunOptions& opts, Trusted& t);
/// update is bound to the differences the operator reviewed: those of --report ID exactly
/// (`id` is the report of what it found), or confirmed on a terminal, or --yes.
Status update_reviewed(const RunOptions& opts, const std::optional<StateStore::KeptReport>& reviewed,
                       const std::string& id, const std::vector<StateStore::Reported>& found);
/// The successor accept (and window, --drop-alternatives) writes with `w`: the same roots and
/// policy, the journal extended by `journal`, `alternatives` as they now are; installed,
/// pinned, and the report's `accepted` paths taken out of state.db's last report (the rest of
/// it carries over to the successor).
Result<Summary> commit_accepted(const RunOptions& opts, const BaselineMeta& meta, Trusted& trusted, BaselineWriter& w,
                                const std::optional<SigningKey>& key, std::vector<Acceptance> journal,
                                std::map<Bytes, std::vector<Record>> alternatives, const std::vector<Bytes>& accepted,
                                Sink& sink);
/// "1234567890abcdef01234567": how a report id is shown in messages (kReportIdShown digits).
std::string short_id(const std::string& id);

/// Counts an entry's status into the summary and reports it when it is not ok.
void note_status(const ScanEntry& e, const Policy& p, Summary* s, Sink& sink);

struct Merge {
  const Policy& policy;  ///< the effective policy (labels of reported entries)
  const Selector& sel;
  Summary* summary;
  Sink& sink;
  /// The next baseline row in path order; false at the end.
  std::function<Result<bool>(Record*)> next_old;
  /// Whether a baseline row belongs to what is compared (rows outside are skipped).
  std::function<bool(const Bytes&)> selected;
  /// A difference: old and/or new record, the attributes that differ, the labelling rule.
  std::function<Status(ChangeKind, const Record*, const Record*, AttrMask, const Rule*)> report;
  /// Every entry seen on disk (update writes them to the next baseline); may be empty.
  std::function<Status(const Record&)> on_entry;
  /// Called with the count of entries seen, for progress; may be empty.
  std::function<void(uint64_t)> tick;
  /// check: a regular file hashed in this run and found as recorded (its hashed-at time in
  /// state.db, docs/design.md, Evidence); may be empty.
  std::function<void(const Bytes&)> hashed_unchanged;
  /// The baseline's alternatives (BaselineMeta::alternatives; null: none). An entry that
  /// differs from its row but is one of them is no change: the sink is told which
  /// (Sink::alternative), and so is `on_alternative` (may be empty) with the row it differs from.
  const std::map<Bytes, std::vector<Record>>* alternatives = nullptr;
  std::function<void(const Record& row, const Record& now, unsigned n)> on_alternative;
  /// on_entry with the rule that selected the entry (update: its content is kept when the
  /// rule says content = "diff"); may be empty.
  std::function<Status(const Record&, const Rule*)> on_entry_rule;
};

// --- alternatives.cpp ---

/// `r` as an alternative keeps it: without kNotInAlternative.
Record as_alternative(const Record& r);

/// Which alternative of `alts` (2, 3, ...) `rec` is, or 0: a fully read one of the same type
/// that holds every attribute `rec` holds (but kNotInAlternative), each equal.
unsigned alternative_of(const std::vector<Record>& alts, const Record& rec, bool growing);

/// What a successor baseline (accept, update) carries of its predecessor's alternatives: each
/// change to them goes to `note` (why, path, old and new row digest) for the journal.
class SuccessorAlternatives {
 public:
  using Journal = std::function<void(const std::string& why, const Bytes& path, std::string old_row, std::string new_row)>;
  SuccessorAlternatives(const BaselineMeta& from, Journal note);
  /// update: the entry at `path` is in the successor (take(true) keeps only those).
  void present(const Bytes& path);
  /// update: an entry found in alternative `n` of `row`: `now` becomes its row, and `row`
  /// takes number n (unless it was not fully read).
  void swapped(const Record& row, const Record& now, unsigned n);
  /// A new state accepted without --also, a removal, or --drop-alternatives: the entry's
  /// alternatives end.
  void ended(const Bytes& path, const std::string& why);
  /// accept --also: `old` stays good beside the new state (unless it is one already).
  Status also(const Record& old);
  bool has(const Bytes& path) const { return alts_.count(path) != 0; }
  std::map<Bytes, std::vector<Record>> take(bool only_present);

 private:
  std::map<Bytes, std::vector<Record>> alts_;
  std::set<Bytes> present_;
  Journal note_;
};

/// Walks and collects `so.roots`, compares each entry with the baseline row of the same path,
/// and reports added, removed and changed entries. Baseline rows below a directory that could
/// not be listed count as unverified, not removed.
Status merge_compare(const ScanOptions& so, Merge& m);

/// check --packages and accept --package-verified (packages.cpp): the package manager's
/// records, and the apt runs recorded since the baseline was written.
struct Packages {
  std::unique_ptr<pkg::Verifier> verifier;
  std::map<std::string, std::string> run_of;  ///< "name:arch" -> the apt run that changed it
  std::map<std::string, std::string> replaced;  ///< "name:arch" -> the version before the first such run ("-": none)
  std::vector<std::string> alerts;  ///< the apt hook's records that did not verify (for the report)
  /// The verdict on one change that is not a directory, as reports show it; noted under its
  /// parent directory for explain_directory().
  PackageNote explain(const Record* old_rec, const Record* new_rec);
  /// The verdict on a directory, from its own record and the changes explained inside it
  /// (pkg::directory_note): call it after every change below the directory, deepest first
  /// (by_depth). `only_times`: only times, size or link count differ.
  PackageNote explain_directory(const Record* old_rec, const Record* new_rec, bool only_times);
  /// A change inside a directory that was reported but is not being weighed (accept of a
  /// part of a report): the directory is then not verified.
  void note_unweighed(const Bytes& path);
  /// Orders paths so that every directory comes before its parent (deepest first).
  static bool by_depth(const Bytes& a, const Bytes& b);

 private:
  std::map<Bytes, pkg::Children> children_;  // directory -> what changed directly inside it
  PackageNote shown(const pkg::Note& n, const Bytes& path);
};

/// Whether a change is a directory's (a directory on either side): its package verdict waits
/// for its children's.
bool is_directory_change(const Record* old_rec, const Record* new_rec);
/// The attributes an upgrade changes on a directory it only unpacked into (or made again).
bool only_times_changed(AttrMask changed);
/// `trusted`: the content digest of the baseline the caller verifies (tools unchanged since it
/// are trusted as it is; a baseline file that is no longer that one vouches for nothing).
Result<Packages> open_packages(const RunOptions& opts, StateStore* state, int64_t since_ns, const std::string& trusted);
/// The apt hook's records (fim/pkg.h HookRecord) into p's verifier, each verified with the
/// public key of opts.keys_dir first; records that do not verify are left out, p->alerts says so.
void load_hook_records(const RunOptions& opts, StateStore& state, int64_t since_ns, Packages* p);
/// After a new baseline is committed: drops the hook records of versions not installed now.
void prune_hook_records(const RunOptions& opts, StateStore& state, Sink& sink);

/// accept --package-verified: keeps in `chosen` (path -> its current state, none: removed)
/// only the changes the package's signed .deb vouches for (with opts.weak_evidence, dpkg's
/// own records too), noting each one's evidence in `vouched`; the rest stay reported (one
/// alert says how many and why). `reported`: every path of the report, chosen or not (a
/// directory is weighed by everything that changed inside it). Reads and verifies the baseline `meta` describes for the
/// old states. Errc::Usage when nothing is left.
Status keep_package_verified(const RunOptions& opts, const BaselineMeta& meta, StateStore* state,
                             const std::set<Bytes>& reported, std::map<Bytes, std::optional<Record>>* chosen,
                             std::map<Bytes, std::string>* vouched, Sink& sink);

}  // namespace fim::detail
