// SPDX-License-Identifier: GPL-2.0-or-later
// The run's progress (progress.h; docs/design.md, Record schema: the progress line).
//
// init's pre-walk: with no earlier baseline to take the totals from, the same roots are walked
// again under the same policy by the real walker (so it selects, prunes and stays on its
// filesystems exactly as the scan does; never follows a symlink; one directory level of names
// in memory), on its own thread, reading no file data, in two passes priced against a scan that
// keeps every CPU busy (a warm cache; measured by scripts/bench -c progress):
//   1. Entries. Types come from the listings (WalkOptions::types_only), nothing is stat'ed:
//      a getdents per directory, about a sixth of a stat walk's time and a few hundredths of the
//      scan's. It runs at the scan's own priority, so the line has its total and time left
//      within a fraction of a second.
//   2. Bytes. A statx per entry: about a tenth of what a warm scan costs, and the scan loses
//      that much even when the pass runs under SCHED_IDLE (every time a scan thread sleeps the
//      CPU switches to the pass and back). So it runs only while the scan leaves at least half
//      a CPU unused (SpareCpu: a cold cache, where the scan waits on the disk), under SCHED_IDLE,
//      pausing whenever the scan takes the CPU back. On a scan with no CPU to spare the bytes'
//      total never comes, and the line goes by entries.
// Both in the best-effort I/O class at its lowest level (the idle class waits out every read
// of the scan's under mq-deadline and BFQ). It stops at its next entry once the scan ends, and
// its failures are only a missing total. It owns everything it uses (a copy of the policy, the
// roots), so a walk stuck in the kernel can be left behind like a stuck collector.
#include "progress.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "fim/base/sys.h"

namespace fim::detail {

struct ProgressTracker::Count {
  Policy policy;
  std::vector<Bytes> roots;
  int root_fd = -1;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;  // done, and stop for a paused second pass
  // Guarded by mu:
  int tid = 0;  // the counting thread, lifted out of SCHED_IDLE to stop promptly
  uint64_t entries = 0, bytes = 0;
  bool entries_known = false, bytes_known = false;
  bool done = false;
};

namespace {

int this_tid() { return static_cast<int>(::syscall(SYS_gettid)); }

/// SCHED_IDLE (only CPU nothing else wants), or back to SCHED_OTHER. Failures leave the thread
/// as it was.
void set_idle(int tid, bool idle) {
  struct sched_param sp {};
  (void)::sched_setscheduler(tid, idle ? SCHED_IDLE : SCHED_OTHER, &sp);
}

void lowest_best_effort_io(int tid) {
  constexpr int kIoprioWhoProcess = 1, kIoprioClassBestEffort = 2, kIoprioClassShift = 13, kLowest = 7;
  (void)::syscall(SYS_ioprio_set, kIoprioWhoProcess, tid, (kIoprioClassBestEffort << kIoprioClassShift) | kLowest);
}

double cpu_seconds(clockid_t clock) {
  struct timespec ts {};
  if (::clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

/// How many CPUs the scan left unused since the last sample: the CPUs this process may run
/// on, less the CPU time the process (other than the counting thread) took per second of wall
/// time. Other processes' load is not counted: SCHED_IDLE yields to them by itself.
class SpareCpu {
 public:
  SpareCpu() {
    cpu_set_t set;
    CPU_ZERO(&set);
    cpus_ = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    reset();
  }
  void reset() {
    wall_ = monotonic_seconds();
    others_ = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  }
  double since_reset() const { return monotonic_seconds() - wall_; }
  /// The CPUs left unused since the last sample, and a new sample starts.
  double sample() {
    const double wall = wall_, others = others_;
    reset();
    const double dt = wall_ - wall;
    return dt > 0 ? cpus_ - (others_ - others) / dt : 0;
  }

 private:
  int cpus_ = 1;
  double wall_ = 0, others_ = 0;
};

constexpr double kSampleSeconds = 0.5, kSpareCpus = 0.5;

/// Waits, asleep, until a sample of kSampleSeconds finds kSpareCpus unused. False once the
/// scan has ended.
bool wait_for_spare(ProgressTracker::Count& c, SpareCpu& spare) {
  spare.reset();
  for (;;) {
    std::unique_lock lk(c.mu);
    if (c.cv.wait_for(lk, std::chrono::duration<double>(kSampleSeconds), [&] { return c.stop.load(); })) return false;
    lk.unlock();
    if (spare.sample() >= kSpareCpus) return true;
  }
}

/// Whether the second pass may go on: yes while the last sample found CPU to spare, else once
/// a later one does (wait_for_spare). False once the scan has ended.
bool may_continue(ProgressTracker::Count& c, SpareCpu& spare) {
  if (c.stop.load(std::memory_order_relaxed)) return false;
  if (spare.since_reset() < kSampleSeconds || spare.sample() >= kSpareCpus) return true;
  return wait_for_spare(c, spare);
}

void count_main(const std::shared_ptr<ProgressTracker::Count>& c) {
  ::pthread_setname_np(::pthread_self(), "fimctl-count");  // top -H, /proc/PID/task/*/comm
  const int tid = this_tid();
  {
    std::lock_guard lk(c->mu);
    c->tid = tid;
  }
  lowest_best_effort_io(tid);
  const auto finish = [&] {
    std::lock_guard lk(c->mu);
    c->done = true;
    c->cv.notify_all();
  };
  const Selector sel(c->policy);
  WalkOptions wo;
  wo.selector = &sel;
  wo.root_fd = c->root_fd;
  wo.types_only = true;
  uint64_t entries = 0;
  Status st = walk(c->roots, wo, [&](WalkItem&& item) {
    if (c->stop.load(std::memory_order_relaxed)) return false;
    if (item.kind == WalkItem::Kind::Entry || item.kind == WalkItem::Kind::StatFailed) ++entries;
    return true;
  });
  if (!st || c->stop) return finish();  // a root refused: the scan says why; no total
  {
    std::lock_guard lk(c->mu);
    c->entries = entries;
    c->entries_known = true;
  }

  SpareCpu spare;
  if (!wait_for_spare(*c, spare)) return finish();
  {
    std::lock_guard lk(c->mu);  // under mu: stop_count's lift cannot come before it
    if (!c->stop) set_idle(tid, true);
  }
  // What the scan will hash: the rule's content digest, up to its hash limit (over it: none).
  // Per rule (index + 1; 0: no rule), once: kNotHashed, or the limit (0: none).
  constexpr uint64_t kNotHashed = ~uint64_t{0}, kUnknown = kNotHashed - 1;
  std::vector<uint64_t> limits(c->policy.rules.size() + 1, kUnknown);
  wo.types_only = false;
  uint64_t bytes = 0, seen = 0;
  st = walk(c->roots, wo, [&](WalkItem&& item) {
    if ((++seen & 255) == 0 ? !may_continue(*c, spare) : c->stop.load(std::memory_order_relaxed)) return false;
    if (item.kind != WalkItem::Kind::Entry || !S_ISREG(item.target.st.st_mode)) return true;
    uint64_t& limit = limits[static_cast<size_t>(item.rule + 1)];
    if (limit == kUnknown) {
      const CollectOptions co = collect_options_for(item.rule >= 0 ? &c->policy.rules[static_cast<size_t>(item.rule)] : nullptr);
      limit = (co.mask & attr_bit(Attr::Sha256)) ? co.max_hash_bytes : kNotHashed;
    }
    const auto size = static_cast<uint64_t>(item.target.st.st_size);
    if (limit != kNotHashed && (limit == 0 || size <= limit)) bytes += size;
    return true;
  });
  if (st && !c->stop) {
    std::lock_guard lk(c->mu);
    c->bytes = bytes;
    c->bytes_known = true;
  }
  finish();
}

}  // namespace

ProgressTracker::~ProgressTracker() { stop_count(); }

void ProgressTracker::set_totals(uint64_t entries, uint64_t bytes) {
  total_entries_ = entries;
  total_bytes_ = bytes;
}

void ProgressTracker::count_in_background(const std::vector<Bytes>& roots, const Policy& policy, int root_fd) {
  if (!on() || count_) return;
  count_ = std::make_shared<Count>();
  count_->policy = policy;
  count_->roots = roots;
  count_->root_fd = root_fd;
  try {
    std::thread([c = count_] { count_main(c); }).detach();
  } catch (const std::system_error&) {
    count_.reset();  // no thread: no total, the scan goes on
  }
}

void ProgressTracker::stop_count() {
  if (!count_) return;
  count_->stop = true;
  // It stops at its next entry, once it runs: out of SCHED_IDLE, so a host kept busy by
  // something else cannot hold it (and this wait) back. One stuck in the kernel is left
  // behind (it owns its state).
  std::unique_lock lk(count_->mu);
  if (count_->tid != 0 && !count_->done) set_idle(count_->tid, false);
  count_->cv.notify_all();  // a paused second pass
  count_->cv.wait_for(lk, std::chrono::seconds(2), [&] { return count_->done; });
}

void ProgressTracker::attach(ScanOptions* so) {
  if (!on()) return;
  so->live_bytes = bytes_;
  so->waiting = [this] { report(false); };
}

void ProgressTracker::tick(uint64_t entries) {
  entries_ = entries;
  if (!on() || (++calls_ & 63) != 0) return;
  report(false);
}

void ProgressTracker::finish(uint64_t entries) {
  if (!on() || finished_) return;
  entries_ = entries;
  stop_count();
  finished_ = true;
  ScanProgress p;
  p.entries = entries_;
  p.bytes = bytes_->load(std::memory_order_relaxed);
  p.total_entries = p.entries;
  p.total_bytes = p.bytes;
  p.done = true;
  f_(p);
}

void ProgressTracker::report(bool force) {
  if (finished_) return;
  const double now = monotonic_seconds();
  if (!force && now - last_ < 0.25) return;
  last_ = now;
  ScanProgress p;
  p.entries = entries_;
  p.bytes = bytes_->load(std::memory_order_relaxed);
  p.total_entries = total_entries_;
  p.total_bytes = total_bytes_;
  if (count_) {
    std::lock_guard lk(count_->mu);
    p.total_entries = count_->entries_known ? count_->entries : 0;
    p.total_bytes = count_->bytes_known ? count_->bytes : 0;
    p.counting = !count_->entries_known && !count_->done;
  }
  f_(p);
}

}  // namespace fim::detail
