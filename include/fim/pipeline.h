// SPDX-License-Identifier: GPL-2.0-or-later
// pipeline: the one path every entry takes (docs/design.md, Architecture). scan() runs the walker
// and a pool of collectors and hands Records back in path order on the calling thread;
// run_init() and run_check() are the two consumers of that stream.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "fim/attr.h"
#include "fim/base/result.h"
#include "fim/container.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/pkg.h"
#include "fim/progress.h"
#include "fim/report.h"
#include "fim/rules.h"
#include "fim/walk.h"

namespace fim {

struct ScanOptions {
  std::vector<Bytes> roots;
  WalkOptions walk;          ///< walk.selector decides what is emitted, with which rule (null: all)
  CollectOptions collect;    ///< mask and hash limit come from each entry's rule
  unsigned jobs = 1;  ///< collector threads
  /// An entry whose collection makes no progress (no byte read) for this long gets status
  /// timeout and the scan goes on without it (a hung FUSE or network read); 0: wait forever.
  double read_timeout_seconds = 60;
  /// check --fast: called on the walk's thread, in path order, for every entry to collect,
  /// after its rule set `co`; it chooses the evidence to try (CollectOptions::plan). Empty:
  /// everything is collected in full.
  std::function<void(const WalkItem&, CollectOptions* co)> plan;
  AttrMask strip = 0;  ///< never collected, whatever the rules select (kNotInImage for an image)
  AttrMask strip_dir = 0;  ///< ... for directories (kDirNotInImage)
  /// Counts every byte the collectors read as they read it (the progress line); may be null.
  /// Shared: a collector abandoned in a read that never returns may still count into it.
  std::shared_ptr<std::atomic<uint64_t>> live_bytes;
  /// Called on the consumer's thread about every 250 ms while it waits for the next entry
  /// (a large or slow file), so a progress line keeps moving; may be empty.
  std::function<void()> waiting;
};

/// One result: a collected entry, or (subtree_incomplete) a directory whose contents could
/// not be listed, with the reason in rec.status/rec.sys_errno.
struct ScanEntry {
  Record rec;
  bool subtree_incomplete = false;  ///< a status about a directory's contents, not an entry
  int rule = -1;                    ///< the rule that selected it (Policy::rules index)
  /// A growing log with a digest, or an entry not hashed (check --fast): its directory and
  /// name, so the merge can read it (Collector::prefix_sha256, or in full to confirm a
  /// difference). Empty for every other entry.
  SharedFd dir;
  Bytes name;
};

/// What the collector reads of an entry `rule` selects (its mask, hash limit, growing), on top
/// of `base`; no rule: `base`.
CollectOptions collect_options_for(const Rule* rule, CollectOptions base = {});

/// How many collector threads this process gave up on, stuck in a read that never returned
/// (read_timeout_seconds). Such a process cannot exit until the filesystem answers.
uint64_t abandoned_threads();

/// Walks and collects in parallel with bounded memory (a fixed window of work in flight);
/// `consume` sees entries in bytewise path order. Stops at the first error from the walk or
/// from `consume`. Adds the bytes hashed to *bytes_hashed.
Status scan(const ScanOptions& opts, const std::function<Status(ScanEntry&)>& consume,
            uint64_t* bytes_hashed);

/// What a running, trusted watch daemon vouches for (docs/design.md, Evidence): one root it
/// has covered without a break (no gap, overflow, lost record, downtime, mount change, reload,
/// dirty mark) from since_ns until now, and the entries events named in that time.
struct WatchedRoot {
  Bytes root;
  int64_t since_ns = 0;
  std::vector<Bytes> evented;  ///< sorted bytewise: paths events named since since_ns
};

/// What a per-image baseline is of (BaselineMeta::source and image_*; docs/design.md,
/// Containers). init: written into the manifest. check: `digest` is the manifest the baseline
/// must have been built from (its file is named for it), empty where the key is not a digest.
struct ImageOrigin {
  std::string source;  ///< "image" (init --image) or "container" (init --containers)
  std::string digest, index_digest, ref;
};

/// Attributes an image's layers cannot tell (they belong to the filesystem a container's root
/// is on, or to when it was unpacked): never recorded in a baseline built from an image, so
/// never compared with a container's.
inline constexpr AttrMask kNotInImage = attr_bit(Attr::Inode) | attr_bit(Attr::Dev) | attr_bit(Attr::Ctime) |
                                        attr_bit(Attr::Btime) | attr_bit(Attr::Handle);
/// ... and of a directory: when the runtime unpacked a layer that only lists files below it
/// (its mtime is then the unpacking's), and how many links an overlay reports for it (1 once
/// it is merged from two layers, as every directory a container writes below is). What was
/// added or removed below it is reported as such.
inline constexpr AttrMask kDirNotInImage = attr_bit(Attr::Mtime) | attr_bit(Attr::Nlink);

/// What a scan of an image's root (init --image) or of a container compared with one leaves out.
inline void not_in_image(ScanOptions* so) {
  so->strip = kNotInImage;
  so->strip_dir = kDirNotInImage;
}

struct RunOptions {
  Policy policy;             ///< as loaded (its digest goes into the baseline)
  Bytes db_path;
  Bytes keys_dir;            ///< signing.key (init) and signing.pub (check) live here
  std::vector<Bytes> paths;  ///< command-line PATHs (absolute, normalised); empty: policy/baseline roots
  /// check: `paths` come from events, not from a user (watch --containers): one that does not
  /// exist is an absent root, compared as such (what the baseline has below it is removed),
  /// never an error. A user's PATH that does not exist stays an error.
  bool paths_may_be_absent = false;
  /// --sysroot: every path (roots, PATHs) is inside this directory, opened with RESOLVE_IN_ROOT
  /// and recorded as seen inside it; -1: "/". The caller keeps it open.
  int sysroot_fd = -1;
  unsigned jobs = 1;
  bool allow_unsigned = false;
  /// init: replace an existing baseline (kept as PATH.prev; the replacement is journalled).
  bool force = false;
  std::string reason;        ///< update/accept: why, for the journal
  bool accept_all = false;   ///< accept: everything in the last report
  std::vector<std::string> accept_rules;  ///< accept: reported entries of these rules ("file:line:col")
  /// accept/update --report ID (a prefix of at least 12 hex digits): act on the differences
  /// of that kept report only, and refuse when they are not what is there now.
  std::string report;
  /// accept/update --ticket ID: the change ticket, in every journal entry written and in the report.
  std::string ticket;
  /// accept --also: each accepted change keeps the entry's previous state as an alternative
  /// (BaselineMeta::alternatives), still good; --drop-alternatives: `paths` lose theirs.
  bool also = false;
  bool drop_alternatives = false;
  /// accept --window ID, window close ID: the maintenance window (fim/window.h); window open
  /// --for and --by-*: its duration and writer (Window::writer).
  std::string window;
  int64_t window_for_ns = 0;
  std::string window_writer;
  /// accept/update --yes: without --report, go on without asking (scripts that accept
  /// whatever the last check or the update's own compare found).
  bool yes = false;
  /// Without --report or --yes: shows `what` (the differences about to be accepted) and asks
  /// `question`; true to go on. Set by the command line only when it can ask (stdin and
  /// stderr are a terminal); null: refused (docs/design.md, Baseline: acceptance).
  std::function<bool(const std::string& question, const std::vector<StateStore::Reported>& what)> confirm;
  bool packages = false;          ///< check --packages: each change says what its package vouches for
  bool package_verified = false;  ///< accept --package-verified: only what the package's .deb vouches for
  bool weak_evidence = false;     ///< accept --package-verified --weak: dpkg's own MD5s and lists too
  /// accept --package-verified on behalf of [options] auto_accept: only changes a recorded apt
  /// run explains (its package changed in the run, or derived from such files).
  bool recorded_runs_only = false;
  pkg::Options package_sources;   ///< where dpkg's and apt's records are
  /// Called at most every ~250 ms on the calling thread while init/check/update/accept scan,
  /// and once with the final counts when the scan ends (docs/design.md, Record schema: the
  /// progress line). Set only when progress is shown: it also starts init's pre-walk.
  std::function<void(const ScanProgress&)> progress;
  /// check: "fast" or "full" (--fast, --full); empty: the policy's check_mode.
  std::string check_mode;
  /// check --fast: what a running watch daemon vouches for (the command line asks it).
  std::vector<WatchedRoot> watched;
  /// A per-image baseline is used or written (run_in_container sets it): a host command never
  /// takes one for the host's, and an image baseline is not bound to the host that built it.
  bool image_baseline = false;
  ImageOrigin image;
};

/// fimctl init: scans the roots and installs a new baseline atomically. Returns the summary
/// (exit bits: 8 when some entries could not be fully read).
Result<Summary> run_init(const RunOptions& opts, Sink& sink);

/// fimctl check: compares the tree with the baseline; with `paths`, only those subtrees
/// (each must lie within the baseline's roots).
Result<Summary> run_check(const RunOptions& opts, Sink& sink);

/// fimctl update: verifies the baseline, compares like check (the report lists exactly what
/// the new baseline accepts) and installs the new baseline with the next sequence number,
/// atomically and under the lock. The exit bits are check's.
Result<Summary> run_update(const RunOptions& opts, Sink& sink);

/// fimctl accept: from the last report (state.db), the differences named by `paths` (paths:
/// that entry and below; globs) , `accept_rules` or `accept_all`, each refused unless it is
/// still exactly as reported; writes the successor baseline with a journal entry per
/// accepted difference (who, when, reason, old and new row digests). Exit 0.
Result<Summary> run_accept(const RunOptions& opts, Sink& sink);

/// --containers (docs/design.md, Containers): what one container's run used and did.
struct ContainerRun {
  std::string image;      ///< in: the key of its image's baseline (baseline_key_of()); empty: image_key()
  Bytes baseline;         ///< images/<image>.db beside RunOptions::db_path
  std::string kill_rule;  ///< where a rule with a response that reported drift is defined
  std::string action;     ///< "kill" or "kill_process"
  int killed = -1;        ///< processes killed in response; -1: no response
  std::string kill_error; ///< why the response failed
  int offender = 0;       ///< in: the pid that made the change, when known (watch); kill_process kills it
};

/// The ndjson record of a response (type "response": action, pid, killed, reason, error),
/// with `fields` (a json::Writer::fields(): the container) appended.
std::string response_record(const ContainerRun& run, int pid, const json::Writer* fields = nullptr);

/// Where per-image baselines live: images/ in the directory of the host's baseline.
Bytes images_dir(const Bytes& db_path);
/// The baseline of image `key`: images_dir(db_path)/<key>.db.
Bytes image_baseline_path(const Bytes& db_path, const std::string& key);
/// Whether the baseline at `path` was built from the image itself (init --image).
bool image_built(const Bytes& path);
/// What the per-image baseline at `path` was made from: "image", "container" (also one written
/// before sources were recorded), or "" when there is none (or it cannot be read).
std::string baseline_source(const Bytes& path);

/// fimctl init --image REF: a baseline of the image's own layers, without running it, at
/// images/<image_digest_key(manifest digest)>.db (--db's directory), signed with --keys, its
/// manifest naming the image (source "image", manifest and index digest, reference).
Result<Summary> run_init_image(const RunOptions& opts, const std::string& ref, Sink& sink, Bytes* written);

/// fimctl import-image-baseline FILE: FILE verified (built from an image, keyed by a
/// well-formed manifest digest, signed by a key in KEYS/images/*.pub or the host's, every
/// row) as a copy in images/, then installed at images/<key>.db and pinned in state.db with
/// its key: a later import signed by another key is refused unless opts.force, and one not
/// newer than what this host used for the image (a rollback or replay) is refused.
struct ImportedImage {
  Bytes path;
  BaselineMeta meta;
  bool already = false;       ///< the same baseline was installed already: nothing done
  bool replaced_key = false;  ///< --force: the image's pinned key was another
};
Result<ImportedImage> run_import_image(const RunOptions& opts, const Bytes& file);

/// fimctl export-image-baseline: the baseline of image `digest` (built from the image),
/// verified as check verifies it, copied to `to` (one file a pipeline attaches to the image).
Result<BaselineMeta> run_export_image(const RunOptions& opts, const std::string& digest, const Bytes& to);

/// init (init = true) or check of one container: opts (PATHs inside the container) with the
/// container's root (/proc/PID/root, RESOLVE_IN_ROOT) as --sysroot and its image's baseline;
/// after a check whose drift a rule with a response reported, the container's processes (or,
/// for kill_process, run->offender) are killed. Errc::Io when the container is gone.
Result<Summary> run_in_container(const RunOptions& opts, const Container& c, bool init, Sink& sink, ContainerRun* run);

/// fimctl adopt FILE --reason: FILE (a restored backup, a golden image, a copy signed off the
/// host) verified (signature with --keys, host, every row) and installed at --db as a signed,
/// journalled successor whose identity is then pinned (docs/design.md, Baseline: identity).
Result<BaselineMeta> run_adopt(const RunOptions& opts, const Bytes& file, Sink& sink);

/// fimctl key rotate --reason: the baseline verified with the current (pinned) key, a new
/// pair generated in --keys (the old kept as signing.key.old-ID, signing.pub.old-ID), the
/// successor signed with the new key, journalled with both ids, and pinned.
struct KeyRotation {
  std::string old_key_id, new_key_id;
  Bytes kept_key, kept_pub;
  BaselineMeta meta;
};
Result<KeyRotation> run_key_rotate(const RunOptions& opts, Sink& sink);

/// fimctl log: the baseline verified (signature, rows, journal chain); its meta with the journal.
Result<BaselineMeta> run_log(const RunOptions& opts, Sink& sink);

/// `fimctl show PATH [--at SEQ]` (docs/design.md, Content store): the masked text of PATH as the
/// current (verified) baseline records it, or, with `at`, as the baseline of sequence `at`
/// recorded it (state.db's index of kept versions). Errc::Usage: PATH not recorded, SEQ not
/// known; Errc::Database: no content kept for it (and why, when known).
struct ShownContent {
  std::string text;
  uint64_t sequence = 0;
  std::string sha256;  ///< hex of the file's real bytes (the store's name for it)
};
Result<ShownContent> run_show(const RunOptions& opts, const Bytes& path, std::optional<uint64_t> at, Sink& sink);

/// fimctl watch (docs/design.md, Real time): the daemon's settings.
struct WatchOptions {
  RunOptions run;                 ///< policy, baseline, keys, jobs, --unsigned
  FILE* out = stdout;             ///< where records go, one per line
  Format format = Format::Ndjson; ///< ndjson records, or plain: one line per record for people
  bool syslog = false;            ///< also send every record to syslog (journald picks it up)
  double full_check_seconds = 86400;  ///< a full check this often (0: never, besides the start)
  double debounce_seconds = 0.01; ///< events on one path within this are compared once
  double batch_seconds = 0.005;   ///< after reading events, wait this long before reading again
  double heartbeat_seconds = 300; ///< a heartbeat record this often (0: none)
  Bytes socket_path;              ///< 'fimctl status' asks here; empty: no socket
  size_t max_pending = 65536;     ///< paths waiting; beyond, the roots are rescanned instead
  std::string falco_url;          ///< post Falco-compatible events here (falcosidekick); empty: no
  std::string metrics_address;    ///< serve Prometheus metrics on HOST:PORT; empty: no
  /// --containers: also the running containers' drift, each against its image's baseline
  /// (images/ beside the baseline), found every container_poll_seconds.
  bool containers = false;
  double container_poll_seconds = 2;
  /// BPF LSM sensors (who-data, module/BPF/exec detections, enforcement): "auto" uses them
  /// when they load and attach, "off" never, "required" fails (exit 21) when they do not.
  std::string bpf = "auto";
  bool enforce = false;           ///< with the sensors: deny changes to protected files (reported always)
  std::vector<Bytes> protect;     ///< protected besides fimctl's own baseline, state, keys, policy, binary
  bool quiet = false;             ///< no notice on stderr when the sensors do not load
  /// Mounts over and under the roots: "auto" learns of them from fanotify mount events where
  /// the kernel has them (6.14+), else from /proc/self/mountinfo; "poll" always the latter.
  std::string mount_events = "auto";
  /// SIGHUP: load the policy again (on failure the daemon keeps the one it has).
  std::function<Result<Policy>()> reload_policy;
};

/// Runs until SIGTERM or SIGINT (exit 0 after draining what is queued). Verifies the baseline
/// before anything else; a baseline that stops verifying ends the daemon (Errc::Trust).
Status run_watch(const WatchOptions& opts);

/// fimctl status: what the running daemon says about itself (running), or, when no daemon
/// answers, what state.db remembers of it (not running). The daemon fills it (a snapshot its
/// server thread answers from), status_json sends it, and the client reads it back with
/// parse_status and renders it (status_json, status_text).
struct WatchStatus {
  bool running = false;
  Bytes baseline;
  // A running daemon's own.
  int64_t pid = 0;
  std::string started, baseline_sha256, last_full_check, bpf_lsm;
  std::vector<Bytes> roots;
  uint64_t events = 0, changes = 0, overflows = 0, unresolved = 0, coalesced = 0, rescans = 0, queue_depth = 0;
  bool bpf_active = false;  ///< the sensors' counters below are shown
  uint64_t bpf_events = 0, bpf_lost = 0, bpf_denied = 0;
  bool busy = false;
  std::vector<std::string> degraded;
  // What state.db remembers when no daemon answers (last_started empty: it never ran).
  std::string last_started, last_heartbeat, stopped;
  struct Dirty {
    Bytes root;
    std::string reason;
    std::string since;  ///< state.db only
  };
  std::vector<Dirty> dirty;  ///< roots whose events were lost and whose rescan has not finished
  struct Gap {
    std::string start, end, reason;
  };
  std::vector<Gap> gaps;  ///< state.db only: the last coverage gaps
  struct Covered {
    Bytes root;
    int64_t since_ns = 0;  ///< the record carries it exact (covered_since.since_ns) and as text
  };
  /// A running daemon's roots covered without a break, each since when (docs/design.md, Real
  /// time: coverage); a root absent is not covered now. Only in an answer that came after
  /// the request (fresh): a stale snapshot vouches for nothing.
  std::vector<Covered> covered;
  /// Set when a peer answered on the socket but was not provably the daemon (its uid, its pid
  /// against state.db's heartbeat): what it said was ignored, and why.
  std::string untrusted;
};

/// Asks the daemon on `socket_path`; when none answers, reads state.db beside `db_path`.
Result<WatchStatus> watch_status(const Bytes& socket_path, const Bytes& db_path);

/// What a running, trusted watch daemon vouches for now (WatchedRoot, above). Empty when no daemon answers on `socket_path` or its answer is not trusted (status's rules:
/// WatchStatus::untrusted), when it is degraded, busy rescanning, or says nothing for a root
/// (src/daemon/watched.cpp). A root is returned only when state.db beside `db_path` holds the
/// same coverage (since, pid) the live daemon answered; an error only when that read fails.
Result<std::vector<WatchedRoot>> watched_roots(const Bytes& socket_path, const Bytes& db_path);
/// The status record ({"schema":..,"type":"status",...}, one line with its newline).
std::string status_json(const WatchStatus& s);
/// The status for people: a headline, then one line per field of the record in its order,
/// lists one item per line (terminal-safe).
std::string status_text(const WatchStatus& s);
/// The daemon's status record read back (Errc::Io when it is not one).
Result<WatchStatus> parse_status(std::string_view doc);

}  // namespace fim
