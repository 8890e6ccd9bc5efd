// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's BPF side (private to the pipeline module): the sensor when it loads,
// the who-data its events carry kept for a short while so each fanotify change can say who
// made it, and the records of what only the LSM hooks see (a file made executable, a module
// or BPF program loaded, an operation denied). Where the sensor does not load, the daemon
// says so once and runs on fanotify alone (docs/design.md, Real time).
#pragma once

#include <sys/types.h>

#include <functional>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fim/attr.h"
#include "fim/bpf.h"
#include "fim/db.h"
#include "fim/rules.h"

namespace fim::watchd {

enum class BpfMode { Auto, Off, Required };

/// {"pid":..,"tgid":..,"ppid":..,"uid":..,"loginuid":..,"comm":..,"exe":..,"cgroup_id":..,
///  "mntns":..,"hook":..}: the object a change's or an alert's "who" field holds.
std::string who_json(const BpfWho& who, std::string_view hook);
/// "by uid 0 (login 1000), pid 42 (sh, /usr/bin/busybox)"
std::string who_human(const BpfWho& who);

class StreamSink;

/// What the policy's protect and deny_unknown_exec rules ask of the sensors, computed from the
/// verified baseline (worker) and applied by the main thread.
struct SensorPolicy {
  std::vector<Bytes> protect;  ///< baseline entries selected by protect rules
  std::vector<Bytes> guards;   ///< the paths of deny_unknown_exec rules
  std::vector<std::pair<dev_t, uint64_t>> allow;  ///< baseline files below them, as they are now
  Bytes policy_file;           ///< the policy's own file (protected), empty when built in
};
struct BaselineFile {
  Bytes path;
  uint64_t ino = 0;
  FileType type = FileType::Unknown;
};
/// Whether any rule is protect or deny_unknown_exec (else the baseline's rows are not kept).
bool wants_sensor_policy(const Policy& p);
/// protect: the rows whose winning rule protects them (at most kMaxProtected); guards and
/// allow: the deny_unknown_exec rules' paths and the regular files below them whose inode is
/// still the baseline's.
SensorPolicy sensor_policy(const Policy& p, const Selector& sel, const std::vector<BaselineFile>& rows);
inline constexpr size_t kMaxProtected = 12288;  // fim_watched holds 16384 (roots too)

/// Reports what an event is worth by itself: an operation denied, a regular file below a
/// root made executable, a kernel module or firmware read by the kernel, a BPF program
/// loaded. True for an execution below a root, which the worker checks against the
/// baseline (check_exec).
bool report_sensor_event(const BpfEvent& ev, StreamSink& sink);
/// A mount over fimctl's own files (mount_guard.cpp): a mount_denied alert, or
/// mount_over_own_files when it was allowed (no --enforce, or a namespace nobody else sees).
void report_mount_event(const BpfEvent& ev, StreamSink& sink);
/// "/a", "/a/b", "/a/b/c" for "/a/b/c": what a mount could hide `dir` behind ("/" is not one).
std::vector<Bytes> path_ancestors(const Bytes& dir);
/// The directories and their ancestors (as named and as real paths; a relative one from the
/// working directory), then the files: what the mount hooks guard.
std::vector<Bytes> mount_guard_paths(const std::vector<Bytes>& dirs, const std::vector<Bytes>& files);
/// An execution of a binary below a root that the baseline does not record (by path, dev
/// and inode): an exec_unknown alert.
Status check_exec(BaselineReader& base, const BpfEvent& ev, StreamSink& sink);

class Sensors {
 public:
  /// Off: nothing. Auto: probe, and on failure one line on stderr (unless quiet) and the
  /// state says why. Required: a failure is returned (Errc::Unsupported, exit 21).
  Status start(BpfMode mode, const BpfOptions& opts, bool quiet);
  bool active() const { return sensor_ != nullptr; }
  /// "active: HOOKS", "unavailable (EPERM: ...)", "off (--bpf=off)".
  const std::string& state() const { return state_; }
  int fd() const { return sensor_ ? sensor_->fd() : -1; }
  /// Registers a root (main thread); errors are returned for the daemon to report.
  Status watch_root(const Bytes& dir);
  /// (Re-)protects these paths: a replaced file's new inode is added.
  void protect(const std::vector<Bytes>& paths);
  /// Mounts over these paths are reported, and denied with enforcement (mount_guard.cpp).
  void deny_mounts(const std::vector<Bytes>& paths);
  /// Exec enforcement's guards and allowlist (replacing the last ones).
  Status set_exec_policy(const SensorPolicy& sp);

  /// Reads what the kernel queued (either thread, one at a time). Changes below the roots are
  /// remembered for the join; every event is also handed to `on_event` (detections). The
  /// worker drains before it compares: a hook runs before the syscall returns, so what the
  /// sensors saw of a change is queued before fanotify reports it.
  Status drain(const std::function<void(BpfEvent&&)>& on_event);
  /// Records the kernel lost since the last call (a full ring buffer).
  uint64_t new_losses();

  /// Any thread: who made the change to this entry (by inode, by path, else by the pid
  /// fanotify named), as a "who" object and a phrase for people; empty when the sensor saw
  /// nothing that matches.
  std::pair<std::string, std::string> who_for(const Record* o, const Record* n, int32_t pid) const;

  uint64_t events() const { return events_.load(); }
  uint64_t lost_total() const { return lost_; }
  uint64_t denied() const { return sensor_ ? sensor_->denied() : 0; }

 private:
  struct Seen {
    BpfWho who;
    BpfKind kind = BpfKind::OpenWrite;
    double at = 0;  ///< monotonic seconds
  };
  void remember(const BpfEvent& ev);
  const Seen* fresh(const Seen* s) const;

  std::unique_ptr<BpfSensor> sensor_;
  std::string state_ = "off";
  std::atomic<uint64_t> events_{0};
  uint64_t lost_ = 0;  // main thread
  std::mutex drain_mu_;  // libbpf's ring buffer has one consumer at a time

  mutable std::mutex mu_;
  std::map<std::pair<dev_t, uint64_t>, Seen> by_inode_;
  std::map<Bytes, Seen> by_path_;
  std::map<uint32_t, Seen> by_tgid_;
};

}  // namespace fim::watchd
