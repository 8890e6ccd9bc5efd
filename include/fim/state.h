// SPDX-License-Identifier: GPL-2.0-or-later
// state.db (docs/design.md, Formats: state.db): what fimctl remembers between runs beside the
// baseline but does not sign, and the report ids computed from what a report records.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fim/db.h"

namespace fim {

/// Mutable state beside the baseline (docs/design.md, Formats: state.db): the highest sequence
/// verified or written per baseline path (an older baseline copied back is caught), the last
/// report, the watch daemon's coverage and the apt hook's runs. Never part of the signed
/// baseline.
class StateStore {
 public:
  /// Opens (creating) `dir`/state.db.
  static Result<std::unique_ptr<StateStore>> open(const Bytes& dir);
  ~StateStore();
  /// 0 when nothing is recorded for `baseline`.
  Result<uint64_t> last_sequence(const Bytes& baseline);
  /// Records `sequence` when it is higher than what is stored.
  Status note_sequence(const Bytes& baseline, uint64_t sequence, const std::string& content_sha256);
  /// The identity pinned for `baseline` (none: never pinned, or state.db was recreated).
  Result<std::optional<BaselineIdentity>> identity(const Bytes& baseline);
  /// Pins it (with id.xattr): written by this host (init, update, accept, adopt, key rotate,
  /// migrate) or verified. Clears the identity announced with pin_next().
  Status pin_identity(const Bytes& baseline, const BaselineIdentity& id);
  /// The identity of a baseline about to be installed, so that a writer killed between the
  /// rename and pin_identity() leaves a baseline that is still accepted (and then pinned).
  Status pin_next(const Bytes& baseline, const BaselineIdentity& id);
  Result<std::optional<BaselineIdentity>> identity_next(const Bytes& baseline);

  /// The last report of `baseline` (docs/design.md, Baseline): what `accept` may accept.
  struct Reported {
    Bytes path;
    std::string kind, old_row, new_row, rule;
  };
  /// A report being written, in one transaction that replaces the stored one: add() each
  /// change, commit() keeps it. Destroyed uncommitted (an error on the way, a baseline that
  /// did not verify) it rolls back: the previous report stays and state.db stays usable.
  /// Must not outlive its StateStore; no other write of that StateStore may come between.
  class ReportTxn {
   public:
    ReportTxn(ReportTxn&&) noexcept;
    ReportTxn& operator=(ReportTxn&&) = delete;
    ~ReportTxn();
    Status add(const Reported& r);
    /// Keeps the report as the one made against the baseline with `content_sha256`, and as
    /// the kept report `id` (report_id_of() of what was added).
    Status commit(const std::string& content_sha256, const std::string& id);

   private:
    friend class StateStore;
    ReportTxn(StateStore* store, Bytes baseline, int64_t kept, std::unique_ptr<db::Txn> txn);
    StateStore* store_;
    Bytes baseline_;
    int64_t kept_;  // its row in the kept reports
    std::unique_ptr<db::Txn> txn_;  // null once committed
  };
  /// Also starts a kept report (below): commit() names it with its id, and the oldest kept
  /// report beyond the last kKeptReports is dropped in the same transaction.
  Result<ReportTxn> begin_report(const Bytes& baseline);
  /// After update, which accepted everything: an empty last report of the new baseline (not
  /// a kept one: update's differences are in the baseline's journal).
  Status clear_report(const Bytes& baseline, const std::string& content_sha256);
  /// The stored report and the content digest of the baseline it was made against.
  Result<std::vector<Reported>> load_report(const Bytes& baseline, std::string* content_sha256);
  /// After an accept: drops the accepted paths from the last report and, when it was made
  /// against `old_content_sha256`, moves it to the new baseline (kept reports stay as made).
  Status accepted(const Bytes& baseline, const std::vector<Bytes>& paths, const std::string& old_content_sha256,
                  const std::string& new_content_sha256);

  /// One of the last kKeptReports reports of a baseline, as its check printed it
  /// (docs/design.md, Baseline: acceptance): what 'accept --report ID' acts on.
  struct KeptReport {
    std::string id;  ///< report_id_of() its entries, full length
    int64_t at_ns = 0;
    std::vector<Reported> entries;  ///< in path order
  };
  /// The kept report whose id starts with `prefix` (at least kReportIdMinPrefix hex digits).
  /// Errc::Usage when the prefix is malformed, matches no kept report, or matches two.
  Result<KeptReport> find_report(const Bytes& baseline, std::string_view prefix);
  /// The most recent kept report, entries included; none when there is none.
  Result<std::optional<KeptReport>> latest_report(const Bytes& baseline);

  /// The watch daemon's coverage (docs/design.md, Real time). A root is dirty from the moment
  /// events under it may have been lost until a rescan that began after that moment ends.
  struct Dirty {
    Bytes root;
    int64_t first_ns = 0;   ///< first loss not yet covered by a rescan
    int64_t marked_ns = 0;  ///< latest loss
    std::string reason;     ///< overflow, daemon_down, read_error, mark_failed, ...
  };
  Status mark_dirty(const Bytes& baseline, const Bytes& root, const std::string& reason, int64_t at_ns);
  /// Clears `root` unless it was marked again after `scan_started_ns`.
  Status clear_dirty(const Bytes& baseline, const Bytes& root, int64_t scan_started_ns);
  Result<std::vector<Dirty>> dirty(const Bytes& baseline);
  /// A time the daemon did not see events (down, overflow, ...), kept for 'fimctl status'.
  struct Gap {
    int64_t start_ns = 0, end_ns = 0;
    std::string reason;
  };
  Status add_gap(const Bytes& baseline, const Gap& g);
  /// The last `limit` gaps, oldest first.
  Result<std::vector<Gap>> gaps(const Bytes& baseline, int limit);
  /// The daemon's liveness: pid, start, last heartbeat, and when it stopped cleanly (0: it
  /// is running, or it died without stopping).
  struct Daemon {
    int64_t pid = 0, started_ns = 0, heartbeat_ns = 0, stopped_ns = 0;
  };
  Status daemon_beat(const Bytes& baseline, int64_t pid, int64_t started_ns, int64_t now_ns, bool stopped);
  Result<std::optional<Daemon>> daemon(const Bytes& baseline);

  /// check --fast (docs/design.md, Evidence; src/db/state_fast.cpp): the last check's clock, to
  /// tell a step of it, and when entries were last hashed.
  struct CheckClock {
    std::string baseline_id;  ///< the baseline these facts are about (another one: none apply)
    int64_t realtime_ns = 0;  ///< CLOCK_REALTIME when that check started
    int64_t offset_ns = 0;    ///< CLOCK_REALTIME minus CLOCK_BOOTTIME then
    std::string boot_id;      ///< /proc/sys/kernel/random/boot_id then
    int64_t full_ns = 0;      ///< every entry was hashed by a run started then (0: not known)
    std::string stat_void;    ///< non-empty: stat evidence is withdrawn until a run hashes everything
  };
  Result<std::optional<CheckClock>> check_clock(const Bytes& baseline);
  /// Records a check's clock, and that the entries `hashed` were hashed (and found as recorded)
  /// by a run that started at `hashed_ns`; rows older than c.full_ns are dropped. One transaction.
  Status set_check_clock(const Bytes& baseline, const CheckClock& c, const std::vector<Bytes>& hashed,
                         int64_t hashed_ns);
  /// Every hashed-at row of the baseline (path, start of the run that hashed it), in no order.
  Status for_each_hashed(const Bytes& baseline, const std::function<void(const Bytes&, int64_t)>& each);

  /// content = "diff" (docs/design.md, Content store; src/db/state_content.cpp): which version
  /// of each file the baseline of each sequence kept (sha256 hex: a content store name), or why
  /// none (`why` non-empty), for `show --at SEQ` and pruning. Unsigned, like all of state.db.
  struct ContentVersion {
    Bytes path;
    std::string sha256;  ///< hex; empty when not kept
    std::string why;     ///< empty when kept
  };
  /// Replaces sequence `seq`'s versions and keeps only the newest `keep` sequences.
  Status set_content_versions(const Bytes& baseline, uint64_t seq, const std::vector<ContentVersion>& v, size_t keep);
  /// Whether versions of sequence `seq` were recorded.
  Result<bool> content_sequence(const Bytes& baseline, uint64_t seq);
  /// The version of `path` sequence `seq` recorded; none: the path has no row.
  Result<std::optional<ContentVersion>> content_version(const Bytes& baseline, uint64_t seq, const Bytes& path);
  /// Every row of sequence `seq` (accept carries the rows of the entries it did not change).
  Status for_each_content_version(const Bytes& baseline, uint64_t seq, const std::function<void(ContentVersion)>& each);
  /// Every content store name a kept sequence references.
  Status for_each_content_sha(const Bytes& baseline, const std::function<void(const std::string&)>& each);

  /// The apt hook (share/apt/99fimctl): "name:arch" -> version before a dpkg run, and each
  /// run's changes as "name:arch old new" lines (old or new "-" for installs and removals).
  Status set_apt_snapshot(const std::map<std::string, std::string>& versions);
  Result<std::map<std::string, std::string>> apt_snapshot();
  struct AptRun {
    int64_t id = 0, at_ns = 0;
    std::string changes;
  };
  Status add_apt_run(int64_t at_ns, const std::string& changes);
  Result<std::vector<AptRun>> apt_runs_since(int64_t since_ns);

  /// The apt hook's records of the .debs it verified before dpkg ran (fim/pkg.h HookRecord):
  /// each its canonical encoding and the host key's signature of it (empty: unsigned, a host
  /// that signs off-host). One per name, version and arch; readers verify before use.
  struct HookRow {
    std::string name, version, arch;
    int64_t at_ns = 0;
    std::string body, key_id, signature;
  };
  /// Adds them (replacing records of the same versions) in one transaction, then drops the
  /// oldest records beyond kHookRecordsMax rows or kHookRecordsMaxBytes of bodies.
  Status add_hook_records(const std::vector<HookRow>& rows);
  Result<std::vector<HookRow>> hook_records();
  /// What the hook verified before dpkg ran and still has to read the members of (their .debs
  /// spooled beside state.db): each record's encoding without members.
  Status add_hook_pending(const std::vector<std::string>& bodies);
  Result<std::vector<std::string>> hook_pending();
  /// Drops the pending `body` and, unless `row` is null, adds its finished record, at once.
  Status finish_hook_pending(const std::string& body, const HookRow* row);
  /// Keeps only the records of `keep` ("name version arch"); how many were dropped.
  Result<uint64_t> prune_hook_records(const std::set<std::string>& keep);
  /// An apt run in progress or done, as the apt hook saw it (pre .. post) and the watch
  /// daemon watched it: the evidence behind written-by-dpkg (docs/design.md, Packages).
  struct AptSession {
    int64_t id = 0;
    int64_t apt_pid = 0;
    uint64_t apt_start = 0;  ///< field 22 of /proc/PID/stat: a reused pid is another process
    int64_t began_ns = 0;
    int64_t ended_ns = 0;    ///< 0: in progress; -1: abandoned (no post hook: apt died)
    int64_t run_id = 0;      ///< the apt_runs row its post hook recorded, 0: none
    int64_t watched_from_ns = 0, watched_to_ns = 0;  ///< the daemon saw every write between
    bool lossy = false;      ///< the daemon lost events (or records) meanwhile: vouches for nothing
  };
  /// The pre hook: a new session; sessions still open are abandoned, and only the last 100 kept.
  Result<int64_t> begin_apt_session(int64_t apt_pid, uint64_t apt_start, int64_t now);
  /// The post hook: ends the open session of that apt process (pid and start time), linked
  /// to the last apt_runs row recorded since it began.
  Status end_apt_session(int64_t apt_pid, uint64_t apt_start, int64_t now);
  Result<std::optional<AptSession>> apt_session(int64_t id);
  /// The most recent session that is not ended (none: no apt run in progress).
  Result<std::optional<AptSession>> open_apt_session();
  /// The watch daemon: it classifies writes from `from_ns` (0: unchanged) to `to_ns` (0: not yet).
  Status watch_apt_session(int64_t id, int64_t from_ns, int64_t to_ns);
  Status mark_apt_session_lossy(int64_t id);
  /// One path written during a session, as the daemon classified its writers.
  struct DpkgWrite {
    int64_t session = 0;
    Bytes path;
    uint64_t dev = 0, ino = 0;  ///< the inode of the last write (0 when unknown)
    int64_t at_ns = 0;
    bool by_dpkg = false;  ///< every write seen came from a descendant of the run's dpkg
    std::string who;       ///< the last writer, "comm (pid N)"
  };
  /// Upserts; a path once written by anything else stays not by_dpkg for that session.
  Status add_dpkg_writes(const std::vector<DpkgWrite>& writes);
  /// The by_dpkg writes of sessions that began at or after `since_ns`, ended by their post hook,
  /// were watched from start to end and lost nothing; each with its session.
  Result<std::vector<std::pair<DpkgWrite, AptSession>>> dpkg_writes_since(int64_t since_ns);

  /// Maintenance windows that name a writer (fim/window.h): one path written while the watch
  /// daemon classified the writes of window `window` of the baseline `baseline_id`, with the
  /// span it watched the window and whether it lost events meanwhile.
  struct WindowWrite {
    std::string window;
    Bytes path;
    int64_t at_ns = 0;       ///< the last write seen
    bool by_writer = false;  ///< every write seen came from the window's writer
    std::string who;         ///< the last writer, "comm (pid N)"
    uint64_t dev = 0, ino = 0;  ///< the file the last write went to (0: unknown, then never tagged)
    int64_t watched_from_ns = 0, watched_to_ns = 0;
    bool lossy = false;
    /// When 'window open' found its paths as the baseline records them, after the daemon had
    /// begun classifying (0: not yet, or they differed): nothing unseen came before.
    int64_t clean_ns = 0;
  };
  /// The daemon: it classified the window's writes from `from_ns` to `to_ns` (0: unchanged),
  /// lost events when `lossy`, and saw `writes` (upserted: by_writer only ever goes down).
  Status add_window_writes(const std::string& baseline_id, const std::string& window, int64_t from_ns, int64_t to_ns,
                           bool lossy, const std::vector<WindowWrite>& writes);
  /// Every write recorded for the windows of `baseline_id`, each with its window's span.
  Result<std::vector<WindowWrite>> window_writes(const std::string& baseline_id);
  /// When the daemon began classifying the window (0: it has not).
  Result<int64_t> window_watched_from(const std::string& baseline_id, const std::string& window);
  /// window open: its paths were as the baseline records them at `clean_ns`.
  Status window_clean(const std::string& baseline_id, const std::string& window, int64_t clean_ns);
  /// Drops sessions (and their writes) that ended before `before_ns` (the baseline's time):
  /// the baseline has taken their changes or the operator decided on them.
  Status prune_apt_sessions(int64_t before_ns);

 private:
  Status report_of(const Bytes& baseline, const std::string& content_sha256);
  struct Impl;
  friend class CoverageRows;  // the watch daemon's coverage tables (fim/coverage_rows.h)
  explicit StateStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Bounds of the apt hook's records in state.db (man fimctl, PACKAGES): the oldest go first.
inline constexpr uint64_t kHookRecordsMax = 4096;
inline constexpr uint64_t kHookRecordsMaxBytes = uint64_t{64} << 20;

/// How many reports state.db keeps per baseline for 'accept --report ID'.
inline constexpr int kKeptReports = 20;
/// The shortest prefix of a report id a command takes (48 bits: unambiguous among 20 reports
/// unless someone searches for a collision, and then it is refused as ambiguous).
inline constexpr size_t kReportIdMinPrefix = 12;
/// How much of a report id the plain report and messages show: 96 bits, so the id an
/// operator copies cannot be matched by searching for changes with the same prefix.
inline constexpr size_t kReportIdShown = 24;

/// A report's id (docs/design.md, Baseline: acceptance): SHA-256 (hex) over its change records
/// in report order, each its path, kind and the row digests of the old and new state, every
/// field length-prefixed. No time of the run goes in: the same differences give the same id,
/// and any other difference (one more entry, another old or new value) gives another.
class ReportDigest {
 public:
  ReportDigest();
  void add(const StateStore::Reported& r);
  /// The id of what was added (of an empty report: the digest of the header alone).
  std::string hex();

 private:
  Sha256Stream sha_;
};
std::string report_id_of(const std::vector<StateStore::Reported>& entries);

}  // namespace fim
