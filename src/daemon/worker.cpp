// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's worker thread (see daemon.h): it verifies the baseline (at start,
// when it is replaced, before each full check), takes the pending paths after the debounce,
// compares each subtree with the baseline through the merge check uses, and rescans the
// roots marked dirty, clearing each mark only when a rescan that began after it is done.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "fim/base/sys.h"
#include "fim/merge.h"
#include "fim/progress.h"
#include "daemon.h"

namespace fim::watchd {

/// What a rescan has done so far, for its rescan_progress records (docs/design.md, Record
/// schema): at most one every 10 s, none for a rescan shorter than that.
struct Watcher::RescanMeter {
  RescanMeter(std::string why, std::vector<Bytes> of) : reason(std::move(why)), roots(std::move(of)) {}
  std::string reason;
  std::vector<Bytes> roots;
  RescanPacer pacer{monotonic_seconds()};
  double started = monotonic_seconds();
  uint64_t entries = 0;
  std::shared_ptr<std::atomic<uint64_t>> bytes = std::make_shared<std::atomic<uint64_t>>(0);
  std::optional<BaselineReader::Totals> total;  // the baseline's rows below the roots, once asked
};

void Watcher::rescan_progress() {
  RescanMeter& r = *rescan_;
  if (!r.pacer.due(monotonic_seconds())) return;
  if (!r.total) {  // asked only of a rescan that lasts: one aggregate over the rows below its roots
    auto t = reader_->totals(r.roots);
    r.total = t ? *t : BaselineReader::Totals{};
  }
  json::Writer f = json::Writer::fields();
  f.str("reason", r.reason);
  roots_field(f, r.roots);
  f.num("entries", r.entries).num("bytes", r.bytes->load(std::memory_order_relaxed));
  if (r.total->entries) f.num("total_entries", r.total->entries).num("total_bytes", r.total->bytes);
  f.fixed("seconds", monotonic_seconds() - r.started, 3);
  sink_.event("rescan_progress", f,
              "rescanning " + std::to_string(r.roots.size()) + " root(s) (" + r.reason + "): " + group_thousands(r.entries) +
                  (r.total->entries ? " of " + group_thousands(r.total->entries) : "") + " entries, " +
                  human_bytes(static_cast<double>(r.bytes->load(std::memory_order_relaxed))));
}

Status Watcher::verify_baseline(bool first) {
  if (struct stat sb; ::stat(o_.run.db_path.c_str(), &sb) == 0) {  // what tick() compares with
    std::lock_guard<std::mutex> lk(mu_);
    verified_file_ = {sb.st_dev, sb.st_ino};
  }
  // A sink that drops what open_trusted says on the way: alerts are re-issued below once.
  auto trusted = detail::open_trusted(o_.run, sink_);
  if (!trusted) return trusted.error();
  // The protect and deny_unknown_exec rules need the baseline's files: kept only then.
  const bool keep = wants_sensor_policy(*policy_);
  std::vector<BaselineFile> rows;
  auto inodes = std::make_shared<std::vector<uint64_t>>();
  FIM_TRY(detail::read_verified(*trusted->base, [&](const Record& r) -> Status {
    if (keep) rows.push_back({r.path, static_cast<uint64_t>(r.get(Attr::Inode).num), r.type()});
    if (r.has(Attr::Inode)) inodes->push_back(static_cast<uint64_t>(r.get(Attr::Inode).num));
    return {};
  }));
  std::sort(inodes->begin(), inodes->end());
  inodes->erase(std::unique(inodes->begin(), inodes->end()), inodes->end());
  const BaselineMeta& meta = trusted->base->meta();
  if (trusted->state) (void)(*trusted->state)->note_sequence(o_.run.db_path, meta.sequence, meta.content_sha256);
  // apt runs before this baseline: it took their changes (or someone decided on them).
  if (worker_state_) (void)worker_state_->prune_apt_sessions(meta.created_ns);
  const bool replaced = !first && meta.content_sha256 != baseline_sha_;
  window_writes_.set_windows(meta.baseline_id, windows_of(meta));
  reader_ = std::move(trusted->base);
  effective_ = detail::effective_policy(*policy_, meta);
  sel_ = std::make_unique<Selector>(effective_);
  if (detail::policy_changed(*policy_, meta))
    sink_.alert("policy_changed", "the policy differs from the one the baseline was written under (" + meta.policy_source +
                                      " -> " + policy_->source + "); re-baseline with 'fimctl update'");
  if (replaced) {
    reported_.clear();  // differences are relative to the new baseline now
    {
      // Coverage was of the old baseline's entries: it begins again after a compare with this one.
      std::lock_guard<std::mutex> lk(mu_);
      for (const auto& r : meta.roots) set_dirty(r, "baseline_replaced", now_ns());
    }
    sink_.alert("baseline_replaced", "the baseline was replaced (fimctl update or accept): verified again (sequence " +
                                         std::to_string(meta.sequence) + "), every root is compared with it");
  }
  SensorPolicy sp = sensor_policy(effective_, *sel_, rows);
  if (!policy_->source.empty() && policy_->source[0] == '/') sp.policy_file = policy_->source;  // worker-owned policy_
  std::lock_guard<std::mutex> lk(mu_);
  baseline_sha_ = meta.content_sha256;
  roots_ = meta.roots;
  inodes_ = std::move(inodes);
  sensor_policy_ = std::move(sp);
  sensor_policy_fresh_ = true;  // the main thread applies it (tick)
  return {};
}


void Watcher::fatal(Error e) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!fatal_) fatal_ = std::move(e);
  const uint64_t one = 1;
  (void)::write(wakefd_.get(), &one, sizeof one);
}

Status Watcher::compare_path(const Bytes& p, const Trigger& t, bool cancellable, bool entry_only) {
  FIM_TRY(reader_->seek(p));
  ScanOptions so;
  so.roots = {p};
  so.walk.selector = sel_.get();
  so.walk.roots_must_exist = false;
  so.walk.roots_only = entry_only;
  so.jobs = o_.run.jobs;
  so.read_timeout_seconds = policy_->read_timeout_seconds;
  if (rescan_) {
    so.live_bytes = rescan_->bytes;
    so.waiting = [this] { rescan_progress(); };  // a long read: the records still come
  }
  Summary s;
  ++pass_;
  sink_.set_trigger(&t);
  detail::Merge m{effective_, *sel_, &s, sink_, {}, {}, {}, {}, {}, {}, &reader_->meta().alternatives, {}, {}};
  m.next_old = [&](Record* r) { return reader_->range_next(r); };
  // A directory's own entry: the rows below it are not this compare's to judge.
  m.selected = [&](const Bytes& path) { return !entry_only || path == p; };
  bool reported_p = false;
  m.report = [&](ChangeKind k, const Record* o, const Record* n, AttrMask changed, const Rule* rule) -> Status {
    const Bytes& path = (n ? n : o)->path;
    reported_p |= path == p;
    // A difference an event reported is reported once more when found held open for writing
    // (by whom); one found so is not repeated by the next event on it.
    const std::string seen = std::string(change_kind_name(k)) + ":" + (n ? detail::row_digest(*n) : "-");
    const std::string held = seen + "|open_for_write";
    const std::string key = t.open_for_write ? held : seen;
    auto it = reported_.find(path);
    if (it != reported_.end() && (it->second.key == key || it->second.key == held)) {
      it->second.pass = pass_;
      return {};  // reported already, unchanged since
    }
    if (reported_.size() < 1000000) reported_[path] = Reported{key, pass_};
    ++changes_;
    sink_.change(k, o, n, changed, rule);
    return {};
  };
  m.on_entry = [&](const Record& r) -> Status {
    ++progress_;
    if (rescan_) {
      ++rescan_->entries;
      rescan_progress();
    }
    // A baseline file with a second name (made before the daemon ran, or seen now): its
    // writes are events whatever name they come through.
    if (fan_ && r.type() == FileType::File && r.has(Attr::Nlink) && r.get(Attr::Nlink).num > 1) {
      if (UniqueFd f(open_in_root(-1, r.path, O_PATH | O_NOFOLLOW | O_CLOEXEC)); f.valid()) mark_file(f.get());
    }
    if (cancellable) {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return make_error(Errc::Cancelled, "cancelled");
    }
    return {};
  };
  Status st = detail::merge_compare(so, m);
  if (st && !reported_p && t.rescan.empty() && !entry_only) st = transient_check(p, t);
  sink_.set_trigger(nullptr);
  FIM_TRY(st);
  // What was reported below p and is now as the baseline says again (a file added and
  // removed, a mode changed back): say so once and forget it, so a new change is reported.
  for (auto it = reported_.lower_bound(p); it != reported_.end() && (it->first == p || it->first.compare(0, p.size(), p) == 0);) {
    if (path_within(it->first, p) && it->second.pass != pass_) {
      json::Writer f = json::Writer::fields();
      f.bytes("path", it->first).members(trigger_fields(&t));
      sink_.event("restored", f, escape_terminal(it->first) + " is as the baseline records it again");
      it = reported_.erase(it);
    } else {
      ++it;
    }
  }
  return {};
}

Status Watcher::transient_check(const Bytes& p, const Trigger& t) {
  // Created (or moved in) and gone again before the debounce ended: nothing on disk and no
  // baseline row to compare, but a name came and went below a root (a set-uid file dropped
  // in a cron directory and removed 3 ms later). Reported when the policy would select it.
  if (!(t.mask & (FAN_CREATE | FAN_MOVED_TO))) return {};
  struct stat sb;
  if (lstat_path(p, &sb) == 0 || errno != ENOENT) return {};
  const int rule = sel_->winner(sel_->scope_of(p), FileType::File, "");
  if (rule < 0) return {};
  ++changes_;
  sink_.transient(p, detail::rule_at(effective_, rule));
  return {};
}

Status Watcher::rescan_roots(const std::vector<Bytes>& roots, const std::string& reason, bool cancellable) {
  const int64_t began = now_ns();
  const double t0 = monotonic_seconds();
  const uint64_t changes_before = changes_;
  ++rescans_;
  json::Writer f = json::Writer::fields();
  f.str("reason", reason);
  roots_field(f, roots);
  sink_.event("rescan_start", f, "rescanning " + std::to_string(roots.size()) + " root(s) (" + reason + ")");
  Trigger t;
  t.rescan = reason;
  RescanMeter meter(reason, roots);
  rescan_ = &meter;
  struct Unset {
    RescanMeter*& p;
    ~Unset() { p = nullptr; }
  } unset{rescan_};
  for (const auto& r : roots) {
    // Directories made while events were lost were never marked (their event was among the
    // lost): marked again before the compare, as at start (where mark_root just did it).
    // A root whose marks failed is not covered until a rescan marks it whole.
    if (reason != "start" && reason != "new_root") {
      const bool whole = static_cast<bool>(mark_tree(r));
      std::lock_guard<std::mutex> lk(mu_);
      if (whole) {
        unmarked_.erase(r);
      } else {
        unmarked_.insert(r);
        covered_.erase(r);
      }
    }
    FIM_TRY(compare_path(r, t, cancellable));
    recorded(worker_state_->clear_dirty(o_.run.db_path, r, began), "a root's rescan");
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = dirty_.find(r); it != dirty_.end() && it->second.at_ns <= began) dirty_.erase(it);
  }
  f.num("changes", changes_ - changes_before).fixed("seconds", monotonic_seconds() - t0, 3);
  sink_.event("rescan_done", f, "rescan done (" + reason + "), " + std::to_string(changes_ - changes_before) + " new difference(s)");
  close_gap(reason, roots);
  return {};
}


bool Watcher::take_batch(Batch* b) {
  std::unique_lock<std::mutex> lk(mu_);
  busy_ = false;
  const auto have_paths = [&] {
    return !pending_.empty() || !pending_dirs_.empty() || !pending_inodes_.empty() || !ctr_.work.empty();
  };
  cv_.wait(lk, [&] {
    return stop_ || have_paths() || !dirty_.empty() || new_policy_ || full_due_ || !execs_.empty() || !ctr_.dirty.empty() ||
           reverify_due_;
  });
  const bool stopping = stop_;
  if (stopping && !have_paths()) return false;
  busy_ = true;
  if (new_policy_) {
    policy_ = std::move(new_policy_);
    full_due_ = true;  // new rules: compare everything under them once
  }
  b->full = full_due_ && !stopping;
  full_due_ = false;
  b->reverify = reverify_due_ && !stopping;
  reverify_due_ = false;
  if (!stopping) b->dirty = dirty_;
  if (have_paths() && !stopping) {
    // Debounce: let a burst of events on the same files settle into one compare.
    lk.unlock();
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(o_.debounce_seconds * 1e6)));
    lk.lock();
  }
  b->paths.swap(pending_);
  b->dirs.swap(pending_dirs_);
  b->inodes.swap(pending_inodes_);
  resolving_inodes_ = !b->inodes.empty();
  b->execs.swap(execs_);
  b->ctr.tracked = ctr_.tracked;
  b->ctr.work.swap(ctr_.work);
  ctr_.paths = 0;
  if (!stopping) b->ctr.dirty = ctr_.dirty;
  return true;
}

Status Watcher::run_rescans(Batch& b) {
  if (b.full) {
    FIM_TRY(verify_baseline(false));
    std::vector<Bytes> roots;
    {
      std::lock_guard<std::mutex> lk(mu_);
      roots = roots_;
    }
    FIM_TRY(rescan_roots(roots, "scheduled", true));
    std::lock_guard<std::mutex> lk(mu_);
    last_full_ns_ = now_ns();
    b.dirty.clear();  // rescan_roots cleared what it covered
  }
  std::map<std::string, std::vector<Bytes>> by_reason;
  for (const auto& [root, mark] : b.dirty) by_reason[mark.reason].push_back(root);
  for (const auto& [reason, roots] : by_reason) {
    FIM_TRY(rescan_roots(roots, reason, true));
    if (reason == "start") {
      std::lock_guard<std::mutex> lk(mu_);
      last_full_ns_ = now_ns();
    }
  }
  return {};
}

Status Watcher::compare_batch(Batch& b) {
  // Files named by identity (a hard link outside every root, a link count change): each
  // baseline name that is still that file is compared like a path an event named.
  for (auto& [id, trig] : b.inodes) {
    auto names = reader_->paths_with_inode(id.ino);
    if (!names) return names.error();
    for (auto& n : *names) {
      struct stat sb;
      if (lstat_path(n, &sb) != 0 || sb.st_dev != id.dev || static_cast<uint64_t>(sb.st_ino) != id.ino) continue;
      window_writes_.attach(n, id.dev, id.ino);
      {
        std::lock_guard<std::mutex> lk(mu_);
        note_evented(n);
      }
      Trigger& t = b.paths[n];
      t.mask |= trig.mask;
      if (!t.pid) t.pid = trig.pid, t.comm = trig.comm;
      if (!t.first_ns) t.first_ns = trig.first_ns;
      if (t.via.empty()) t.via = trig.via;
      t.open_for_write |= trig.open_for_write;
    }
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    resolving_inodes_ = false;  // every name is noted
  }
  const auto covered = [&](const Bytes& path) {
    return std::any_of(b.dirty.begin(), b.dirty.end(), [&](const auto& d) { return path_within(path, d.first); });
  };
  // Outermost first: a subtree compare covers what is below it, and a dirty root's rescan
  // covers what is below that.
  const Bytes* outer = nullptr;
  for (const auto& item : b.paths) {
    const Bytes& path = item.first;
    if (outer && path_within(path, *outer)) continue;
    if (covered(path)) continue;
    outer = &path;
    if (item.second.mark_tree && !mark_tree(path)) {
      // A failure shows at the next rescan's marks; until then the roots above are not covered.
      std::lock_guard<std::mutex> lk(mu_);
      for (const auto& r : roots_)
        if (path_within(path, r)) unmarked_.insert(r), covered_.erase(r);
    }
    FIM_TRY(compare_path(path, item.second, false));
  }
  // Directories whose names changed: their own entry (times, link count), unless a subtree
  // compare above already covered it.
  for (const auto& [dir, trig] : b.dirs) {
    if (covered(dir)) continue;
    bool compared = false;
    for (Bytes at = dir; !compared && at.size() > 1;) {
      compared = b.paths.count(at) > 0;
      Bytes parent, name;
      split_path(at, &parent, &name);
      at = parent;
    }
    if (compared) continue;
    FIM_TRY(compare_path(dir, trig, false, true));
  }
  return {};
}

void Watcher::worker() {
  for (;;) {
    Batch b;
    if (!take_batch(&b)) return;
    // Who made these changes: what the hooks queued before fanotify reported them, read now
    // (the main thread may not have got to it yet).
    if (sensors_.active() && !b.paths.empty()) {
      if (Status d = sensors_.drain([this](BpfEvent&& ev) { on_sensor_event(std::move(ev)); }); !d)
        sink_.alert("read_error", d.error().describe());
    }
    Status st;
    // A successor installed (window open, accept, update): its windows and rows are used from
    // now, not from the next event on.
    if (b.reverify) st = verify_baseline(false);
    for (const auto& ev : b.execs) {
      if (!st) break;
      st = check_exec(*reader_, ev, sink_);
    }
    if (st || b.full) st = run_rescans(b);  // a full check goes ahead after a failed exec lookup
    if (st) st = compare_batch(b);
    if (st) st = compare_containers(b);
    if (st || st.error().code == Errc::Cancelled) continue;
    if (st.error().code == Errc::Trust) {
      // Replaced (an update) or edited: trust it again or stop.
      if (Status v = verify_baseline(false); !v) return fatal(v.error());
      std::lock_guard<std::mutex> lk(mu_);
      for (const auto& r : roots_) set_dirty(r, "baseline_replaced", now_ns());
      continue;
    }
    sink_.alert("compare_failed", st.error().describe());
    std::this_thread::sleep_for(std::chrono::seconds(1));  // no busy loop on a persistent error
  }
}

}  // namespace fim::watchd
