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
  return at;
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

bool FastPlan::watched(const Bytes& path, int64_t hashed) const {
  for (const WatchedRoot& w : f_.watched) {
    if (!path_within(path, w.root)) continue;
    if (w.since_ns > hashed) return false;
    return !std::binary_search(w.evented.begin(), w.evented.end(), path);
  }
  return false;
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
  if (hashed != 0 && watched(t.path, hashed))
    co->plan = EntryEvidence::Watched;
  else if (f_.stat_ok)
    co->plan = EntryEvidence::Stat;
  else
    return;
  co->expect_handle = (co->mask & attr_bit(Attr::Handle)) && hint_.has(Attr::Handle) ? hint_.get(Attr::Handle).bytes : Bytes();
}

}  // namespace fim::detail
