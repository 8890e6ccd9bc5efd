// SPDX-License-Identifier: GPL-2.0-or-later
// Mounts over and under the watched roots (see mounts.h): the mountinfo parser, the
// snapshot diff, the classification against the roots, where changes come from, and what the
// daemon does about each (an alert, the root degraded while the mount stays, a rescan, a
// filesystem mark on what was mounted).
#include "mounts.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <set>

#include "fim/base/sys.h"
#include "daemon.h"

namespace fim::watchd {

namespace {

// Mount notifications (kernels from 6.14; Debian 12's headers predate them): values of
// include/uapi/linux/fanotify.h.
constexpr unsigned kFanReportMnt = 0x00004000;
constexpr unsigned kFanMarkMntns = 0x00000110;
constexpr uint64_t kFanMntAttach = 0x01000000, kFanMntDetach = 0x02000000;

constexpr size_t kMaxMountinfo = size_t{64} << 20;  // 100,000 mounts are ~15 MiB

/// The directory at or nearest above `p` that exists (a root hidden by a mount may not).
Bytes nearest_dir(Bytes p) {
  struct stat sb {};
  while (p != "/" && (::stat(p.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))) {
    Bytes dir, name;
    split_path(p, &dir, &name);
    p = dir.empty() ? Bytes("/") : dir;
  }
  return p;
}

}  // namespace

Result<std::vector<MountEntry>> parse_mountinfo_strict(std::string_view text) {
  std::vector<MountEntry> out;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    auto m = parse_mount_line(line);
    if (!m) return make_error(Errc::Io, "mountinfo line " + std::to_string(line_no) + " is not a mount: " + quote(line.substr(0, 200)));
    out.push_back(std::move(*m));
  }
  return out;
}

MountDiff diff_mounts(const std::vector<MountEntry>& before, const std::vector<MountEntry>& after) {
  std::map<uint64_t, const MountEntry*> old_by_id, new_by_id;
  for (const auto& m : before) old_by_id[m.mount_id] = &m;
  for (const auto& m : after) new_by_id[m.mount_id] = &m;
  MountDiff d;
  for (const auto& m : before) {
    const auto it = new_by_id.find(m.mount_id);
    if (it == new_by_id.end() || !m.same(*it->second)) d.detached.push_back(m);
  }
  for (const auto& m : after) {
    const auto it = old_by_id.find(m.mount_id);
    if (it == old_by_id.end() || !m.same(*it->second)) d.attached.push_back(m);
  }
  return d;
}

MountImpact mount_impact(const Bytes& point, const std::vector<Bytes>& real_roots) {
  MountImpact imp;
  for (size_t i = 0; i < real_roots.size(); ++i) {
    if (path_within(real_roots[i], point)) imp.under.push_back(i);  // the root itself, or above it
    else if (path_within(point, real_roots[i])) imp.over.push_back(i);
  }
  return imp;
}

Bytes real_root(const Bytes& root) {
  // Down from the root to its nearest existing ancestor, resolved; then the rest again.
  Bytes at = root, rest;
  for (;;) {
    const std::unique_ptr<char, CDeleter<std::free>> real(::realpath(at.c_str(), nullptr));
    if (real) return rest.empty() ? Bytes(real.get()) : join_path(real.get(), rest);
    if (at == "/" || at.empty()) return root;
    Bytes dir, name;
    split_path(at, &dir, &name);
    rest = rest.empty() ? name : join_path(name, rest);
    at = dir;
  }
}

UniqueFd open_mount_watch(std::string* why) {
  UniqueFd fd(::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | kFanReportMnt, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    *why = "fanotify_init(FAN_REPORT_MNT): " + errno_name(errno);
    return {};
  }
  UniqueFd ns(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  if (!ns.valid() || ::fanotify_mark(fd.get(), FAN_MARK_ADD | kFanMarkMntns, kFanMntAttach | kFanMntDetach, ns.get(),
                                     nullptr) != 0) {
    *why = "fanotify_mark(FAN_MARK_MNTNS): " + errno_name(errno);
    return {};
  }
  return fd;
}

Status MountWatch::open(bool events) {
  // Before the first read: a change between the two wakes the fd.
  if (events) fan_ = open_mount_watch(&why_);
  else why_ = "--mount-events poll";
  info_.reset(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!info_.valid()) return make_error(Errc::Io, "cannot open /proc/self/mountinfo", errno);
  auto text = read_info();
  if (!text) return text.error();
  auto mounts = parse_mountinfo_strict(*text);
  if (!mounts) return mounts.error();
  text_ = std::move(*text);
  mounts_ = std::move(*mounts);
  next_read_ = monotonic_seconds() + 1;
  return {};
}

uint32_t MountWatch::fd_events() const { return fan_.valid() ? EPOLLIN : EPOLLPRI; }

void MountWatch::drain() {
  if (!fan_.valid()) return;  // mountinfo's flag is cleared by the poll that reported it
  char buf[4096];
  while (::read(fan_.get(), buf, sizeof buf) > 0) {
  }
}

bool MountWatch::due(double now) {
  if (now < next_read_) return false;
  next_read_ = now + 1;
  return true;
}

Result<std::string> MountWatch::read_info() {
  // One read at a time from offset 0: the kernel builds the text as it is read.
  std::string out;
  char buf[65536];
  for (off_t off = 0;;) {
    const ssize_t n = ::pread(info_.get(), buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::Io, "cannot read /proc/self/mountinfo", errno);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    off += n;
    if (out.size() > kMaxMountinfo) return make_error(Errc::Io, "/proc/self/mountinfo is larger than 64 MiB");
  }
}

Result<MountDiff> MountWatch::refresh() {
  if (!info_.valid()) {  // open() failed: this read is the first snapshot
    FIM_TRY(open(false));
    return MountDiff{};
  }
  auto text = read_info();
  if (!text) return text.error();
  if (*text == text_) return MountDiff{};
  auto mounts = parse_mountinfo_strict(*text);
  if (!mounts) return mounts.error();
  MountDiff d = diff_mounts(mounts_, *mounts);
  text_ = std::move(*text);
  mounts_ = std::move(*mounts);
  return d;
}

std::vector<Bytes> MountWatch::real_roots(const std::vector<Bytes>& roots) {
  std::vector<Bytes> out;
  for (const auto& r : roots) {
    auto it = real_.find(r);
    if (it == real_.end()) it = real_.emplace(r, real_root(r)).first;
    out.push_back(it->second);
  }
  return out;
}

// The daemon's side: main thread only.

Status Watcher::start_mounts(int epoll_fd) {
  if (Status st = mounts_.open(o_.mount_events != "poll"); !st) {
    // Files are still watched: say that mounts are not, and try again every second (tick).
    sink_.alert("mount_watch_failed", "mounts over the roots are not seen: " + st.error().describe());
    next_mount_alert_ = monotonic_seconds() + 60;
    return {};
  }
  epoll_event e{};
  e.events = mounts_.fd_events();
  e.data.fd = mounts_.fd();
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, mounts_.fd(), &e) != 0) return make_error(Errc::Io, "epoll_ctl", errno);
  return {};
}

void Watcher::check_mounts(bool woken) {
  if (woken) mounts_.drain();
  else if (!mounts_.due(monotonic_seconds())) return;
  auto d = mounts_.refresh();
  if (!d) {
    // Nothing to compare with until it reads again: say so (once a minute at most).
    if (monotonic_seconds() >= next_mount_alert_) {
      sink_.alert("mount_watch_failed", "mounts over the roots are not seen: " + d.error().describe());
      next_mount_alert_ = monotonic_seconds() + 60;
    }
    return;
  }
  if (d->empty()) return;
  // A runtime mounts a container's root before its first process starts: look for it now.
  if (containers_) containers_->poke(monotonic_seconds());
  std::vector<Bytes> roots;
  {
    std::lock_guard<std::mutex> lk(mu_);
    roots = roots_;
  }
  const std::vector<Bytes> real = mounts_.real_roots(roots);
  // A remount in place (options only) of a mount that was there before the daemon: reported
  // and rescanned, but it hides nothing it did not hide already.
  std::set<uint64_t> in_place;
  for (const auto& a : d->attached)
    for (const auto& m : d->detached)
      if (a.mount_id == m.mount_id && a.mount_point == m.mount_point && a.root == m.root && a.device == m.device && !mounts_.hiding().count(m.mount_id))
        in_place.insert(a.mount_id);
  // Detached first: a remount is its old self detached, then its new self attached.
  for (const auto& m : d->detached)
    if (MountImpact imp = mount_impact(m.mount_point, real); !imp.empty()) on_mount(m, imp, roots, false, false);
  for (const auto& m : d->attached)
    if (MountImpact imp = mount_impact(m.mount_point, real); !imp.empty()) on_mount(m, imp, roots, true, !in_place.count(m.mount_id));
  on_own_mounts(*d, in_place);
}

void Watcher::on_mount(const MountEntry& m, const MountImpact& imp, const std::vector<Bytes>& roots, bool attached,
                       bool hides) {
  const int64_t now = now_ns();
  std::vector<Bytes> affected, over, under;
  for (size_t i : imp.over) over.push_back(roots[i]);
  for (size_t i : imp.under) under.push_back(roots[i]);
  affected = over;
  affected.insert(affected.end(), under.begin(), under.end());

  // Writes inside what was mounted are events too: its filesystem gets a mark of its own (a
  // file bound over a file: the filesystem the file lives on; a mount at or above a root: the
  // root's). Resolved without keeping the mount busy: its owner may unmount it.
  std::string mark_error;
  locator_.refresh();  // a mount at or above a root gives it another identity
  if (attached && fan_) {  // (replayed events: nothing to mark)
    std::vector<Bytes> dirs;  // where the mount's filesystem is reached now
    for (const auto& r : under) {
      dirs.push_back(nearest_dir(r));
      (void)sensors_.watch_root(r);  // the root's new inode, for the BPF sensors
    }
    struct stat sb {};
    if (!over.empty() && ::stat(m.mount_point.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) dirs.push_back(m.mount_point);
    else if (Status ms = over.empty() ? Status() : fan_->mark_filesystem(m.mount_point); !ms) mark_error = ms.error().describe();
    for (const auto& d : dirs) {
      Status ms = fan_->mark_filesystem(d);
      if (ms) ms = locator_.add_unpinned(d);
      if (!ms && mark_error.empty()) mark_error = ms.error().describe();
    }
  }

  json::Writer f = json::Writer::fields();
  f.object("mount").num("id", m.mount_id).num("parent_id", m.parent_id).bytes("mount_point", m.mount_point);
  f.bytes("source", m.source).str("fstype", m.fstype).bytes("root", m.root).str("device", m.device);
  f.str("options", m.options).str("super_options", m.super_options).close();
  roots_field(f, affected);
  f.array("over");
  for (const auto& r : over) f.str(r);
  f.close().array("under");
  for (const auto& r : under) f.str(r);
  f.close();
  // Neither mount events nor mountinfo name the process: unknown, never a guess.
  f.str("process", "unknown").str("seen_by", mounts_.events() ? "mount_events" : "mountinfo");
  if (!mark_error.empty()) f.str("mark_error", mark_error);

  const std::string what = m.fstype + " " + quote(m.source) + " at " + quote(m.mount_point) + " (mount id " +
                           std::to_string(m.mount_id) + ")";
  std::string roots_text;
  for (const auto& r : affected) roots_text += (roots_text.empty() ? "" : ", ") + quote(r);
  std::string msg = std::string(attached ? "mounted: " : "unmounted: ") + what +
                    (under.empty() ? ", part of root " : ", holding root ") + roots_text +
                    ", by an unknown process; rescanning";
  if (!mark_error.empty()) msg += " (writes inside it are not seen: " + mark_error + ")";
  ++changes_;  // a root's files changed as much as if they had been written
  sink_.alert_with(attached ? "mount_attached" : "mount_detached", msg, f, attached ? LOG_ERR : LOG_WARNING);

  for (const auto& r : affected) recorded(state_->mark_dirty(o_.run.db_path, r, "mount", now), "a dirty root");
  // While it stays, the root is not the tree the baseline recorded: degraded (status exits 8).
  std::lock_guard<std::mutex> lk(mu_);
  auto& hiding = mounts_.hiding();
  if (auto it = hiding.find(m.mount_id); it != hiding.end()) {
    for (const auto& line : it->second) {
      auto pos = std::find(degraded_.begin(), degraded_.end(), line);
      if (pos != degraded_.end()) degraded_.erase(pos);
    }
    hiding.erase(it);
  }
  if (attached && hides) {
    auto& lines = hiding[m.mount_id];
    for (const auto& r : over)
      lines.push_back(escape_terminal(r) + ": " + escape_terminal(m.mount_point) + " is hidden by a mount (" + what + ")");
    for (const auto& r : under) lines.push_back(escape_terminal(r) + ": is inside a mount (" + what + ")");
    degraded_.insert(degraded_.end(), lines.begin(), lines.end());
  }
  for (const auto& r : affected) set_dirty(r, "mount", now);
  cv_.notify_one();
}

}  // namespace fim::watchd
