// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon (its own module, src/daemon/): the Watcher and what its files share.
// loop.cpp holds its main thread (event loop, marks, signals, timers), worker.cpp the
// worker (verification, compares, rescans), sensors.cpp the BPF sensor glue and what
// the daemon says about itself (the snapshot of its state the servers answer from), and
// servers.cpp the status socket and metrics endpoint, served from a thread of their own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fim/base/sys.h"
#include "fim/json.h"
#include "fim/pipeline.h"
#include "fim/watch.h"
#include "bpf.h"
#include "container_roots.h"
#include "dpkg_writes.h"
#include "window_writes.h"
#include "servers.h"
#include "open_writers.h"
#include "mounts.h"
#include "sink.h"
#include "source.h"

namespace fim::watchd {

/// The fields of a gap record: when events were lost, why, and the roots rescanned for it.
json::Writer gap_fields(int64_t start_ns, int64_t end_ns, const std::string& reason, const std::vector<Bytes>& roots);

/// The daemon on one baseline: two threads around a pending set and dirty marks (watch.cpp's
/// top comment tells how they share the work).
class Watcher {
 public:
  /// `replay`: events from a test instead of the kernel (no marks are placed).
  explicit Watcher(const WatchOptions& o, std::unique_ptr<Source> replay = nullptr)
      : o_(o), sink_(o.out, o.format, o.syslog), source_(std::move(replay)), policy_(std::make_unique<Policy>(o.run.policy)) {
    Bytes dir, name;
    split_path(o.run.db_path, &dir, &name);
    own_files_ = {o.run.db_path, o.run.db_path + ".lock", join_path(dir, "state.db"), join_path(dir, "state.db-journal")};
  }
  Status run();

 private:
  // Main thread.
  Status setup();
  Status open_socket();
  void on_event(Event&& ev);
  /// A path below a root an event named (`dir_only`: the directory's own entry, after a name
  /// in it was created, deleted or moved).
  void enqueue(const Bytes& path, const Event& ev, bool dir_only = false);
  /// A file the baseline records, named by identity (a hard link outside every root, a link
  /// count change): the worker compares each baseline name of it.
  void enqueue_inode(const FileId& id, const Event& ev, Bytes via);
  /// The object of an event (its FAN_REPORT_FID record) when the baseline records its inode.
  void by_identity(const FanInfo& object, const Event& ev, const FanInfo* dir, bool inside);
  /// A write below a root while an apt run is in progress: who wrote it (dpkg_writes.h).
  void note_apt_write(const Event& ev, const Bytes& path, const FanInfo* object);
  Trigger& merge_trigger(Trigger& t, const Event& ev);
  void mark_all_dirty(const std::string& reason, int64_t since_ns);
  void mark_root(const Bytes& root, int64_t now);
  /// marks.cpp (either thread: fanotify_mark on the group's fd): every directory of the
  /// subtree, each marked before it is listed; an error names the first one that failed.
  Status mark_tree(const Bytes& top);
  /// A file with a second name: writes through any of its names are events.
  void mark_file(int fd);
  /// Roots of an adopted baseline that no mark covers yet (main thread, from tick()).
  void mark_new_roots();
  /// The BPF sensors: probed, given the roots and the protected files (main thread).
  Status start_sensors();
  std::vector<Bytes> protected_paths();
  /// fimctl's own directories (the baseline's, the keys', the policy's) and, in *files, the
  /// files in them that are protected (mount_guard.cpp).
  std::vector<Bytes> own_dirs(std::vector<Bytes>* files);
  /// Those directories, their ancestors and the files: no mount over them.
  std::vector<Bytes> mount_guarded();
  void on_sensor_event(BpfEvent&& ev);
  /// A new sensor policy (protect rules, exec guards) from the worker, into the kernel.
  void apply_sensor_policy();
  /// What the servers answer from, as of now (main thread: published at every tick and when
  /// a client waits for a fresh one).
  Snapshot snapshot();
  void tick();
  /// The event loop's fds (signals, timer, wakeup) and setup(), all in one epoll set.
  Status open_loop(UniqueFd* ep);
  /// Reads every event `src` has queued.
  Status drain_source(Source& src);
  /// What the kernel queued until now (events, BPF losses), before a snapshot: the coverage
  /// it answers then holds every path named before the client asked.
  void read_queued();
  /// Handles one ready fd of the loop; true when the daemon is to stop (*result says why).
  bool on_ready(int fd, Status* result);
  /// After the loop: what the kernel still holds is compared, the worker ends, the stop is
  /// recorded.
  void shut_down(std::thread& worker_thread, const Status& result);
  void reload();
  /// Files held open for writing (open_writers_daemon.cpp): the scan's thread, the watched
  /// test it asks, and what it found into the pending set.
  void start_open_writers();
  bool below_root(dev_t dev, uint64_t ino, const Bytes& path);
  bool watched_file(dev_t dev, uint64_t ino, const Bytes& path);
  void queue_open_writers(const std::vector<OpenWriter>& held, const ScanResult& pass);
  /// Mounts over and under the roots (mounts.cpp): the first snapshot and its fd into the
  /// loop; a read of mountinfo when the fd woke (`woken`) or once a second (tick).
  Status start_mounts(int epoll_fd);
  void check_mounts(bool woken);
  /// One mount over or under roots: the alert, the rescan, marks; `hides`: degraded until detached.
  void on_mount(const MountEntry& m, const MountImpact& imp, const std::vector<Bytes>& roots, bool attached, bool hides);
  /// Mounts at, above or below fimctl's own directories (mount_guard.cpp): an alert each and
  /// degraded while they stay (`in_place`: remounted in place, hiding nothing new).
  void on_own_mounts(const MountDiff& d, const std::set<uint64_t>& in_place);
  /// Container roots (container_roots.cpp, --containers): the first look, a look when due,
  /// and an event below an upper directory into the containers' pending work.
  void start_containers();
  void poll_containers();
  void on_container_event(const Event& ev);

  // Worker thread.
  void worker();
  struct Batch;
  /// Waits for work and takes it (after the debounce); false when stopping with nothing left.
  bool take_batch(Batch* b);
  /// The scheduled full check and the rescans of dirty roots, each reason's roots in one pass.
  Status run_rescans(Batch& b);
  /// The paths events named (and the other names of an inode event's file), outermost first.
  Status compare_batch(Batch& b);
  /// The containers' pending paths and dirty marks (container_compare.cpp).
  Status compare_containers(Batch& b);
  Status verify_baseline(bool first);
  /// `entry_only`: the entry at p, not what is below it.
  Status compare_path(const Bytes& p, const Trigger& t, bool cancellable, bool entry_only = false);
  Status rescan_roots(const std::vector<Bytes>& roots, const std::string& reason, bool cancellable);
  /// The rescan under way (rescan_roots): a rescan_progress record when one is due (RescanPacer).
  struct RescanMeter;
  void rescan_progress();
  /// After a rescan for `reason`: when no root is still dirty for it, the gap record of the
  /// loss, from the last event read before it to now.
  /// A path an event created that is gone again, not in the baseline: a transient record.
  Status transient_check(const Bytes& p, const Trigger& t);
  /// Coverage written to state.db (either thread): a failure is an alert (once a minute) and a
  /// degraded entry until a write succeeds again.
  void recorded(const Status& st, const char* what);
  void close_gap(const std::string& reason, const std::vector<Bytes>& roots);
  /// Continuous coverage (coverage.cpp). mu_ held: a root's coverage ends (a loss, a mark
  /// that failed, a reload, ...); a path an event named, for the covered roots above it.
  void set_dirty(const Bytes& root, const std::string& reason, int64_t at_ns);
  void note_evented(const Bytes& path);
  /// Main thread, before each snapshot: coverage begins for the roots now whole, and
  /// state.db is brought up to date (ended rows, begun rows, the evented paths noted).
  void sync_coverage();
  void fatal(Error e);

  const WatchOptions& o_;
  std::vector<Bytes> own_files_;  // the baseline, its lock, state.db: events on them are ignored
  StreamSink sink_;
  std::unique_ptr<StateStore> state_;         // main thread's connection
  std::unique_ptr<StateStore> worker_state_;  // the worker's
  std::unique_ptr<Source> source_;
  FanotifyEvents* fan_ = nullptr;  // source_ when it is the kernel's (marks go there)
  Sensors sensors_;
  double next_protect_ = 0;
  std::unique_ptr<BpfEvents> bpf_;  // the sensors as a source, when they loaded
  int64_t loss_since_ = 0;          // main thread: the source being read was last read then
  Locator locator_;
  Notifier notifier_;
  UniqueFd sigfd_, timerfd_, wakefd_, sockfd_, metricsfd_;
  std::unique_ptr<HttpPoster> falco_;
  Servers servers_;  // owns the status and metrics listeners once started (open_loop)
  std::set<Bytes> marked_roots_;  // main thread
  MountWatch mounts_;             // main thread
  std::map<Bytes, int64_t> covered_db_;       // main thread: state.db's coverage rows (-1: unknown)
  std::map<Bytes, std::set<Bytes>> evented_db_;  // main thread: the evented paths state.db holds
  int64_t clock_offset_ = 0;   // main thread: realtime - boottime at the last sync (0: none yet)
  int64_t clock_high_ns_ = 0;  // main thread: the latest realtime seen; no coverage begins before it
  std::unique_ptr<ContainerRoots> containers_;  // main thread; null without --containers
  DpkgWrites dpkg_;  // main thread: the writers of an apt run in progress (written-by-dpkg)
  WindowWrites window_writes_;  // the writers during maintenance windows that name one (own lock)
  double next_mount_alert_ = 0;
  int64_t started_ns_ = now_ns();
  double next_full_ = 0, next_heartbeat_ = 0, next_beat_ = 0, next_refresh_ = 0;
  uint64_t last_progress_ = 0;
  double next_watchdog_ = 0, next_status_ = 0, last_progress_at_ = 0;

  // Worker-owned (set before the worker starts, then only the worker touches them).
  std::unique_ptr<Policy> policy_;
  Policy effective_;
  std::unique_ptr<Selector> sel_;
  std::unique_ptr<BaselineReader> reader_;
  RescanMeter* rescan_ = nullptr;  // during rescan_roots: what its rescan_progress records say
  struct Reported {
    std::string key;
    uint64_t pass = 0;
  };
  std::map<Bytes, Reported> reported_;  // what was last reported per path (no repeats)
  uint64_t pass_ = 0;
  std::set<int> ctr_killed_;  // writers a kill_process response killed

  // Shared, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Bytes, Trigger> pending_;
  std::map<Bytes, Trigger> pending_dirs_;      // directories whose own entry is compared
  std::map<FileId, Trigger> pending_inodes_;   // baseline files named by identity
  /// The baseline's inode numbers, sorted (from the verified rows): an event's object is
  /// looked up in the baseline's index only when its inode is here.
  std::shared_ptr<const std::vector<uint64_t>> inodes_;
  /// The events lost (overflow, ...) whose gap record waits for the rescan to end: the gap
  /// runs from the last event read before the loss to the end of that rescan.
  std::map<std::string, int64_t> open_gaps_;
  std::vector<BpfEvent> execs_;  // executions below a root, for the worker to look up
  SensorPolicy sensor_policy_;   // from the verified baseline and the policy's rules
  bool sensor_policy_fresh_ = false;
  struct Mark {
    std::string reason;
    int64_t at_ns = 0;  // the latest loss: a rescan clears it only when it began after this
  };
  std::map<Bytes, Mark> dirty_;
  std::map<Bytes, int64_t> covered_;          // root -> covered since; absent: not covered now
  std::map<Bytes, std::set<Bytes>> evented_;  // paths events named, not yet in state.db
  std::set<Bytes> unmarked_;                  // a mark failed: not covered until a rescan marks it
  bool resolving_inodes_ = false;             // the worker places events named by inode
  ContainerQueue ctr_;  // the containers' pending paths and dirty marks
  /// What the worker takes in one go.
  struct Batch {
    std::map<Bytes, Trigger> paths;
    std::map<Bytes, Trigger> dirs;
    std::map<FileId, Trigger> inodes;
    std::map<Bytes, Mark> dirty;
    std::vector<BpfEvent> execs;
    ContainerBatch ctr;
    bool full = false;
    bool reverify = false;  // the baseline file was replaced: verify it again now
  };
  std::vector<Bytes> roots_;
  std::vector<std::string> degraded_;
  std::unique_ptr<Policy> new_policy_;
  bool full_due_ = false, stop_ = false, busy_ = false;
  bool reverify_due_ = false;  // the main thread saw the baseline file replaced (tick)
  std::pair<dev_t, ino_t> verified_file_{};  // the baseline file the worker verified last
  std::optional<Error> fatal_;
  std::string baseline_sha_;
  int64_t last_full_ns_ = 0;

  // Counters for status and metrics.
  std::atomic<uint64_t> events_{0}, changes_{0}, overflows_{0}, unresolved_{0}, rescans_{0}, progress_{0};
  std::atomic<uint64_t> coalesced_{0};
  std::atomic<uint64_t> marks_{0};  // inode marks placed
  std::atomic<bool> coverage_failing_{false};
  std::atomic<double> last_coverage_alert_{0};
  OpenWriterWatch writers_;  // its own thread; stopped before the worker
  bool writers_incomplete_ = false;  // the scan's thread only
};

}  // namespace fim::watchd
