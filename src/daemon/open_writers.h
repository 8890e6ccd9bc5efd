// SPDX-License-Identifier: GPL-2.0-or-later
// Files held open for writing or mapped shared-writable (docs/design.md, Real time: writers
// that keep a file open). fanotify reports a write through a shared mapping never, and a
// writer's content only at close_write, so the daemon looks for such writers itself: a
// bounded scan of /proc (each process's write-mode fds and shared-writable maps) every few
// seconds, and, where the BPF sensor runs, its file_open events at once. Each watched file
// found is compared again at every pass while it stays open.
//
// The line parsers are pure functions (unit-tested); the scan takes the /proc directory as a
// parameter, so a test can hand it a tree of its own.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fim/base/bytes.h"

namespace fim::watchd {

/// The `flags:` field of /proc/PID/fdinfo/N (octal, as the kernel prints it); nullopt when
/// the text has none or it is not octal.
std::optional<uint32_t> parse_fdinfo_flags(std::string_view fdinfo);
/// O_WRONLY or O_RDWR.
bool flags_open_for_write(uint32_t flags);

/// One line of /proc/PID/maps that names a file.
struct MapsLine {
  uint64_t start = 0, end = 0;
  std::string perms;  ///< "rw-s"
  dev_t dev = 0;      ///< user-space dev_t (makedev of the line's hex major:minor)
  uint64_t ino = 0;
  Bytes path;         ///< as the kernel printed it ("\012" back to a newline), " (deleted)" kept
};
/// nullopt for a malformed line and for an anonymous mapping (inode 0, no path).
std::optional<MapsLine> parse_maps_line(std::string_view line);
/// Writable and shared ("rw-s", "-w-s"): a store reaches the file without a write(2).
bool maps_shared_writable(std::string_view perms);

/// Whether a file is watched: its dev, inode and the path the holder knows it by (relative to
/// the holder's root; a map line's path may end in " (deleted)"). The only coupling between
/// the scan and how the daemon maps files to roots.
using WatchedFn = std::function<bool(dev_t dev, uint64_t ino, const Bytes& path)>;

/// A watched file found open for writing, and one process that holds it.
struct OpenWriter {
  dev_t dev = 0;
  uint64_t ino = 0;
  Bytes path;
  int32_t pid = 0;
  std::string comm;
  bool mapped = false;  ///< by a shared writable mapping (else by a write-mode fd)
};

struct ScanLimits {
  size_t max_processes = 16384;
  size_t max_fds = 262144;        ///< fd entries looked at, over all processes
  size_t max_map_lines = 1048576; ///< maps lines read, over all processes
  size_t max_files = 1024;        ///< watched files kept (each is compared at every pass)
  double budget_seconds = 2;      ///< wall time for one pass
};

struct ScanResult {
  std::vector<OpenWriter> found;  ///< one per file (dev, ino)
  size_t processes = 0, fds = 0, map_lines = 0;
  /// Empty when every process was looked at; else the bound that stopped the pass
  /// ("processes", "fds", "map_lines", "files", "time"; "proc" when it cannot be read,
  /// "cancelled").
  std::string incomplete;
  /// The last pid looked at when incomplete: the next pass starts after it, so a bound
  /// does not leave the same processes unseen every time.
  int32_t stopped_at = 0;
};

/// One pass over `proc` (normally "/proc"), skipping `self`, starting after `resume_after`
/// (and wrapping round). `cancel` (when given) set ends it early ("cancelled").
ScanResult scan_open_writers(const Bytes& proc, int32_t self, int32_t resume_after, const ScanLimits& limits,
                             const WatchedFn& watched, const std::atomic<bool>* cancel = nullptr);

/// The scan every `interval` seconds on a thread of its own (a pass never holds up the event
/// loop), with files the BPF sensor saw opened for writing added as they come.
class OpenWriterWatch {
 public:
  /// The watched files held open at the end of a pass, and the pass itself.
  using FoundFn = std::function<void(const std::vector<OpenWriter>& held, const ScanResult& pass)>;
  ~OpenWriterWatch() { stop(); }

  void start(double interval, ScanLimits limits, WatchedFn watched, FoundFn found);
  void stop();
  /// A file opened for writing, seen by another source (BPF file_open): held until a pass
  /// no longer finds it (any thread).
  void note(OpenWriter w);

  uint64_t passes() const { return passes_; }
  uint64_t incomplete_passes() const { return incomplete_; }
  uint64_t held() const { return held_; }

 private:
  void loop();

  double interval_ = 5;
  ScanLimits limits_;
  WatchedFn watched_;
  FoundFn found_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> cancel_{false};  // stop() ends a pass under way
  std::vector<OpenWriter> noted_;  // under mu_
  std::atomic<uint64_t> passes_{0}, incomplete_{0}, held_{0};
};

}  // namespace fim::watchd
