// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's side of written-by-dpkg (see dpkg_writes.h).
#include "dpkg_writes.h"

#include "fim/ancestry.h"
#include "fim/base/sys.h"

namespace fim::watchd {

namespace {

// The pre hook waits 2 s for the daemon; a session older than this when first seen was not
// waited for (the daemon started mid-run): its early writes were never classified.
constexpr int64_t kTakeWithinNs = 1'500'000'000;
// Paths per session, and writer classifications cached: past them the session is not vouched
// for (a bounded daemon and state.db), or the cache starts again.
constexpr size_t kMaxPaths = 200000;
constexpr size_t kMaxCached = 4096;

}  // namespace

void DpkgWrites::poll(StateStore& st, const std::function<void()>& drain) {
  if (!session_) {
    auto open = st.open_apt_session();
    if (!open || !*open) return;
    const int64_t now = now_ns();
    if ((*open)->watched_from_ns != 0 || now - (*open)->began_ns > kTakeWithinNs) return;
    if (!st.watch_apt_session((*open)->id, now, 0)) return;
    session_ = **open;
    session_->watched_from_ns = now;
    lossy_ = false;
    stored_ = 0;
    return;
  }
  flush(st);
  auto now = st.apt_session(session_->id);
  if (!now) return;  // a busy database: next tick
  if (!*now || (*now)->ended_ns != 0) {
    // Ended (post hook) or abandoned: what the kernel queued before the end is classified
    // first, so no write of the run is left out of the record.
    drain();
    end(st, *now && (*now)->ended_ns > 0);
    return;
  }
  // apt gone without its post hook (killed): the session never ends, so it vouches for nothing.
  if (auto apt = pkg::read_proc(static_cast<int32_t>(session_->apt_pid)); !apt || apt->start != session_->apt_start)
    end(st, false);
}

void DpkgWrites::end(StateStore& st, bool watched) {
  flush(st);
  if (watched && !lossy_) (void)st.watch_apt_session(session_->id, 0, now_ns());
  session_.reset();
  cache_.clear();
  pending_.clear();
}

void DpkgWrites::on_loss(StateStore& st) {
  if (!session_) return;
  lossy_ = true;
  (void)st.mark_apt_session_lossy(session_->id);
}

void DpkgWrites::on_write(int32_t pid, const Bytes& path, uint64_t dev, uint64_t ino) {
  if (!session_ || lossy_) return;
  bool by_dpkg = false;
  std::string who = "pid " + std::to_string(pid) + ", gone";
  if (auto p = pkg::read_proc(pid)) {
    who = p->comm + " (pid " + std::to_string(pid) + ")";
    const auto key = std::make_pair(pid, p->start);
    if (auto it = cache_.find(key); it != cache_.end()) {
      by_dpkg = it->second;
    } else {
      by_dpkg = pkg::descends_from_dpkg_of(*p, static_cast<int32_t>(session_->apt_pid), session_->apt_start);
      if (cache_.size() >= kMaxCached) cache_.clear();
      cache_[key] = by_dpkg;
    }
  }
  auto [it, fresh] = pending_.try_emplace(path);
  StateStore::DpkgWrite& w = it->second;
  if (fresh) {
    w.session = session_->id;
    w.path = path;
    w.by_dpkg = by_dpkg;
  }
  w.by_dpkg = w.by_dpkg && by_dpkg;
  if (ino) w.dev = dev, w.ino = ino;
  w.at_ns = now_ns();
  w.who = who;
  if (stored_ + pending_.size() > kMaxPaths) lossy_ = true;
}

void DpkgWrites::flush(StateStore& st) {
  if (lossy_ && session_) (void)st.mark_apt_session_lossy(session_->id);
  if (pending_.empty()) return;
  std::vector<StateStore::DpkgWrite> batch;
  batch.reserve(pending_.size());
  for (auto& [path, w] : pending_) batch.push_back(std::move(w));
  if (!st.add_dpkg_writes(batch)) {
    // Not stored: a write by someone else may be among them, so nothing of the run counts.
    lossy_ = true;
    if (session_) (void)st.mark_apt_session_lossy(session_->id);
  }
  stored_ += batch.size();
  pending_.clear();
}

}  // namespace fim::watchd
