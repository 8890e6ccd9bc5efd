// SPDX-License-Identifier: GPL-2.0-or-later
// Container roots, the main thread's side (see container_roots.h): the containers found,
// their upper directories marked in the daemon's own fanotify group, and events below an
// upper directory turned into pending container paths for the worker.
#include "container_roots.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include "fim/pipeline.h"
#include "daemon.h"

namespace fim::watchd {

std::optional<UpperPath> upper_path(const std::set<Bytes>& uppers, const Bytes& path) {
  const Bytes* best = nullptr;
  for (const auto& u : uppers)
    if (path_within(path, u) && (!best || u.size() > best->size())) best = &u;
  if (!best) return std::nullopt;
  Bytes inside = path.substr(best->size() == 1 ? 0 : best->size());
  if (inside.empty()) inside = "/";
  return UpperPath{*best, std::move(inside)};
}

ContainerRoots::Change ContainerRoots::update(const std::vector<Container>& found) {
  Change out;
  RuntimeMetadata meta;  // read only when a container is new
  std::set<Bytes> seen;
  for (const auto& c : found) {
    if (!c.overlay || c.overlay->upper.empty()) continue;  // no upper layer: nothing can drift
    const Bytes& upper = c.overlay->upper;
    seen.insert(upper);
    if (by_upper_.count(upper)) continue;
    auto r = std::make_shared<ContainerRoot>();
    r->c = c;
    r->id = meta.identify(c);
    r->key = baseline_key_of(c, r->id);
    r->db = image_baseline_path(db_path_, r->key.key);
    r->key.source = baseline_source(r->db);
    r->upper = upper;
    r->field = container_object(c, r->id, r->key);
    r->label = container_label(c, r->id);
    by_upper_.emplace(upper, r);
    uppers_.insert(upper);
    out.started.push_back(std::move(r));
  }
  for (auto it = by_upper_.begin(); it != by_upper_.end();) {
    if (seen.count(it->first)) {
      ++it;
      continue;
    }
    out.stopped.push_back(it->second);
    uppers_.erase(it->first);
    it = by_upper_.erase(it);
  }
  return out;
}

void Watcher::start_containers() {
  if (!o_.containers) return;
  containers_ = std::make_unique<ContainerRoots>(o_.run.db_path, o_.container_poll_seconds);
  json::Writer f = json::Writer::fields();
  f.boolean("mount_events", mounts_.events()).raw("poll_seconds", std::to_string(o_.container_poll_seconds));
  sink_.event("containers_watch", f,
              std::string("watching containers (") +
                  (mounts_.events() ? "mount events" : "no mount events: " + mounts_.why_not_events()) + ")");
  poll_containers();
}

void Watcher::poll_containers() {
  const double now = monotonic_seconds();
  if (!containers_ || !containers_->due(now)) return;
  auto found = discover_containers();
  if (!found) return sink_.alert("containers", "cannot list containers: " + found.error().describe());
  const auto change = containers_->update(*found);
  const int64_t wall = now_ns();
  for (const auto& r : change.started) {
    if (::access(r->db.c_str(), F_OK) != 0 && containers_->warn_no_baseline(r->key.key)) {
      json::Writer f = json::Writer::fields();
      f.raw("container", r->field);
      sink_.alert_with("container_no_baseline", no_image_baseline_message(r->label, r->id, r->key, r->db), f);
    }
    // Marked before it is compared (the start rescan below): nothing falls between the two.
    (void)locator_.add_filesystem(r->upper);
    if (Status st = mark_tree(r->upper); !st) sink_.alert("mark_failed", r->label + ": " + st.error().describe());
    json::Writer f = json::Writer::fields();
    f.raw("container", r->field);
    sink_.event("container_start", f, "watching " + r->label);
    std::lock_guard<std::mutex> lk(mu_);
    ctr_.tracked[r->upper] = r;
    ctr_.dirty[r->upper] = ContainerQueue::Dirty{"start", wall};
  }
  for (const auto& r : change.stopped) {
    json::Writer f = json::Writer::fields();
    f.raw("container", r->field);
    sink_.event("container_stop", f, r->label + " stopped");
    std::lock_guard<std::mutex> lk(mu_);
    ctr_.tracked.erase(r->upper);
    if (auto w = ctr_.work.find(r->upper); w != ctr_.work.end()) {
      ctr_.paths -= w->second.paths.size();
      ctr_.work.erase(w);
    }
    // A dirty mark stays: the worker drops it, and closes a gap that waits for it.
  }
  if (!change.started.empty()) cv_.notify_one();
}

void Watcher::on_container_event(const Event& ev) {
  if (!containers_ || containers_->uppers().empty()) return;
  // This daemon's own compares read the containers, and overlayfs answers a read of a merged
  // directory by setting its xattrs on the upper one (an attrib event in the reader's name):
  // without this filter every compare would trigger the next.
  if (ev.pid == ::getpid()) return;
  // Who wrote: only an event that changes something names a writer (not the attrib of a
  // directory, which overlayfs makes when anyone reads through it). kill_process kills it.
  const bool writes = (ev.mask & (FAN_MODIFY | FAN_CLOSE_WRITE | FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO)) ||
                      ((ev.mask & FAN_ATTRIB) && !(ev.mask & FAN_ONDIR));
  Event who;
  who.mask = ev.mask;
  who.pid = writes ? ev.pid : 0;
  bool queued = false;
  for (const auto& info : ev.infos) {
    if (info.kind == FanInfo::Kind::Fid || info.kind == FanInfo::Kind::Dfid) continue;
    auto dir = locator_.resolve(info);
    if (!dir) continue;
    const bool named = !info.name.empty() && info.name != ".";
    const Bytes path = named ? join_path(*dir, info.name) : *dir;
    auto at = upper_path(containers_->uppers(), path);
    if (!at) continue;
    // A directory that came to be in the upper layer (made, or copied up from a lower one):
    // marked now, its subtree by the worker before it compares it.
    const bool new_dir = named && (ev.mask & FAN_ONDIR) && (ev.mask & (FAN_CREATE | FAN_MOVED_TO));
    if (new_dir && fan_)
      if (UniqueFd fd(open_in_root(-1, path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)); fd.valid())
        (void)fan_->mark(FanotifySource::Mark::Directory, fd.get());
    std::lock_guard<std::mutex> lk(mu_);
    ContainerWork& w = ctr_.work[at->upper];
    if (w.paths.insert(at->inside).second) ++ctr_.paths;
    if (new_dir) w.mark_trees.insert(path);
    merge_trigger(w.trigger, who);
    if (ctr_.paths > o_.max_pending) {
      // Too much to keep path by path: the container is rescanned instead.
      ++coalesced_;
      ctr_.paths -= w.paths.size();
      ctr_.work.erase(at->upper);
      ctr_.dirty[at->upper] = ContainerQueue::Dirty{"coalesced", now_ns()};
    }
    queued = true;
  }
  if (queued) cv_.notify_one();
}

}  // namespace fim::watchd
