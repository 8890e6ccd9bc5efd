// SPDX-License-Identifier: GPL-2.0-or-later
// The run's progress (progress.h; docs/design.md, Record schema: the progress line).
//
// init's pre-walk: with no earlier baseline to take the totals from, a second walk of the same
// roots under the same policy counts entries and the bytes the scan will hash. It is the real
// walker (so it selects, prunes and stays on its filesystems exactly as the scan does; never
// follows a symlink; one directory level of names in memory), on its own thread at nice 19
// and the idle I/O class, so it takes next to nothing from the scan. It reads no file data,
// stops at its next entry once the scan ends, and its failures are only a missing total. It
// owns everything it uses (a copy of the policy, the roots), so a walk stuck in the kernel can
// be left behind like a stuck collector.
#include "progress.h"

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
  std::atomic<uint64_t> entries{0}, bytes{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;    // guarded by mu
  bool failed = false;  // guarded by mu: the walk ended early (a root refused): no total
};

namespace {

/// This thread only: nice 19 and the idle I/O class. Not SCHED_IDLE: on a busy host that
/// starves it for the whole scan, and nice 19's share (about 1.5 % of a CPU against one task
/// at nice 0) costs the scan as little and still finishes the count.
void lowest_priority() {
  const auto tid = static_cast<int>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 19);
  constexpr int kIoprioWhoProcess = 1, kIoprioClassIdle = 3, kIoprioClassShift = 13;
  (void)::syscall(SYS_ioprio_set, kIoprioWhoProcess, tid, kIoprioClassIdle << kIoprioClassShift);
}

void count_main(const std::shared_ptr<ProgressTracker::Count>& c) {
  lowest_priority();
  const Selector sel(c->policy);
  WalkOptions wo;
  wo.selector = &sel;
  wo.root_fd = c->root_fd;
  const Status st = walk(c->roots, wo, [&](WalkItem&& item) {
    if (c->stop.load(std::memory_order_relaxed)) return false;
    if (item.kind != WalkItem::Kind::Entry && item.kind != WalkItem::Kind::StatFailed) return true;
    c->entries.fetch_add(1, std::memory_order_relaxed);
    if (item.kind != WalkItem::Kind::Entry || !S_ISREG(item.target.st.st_mode)) return true;
    // What the scan will hash: the rule's content digest, up to its hash limit (over it: none).
    const Rule* rule = item.rule >= 0 ? &c->policy.rules[static_cast<size_t>(item.rule)] : nullptr;
    const CollectOptions co = collect_options_for(rule);
    const auto size = static_cast<uint64_t>(item.target.st.st_size);
    if ((co.mask & attr_bit(Attr::Sha256)) && (co.max_hash_bytes == 0 || size <= co.max_hash_bytes))
      c->bytes.fetch_add(size, std::memory_order_relaxed);
    return true;
  });
  std::lock_guard lk(c->mu);
  c->failed = !st;
  c->done = true;
  c->cv.notify_all();
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
  // It stops at its next entry; one stuck in the kernel is left behind (it owns its state).
  std::unique_lock lk(count_->mu);
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
    p.total_entries = count_->entries.load(std::memory_order_relaxed);
    p.total_bytes = count_->bytes.load(std::memory_order_relaxed);
    std::lock_guard lk(count_->mu);
    p.counting = !count_->done;
    if (count_->failed) p.total_entries = p.total_bytes = 0;
  }
  f_(p);
}

}  // namespace fim::detail
