// SPDX-License-Identifier: GPL-2.0-or-later
// Events to pending work (main thread): each event of a source is mapped to what it touches
// (docs/design.md, Real time: events to roots by identity), and the paths, directories and
// baseline files named go into the pending sets the worker takes after the debounce.
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>

#include <algorithm>

#include "daemon.h"

namespace fim::watchd {

namespace {

std::string comm_of(int32_t pid) {
  if (pid <= 0) return {};
  auto c = read_small_file(("/proc/" + std::to_string(pid) + "/comm").c_str(), 64);
  if (!c) return {};
  std::string s = *c;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

/// The event's FAN_REPORT_FID record: the object itself (a file created, written, renamed).
const FanInfo* object_of(const Event& ev) {
  for (const auto& info : ev.infos)
    if (info.kind == FanInfo::Kind::Fid) return &info;
  return nullptr;
}

}  // namespace

Trigger& Watcher::merge_trigger(Trigger& t, const Event& ev) {
  t.mask |= ev.mask;
  if (ev.pid > 0 && ev.pid != t.pid) {
    t.pid = ev.pid;
    t.comm = comm_of(ev.pid);
  }
  if (!t.first_ns) t.first_ns = now_ns();
  return t;
}

void Watcher::enqueue(const Bytes& path, const Event& ev, bool dir_only) {
  // fimctl's own files never trigger work (a root above them would loop).
  if (std::find(own_files_.begin(), own_files_.end(), path) != own_files_.end()) return;
  bool overfull = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    merge_trigger((dir_only ? pending_dirs_ : pending_)[path], ev);
    note_evented(path);
    overfull = pending_.size() + pending_dirs_.size() + pending_inodes_.size() > o_.max_pending;
  }
  if (overfull) {
    ++coalesced_;
    mark_all_dirty("coalesced", now_ns());
  }
  cv_.notify_one();
}

void Watcher::enqueue_inode(const FileId& id, const Event& ev, Bytes via) {
  bool overfull = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    Trigger& t = merge_trigger(pending_inodes_[id], ev);
    if (!via.empty()) t.via = std::move(via);
    overfull = pending_.size() + pending_dirs_.size() + pending_inodes_.size() > o_.max_pending;
  }
  if (overfull) {
    ++coalesced_;
    mark_all_dirty("coalesced", now_ns());
  }
  cv_.notify_one();
}

void Watcher::by_identity(const FanInfo& object, const Event& ev, const FanInfo* dir, bool inside) {
  std::shared_ptr<const std::vector<uint64_t>> inodes;
  {
    std::lock_guard<std::mutex> lk(mu_);
    inodes = inodes_;
  }
  if (!inodes || inodes->empty()) return;
  UniqueFd fd = locator_.open_object(object);
  struct stat sb;
  if (!fd.valid() || ::fstat(fd.get(), &sb) != 0) return;
  const FileId id{sb.st_dev, static_cast<uint64_t>(sb.st_ino)};
  if (!std::binary_search(inodes->begin(), inodes->end(), id.ino)) return;
  // A second name (link(2) from anywhere): its writes are events from now on, whatever name
  // they come through; the compare below, after this, sees what came before.
  if (S_ISREG(sb.st_mode) && sb.st_nlink > 1) mark_file(fd.get());
  // A name outside every root: said in the record, so the admin finds the link.
  Bytes via;
  if (!inside && dir)
    if (auto d = locator_.resolve(*dir)) via = dir->name.empty() || dir->name == "." ? *d : join_path(*d, dir->name);
  enqueue_inode(id, ev, std::move(via));
}

void Watcher::note_apt_write(const Event& ev, const Bytes& path, const FanInfo* object) {
  // Removals write nothing; a directory's own entry is weighed by what is in it.
  constexpr uint64_t kWrites = FAN_CLOSE_WRITE | FAN_MODIFY | FAN_CREATE | FAN_MOVED_TO | FAN_ATTRIB;
  // A maintenance window's writer: removals too (a window may take them), and directories.
  if (ev.mask & (kWrites | FAN_DELETE | FAN_MOVED_FROM)) window_writes_.on_write(ev.pid, path);
  if (!dpkg_.active() || !(ev.mask & kWrites) || (ev.mask & FAN_ONDIR)) return;
  struct stat sb{};
  // The inode the event names (not the one at the path now: it may be replaced meanwhile).
  if (object)
    if (UniqueFd fd = locator_.open_object(*object); !fd.valid() || ::fstat(fd.get(), &sb) != 0) sb = {};
  dpkg_.on_write(ev.pid, path, sb.st_dev, static_cast<uint64_t>(sb.st_ino));
}

void Watcher::on_event(Event&& ev) {
  ++events_;
  if (!ev.loss.empty()) {
    dpkg_.on_loss(*state_);
    window_writes_.on_loss(*state_);
    if (ev.loss == "overflow") ++overflows_;
    mark_all_dirty(ev.loss, loss_since_);
    return;
  }
  if (ev.bpf) {
    --events_;  // counted apart (fimctl_bpf_events_total)
    on_sensor_event(std::move(*ev.bpf));
    return;
  }
  on_container_event(ev);
  const bool dirent = ev.mask & (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO);
  const FanInfo* object = nullptr;  // FAN_REPORT_FID: the file itself (TARGET_FID: also for dirents)
  const FanInfo* named_dir = nullptr;
  bool inside = false, touched_root = false;
  for (const auto& info : ev.infos) {
    if (info.kind == FanInfo::Kind::Fid) {
      object = &info;
      continue;
    }
    named_dir = &info;
    const Located loc = locator_.locate(info);
    const bool named = !info.name.empty() && info.name != ".";
    // The component on the way to a root: the root (or an ancestor) created, removed,
    // renamed, chmod-ed. Its subtree is compared, and the roots' identities read again.
    for (const auto& [component, root] : loc.above)
      if (named && info.name == component) {
        enqueue(root, ev);
        touched_root = true;
      }
    if (loc.where == Located::Where::Unknown) {
      // A directory gone or moved before we looked: its own delete/move event, on a parent
      // that still exists, covers what was in it.
      ++unresolved_;
    } else if (loc.where == Located::Where::Inside) {
      inside = true;
      const Bytes path = named ? join_path(loc.path, info.name) : loc.path;
      // A directory that came to be below a root: marked now, its subtree by the worker
      // before it compares it (Trigger::mark_tree), so nothing falls between the two.
      if (named && (ev.mask & FAN_ONDIR) && (ev.mask & (FAN_CREATE | FAN_MOVED_TO))) {
        if (UniqueFd fd(open_in_root(-1, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)); fd.valid() && fan_)
          (void)fan_->mark(FanotifySource::Mark::Directory, fd.get());
        enqueue(path, ev);
        std::lock_guard<std::mutex> lk(mu_);
        if (auto it = pending_.find(path); it != pending_.end()) it->second.mark_tree = true;
      } else {
        enqueue(path, ev);
        if (named && info.kind != FanInfo::Kind::OldDfidName) note_apt_write(ev, path, object_of(ev));
      }
      // The directory's own entry changed too (times, link count): a name in it came or went.
      if (named && dirent) {
        enqueue(loc.path, ev, true);
        window_writes_.on_write(ev.pid, loc.path);
      }
    }
  }
  if (object && !named_dir) {
    // No directory record: an event on the object itself (a link count changed by link(2) or
    // unlink(2) anywhere). A directory locates like any; a file by its identity, else by the
    // directory its path names now.
    const Located loc = locator_.locate(*object);
    if (loc.where == Located::Where::Inside) {
      inside = true;
      enqueue(loc.path, ev);
      note_apt_write(ev, loc.path, object);
    } else if (auto p = loc.where == Located::Where::Unknown ? locator_.resolve(*object) : std::nullopt) {
      Bytes dir, name;
      split_path(*p, &dir, &name);
      FanInfo parent;
      parent.path = dir;
      if (const Located pl = locator_.locate(parent); pl.where == Located::Where::Inside) enqueue(join_path(pl.path, name), ev);
    }
  }
  // Whatever name the event came through: a file the baseline records is compared under its
  // baseline names (a hard link made outside every root and written through).
  if (object) by_identity(*object, ev, named_dir, inside);
  if (touched_root) locator_.refresh();  // later events in the new root locate already
  if ((ev.mask & FAN_ONDIR) && (ev.mask & (FAN_MOVED_FROM | FAN_MOVED_TO))) locator_.invalidate();
}

}  // namespace fim::watchd
