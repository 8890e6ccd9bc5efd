// SPDX-License-Identifier: GPL-2.0-or-later
// Mounts over fimctl's own files and directories (docs/design.md, Real time, Mounts over
// fimctl's own files): a filesystem bound or mounted over the baseline's directory, the keys
// directory or the policy's hides them without one write. The mount watcher reports such a mount
// once it is there (on_own_mounts); the BPF LSM mount hooks (sb_mount, move_mount) see it before,
// name who made it and, with --enforce, deny it where the daemon or the host would see it. What
// the hooks guard: the directories, every ancestor of them but /, and the files in them that are
// protected.
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "daemon.h"
#include "mounts.h"
#include "fim_abi.h"

namespace fim::watchd {

std::vector<Bytes> path_ancestors(const Bytes& dir) {
  std::vector<Bytes> out;
  if (dir.empty() || dir[0] != '/') return out;
  for (size_t at = dir.find('/', 1); at != Bytes::npos; at = dir.find('/', at + 1))
    if (at > 0 && dir[at - 1] != '/') out.push_back(dir.substr(0, at));
  Bytes whole = dir;
  while (whole.size() > 1 && whole.back() == '/') whole.pop_back();
  if (whole != "/" && (out.empty() || out.back() != whole)) out.push_back(whole);
  return out;
}

std::vector<Bytes> mount_guard_paths(const std::vector<Bytes>& dirs, const std::vector<Bytes>& files) {
  std::vector<Bytes> out;
  auto add = [&](const Bytes& p) {
    if (!p.empty() && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  for (const auto& d : dirs) {
    Bytes abs = d;
    char buf[PATH_MAX];
    if (!abs.empty() && abs[0] != '/' && ::getcwd(buf, sizeof buf)) abs = join_path(buf, abs);
    // Both the path as named and its real path: a mount over a symlink's parent changes what
    // the name reaches, one over the real directory's parent hides the directory itself.
    for (const auto& a : path_ancestors(abs)) add(a);
    if (char* real = ::realpath(abs.c_str(), nullptr)) {
      for (const auto& a : path_ancestors(real)) add(a);
      std::free(real);
    }
  }
  for (const auto& f : files) add(f);
  return out;
}

std::vector<Bytes> Watcher::own_dirs(std::vector<Bytes>* files) {
  Bytes db_dir, policy_dir, name;
  split_path(o_.run.db_path, &db_dir, &name);
  std::vector<Bytes> dirs = {db_dir.empty() ? Bytes(".") : db_dir};
  if (files) *files = own_files_;
  if (!o_.run.keys_dir.empty()) {
    dirs.push_back(o_.run.keys_dir);
    if (files) files->push_back(join_path(o_.run.keys_dir, "signing.key"));
    if (files) files->push_back(join_path(o_.run.keys_dir, "signing.pub"));
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (!sensor_policy_.policy_file.empty()) {
    split_path(sensor_policy_.policy_file, &policy_dir, &name);
    dirs.push_back(policy_dir);
    if (files) files->push_back(sensor_policy_.policy_file);
  }
  return dirs;
}

std::vector<Bytes> Watcher::mount_guarded() {
  std::vector<Bytes> files;
  const std::vector<Bytes> dirs = own_dirs(&files);
  return mount_guard_paths(dirs, files);
}

void Watcher::on_own_mounts(const MountDiff& d, const std::set<uint64_t>& in_place) {
  std::vector<Bytes> dirs = own_dirs(nullptr);
  for (auto& dir : dirs)
    if (!dir.empty() && dir[0] != '/') dir = real_root(dir);  // mount points are absolute
  const std::vector<Bytes> real = mounts_.real_roots(dirs);
  auto one = [&](const MountEntry& m, bool attached) {
    const MountImpact imp = mount_impact(m.mount_point, real);
    if (imp.empty()) return;
    std::vector<Bytes> hidden;
    for (size_t i : imp.under) hidden.push_back(dirs[i]);
    for (size_t i : imp.over) hidden.push_back(dirs[i]);
    json::Writer f = json::Writer::fields();
    f.object("mount").num("id", m.mount_id).num("parent_id", m.parent_id).bytes("mount_point", m.mount_point);
    f.bytes("source", m.source).str("fstype", m.fstype).bytes("root", m.root).str("device", m.device);
    f.str("options", m.options).str("super_options", m.super_options).close();
    roots_field(f, {});
    f.array("fimctl_paths");
    for (const auto& h : hidden) f.str(h);
    f.close();
    f.str("process", "unknown").str("seen_by", mounts_.events() ? "mount_events" : "mountinfo");
    std::string list;
    for (const auto& h : hidden) list += (list.empty() ? "" : ", ") + quote(h);
    const std::string what = m.fstype + " " + quote(m.source) + " at " + quote(m.mount_point) + " (mount id " +
                             std::to_string(m.mount_id) + ")";
    sink_.alert_with(attached ? "mount_attached" : "mount_detached",
                     std::string(attached ? "mounted: " : "unmounted: ") + what + ", over fimctl's own " + list +
                         " (baseline, state, keys or policy), by an unknown process",
                     f, attached ? LOG_ERR : LOG_WARNING);
    // While it stays, what fimctl reads there may not be its own: degraded (status exits 8).
    std::lock_guard<std::mutex> lk(mu_);
    auto& hiding = mounts_.hiding();
    if (!attached) {
      if (auto it = hiding.find(m.mount_id); it != hiding.end()) {
        for (const auto& line : it->second) {
          auto pos = std::find(degraded_.begin(), degraded_.end(), line);
          if (pos != degraded_.end()) degraded_.erase(pos);
        }
        hiding.erase(it);
      }
      return;
    }
    if (in_place.count(m.mount_id)) return;
    auto& lines = hiding[m.mount_id];
    for (const auto& h : hidden) {
      lines.push_back("fimctl's own " + escape_terminal(h) + " is hidden by a mount (" + what + ")");
      degraded_.push_back(lines.back());
    }
  };
  for (const auto& m : d.detached) one(m, false);
  for (const auto& m : d.attached) one(m, true);
}

void Sensors::deny_mounts(const std::vector<Bytes>& paths) {
  if (!sensor_) return;
  for (const auto& p : paths) (void)sensor_->deny_mounts(p);  // a file not there (yet): nothing to guard
}

namespace {

std::string mount_flags_text(uint32_t f) {
  static const std::pair<uint32_t, const char*> names[] = {
      {MS_BIND, "bind"}, {MS_MOVE, "move"}, {MS_REC, "rec"}, {MS_RDONLY, "ro"}, {MS_NOSUID, "nosuid"},
      {MS_NODEV, "nodev"}, {MS_NOEXEC, "noexec"}, {MS_PRIVATE, "private"}, {MS_SLAVE, "slave"},
      {MS_SHARED, "shared"}, {MS_UNBINDABLE, "unbindable"}};
  std::string o;
  for (const auto& [bit, n] : names)
    if (f & bit) o += (o.empty() ? "" : ",") + std::string(n);
  return o;
}

}  // namespace

void report_mount_event(const BpfEvent& ev, StreamSink& sink) {
  const uint32_t scope = ev.extra;
  const bool seen = scope != 0;  // by the daemon's or the host's mount namespace
  json::Writer f = json::Writer::fields();
  f.bytes("path", ev.path.empty() ? Bytes("?") : ev.path);
  f.str("hook", bpf_kind_name(ev.kind));
  f.raw("who", who_json(ev.who, bpf_kind_name(ev.kind)));
  f.str("action", ev.denied() ? "denied" : "reported");
  f.object("mount");
  if (ev.kind == BpfKind::Mount) {
    f.bytes("source", ev.source).str("fstype", ev.name2);
    f.num("flags", ev.mode).str("flags_text", mount_flags_text(ev.mode));
  }
  f.close();
  f.str("namespace", scope & FIM_MNT_SELF_NS ? "daemon" : scope & FIM_MNT_HOST_NS ? "host" : "other");
  f.boolean("propagates", scope & FIM_MNT_SHARED);
  std::string what = "move_mount";
  if (ev.kind == BpfKind::Mount && (ev.mode & MS_BIND)) what = "bind mount of " + quote(ev.source);
  else if (ev.kind == BpfKind::Mount && (ev.mode & MS_MOVE)) what = "move of the mount at " + quote(ev.source);
  else if (ev.kind == BpfKind::Mount) what = (ev.name2.empty() ? "mount" : ev.name2 + " mount") + " of " + quote(ev.source);
  const std::string over = " over fimctl's own " + (ev.path.empty() ? std::string("files") : quote(ev.path));
  if (ev.denied()) {
    sink.alert_with("mount_denied", what + over + " denied " + who_human(ev.who), f, LOG_ERR);
    return;
  }
  // Not denied: --enforce is off, or the mount is in another mount namespace whose mount point
  // does not propagate (a service's sandbox), where neither the daemon nor the host sees it.
  const std::string where_seen = seen ? "" : " in another mount namespace (" + std::to_string(ev.who.mntns) +
                                                  "), which neither the daemon nor the host sees,";
  sink.alert_with("mount_over_own_files", what + over + where_seen + " allowed " + who_human(ev.who), f,
                  seen ? LOG_ERR : LOG_WARNING);
}

}  // namespace fim::watchd
