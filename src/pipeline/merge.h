// SPDX-License-Identifier: GPL-2.0-or-later
// The compare at the heart of check, update and watch: a streaming merge of the walk (in
// bytewise path order) with baseline rows in the same order. Private to the pipeline module.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>

#include "fim/pipeline.h"

namespace fim::detail {

/// A baseline opened for use: verified as far as it can be before its rows are read.
struct Trusted {
  std::unique_ptr<BaselineReader> base;
  Result<std::unique_ptr<StateStore>> state = make_error(Errc::Bug, "unset");
  uint64_t last_seq = 0;
};

/// Trust before any result (docs/design.md, Baseline): trusted path, signature and key id, host,
/// and a sequence not older than one seen before. The rows are verified as they stream
/// (BaselineReader::verify at the end). Alerts (unsigned, state) go to `sink`.
Result<Trusted> open_trusted(const RunOptions& opts, Sink& sink);

/// This machine's id (/etc/machine-id), as recorded in baselines.
std::string host_id();

// Shared by the commands in run.cpp and accept.cpp.
std::string quoted(const Bytes& p);  ///< 'p', terminal-safe, for messages
BaselineFacts facts_of(const Bytes& path, const BaselineMeta& m);
/// Who runs this, for the journal: the login name behind sudo when there is one.
std::string current_user();
/// state.db beside the baseline (docs/design.md, Formats).
Result<std::unique_ptr<StateStore>> open_state(const Bytes& db_path);
/// The key that signs a new baseline: required unless --unsigned (then used when present).
Result<std::optional<SigningKey>> signing_key(const RunOptions& opts);

/// What 'accept' and the watch daemon compare: the SHA-256 of an entry's canonical row (every
/// attribute and status), hex.
std::string row_digest(const Record& r);

const Rule* rule_at(const Policy& p, int idx);

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
};

/// Walks and collects `so.roots`, compares each entry with the baseline row of the same path,
/// and reports added, removed and changed entries. Baseline rows below a directory that could
/// not be listed count as unverified, not removed.
Status merge_compare(const ScanOptions& so, Merge& m);

/// watch --containers (watch_containers.cpp): runs until `stop`, on its own thread.
Status watch_containers(const WatchOptions& opts, const std::atomic<bool>& stop);

/// check --packages and accept --package-verified (packages.cpp): the package manager's
/// records, and the apt runs recorded since the baseline was written.
struct Packages {
  std::unique_ptr<pkg::Verifier> verifier;
  std::map<std::string, std::string> run_of;  ///< "name:arch" -> the apt run that changed it
  /// The verdict on one change, as reports show it.
  PackageNote explain(const Record* old_rec, const Record* new_rec);
};
Result<Packages> open_packages(const RunOptions& opts, StateStore* state, int64_t since_ns);

/// accept --package-verified: keeps in `chosen` (path -> its current state, none: removed)
/// only the changes the package's signed .deb vouches for (with opts.weak_evidence, dpkg's
/// own records too), noting each one's evidence in `vouched`; the rest stay reported (one
/// alert says how many and why). Reads and verifies the baseline `meta` describes for the
/// old states. Errc::Usage when nothing is left.
Status keep_package_verified(const RunOptions& opts, const BaselineMeta& meta, StateStore* state,
                             std::map<Bytes, std::optional<Record>>* chosen, std::map<Bytes, std::string>* vouched,
                             Sink& sink);

}  // namespace fim::detail
