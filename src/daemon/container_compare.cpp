// SPDX-License-Identifier: GPL-2.0-or-later
// Container roots, the worker's side (see container_roots.h): each container's pending paths
// (or, when it is dirty, the whole of its image baseline's roots) compared like
// 'check --containers PATH' does, against the image's baseline with the container's root as
// sysroot (run_in_container: the same compare, baselines and responses), the records going
// out through the daemon's own sink with the container named in each.
#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

#include "fim/merge.h"
#include "fim/pipeline.h"
#include "fim/progress.h"
#include "daemon.h"

namespace fim::watchd {
namespace {

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

/// The daemon's sink for one container check: changes and entry statuses go out as they
/// come (the trigger names the container); the run's alerts ("unsigned", ...) only when the
/// check found drift, so a quiet compare says nothing.
class ContainerSink final : public Sink {
 public:
  ContainerSink(StreamSink& out, const Trigger& t, std::atomic<uint64_t>& changes) : out_(out), t_(t), changes_(changes) {
    out_.set_trigger(&t_);
  }
  ~ContainerSink() override { out_.set_trigger(nullptr); }
  ContainerSink(const ContainerSink&) = delete;
  ContainerSink& operator=(const ContainerSink&) = delete;

  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    ++changes_;
    out_.change(kind, o, n, changed, rule);
  }
  void entry_status(const Record& r, bool subtree, const Rule* rule) override { out_.entry_status(r, subtree, rule); }
  void alternative(const Record& r, unsigned n, const Rule* rule) override { out_.alternative(r, n, rule); }
  void alert(std::string_view code, std::string_view message) override { held_.emplace_back(code, message); }
  Status finish(const Summary&) override { return {}; }
  void flush_alerts() {
    json::Writer f = json::Writer::fields();
    f.raw("container", t_.container);
    for (const auto& [code, message] : held_) out_.alert_with(code, message + " (" + t_.container_label + ")", f);
    held_.clear();
  }

 private:
  StreamSink& out_;
  const Trigger& t_;
  std::atomic<uint64_t>& changes_;
  std::vector<std::pair<std::string, std::string>> held_;
};

/// Whether a response is news: a writer killed for an earlier event of the same change is
/// not reported again as a failure to kill it.
bool respond_again(const ContainerRun& run, int writer, std::set<int>& killed) {
  if (run.kill_rule.empty()) return false;
  if (run.action != "kill_process") return true;
  // A compare some other event started (a directory's attrib, a rescan) finds the same drift
  // again but names no writer: nothing to kill, nothing new to say.
  if (writer <= 0) return false;
  if (run.killed > 0) {
    killed.insert(writer);
    return true;
  }
  return !killed.count(writer);
}

bool gone(const ContainerRoot& root) {
  const Bytes dir = "/proc/" + std::to_string(root.c.pid) + "/root";
  return !UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)).valid();
}

/// The daemon's side of one container check: its sink, its count of changes, the writers a
/// kill_process response killed.
struct Out {
  StreamSink& sink;
  std::atomic<uint64_t>& changes;
  std::set<int>& killed;
};

/// Compares `paths` (inside the container; "/" covers every root of the image's baseline).
void check_container(Out out, const RunOptions& base, const ContainerRoot& root, const std::set<Bytes>& paths, Trigger t) {
  StreamSink& sink = out.sink;
  if (::access(root.db.c_str(), F_OK) != 0) return;  // no baseline of its image yet (said when it was found)
  const Bytes proc_root = "/proc/" + std::to_string(root.c.pid) + "/root";
  UniqueFd rfd(::open(proc_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rfd.valid()) return;  // stopped: its container_stop follows at the next look
  std::vector<Bytes> baseline_roots;
  if (auto b = BaselineReader::open(root.db)) baseline_roots = (*b)->meta().roots;
  // What to compare: each path (its nearest existing parent when it is gone), within the
  // baseline's roots; a path above a root covers the roots below it.
  std::set<Bytes> wanted;
  for (const auto& p : paths) {
    const Bytes at = existing_ancestor(rfd.get(), p);
    for (const auto& r : baseline_roots) {
      if (path_within(at, r)) wanted.insert(at);
      else if (path_within(r, at)) wanted.insert(r);
    }
  }
  if (wanted.empty()) return;
  RunOptions r = base;
  r.paths = normalize_roots({wanted.begin(), wanted.end()});
  // A policy path the image lacks (the default's /home in a busybox image) is an absent
  // root there, as on the host: never a reason to drop the rest of the batch.
  r.paths_may_be_absent = true;
  r.progress = nullptr;
  // A rescan's rescan_progress records (docs/design.md, Record schema), as a host rescan's:
  // at most one every 10 s, none for a rescan shorter than that.
  RescanPacer pacer(monotonic_seconds());
  const double started = monotonic_seconds();
  if (!t.rescan.empty()) {
    r.progress = [&](const ScanProgress& p) {
      if (!pacer.due(monotonic_seconds())) return;
      json::Writer f = json::Writer::fields();
      f.str("reason", t.rescan).raw("container", root.field);
      f.num("entries", p.entries).num("bytes", p.bytes);
      if (p.total_entries) f.num("total_entries", p.total_entries).num("total_bytes", p.total_bytes);
      f.fixed("seconds", monotonic_seconds() - started, 3);
      sink.event("rescan_progress", f, "rescanning " + root.label + " (" + t.rescan + "): " + group_thousands(p.entries) +
                                           " entries, " + human_bytes(static_cast<double>(p.bytes)));
    };
  }
  t.container = root.field;
  t.container_label = root.label;
  const int writer = t.rescan.empty() ? t.pid : 0;
  ContainerRun run;
  run.image = root.key.key;
  run.offender = writer;
  ContainerSink cs(sink, t, out.changes);
  auto s = run_in_container(r, root.c, false, cs, &run);
  if (!s) {
    if (gone(root)) return;  // stopped while it was compared: dropped quietly
    json::Writer f = json::Writer::fields();
    f.raw("container", root.field);
    return sink.alert_with("container_check_failed", root.label + ": " + s.error().describe(), f);
  }
  if (!(s->added || s->removed || s->changed || s->incomplete)) return;
  cs.flush_alerts();
  if (!respond_again(run, writer, out.killed)) return;
  const int pid = run.action == "kill" ? root.c.pid : writer;
  json::Writer f = json::Writer::fields();
  f.str("action", run.action).num("pid", pid).num("killed", run.killed < 0 ? 0 : run.killed);
  f.str("reason", "drift under the rule at " + run.kill_rule + " (response = \"" + run.action + "\")");
  if (!run.kill_error.empty()) f.str("error", run.kill_error);
  f.raw("container", root.field);
  sink.event("response", f,
             run.action + ": " +
                 (run.kill_error.empty() ? "killed " + std::to_string(run.killed) : "nothing killed: " + run.kill_error) +
                 " (drift under the rule at " + run.kill_rule + ") in " + root.label,
             LOG_ERR);
}

}  // namespace

Status Watcher::compare_containers(Batch& b) {
  ContainerBatch& cb = b.ctr;
  // Directories made since their parent was marked: their subtrees marked before any compare
  // reads them (a rescan below covers their paths, not their marks).
  for (const auto& [upper, w] : cb.work)
    for (const auto& dir : w.mark_trees) (void)mark_tree(dir);
  // Dirty first (a loss, a container just found): its whole baseline, which covers its paths.
  for (const auto& [upper, d] : cb.dirty) {
    const int64_t began = now_ns();
    // An image without a baseline has nothing to compare with (said when it was found).
    if (auto it = cb.tracked.find(upper); it != cb.tracked.end() && ::access(it->second->db.c_str(), F_OK) == 0) {
      const ContainerRoot& root = *it->second;
      const double t0 = monotonic_seconds();
      const uint64_t before = changes_;
      ++rescans_;
      json::Writer f = json::Writer::fields();
      f.str("reason", d.reason).raw("container", root.field);
      sink_.event("rescan_start", f, "rescanning " + root.label + " (" + d.reason + ")");
      // Directories made while events were lost were never marked: marked now, before the
      // compare (a container just found was marked when it was).
      if (d.reason != "start") (void)mark_tree(root.upper);
      Trigger t;
      t.rescan = d.reason;
      check_container({sink_, changes_, ctr_killed_}, o_.run, root, {"/"}, t);
      f.num("changes", changes_ - before).fixed("seconds", monotonic_seconds() - t0, 3);
      sink_.event("rescan_done", f,
                  "rescan of " + root.label + " done (" + d.reason + "), " + std::to_string(changes_ - before) + " difference(s)");
    }
    std::vector<Bytes> roots;
    {
      std::lock_guard<std::mutex> lk(mu_);
      // Cleared only when no loss came after this rescan began; a stopped container's mark
      // goes with it.
      if (auto it = ctr_.dirty.find(upper); it != ctr_.dirty.end() && (it->second.at_ns <= began || !ctr_.tracked.count(upper)))
        ctr_.dirty.erase(it);
      roots = roots_;
      if (stop_) return make_error(Errc::Cancelled, "cancelled");
    }
    close_gap(d.reason, roots);
  }
  for (const auto& [upper, w] : cb.work) {
    if (cb.dirty.count(upper)) continue;
    auto it = cb.tracked.find(upper);
    if (it == cb.tracked.end()) continue;
    check_container({sink_, changes_, ctr_killed_}, o_.run, *it->second, w.paths, w.trigger);
  }
  return {};
}

}  // namespace fim::watchd
