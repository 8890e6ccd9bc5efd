// SPDX-License-Identifier: GPL-2.0-or-later
// check --fast: the plan (see fast.h) and the clock rules (docs/design.md, Evidence).
#include "fast.h"

#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>

#include "fim/base/sys.h"

namespace fim::detail {
namespace {

int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  ::clock_gettime(id, &ts);
  return timespec_ns(ts);
}

std::string boot_id() {
  auto id = read_small_file("/proc/sys/kernel/random/boot_id", 64);
  if (!id) return {};
  std::string s = *id;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string seconds_text(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ns) / 1e9);
  return buf;
}

/// The identity and times stat evidence rests on, as the walk saw them and as the baseline
/// recorded them (a hint here; the merge holds the verified row to the same).
bool same_stat(const Target& t, const Record& r) {
  const struct stat& st = t.st;
  for (Attr a : {Attr::Size, Attr::Mtime, Attr::Ctime, Attr::Inode})
    if (!r.has(a)) return false;
  if (r.get(Attr::Size).num != st.st_size || r.get(Attr::Mtime).num != timespec_ns(st.st_mtim) ||
      r.get(Attr::Ctime).num != timespec_ns(st.st_ctim) || r.get(Attr::Inode).num != static_cast<int64_t>(st.st_ino))
    return false;
  if (r.has(Attr::Dev) && r.get(Attr::Dev).num != static_cast<int64_t>(st.st_dev)) return false;
  // A birth time on disk that the baseline lacks (or the reverse): not the recorded identity.
  if (r.has(Attr::Btime) != (t.btime_ns >= 0)) return false;
  if (r.has(Attr::Btime) && r.get(Attr::Btime).num != t.btime_ns) return false;
  if (r.has(Attr::Mode) && r.get(Attr::Mode).num != (st.st_mode & 07777)) return false;
  if (r.has(Attr::Uid) && r.get(Attr::Uid).num != st.st_uid) return false;
  if (r.has(Attr::Gid) && r.get(Attr::Gid).num != st.st_gid) return false;
  if (r.has(Attr::Nlink) && r.get(Attr::Nlink).num != static_cast<int64_t>(st.st_nlink)) return false;
  return true;
}

}  // namespace

StateStore::CheckClock clock_now(const std::string& baseline_id) {
  StateStore::CheckClock c;
  c.baseline_id = baseline_id;
  c.realtime_ns = clock_ns(CLOCK_REALTIME);
  c.offset_ns = c.realtime_ns - clock_ns(CLOCK_BOOTTIME);
  c.boot_id = boot_id();
  return c;
}

std::string stat_withdrawn(const std::optional<StateStore::CheckClock>& last, const StateStore::CheckClock& now) {
  if (!last || last->baseline_id != now.baseline_id)
    return "no earlier check of this baseline recorded its clock";
  if (!last->stat_void.empty()) return last->stat_void;
  if (last->boot_id.empty() || now.boot_id.empty()) return "the boot id cannot be read";
  if (last->boot_id == now.boot_id) {
    const int64_t moved = now.offset_ns - last->offset_ns;
    if (std::llabs(moved) > kClockStepTolerance)
      return "the system clock was stepped by " + seconds_text(moved) + " since the last check (" +
             format_time_ns(last->realtime_ns) + ")";
    return {};
  }
  if (now.realtime_ns < last->realtime_ns)
    return "after a reboot the clock reads earlier than the last check (" + format_time_ns(last->realtime_ns) + ")";
  return {};
}

Result<std::unique_ptr<FastPlan>> FastPlan::open(const Bytes& db_path, StateStore* state, Facts f) {
  std::unique_ptr<FastPlan> p(new FastPlan());
  auto hints = BaselineReader::open_hints(db_path);
  if (!hints) return hints.error();
  p->hints_ = std::move(*hints);
  if (::getrandom(&p->lookup_seed_, sizeof p->lookup_seed_, 0) != sizeof p->lookup_seed_) p->lookup_seed_ = 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(f.now_ns);
  p->phase_seed_ = XXH3_64bits(f.baseline_id.data(), f.baseline_id.size());
  if (state) {
    // Keyed by a hash with a seed of this run's: 16 bytes a row, and no path can be made to
    // collide with another's on purpose.
    FIM_TRY(state->for_each_hashed(db_path, [&](const Bytes& path, int64_t at) {
      p->hashed_.emplace_back(XXH3_64bits_withSeed(path.data(), path.size(), p->lookup_seed_), at);
    }));
    std::sort(p->hashed_.begin(), p->hashed_.end());
  }
  std::sort(f.watched.begin(), f.watched.end(), [](const WatchedRoot& a, const WatchedRoot& b) { return a.root < b.root; });
  p->f_ = std::move(f);
  return p;
}

int64_t FastPlan::hashed_at(const Bytes& path) const {
  int64_t at = f_.full_ns;
  const uint64_t key = XXH3_64bits_withSeed(path.data(), path.size(), lookup_seed_);
  auto it = std::lower_bound(hashed_.begin(), hashed_.end(), std::make_pair(key, INT64_MIN));
  if (it != hashed_.end() && it->first == key) at = std::max(at, it->second);
  // No run can have hashed it later than now: such a time was written by someone else (state.db
  // is not signed) to put its turn off. It vouches for nothing.
  return at > f_.now_ns ? 0 : at;
}

bool FastPlan::due(const Bytes& path, int64_t hashed) const {
  // Each entry has a phase in [0, 1) of the interval, from its path and the baseline id: its
  // turn comes once per interval, at (k + phase) * interval. A run hashes the entries whose turn
  // came since they were last hashed, so runs share the bytes in proportion to the time between
  // them, and no entry goes longer than the interval (plus the time to the next run) unread.
  const double interval = f_.interval_s * 1e9;
  if (static_cast<double>(f_.now_ns - hashed) >= interval) return true;
  const double phase = static_cast<double>(XXH3_64bits_withSeed(path.data(), path.size(), phase_seed_) >> 11) * 0x1p-53;
  const double turn = (std::floor(static_cast<double>(f_.now_ns) / interval - phase) + phase) * interval;
  return turn > static_cast<double>(hashed);
}

const WatchedRoot* FastPlan::watched_root(const Bytes& path) const {
  for (const WatchedRoot& w : f_.watched)
    if (path_within(path, w.root)) return &w;
  return nullptr;
}

void FastPlan::plan(const WalkItem& item, CollectOptions* co) {
  const Target& t = item.target;
  if (timespec_ns(t.st.st_ctim) > f_.now_ns + kClockStepTolerance && future_.empty()) future_ = t.path;
  // The hint for this path: baseline rows before it are behind the walk for good.
  while (!hints_done_ && (!have_hint_ || hint_.path < t.path)) {
    auto more = hints_->next(&hint_);
    have_hint_ = more && *more;
    if (!have_hint_) hints_done_ = true;  // an error too: the verified reader will say it
  }
  if (!have_hint_ || hint_.path != t.path || hint_.type() != file_type_of(t.st.st_mode)) return;
  const bool content = S_ISREG(t.st.st_mode) && (co->mask & (attr_bit(Attr::Sha256) | attr_bit(Attr::Xxh128)));
  const int64_t hashed = hashed_at(t.path);
  if (content && (hashed == 0 || due(t.path, hashed))) {
    co->rolling = hashed != 0;
    return;
  }
  if (content && hint_.has(Attr::Verity)) {
    co->plan = EntryEvidence::Verity;
    co->expect_verity = hint_.get(Attr::Verity).bytes;
    return;
  }
  if (!same_stat(t, hint_) || timespec_ns(t.st.st_ctim) > f_.now_ns + kClockStepTolerance) return;
  // A watch daemon that saw an event on the entry: whatever its times say, it is read (a write
  // made with the clock set back and forward again leaves times that match). Its coverage since
  // the entry was last hashed is compared by the clock, so it counts only when the clock rules
  // hold too.
  const WatchedRoot* w = watched_root(t.path);
  if (w && std::binary_search(w->evented.begin(), w->evented.end(), t.path)) return;
  if (!f_.stat_ok) return;
  co->plan = w && hashed != 0 && w->since_ns <= hashed ? EntryEvidence::Watched : EntryEvidence::Stat;
  co->expect_handle = (co->mask & attr_bit(Attr::Handle)) && hint_.has(Attr::Handle) ? hint_.get(Attr::Handle).bytes : Bytes();
}

Result<CheckEvidence> check_evidence(const RunOptions& opts, Trusted& t, Summary* s, Sink& sink) {
  CheckEvidence ev;
  const std::string mode = opts.check_mode.empty() ? opts.policy.check_mode : opts.check_mode;
  ev.fast = mode == "fast";
  s->mode = ev.fast ? "fast" : "full";
  ev.now = clock_now(t.base->meta().baseline_id);
  if (t.state) {
    auto last = (*t.state)->check_clock(opts.db_path);
    if (last && *last && (**last).baseline_id == ev.now.baseline_id) ev.last = **last;
  }
  if (!ev.fast) return ev;
  FastPlan::Facts f;
  f.now_ns = ev.now.realtime_ns;
  f.baseline_id = ev.now.baseline_id;
  f.interval_s = opts.policy.rehash_interval_seconds;
  f.full_ns = ev.last ? ev.last->full_ns : 0;
  f.watched = opts.watched;
  s->stat_withdrawn = stat_withdrawn(ev.last, ev.now);
  f.stat_ok = s->stat_withdrawn.empty();
  if (!f.stat_ok)
    sink.alert("stat_evidence_withdrawn", "check --fast does not rest on file times this run: " + s->stat_withdrawn +
                                              "; entries are hashed unless fs-verity or the watch daemon vouches for them");
  auto plan = FastPlan::open(opts.db_path, t.state ? t.state->get() : nullptr, std::move(f));
  if (!plan) return plan.error();
  ev.plan = std::move(*plan);
  return ev;
}

Status record_evidence(const RunOptions& opts, Trusted& t, CheckEvidence& ev, Summary* s, Sink& sink) {
  if (!t.state) return {};
  const bool whole = opts.paths.empty();
  StateStore::CheckClock c = ev.now;
  c.full_ns = ev.last ? ev.last->full_ns : 0;
  const uint64_t not_hashed = s->evidence[1] + s->evidence[2] + s->evidence[3];
  const bool all_hashed = whole && not_hashed == 0 && s->incomplete == 0;
  if (all_hashed) c.full_ns = ev.now.realtime_ns;
  const Bytes& future = ev.plan ? ev.plan->future_ctime() : Bytes();
  if (!future.empty()) {
    // A ctime later than the clock: it was set back after that write, and so may have been
    // before any write whose ctime now matches a baseline's. What this run took on stat
    // evidence is not proven: the run is incomplete, and the next fast check hashes.
    c.stat_void = "a ctime later than the clock (" + escape_terminal(future) + ") at " + format_time_ns(ev.now.realtime_ns);
    ++s->incomplete;
    sink.alert("clock_behind_ctime", quote(future) + " has a ctime later than the clock: the clock was set back since it "
                                     "changed, so file times prove nothing this run (" + std::to_string(s->evidence[3]) +
                                     " entries rested on them); run 'fimctl check --full'; the next fast check hashes "
                                     "every entry");
  } else if (s->stat_withdrawn.empty() || whole) {
    c.stat_void.clear();
  } else {
    c.stat_void = s->stat_withdrawn;  // a part of the tree was hashed: the rest still has to be
  }
  if (ev.hashed_overflow) ev.hashed.clear();
  return (*t.state)->set_check_clock(opts.db_path, c, ev.hashed, ev.now.realtime_ns);
}

}  // namespace fim::detail
