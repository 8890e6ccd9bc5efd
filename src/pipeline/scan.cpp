// SPDX-License-Identifier: GPL-2.0-or-later
// Parallel collection in walk order.
//
// Threads: one walker, `jobs` collectors, and the caller as the consumer. The walker cuts its
// stream into chunks (at most kChunkItems entries or kChunkBytes of file data, so one big file
// is a chunk of its own and two big files hash on two cores). Chunks enter a FIFO of work
// and, in the same order, a window the consumer drains front to back. The window holds at most
// kWindowChunks chunks, which bounds memory whatever the tree; a slow file at the front only
// stalls the consumer, while the collectors run ahead through the rest of the window.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "fim/pipeline.h"

namespace fim {
namespace {

constexpr size_t kChunkItems = 64;
constexpr uint64_t kChunkBytes = 1 << 20;
constexpr size_t kWindowChunks = 128;

struct Chunk {
  std::vector<WalkItem> in;
  std::vector<ScanEntry> out;
  bool done = false;  // guarded by Pipe::mu
};

struct Pipe {
  std::mutex mu;
  std::condition_variable work_cv;   // collectors: a chunk is waiting, or the walk ended
  std::condition_variable done_cv;   // consumer: the front chunk is done
  std::condition_variable space_cv;  // walker: the window has room
  std::deque<std::shared_ptr<Chunk>> todo;    // not yet taken by a collector
  std::deque<std::shared_ptr<Chunk>> window;  // every chunk in flight, in walk order
  bool walk_done = false;
  bool stop = false;
};

void collect_chunk(Chunk& c, const CollectOptions& base, const Policy& policy, Collector& collector) {
  c.out.resize(c.in.size());
  CollectOptions copts = base;
  for (size_t i = 0; i < c.in.size(); ++i) {
    WalkItem& item = c.in[i];
    ScanEntry& e = c.out[i];
    e.rule = item.rule;
    switch (item.kind) {
      case WalkItem::Kind::Entry:
        if (item.rule >= 0) {
          const Rule& r = policy.rules[static_cast<size_t>(item.rule)];
          copts.mask = r.attrs.mask | attr_bit(Attr::Type);
          copts.max_hash_bytes = r.max_hash_bytes;
        }
        collector.collect(item.target, copts, &e.rec);
        break;
      case WalkItem::Kind::StatFailed:
        e.rec.path = std::move(item.target.path);
        e.rec.set_num(Attr::Type, static_cast<int64_t>(FileType::Unknown));
        e.rec.status = EntryStatus::Unreadable;
        e.rec.sys_errno = item.err;
        break;
      case WalkItem::Kind::SubtreeIncomplete:
        e.rec.path = std::move(item.target.path);
        e.rec.set_num(Attr::Type, static_cast<int64_t>(FileType::Dir));
        e.rec.status = EntryStatus::Unreadable;
        e.rec.sys_errno = item.err;
        e.subtree_incomplete = true;
        break;
      case WalkItem::Kind::SubtreeSkipped:
        e.rec.path = std::move(item.target.path);
        e.rec.set_num(Attr::Type, static_cast<int64_t>(FileType::Dir));
        e.rec.status = EntryStatus::SkippedFs;
        e.subtree_incomplete = true;
        break;
    }
    item.target.dir.reset();  // release the directory fd as soon as possible
  }
  c.in.clear();
  c.in.shrink_to_fit();
}

}  // namespace

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
  Pipe p;
  Status walk_status;
  std::atomic<uint64_t> hashed{0};

  const auto push = [&](std::shared_ptr<Chunk> c) {
    std::unique_lock lk(p.mu);
    p.space_cv.wait(lk, [&] { return p.window.size() < kWindowChunks || p.stop; });
    if (p.stop) return false;
    p.window.push_back(c);
    p.todo.push_back(std::move(c));
    lk.unlock();
    p.work_cv.notify_one();
    return true;
  };

  std::thread walker([&] {
    auto chunk = std::make_shared<Chunk>();
    uint64_t chunk_bytes = 0;
    bool ok = true;
    walk_status = walk(opts.roots, opts.walk, [&](WalkItem&& item) {
      if (item.kind == WalkItem::Kind::Entry && S_ISREG(item.target.st.st_mode))
        chunk_bytes += static_cast<uint64_t>(item.target.st.st_size);
      chunk->in.push_back(std::move(item));
      if (chunk->in.size() >= kChunkItems || chunk_bytes >= kChunkBytes) {
        ok = push(std::move(chunk));
        chunk = std::make_shared<Chunk>();
        chunk_bytes = 0;
      }
      return ok;
    });
    if (ok && !chunk->in.empty()) push(std::move(chunk));
    {
      std::lock_guard lk(p.mu);
      p.walk_done = true;
    }
    p.work_cv.notify_all();
    p.done_cv.notify_all();
  });

  std::vector<std::thread> workers;
  for (unsigned i = 0; i < std::max(1u, opts.jobs); ++i) {
    workers.emplace_back([&] {
      Collector collector;
      for (;;) {
        std::shared_ptr<Chunk> c;
        {
          std::unique_lock lk(p.mu);
          p.work_cv.wait(lk, [&] { return !p.todo.empty() || p.walk_done || p.stop; });
          if (p.stop || p.todo.empty()) break;
          c = std::move(p.todo.front());
          p.todo.pop_front();
        }
        collect_chunk(*c, opts.collect, opts.walk.selector->policy(), collector);
        {
          std::lock_guard lk(p.mu);
          c->done = true;
        }
        p.done_cv.notify_one();
      }
      hashed += collector.bytes_hashed();
    });
  }

  Status result;
  for (;;) {
    std::shared_ptr<Chunk> c;
    {
      std::unique_lock lk(p.mu);
      p.done_cv.wait(lk, [&] { return (!p.window.empty() && p.window.front()->done) || (p.walk_done && p.window.empty()); });
      if (p.window.empty()) break;
      c = std::move(p.window.front());
      p.window.pop_front();
    }
    p.space_cv.notify_one();
    for (auto& e : c->out) {
      if (result) result = consume(e);
      if (!result) break;
    }
    if (!result) break;
  }
  {
    std::lock_guard lk(p.mu);
    p.stop = true;
  }
  p.work_cv.notify_all();
  p.space_cv.notify_all();
  walker.join();
  for (auto& w : workers) w.join();
  if (bytes_hashed) *bytes_hashed += hashed.load();
  if (!result) return result;
  return walk_status;
}

}  // namespace fim
