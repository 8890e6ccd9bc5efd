// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's side of maintenance windows that name a writer (see window_writes.h).
#include "window_writes.h"

#include "fim/ancestry.h"
#include "fim/base/sys.h"

namespace fim::watchd {

namespace {

// Paths classified per window at most: past it the window vouches for nothing (a bounded
// daemon and state.db).
constexpr size_t kMaxPaths = 100000;

/// A line of /proc/PID/status ("Uid:\t0\t0\t0\t0" -> "0\t0\t0\t0"), or "".
std::string status_field(const std::string& status, const std::string& key) {
  const size_t at = status.find("\n" + key + ":");
  if (at == std::string::npos) return {};
  size_t b = at + key.size() + 2;
  while (b < status.size() && (status[b] == '\t' || status[b] == ' ')) ++b;
  return status.substr(b, status.find('\n', b) - b);
}

}  // namespace

bool is_window_writer(const std::string& writer, int32_t pid, std::string* who, const char* proc) {
  *who = "pid " + std::to_string(pid) + ", gone";
  const auto p = pkg::read_proc(pid, proc);
  if (!p) return false;
  *who = p->comm + " (pid " + std::to_string(pid) + ")";
  const size_t colon = writer.find(':');
  const std::string by = writer.substr(0, colon), name = writer.substr(colon + 1);
  const std::string base = std::string(proc) + "/" + std::to_string(pid);
  if (by == "process") return p->comm == name;
  if (by == "unit") {
    // cgroup v2 "0::/system.slice/deploy.service" (v1: one line per hierarchy): the unit is a
    // component of the path, so a process the unit started stays its own.
    auto cg = read_small_file((base + "/cgroup").c_str(), 16384);
    if (!cg) return false;
    for (size_t at = 0; (at = cg->find("/" + name, at)) != std::string::npos; at += name.size() + 1) {
      const char next = at + name.size() + 1 < cg->size() ? (*cg)[at + name.size() + 1] : '\n';
      if (next == '/' || next == '\n') return true;
    }
    return false;
  }
  if (by == "user") {
    auto st = read_small_file((base + "/status").c_str(), 16384);
    if (!st) return false;
    const std::string uid = status_field("\n" + *st, "Uid");  // real, effective, saved, fs
    const size_t t1 = uid.find('\t');
    const std::string effective = t1 == std::string::npos ? "" : uid.substr(t1 + 1, uid.find('\t', t1 + 1) - t1 - 1);
    return effective == name;
  }
  return false;
}

void WindowWrites::set_windows(const std::string& baseline_id, std::vector<Window> windows) {
  std::lock_guard<std::mutex> lk(mu_);
  if (baseline_id != baseline_id_) active_.clear();
  baseline_id_ = baseline_id;
  // Active windows point into windows_: re-pointed to the same window of the new list.
  std::map<std::string, Active> kept;
  windows_ = std::move(windows);
  for (auto& [id, a] : active_)
    for (const Window& w : windows_)
      if (w.id == id) {
        a.window = &w;
        kept.emplace(id, std::move(a));
      }
  active_ = std::move(kept);
}

void WindowWrites::poll(StateStore& st) {
  std::lock_guard<std::mutex> lk(mu_);
  const int64_t now = now_ns();
  for (const Window& w : windows_) {
    if (w.writer.empty() || active_.count(w.id) || now < w.opened_ns || now >= w.end_ns()) continue;
    Active a;
    a.window = &w;
    a.from_ns = now;  // writes before now were not classified: check does not tag them
    active_.emplace(w.id, std::move(a));
  }
  for (auto it = active_.begin(); it != active_.end();) {
    Active& a = it->second;
    const int64_t end = a.window->end_ns();
    flush(st, a, std::min(now, end));
    it = now >= end ? active_.erase(it) : std::next(it);
  }
}

void WindowWrites::flush(StateStore& st, Active& a, int64_t to_ns) {
  std::vector<StateStore::WindowWrite> batch;
  for (const Bytes& p : a.pending) batch.push_back(a.seen[p]);
  if (!st.add_window_writes(baseline_id_, a.window->id, a.from_ns, to_ns, a.lossy, batch)) {
    a.lossy = true;  // not stored: a write by someone else may be among them
    (void)st.add_window_writes(baseline_id_, a.window->id, a.from_ns, 0, true, {});
  }
  a.pending.clear();
}

void WindowWrites::on_write(int32_t pid, const Bytes& path) {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& [id, a] : active_) {
    if (a.lossy || !a.window->covers(path)) continue;
    std::string who;
    const bool by_writer = is_window_writer(a.window->writer, pid, &who);
    auto [it, fresh] = a.seen.try_emplace(path);
    StateStore::WindowWrite& w = it->second;
    if (fresh) {
      w.window = id;
      w.path = path;
      w.by_writer = by_writer;
    }
    w.by_writer = w.by_writer && by_writer;
    w.at_ns = now_ns();
    w.who = who;
    a.pending.push_back(path);
    if (a.seen.size() > kMaxPaths) a.lossy = true;
  }
}

void WindowWrites::on_loss(StateStore& st) {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& [id, a] : active_) {
    a.lossy = true;
    (void)st.add_window_writes(baseline_id_, id, a.from_ns, 0, true, {});
  }
}

std::optional<std::pair<std::string, std::string>> WindowWrites::tag(ChangeKind kind, const Record* o, const Record* n) {
  std::lock_guard<std::mutex> lk(mu_);
  const Record& any = n ? *n : *o;
  const int64_t now = now_ns();
  for (const Window& w : windows_) {
    if (!w.covers(any.path) || now < w.opened_ns) continue;
    if (w.writer.empty()) {
      if (kind == ChangeKind::Removed || !n || !n->has(Attr::Ctime)) continue;
      const int64_t ctime = n->get(Attr::Ctime).num;
      if (ctime >= w.opened_ns && ctime < w.end_ns() && ctime <= now) return std::make_pair(w.id, "changed " + format_time_ns(ctime) + ", inside the window");
      continue;
    }
    auto a = active_.find(w.id);
    if (a == active_.end() || a->second.lossy) continue;
    auto s = a->second.seen.find(any.path);
    if (s == a->second.seen.end() || !s->second.by_writer) continue;
    return std::make_pair(w.id, std::string(kind == ChangeKind::Removed ? "removed" : "written") + " by " + s->second.who);
  }
  return std::nullopt;
}

}  // namespace fim::watchd
