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
  // A kernel thread (nfsd, ksmbd) writes for someone else, whatever its uid: never a writer.
  if (pkg::proc_exe(pid, proc).empty()) return false;
  const size_t colon = writer.find(':');
  const std::string by = writer.substr(0, colon), name = writer.substr(colon + 1);
  const std::string base = std::string(proc) + "/" + std::to_string(pid);
  if (by == "process") return p->comm == name;
  if (by == "unit") {
    // cgroup v2 "0::/system.slice/deploy.service[/...]": a unit of the host's own service manager
    // is a component below slices only; a user manager's (user.slice/user@UID.service/...) or a
    // container's (machine.slice/...) unit of the same name is someone else's.
    auto cg = read_small_file((base + "/cgroup").c_str(), 16384);
    if (!cg) return false;
    const size_t v2 = cg->rfind("0::/", 0) == 0 ? 0 : cg->find("\n0::/") == std::string::npos ? std::string::npos
                                                                                             : cg->find("\n0::/") + 1;
    if (v2 == std::string::npos) return false;
    const std::string path = cg->substr(v2 + 4, cg->find('\n', v2) - v2 - 4);
    size_t b = 0;
    while (b <= path.size()) {
      const size_t e = std::min(path.find('/', b), path.size());
      const std::string comp = path.substr(b, e - b);
      if (comp == name) return true;
      const bool slice = comp.size() > 6 && comp.compare(comp.size() - 6, 6, ".slice") == 0;
      if (!slice || comp.rfind("user", 0) == 0 || comp.rfind("machine", 0) == 0) return false;
      b = e + 1;
    }
    return false;
  }
  if (by == "user") {
    auto st = read_small_file((base + "/status").c_str(), 16384);
    if (!st) return false;
    // Real and effective: a process that wrote as another user and then ran a set-user-ID
    // program has the owner's effective uid when we look, but not its real one.
    const std::string uid = status_field("\n" + *st, "Uid");  // real, effective, saved, fs
    const size_t t1 = uid.find('\t');
    if (t1 == std::string::npos) return false;
    const std::string real = uid.substr(0, t1);
    const std::string effective = uid.substr(t1 + 1, uid.find('\t', t1 + 1) - t1 - 1);
    return real == name && effective == name;
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
  if (active_.empty()) inodes_.clear();
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

void WindowWrites::note(Active& a, const std::string& id, const Bytes& path, bool by_writer, const std::string& who,
                        uint64_t dev, uint64_t ino) {
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
  if (ino) w.dev = dev, w.ino = ino;
  a.pending.push_back(path);
  if (a.seen.size() > kMaxPaths) a.lossy = true;
}

bool WindowWrites::note_inode(const std::string& id, uint64_t dev, uint64_t ino, bool by_writer, const std::string& who) {
  InodeWrite& f = inodes_[{dev, ino}];
  auto [it, fresh] = f.by_writer.try_emplace(id, by_writer);
  it->second = it->second && by_writer;
  f.who = who;
  return it->second;
}

bool WindowWrites::active() {
  std::lock_guard<std::mutex> lk(mu_);
  return !active_.empty();
}

void WindowWrites::on_write(int32_t pid, const Bytes& path, uint64_t dev, uint64_t ino) {
  std::lock_guard<std::mutex> lk(mu_);
  if (inodes_.size() >= kMaxPaths)
    for (auto& [id, a] : active_) a.lossy = true;  // no longer bounded: vouch for nothing
  for (auto& [id, a] : active_) {
    if (a.lossy) continue;
    std::string who;
    bool by_writer = is_window_writer(a.window->writer, pid, &who);
    // The file itself, under whatever name it was written before (a temp file renamed in).
    if (ino) by_writer = note_inode(id, dev, ino, by_writer, who);
    if (a.window->covers(path)) note(a, id, path, by_writer, who, dev, ino);
  }
}

void WindowWrites::on_inode(int32_t pid, uint64_t dev, uint64_t ino) {
  std::lock_guard<std::mutex> lk(mu_);
  if (active_.empty()) return;
  if (inodes_.size() >= kMaxPaths) {
    for (auto& [id, a] : active_) a.lossy = true;  // no longer bounded: vouch for nothing
    return;
  }
  for (auto& [id, a] : active_) {
    std::string who;
    note_inode(id, dev, ino, is_window_writer(a.window->writer, pid, &who), who);
  }
}

void WindowWrites::attach(const Bytes& path, uint64_t dev, uint64_t ino) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = inodes_.find({dev, ino});
  if (it == inodes_.end()) return;
  for (auto& [id, a] : active_) {
    auto by = it->second.by_writer.find(id);
    if (a.lossy || !a.window->covers(path) || by == it->second.by_writer.end()) continue;
    note(a, id, path, by->second, it->second.who, dev, ino);
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
    if (n && (!n->has(Attr::Inode) || static_cast<uint64_t>(n->get(Attr::Inode).num) != s->second.ino)) continue;
    return std::make_pair(w.id, std::string(kind == ChangeKind::Removed ? "removed" : "written") + " by " + s->second.who);
  }
  return std::nullopt;
}

}  // namespace fim::watchd
