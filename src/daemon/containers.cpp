// SPDX-License-Identifier: GPL-2.0-or-later
// watch --containers (docs/design.md, Containers and Real time): the running
// containers' drift as it happens. Containers are found every poll (they start and stop
// while the daemon runs); the host filesystem that holds each overlay's upper directory gets
// a filesystem mark of this thread's own fanotify group; an event below an upper directory is
// a change of the container path below it (the work directory's churn is dropped); after a
// short debounce that path (or, when it is gone, its nearest existing parent) is checked like
// 'check --containers PATH' does, against the image's baseline, and the report's records go
// out with the container named in each (ndjson) or under a header (plain).
#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "fim/base/sys.h"
#include "fim/pipeline.h"
#include "fim/watch.h"
#include "fim/merge.h"
#include "mounts.h"

namespace fim::detail {
namespace {

struct Tracked {
  Container c;
  std::string key;
  Bytes db;
};

/// "container":{"pid":N,"runtime":"...","id":"...","image":"..."}
json::Writer container_field(const Tracked& t) {
  json::Writer f = json::Writer::fields();
  f.object("container").num("pid", t.c.pid);
  f.str("runtime", t.c.id ? t.c.id->runtime : "").str("id", t.c.id ? t.c.id->id : "").str("image", t.key);
  f.close();
  return f;
}

/// The memory stream a container's report is written to, and what it holds once closed.
class MemoryOut {
 public:
  MemoryOut() : file_(::open_memstream(&buf_, &len_)) {}
  ~MemoryOut() {
    close();
    std::free(buf_);
  }
  MemoryOut(const MemoryOut&) = delete;
  MemoryOut& operator=(const MemoryOut&) = delete;
  FILE* file() const { return file_; }
  /// Closes the stream (once) and returns what was written.
  std::string text() {
    close();
    return std::string(buf_ ? buf_ : "", len_);
  }

 private:
  void close() {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }
  char* buf_ = nullptr;
  size_t len_ = 0;
  FILE* file_;
};

/// The nearest path at or above `p` that exists inside the container's root.
Bytes existing_ancestor(int root_fd, Bytes p) {
  for (;;) {
    UniqueFd fd(open_in_root(root_fd, p, O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (fd.valid() || p == "/") return p;
    Bytes dir, name;
    split_path(p, &dir, &name);
    p = dir.empty() ? Bytes("/") : dir;
  }
}

class ContainerWatch {
 public:
  ContainerWatch(const WatchOptions& o, const std::atomic<bool>& stop) : o_(o), stop_(stop) {}

  Status run() {
    auto src = FanotifySource::open();
    if (!src) {  // the host's files are still watched: say so, once
      say("containers_unavailable", "containers are not watched: " + src.error().describe());
      return {};
    }
    src_.emplace(std::move(*src));
    std::string why;
    UniqueFd mounts = watchd::open_mount_watch(&why);
    json::Writer start;
    start.schema("containers_watch").boolean("mount_events", mounts.valid());
    start.raw("poll_seconds", std::to_string(o_.container_poll_seconds));
    write_block(ndjson() ? start.take() + "\n"
                          : std::string("fimctl: watching containers (") +
                                (mounts.valid() ? "mount events" : "no mount events: " + why) + ")\n");
    double next_poll = 0, burst_until = 0;
    while (!stop_.load()) {
      const double now = monotonic_seconds();
      if (now >= next_poll) {
        rediscover();
        next_poll = now + (now < burst_until ? std::min(0.25, o_.container_poll_seconds) : o_.container_poll_seconds);
      }
      pollfd p[2] = {{src_->fd(), POLLIN, 0}, {mounts.valid() ? mounts.get() : -1, POLLIN, 0}};
      if (::poll(p, 2, 200) > 0) {
        if (p[0].revents & POLLIN) {
          auto got = src_->read([this](FanEvent&& ev) { on_event(ev); });
          if (!got) say("read_error", got.error().describe());
        }
        if (p[1].revents & POLLIN) {
          // A mount came or went: a runtime mounts a container's root before it starts the
          // container's first process, so look now and a few times more over 3 s.
          char buf[4096];
          while (::read(mounts.get(), buf, sizeof buf) > 0) {
          }
          next_poll = 0;
          burst_until = monotonic_seconds() + 3;
        }
      }
      check_due();
    }
    return {};
  }

 private:
  bool ndjson() const { return o_.format != Format::Plain; }

  /// Whole lines, in one piece: the daemon's own records go to the same stream.
  void write_block(const std::string& block) {
    flockfile(o_.out);
    std::fputs(block.c_str(), o_.out);
    std::fflush(o_.out);
    funlockfile(o_.out);
  }

  void say(const std::string& code, const std::string& message) {
    json::Writer w;
    json::alert_record(w, code, message);
    write_block((ndjson() ? w.take() : "fimctl: containers: " + message) + "\n");
  }

  void rediscover() {
    auto found = discover_containers();
    if (!found) return say("containers", "cannot list containers: " + found.error().describe());
    std::set<Bytes> seen;
    for (const auto& c : *found) {
      if (!c.overlay || c.overlay->upper.empty()) continue;  // no upper layer: nothing can drift
      const Bytes& upper = c.overlay->upper;
      seen.insert(upper);
      if (by_upper_.count(upper)) continue;
      Tracked t{c, image_key(c), {}};
      t.db = image_baseline_path(o_.run.db_path, t.key);
      if (::access(t.db.c_str(), F_OK) != 0 && warned_.insert(t.key).second)
        say("container_no_baseline", "container pid " + std::to_string(c.pid) + ": no baseline of its image " + t.key +
                                         ": run 'fimctl init --containers'");
      if (marked_.insert(upper).second) {
        // The host filesystem of the upper directory (one mark per filesystem is enough).
        if (auto st = src_->mark_filesystem(upper); !st) say("mark_failed", st.error().describe());
        (void)locator_.add_filesystem(upper);
      }
      announce("container_start", t, "watching container pid " + std::to_string(c.pid));
      by_upper_.emplace(upper, std::move(t));
    }
    for (auto it = by_upper_.begin(); it != by_upper_.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      announce("container_stop", it->second, "container pid " + std::to_string(it->second.c.pid) + " stopped");
      it = by_upper_.erase(it);
    }
  }

  /// container_start / container_stop: from the moment of container_start its writes are seen.
  void announce(const char* type, const Tracked& t, const std::string& text) {
    std::string line;
    if (ndjson()) {
      line = json::Writer().schema(type).members(container_field(t)).take();
    } else {
      line = "fimctl: " + text + " (image " + t.key.substr(0, 12) + ")";
    }
    write_block(line + "\n");
  }

  void on_event(const FanEvent& ev) {
    if (ev.overflow()) {  // lost events: every container is checked whole
      for (const auto& [upper, t] : by_upper_) due_.emplace(std::make_pair(upper, Bytes("/")), Due{monotonic_seconds(), 0});
      return;
    }
    // This daemon's own compares read the containers, and overlayfs answers a read of a merged
    // directory by setting its xattrs on the upper one (an attrib event in the reader's name):
    // without this filter every compare would trigger the next.
    if (ev.pid == self_) return;
    if (ev.dir_renamed()) locator_.invalidate();
    // Who wrote: only an event that changes something names a writer (not the attrib of a
    // directory, which overlayfs makes when anyone reads through it).
    const bool writes = (ev.mask & (FAN_MODIFY | FAN_CLOSE_WRITE | FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO)) ||
                        ((ev.mask & FAN_ATTRIB) && !(ev.mask & FAN_ONDIR));
    const int32_t writer = writes ? ev.pid : 0;
    for (const auto& info : ev.infos) {
      if (info.kind == FanInfo::Kind::Fid || info.kind == FanInfo::Kind::Dfid) continue;
      auto dir = locator_.resolve(info);
      if (!dir) continue;
      const Bytes path = info.name == "." ? *dir : join_path(*dir, info.name);
      for (const auto& [upper, t] : by_upper_) {
        if (!path_within(path, upper)) continue;
        Bytes inside = path.substr(upper.size());
        if (inside.empty()) inside = "/";
        auto [it, fresh] = due_.emplace(std::make_pair(upper, inside), Due{monotonic_seconds(), writer});
        if (!fresh && writer > 0) it->second.pid = writer;  // the latest writer
      }
    }
  }

  /// Checks what has been quiet for the debounce time.
  void check_due() {
    const double now = monotonic_seconds();
    std::map<Bytes, std::pair<std::set<Bytes>, int>> batch;  // upper -> container paths, a writer's pid
    for (auto it = due_.begin(); it != due_.end();) {
      if (now - it->second.first < o_.debounce_seconds + 0.1) {
        ++it;
        continue;
      }
      auto& b = batch[it->first.first];
      b.first.insert(it->first.second);
      if (it->second.pid > 0) b.second = it->second.pid;
      it = due_.erase(it);
    }
    for (const auto& [upper, b] : batch) {
      auto t = by_upper_.find(upper);
      if (t != by_upper_.end() && ::access(t->second.db.c_str(), F_OK) == 0) check(t->second, b.first, b.second);
    }
  }

  void check(const Tracked& t, const std::set<Bytes>& paths, int writer) {
    const Bytes root = "/proc/" + std::to_string(t.c.pid) + "/root";
    UniqueFd rfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!rfd.valid()) return;  // stopped
    std::vector<Bytes> baseline_roots;
    if (auto b = BaselineReader::open(t.db)) baseline_roots = (*b)->meta().roots;
    // What to compare: each path (its nearest existing parent when it is gone), within the
    // baseline's roots; a path above a root (an overflow's "/") covers the roots below it.
    std::set<Bytes> wanted;
    for (const auto& p : paths) {
      const Bytes at = existing_ancestor(rfd.get(), p);
      for (const auto& r : baseline_roots) {
        if (path_within(at, r)) wanted.insert(at);
        else if (path_within(r, at)) wanted.insert(r);
      }
    }
    if (wanted.empty()) return;
    RunOptions r = o_.run;
    r.paths = normalize_roots({wanted.begin(), wanted.end()});
    // A policy path the image lacks (the default's /home in a busybox image) is an absent
    // root there, as on the host: never a reason to drop the rest of the batch.
    r.paths_may_be_absent = true;
    r.progress = nullptr;
    MemoryOut mem;
    if (!mem.file()) return;
    Status out_st;
    ContainerRun run;
    run.offender = writer;
    bool drift = false;
    // Every record names its container: lines of two reports may sit side by side in a SIEM.
    const json::Writer field = container_field(t);
    json::Writer extra = json::Writer::fields();
    extra.members(field).str("source", "watch");
    {
      auto sink = make_sink(ndjson() ? Format::Ndjson : Format::Plain, mem.file(), false, &extra);
      auto s = run_in_container(r, t.c, false, *sink, &run);
      if (!s) {
        return say("container_check_failed", "container pid " + std::to_string(t.c.pid) + ": " + s.error().describe());
      }
      drift = s->added || s->removed || s->changed || s->incomplete;
      if (drift) out_st = sink->finish(*s);
    }
    std::string text = mem.text();
    if (!drift || !out_st) return;
    std::string block;
    if (ndjson()) {
      block = std::move(text);
      if (respond_again(run, writer)) block += response_record(run, run.action == "kill" ? t.c.pid : writer, &field) + "\n";
    } else {
      block = "== container pid " + std::to_string(t.c.pid) + ", image " + t.key.substr(0, 12) + "\n" + text;
      if (respond_again(run, writer))
        block += "response: " + run.action + ": " +
                 (run.kill_error.empty() ? "killed " + std::to_string(run.killed) : "nothing killed: " + run.kill_error) +
                 " (drift under the rule at " + run.kill_rule + ")\n";
    }
    write_block(block);
  }

  /// Whether a response is news: a writer killed for an earlier event of the same change is
  /// not reported again as a failure to kill it.
  bool respond_again(const ContainerRun& run, int writer) {
    if (run.kill_rule.empty()) return false;
    if (run.action != "kill_process") return true;
    // A compare some other event started (a directory's attrib, an overflow) finds the same
    // drift again but names no writer: nothing to kill, nothing new to say.
    if (writer <= 0) return false;
    if (run.killed > 0) {
      killed_.insert(writer);
      return true;
    }
    return !killed_.count(writer);
  }

  const WatchOptions& o_;
  const std::atomic<bool>& stop_;
  std::set<int> killed_;  // writers killed by a kill_process response
  const int32_t self_ = ::getpid();
  std::optional<FanotifySource> src_;
  Locator locator_;
  std::map<Bytes, Tracked> by_upper_;
  std::set<Bytes> marked_;
  std::set<std::string> warned_;
  struct Due {
    double first;  ///< when its first event came
    int32_t pid;   ///< the latest writer (0: not known)
  };
  std::map<std::pair<Bytes, Bytes>, Due> due_;  // (upper, container path)
};

}  // namespace

Status watch_containers(const WatchOptions& opts, const std::atomic<bool>& stop) {
  ContainerWatch w(opts, stop);
  return w.run();
}

}  // namespace fim::detail
