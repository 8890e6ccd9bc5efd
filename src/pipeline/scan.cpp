// SPDX-License-Identifier: GPL-2.0-or-later
// Parallel collection in walk order.
//
// Threads: one walker, `jobs` collectors, and the caller as the consumer. The walker cuts its
// stream into chunks (at most kChunkItems entries or kChunkBytes of file data, so one big file
// is a chunk of its own and two big files hash on two cores). Chunks enter a FIFO of work
// and, in the same order, a window the consumer drains front to back. The window holds at most
// kWindowChunks chunks, which bounds memory whatever the tree; a slow file at the front only
// stalls the consumer, while the collectors run ahead through the rest of the window.
//
// A read that never returns (a hung FUSE or network filesystem) must not hang the scan
// (docs/design.md, Architecture). Collectors count the bytes they read; when the consumer has waited
// on the front chunk and its current entry has read nothing for read_timeout, that entry gets
// status timeout, the rest of the chunk is handed to a new collector, and the stuck thread is
// abandoned: it holds only state shared through a shared_ptr, and the kernel ends it with
// the process. Everything a collector needs (the attribute mask and hash limit of each
// entry) is in the chunk, so an abandoned thread never touches the caller's policy.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "fim/base/sys.h"
#include "fim/pipeline.h"

namespace fim {
namespace {

constexpr size_t kChunkItems = 64;
constexpr uint64_t kChunkBytes = 1 << 20;
constexpr size_t kWindowChunks = 128;

std::atomic<uint64_t>& abandoned_count() {
  static std::atomic<uint64_t> n{0};  // a fact about the process, not about one scan
  return n;
}

struct Chunk {
  std::vector<WalkItem> in;
  std::vector<CollectOptions> opts;  // per entry: the deciding rule's mask and hash limit
  std::vector<ScanEntry> out;
  // Guarded by Shared::mu.
  bool done = false;
  bool abandoned = false;  // its collector was given up on: it must not write here again
  int worker = -1;         // the collector that took it
  size_t current = 0;      // the entry it is collecting
  bool started = false;
  // The consumer's watch on the current entry: bytes read, and when they last moved.
  std::atomic<uint64_t> progress{0};
  uint64_t seen_progress = 0;
  size_t seen_current = 0;
  double since = 0;
};

/// What the threads share; owned by shared_ptr so a collector abandoned in a read that never
/// returns can outlive scan().
struct Shared {
  std::mutex mu;
  std::condition_variable work_cv;   // collectors: a chunk is waiting, or the walk ended
  std::condition_variable done_cv;   // consumer: the front chunk is done
  std::condition_variable space_cv;  // walker: the window has room
  std::deque<std::shared_ptr<Chunk>> todo;    // not yet taken by a collector
  std::deque<std::shared_ptr<Chunk>> window;  // every chunk in flight, in walk order
  bool walk_done = false;
  bool stop = false;
  std::atomic<uint64_t> hashed{0};
  std::shared_ptr<std::atomic<uint64_t>> live_bytes;  // ScanOptions::live_bytes
};

/// A walk item that is not collected (stat failed, subtree notes): its path, type and status.
void uncollected(WalkItem& item, FileType type, EntryStatus status, int err, bool subtree, ScanEntry& e) {
  e.rec.path = std::move(item.target.path);
  e.rec.set_num(Attr::Type, static_cast<int64_t>(type));
  e.rec.status = status;
  e.rec.sys_errno = err;
  e.subtree_incomplete = subtree;
}

/// The entry for a walk item that is not collected; false for an entry to collect.
bool fill_uncollected(WalkItem& item, ScanEntry& e) {
  switch (item.kind) {
    case WalkItem::Kind::Entry:
      return false;
    case WalkItem::Kind::StatFailed:
      uncollected(item, FileType::Unknown, EntryStatus::Unreadable, item.err, false, e);
      return true;
    case WalkItem::Kind::SubtreeIncomplete:
      uncollected(item, FileType::Dir, EntryStatus::Unreadable, item.err, true, e);
      return true;
    case WalkItem::Kind::SubtreeSkipped:
      uncollected(item, FileType::Dir, EntryStatus::SkippedFs, 0, true, e);
      return true;
  }
  return false;
}

/// A collector thread: takes chunks until the walk is done. Returns early, touching nothing
/// more, when it finds the chunk it was working on abandoned (it was stuck and replaced).
void collector_main(const std::shared_ptr<Shared>& sh, int id) {
  Collector collector;
  uint64_t counted = 0;  // of collector.bytes_hashed(), already added to sh->hashed
  for (;;) {
    std::shared_ptr<Chunk> c;
    {
      std::unique_lock lk(sh->mu);
      sh->work_cv.wait(lk, [&] { return !sh->todo.empty() || sh->walk_done || sh->stop; });
      if (sh->stop || sh->todo.empty()) break;
      c = std::move(sh->todo.front());
      sh->todo.pop_front();
      c->worker = id;
      c->out.resize(c->in.size());
    }
    bool replaced = false;
    for (size_t i = 0;; ++i) {
      {
        std::lock_guard lk(sh->mu);
        if (c->abandoned) {
          replaced = true;
          break;
        }
        if (i >= c->in.size()) {
          c->done = true;
          break;
        }
        c->current = i;
        c->started = true;
      }
      WalkItem& item = c->in[i];
      ScanEntry e;
      e.rule = item.rule;
      if (!fill_uncollected(item, e)) {
        CollectOptions o = c->opts[i];
        o.progress = &c->progress;
        o.read_total = sh->live_bytes.get();
        collector.collect(item.target, o, &e.rec);
        if ((o.growing && e.rec.has(Attr::Sha256)) || e.rec.evidence != EntryEvidence::Hashed) {
          e.dir = item.target.dir;
          e.name = item.target.name;
        }
      }
      sh->hashed += collector.bytes_hashed() - counted;
      counted = collector.bytes_hashed();
      std::lock_guard lk(sh->mu);
      if (c->abandoned) {
        replaced = true;
        break;
      }
      c->out[i] = std::move(e);
      item.target.dir.reset();  // release the directory fd as soon as possible
    }
    sh->done_cv.notify_all();
    if (replaced) return;  // a new collector does the rest; this one was too slow to trust
  }
}

/// One scan: the walker thread, the collectors, and the consumer loop on the caller's thread.
class ScanRun {
 public:
  ScanRun(const ScanOptions& opts, const Policy& policy) : opts_(opts), policy_(policy) {
    sh_->live_bytes = opts.live_bytes;
  }

  Status run(const std::function<Status(ScanEntry&)>& consume, uint64_t* bytes_hashed) {
    std::thread walker([this] { walker_main(); });
    for (unsigned i = 0; i < std::max(1u, opts_.jobs); ++i) start_worker();
    const Status result = consume_all(consume);
    stop_and_join(walker);
    if (bytes_hashed) *bytes_hashed += sh_->hashed.load();
    if (!result) return result;
    return walk_status_;
  }

 private:
  /// Hands a chunk to the collectors and the window; false once the scan is stopping.
  bool push(std::shared_ptr<Chunk> c) {
    std::unique_lock lk(sh_->mu);
    sh_->space_cv.wait(lk, [&] { return sh_->window.size() < kWindowChunks || sh_->stop; });
    if (sh_->stop) return false;
    sh_->window.push_back(c);
    sh_->todo.push_back(std::move(c));
    lk.unlock();
    sh_->work_cv.notify_one();
    return true;
  }

  void walker_main() {
    auto chunk = std::make_shared<Chunk>();
    uint64_t chunk_bytes = 0;
    bool ok = true;
    const auto cut = [&] {
      ok = push(std::move(chunk));
      chunk = std::make_shared<Chunk>();
      chunk_bytes = 0;
    };
    WalkOptions wopts = opts_.walk;
    wopts.flush = [&] {  // the walk is about to wait for fds its pending items hold
      if (ok && !chunk->in.empty()) cut();
    };
    walk_status_ = walk(opts_.roots, wopts, [&](WalkItem&& item) {
      if (item.kind == WalkItem::Kind::Entry && S_ISREG(item.target.st.st_mode))
        chunk_bytes += static_cast<uint64_t>(item.target.st.st_size);
      CollectOptions co = collect_options_for(item.rule >= 0 ? &policy_.rules[static_cast<size_t>(item.rule)] : nullptr,
                                              opts_.collect);
      co.mask &= ~opts_.strip;
      if (S_ISDIR(item.target.st.st_mode)) co.mask &= ~opts_.strip_dir;
      if (opts_.plan && item.kind == WalkItem::Kind::Entry) opts_.plan(item, &co);
      chunk->opts.push_back(co);
      chunk->in.push_back(std::move(item));
      if (chunk->in.size() >= kChunkItems || chunk_bytes >= kChunkBytes) cut();
      return ok;
    });
    if (ok && !chunk->in.empty()) push(std::move(chunk));
    {
      std::lock_guard lk(sh_->mu);
      sh_->walk_done = true;
    }
    sh_->work_cv.notify_all();
    sh_->done_cv.notify_all();
  }

  void start_worker() {
    const int id = static_cast<int>(workers_.size());
    stuck_.push_back(false);
    workers_.emplace_back([sh = sh_, id] { collector_main(sh, id); });
  }

  /// The front chunk's current entry has read nothing for read_timeout: give it up.
  /// Called with sh_->mu held; returns true when it abandoned the chunk.
  bool give_up_if_stuck(const std::shared_ptr<Chunk>& c) {
    if (opts_.read_timeout_seconds <= 0 || !c->started || c->done) return false;
    const double now = monotonic_seconds();
    const uint64_t prog = c->progress.load(std::memory_order_relaxed);
    if (c->since == 0 || prog != c->seen_progress || c->current != c->seen_current) {
      c->since = now;
      c->seen_progress = prog;
      c->seen_current = c->current;
      return false;
    }
    if (now - c->since < opts_.read_timeout_seconds) return false;
    c->abandoned = true;
    stuck_[static_cast<size_t>(c->worker)] = true;
    time_out_current(*c);
    return true;
  }

  /// The stuck entry gets what the walk saw of it (no digest) and status timeout; the rest
  /// of its chunk goes to a new collector, right behind it in the window.
  void time_out_current(Chunk& c) {
    const size_t i = c.current;
    ScanEntry& e = c.out[i];
    e = ScanEntry{};
    e.rule = c.in[i].rule;
    e.rec.path = c.in[i].target.path;
    e.rec.set_num(Attr::Type, static_cast<int64_t>(file_type_of(c.in[i].target.st.st_mode)));
    fill_stat_attrs(c.in[i].target.st, c.opts[i].mask, &e.rec);
    e.rec.status = EntryStatus::Timeout;
    auto rest = std::make_shared<Chunk>();
    for (size_t k = i + 1; k < c.in.size(); ++k) {
      rest->in.push_back(std::move(c.in[k]));
      rest->opts.push_back(c.opts[k]);
    }
    c.out.resize(i + 1);
    c.done = true;
    if (!rest->in.empty()) {
      sh_->window.insert(sh_->window.begin() + 1, rest);
      sh_->todo.push_front(std::move(rest));
    }
  }

  /// The next chunk in walk order once it is done (null at the end); *replace when a stuck
  /// collector was given up on and needs a successor.
  std::shared_ptr<Chunk> next_done(bool* replace) {
    std::unique_lock lk(sh_->mu);
    for (;;) {
      if ((!sh_->window.empty() && sh_->window.front()->done) || (sh_->walk_done && sh_->window.empty())) break;
      sh_->done_cv.wait_for(lk, std::chrono::milliseconds(250));
      if (opts_.waiting) {
        lk.unlock();
        opts_.waiting();
        lk.lock();
      }
      if (!sh_->window.empty() && !sh_->window.front()->done && give_up_if_stuck(sh_->window.front())) {
        *replace = true;
        break;
      }
    }
    if (sh_->window.empty()) return nullptr;
    auto c = std::move(sh_->window.front());
    sh_->window.pop_front();
    return c;
  }

  /// The consumer: chunks in walk order, until the end or the first error.
  Status consume_all(const std::function<Status(ScanEntry&)>& consume) {
    for (;;) {
      bool replace = false;
      std::shared_ptr<Chunk> c = next_done(&replace);
      if (!c) return {};
      if (replace) {
        start_worker();
        sh_->work_cv.notify_all();
      }
      sh_->space_cv.notify_one();
      for (auto& e : c->out) FIM_TRY(consume(e));
    }
  }

  void stop_and_join(std::thread& walker) {
    {
      std::lock_guard lk(sh_->mu);
      sh_->stop = true;
    }
    sh_->work_cv.notify_all();
    sh_->space_cv.notify_all();
    walker.join();
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (stuck_[i]) {
        workers_[i].detach();  // blocked in the kernel; ends with the process
        ++abandoned_count();
      } else {
        workers_[i].join();
      }
    }
  }

  const ScanOptions& opts_;
  const Policy& policy_;
  std::shared_ptr<Shared> sh_ = std::make_shared<Shared>();
  Status walk_status_;
  std::vector<std::thread> workers_;
  std::vector<bool> stuck_;
};

}  // namespace

uint64_t abandoned_threads() { return abandoned_count().load(); }

CollectOptions collect_options_for(const Rule* rule, CollectOptions base) {
  if (rule) {
    base.mask = rule->attrs.mask | attr_bit(Attr::Type);
    base.max_hash_bytes = rule->max_hash_bytes;
    base.growing = rule->attrs.growing;
  }
  return base;
}

Status scan(const ScanOptions& given, const std::function<Status(ScanEntry&)>& consume, uint64_t* bytes_hashed) {
  // No selector: every entry below the roots, with the default attributes.
  Policy everything;
  everything.default_attrs = AttrSet{default_attrs(), false};
  std::optional<Selector> own;
  ScanOptions opts = given;
  if (!opts.walk.selector) {
    add_path_rules(&everything, opts.roots, "scan roots");
    own.emplace(everything);
    opts.walk.selector = &*own;
  }
  return ScanRun(opts, opts.walk.selector->policy()).run(consume, bytes_hashed);
}

}  // namespace fim
