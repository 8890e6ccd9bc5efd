// SPDX-License-Identifier: GPL-2.0-or-later
// Where the daemon's events come from (docs/design.md, Real time): one interface, three kinds.
// fanotify (the kernel's notification group, every host), BPF LSM (who-data and detections,
// where it loads) and a replay source that feeds events a test made, so debounce, coalescing,
// renames, hard links and loss handling are unit-tested without root or a kernel feature.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "fim/base/fd.h"
#include "fim/base/result.h"
#include "fim/bpf.h"
#include "fim/watch.h"

namespace fim::watchd {

/// One event of any source. A fanotify event names objects by handle (infos); a BPF event
/// carries its hook's record (who, object and parent identity); `loss` says the source lost
/// events before this one (a queue overflow, a full ring buffer).
struct Event {
  uint64_t mask = 0;  ///< FAN_* bits
  int32_t pid = 0;
  /// Events were lost before this one, and why: "overflow" (the kernel's queue), "bpf_loss"
  /// (a full ring buffer); empty when nothing was.
  std::string loss;
  std::vector<FanInfo> infos;
  std::optional<BpfEvent> bpf;
};

class Source {
 public:
  virtual ~Source() = default;
  /// When the loop last read events from it: a loss happened after this.
  int64_t last_read_ns = 0;
  virtual std::string_view name() const = 0;
  /// Readable when events are queued (the loop polls it).
  virtual int fd() const = 0;
  /// Hands every queued event to `on_event` without blocking; false when nothing was queued.
  virtual Result<bool> drain(const std::function<void(Event&&)>& on_event) = 0;
};

/// Events a test queues (FanInfo::path instead of handles), delivered like the kernel's: the
/// fd turns readable when something is queued.
class ReplaySource final : public Source {
 public:
  ReplaySource();
  std::string_view name() const override { return "replay"; }
  int fd() const override { return efd_.get(); }
  Result<bool> drain(const std::function<void(Event&&)>& on_event) override;
  /// Any thread.
  void push(Event ev);
  /// An event naming `name` in directory `dir` (both paths), as FAN_REPORT_DFID_NAME does.
  static Event named(uint64_t mask, const Bytes& dir, const Bytes& name, int32_t pid = 0);
  /// Adds the object itself (FAN_REPORT_FID): a hard link's other name, a link count change.
  static Event& with_object(Event& ev, const Bytes& path);

 private:
  UniqueFd efd_;
  std::mutex mu_;
  std::deque<Event> queue_;
};

/// The fanotify group as a Source (the filesystem marks are the daemon's to place).
class FanotifyEvents final : public Source {
 public:
  explicit FanotifyEvents(FanotifySource fan) : fan_(std::move(fan)) {}
  std::string_view name() const override { return "fanotify"; }
  int fd() const override { return fan_.fd(); }
  Result<bool> drain(const std::function<void(Event&&)>& on_event) override;
  Status mark_filesystem(const Bytes& dir) { return fan_.mark_filesystem(dir); }
  Status mark(FanotifySource::Mark kind, int fd) { return fan_.mark(kind, fd); }

 private:
  FanotifySource fan_;
};

class Sensors;

/// The BPF LSM sensors as a Source: each ring-buffer record an Event with `bpf` set, and the
/// records the kernel could not queue one Event with loss "bpf_loss" (poll_losses, from the
/// loop's timer: the ring buffer says nothing when it drops).
class BpfEvents final : public Source {
 public:
  explicit BpfEvents(Sensors& s) : s_(s) {}
  std::string_view name() const override { return "bpf"; }
  int fd() const override;
  Result<bool> drain(const std::function<void(Event&&)>& on_event) override;
  void poll_losses(const std::function<void(Event&&)>& on_event);

 private:
  Sensors& s_;
};

}  // namespace fim::watchd
