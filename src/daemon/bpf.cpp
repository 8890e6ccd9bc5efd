// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's BPF side (see bpf.h).
#include "bpf.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "fim/base/sys.h"
#include "sink.h"

namespace fim::watchd {

namespace {

// Who-data is kept this long for the join: the worker compares a path a few milliseconds
// after its fanotify event (debounce), but a rescan after a loss may come much later.
constexpr double kKeepSeconds = 120;
constexpr size_t kMaxRemembered = 8192;  // per index; bounded memory under a flood

template <class M>
void prune(M& m, double now) {
  if (m.size() < kMaxRemembered) return;
  for (auto it = m.begin(); it != m.end();) {
    if (now - it->second.at > kKeepSeconds / 4) it = m.erase(it);
    else ++it;
  }
  if (m.size() >= kMaxRemembered) m.clear();  // a flood of distinct files: forget, stay bounded
}

}  // namespace

std::string who_json(const BpfWho& w, std::string_view hook) {
  json::Writer o;
  o.object().num("pid", w.pid).num("tgid", w.tgid).num("ppid", w.ppid).num("uid", w.uid);
  if (w.loginuid != UINT32_MAX) o.num("loginuid", w.loginuid);
  o.str("comm", w.comm);
  if (!w.exe.empty()) o.bytes("exe", w.exe);
  // The executable's identity from the kernel: what /proc/PID/exe named may be gone by the
  // time the record was read (a short-lived writer), these are not.
  if (w.exe_ino) {
    o.str("exe_dev", std::to_string(major(w.exe_dev)) + ":" + std::to_string(minor(w.exe_dev)));
    o.num("exe_inode", w.exe_ino);
  }
  o.num("cgroup_id", w.cgroup_id).num("mntns", w.mntns).str("hook", hook);
  return o.take();
}

std::string who_human(const BpfWho& w) {
  std::string o = "by uid " + std::to_string(w.uid);
  if (w.loginuid != UINT32_MAX && w.loginuid != w.uid) o += " (login " + std::to_string(w.loginuid) + ")";
  o += ", pid " + std::to_string(w.tgid) + " (" + escape_terminal(w.comm);
  if (!w.exe.empty()) o += ", " + escape_terminal(w.exe);
  return o + ")";
}

Status Sensors::start(BpfMode mode, const BpfOptions& opts, bool quiet) {
  if (mode == BpfMode::Off) {
    state_ = "off (--bpf=off)";
    return {};
  }
  auto s = BpfSensor::open(opts);
  if (!s) {
    const Error& e = s.error();
    state_ = "unavailable (";
    if (e.sys_errno) state_ += errno_name(e.sys_errno) + ": ";
    state_ += e.describe() + ")";
    if (mode == BpfMode::Required)
      return make_error(Errc::Unsupported, "--bpf=required: BPF LSM is " + state_);
    if (!quiet)
      std::fprintf(stderr, "fimctl: watch: BPF LSM %s; watching on fanotify alone (no who-data beyond pid and "
                   "command, no enforcement)\n", state_.c_str());
    return {};
  }
  sensor_ = std::move(*s);
  state_ = "active (" + sensor_->hooks() + std::string(opts.enforce ? "; enforcing" : "") + ")";
  return {};
}

Status Sensors::watch_root(const Bytes& dir) {
  if (!sensor_) return {};
  return sensor_->watch_root(dir);
}

void Sensors::protect(const std::vector<Bytes>& paths) {
  if (!sensor_) return;
  for (const auto& p : paths) (void)sensor_->protect(p);  // a file not there (yet): nothing to protect
}

void Sensors::remember(const BpfEvent& ev) {
  if (ev.denied()) return;  // it changed nothing
  switch (ev.kind) {
    case BpfKind::Exec:
    case BpfKind::KernelRead:
    case BpfKind::KernelLoad:
    case BpfKind::BpfLoad:
    case BpfKind::Mount:
    case BpfKind::MoveMount:
      return;  // not changes to files
    default:
      break;
  }
  const double now = monotonic_seconds();
  Seen s{ev.who, ev.kind, now};
  std::lock_guard<std::mutex> lk(mu_);
  if (ev.ino) {
    prune(by_inode_, now);
    by_inode_[{ev.dev, ev.ino}] = s;
  }
  if (!ev.path.empty()) {
    prune(by_path_, now);
    by_path_[ev.path] = s;
  }
  prune(by_tgid_, now);
  by_tgid_[ev.who.tgid] = s;
}

Status Sensors::set_exec_policy(const SensorPolicy& sp) {
  if (!sensor_) return {};
  return sensor_->set_exec_policy(sp.guards, sp.allow);
}

Status Sensors::drain(const std::function<void(BpfEvent&&)>& on_event) {
  if (!sensor_) return {};
  std::lock_guard<std::mutex> lk(drain_mu_);
  auto n = sensor_->consume([&](BpfEvent&& ev) {
    ++events_;
    remember(ev);
    on_event(std::move(ev));
  });
  if (!n) return n.error();
  return {};
}

uint64_t Sensors::new_losses() {
  if (!sensor_) return 0;
  const uint64_t now = sensor_->lost();
  const uint64_t delta = now > lost_ ? now - lost_ : 0;
  lost_ = now;
  return delta;
}

const Sensors::Seen* Sensors::fresh(const Seen* s) const {
  return s && monotonic_seconds() - s->at <= kKeepSeconds ? s : nullptr;
}

std::pair<std::string, std::string> Sensors::who_for(const Record* o, const Record* n, int32_t pid) const {
  if (!sensor_) return {};
  std::lock_guard<std::mutex> lk(mu_);
  const Seen* best = nullptr;
  for (const Record* r : {n, o}) {
    if (best || !r || !r->has(Attr::Inode) || !r->has(Attr::Dev)) continue;
    auto it = by_inode_.find({static_cast<dev_t>(r->get(Attr::Dev).num), static_cast<uint64_t>(r->get(Attr::Inode).num)});
    if (it != by_inode_.end()) best = fresh(&it->second);
  }
  for (const Record* r : {n, o}) {
    if (best || !r) continue;
    auto it = by_path_.find(r->path);
    if (it != by_path_.end()) best = fresh(&it->second);
  }
  if (!best && pid > 0) {
    auto it = by_tgid_.find(static_cast<uint32_t>(pid));
    if (it != by_tgid_.end()) best = fresh(&it->second);
  }
  if (!best) return {};
  return {who_json(best->who, bpf_kind_name(best->kind)), who_human(best->who)};
}

}  // namespace fim::watchd

namespace fim::watchd {

namespace {

/// "path":..,"hook":..,"who":{..}: the fields every sensor alert carries.
json::Writer sensor_fields(const BpfEvent& ev) {
  json::Writer f = json::Writer::fields();
  if (!ev.path.empty()) f.bytes("path", ev.path);
  f.str("hook", bpf_kind_name(ev.kind));
  f.raw("who", who_json(ev.who, bpf_kind_name(ev.kind)));
  return f;
}

std::string mode_octal(uint32_t mode) {
  char b[16];
  std::snprintf(b, sizeof b, "%04o", mode & 07777);
  return b;
}

std::string where(const BpfEvent& ev) { return ev.path.empty() ? std::string("?") : quote(ev.path); }

}  // namespace

bool report_sensor_event(const BpfEvent& ev, StreamSink& sink) {
  if (ev.is_mount()) {
    report_mount_event(ev, sink);
    return false;
  }
  if (ev.denied()) {
    json::Writer f = sensor_fields(ev);
    f.str("action", "denied");
    const std::string what = ev.kind == BpfKind::Exec
                                 ? "exec of " + where(ev) + " (not in the baseline as it is, below a deny_unknown_exec rule)"
                                 : std::string(bpf_kind_name(ev.kind)) + " of protected " + where(ev);
    sink.alert_with("denied", what + " denied " + who_human(ev.who), f, LOG_ERR);
    return false;
  }
  switch (ev.kind) {
    case BpfKind::Chmod:
      if (ev.adds_exec() && ev.in_root())
        sink.alert_with("made_executable", where(ev) + " was made executable (mode " + mode_octal(ev.extra) + " -> " +
                                               mode_octal(ev.mode) + ") " + who_human(ev.who),
                        sensor_fields(ev));
      return false;
    case BpfKind::KernelRead:
    case BpfKind::KernelLoad: {
      json::Writer f = sensor_fields(ev);
      f.num("id", ev.extra);
      if (ev.is_module_load())
        sink.alert_with("module_load", "kernel module " + (ev.path.empty() ? std::string("from memory") : where(ev)) +
                                           " loaded " + who_human(ev.who), f, LOG_ERR);
      else
        sink.alert_with("kernel_file_read", "the kernel read " + where(ev) + " (id " + std::to_string(ev.extra) + ") " +
                                                who_human(ev.who), f);
      return false;
    }
    case BpfKind::BpfLoad: {
      json::Writer f = sensor_fields(ev);
      f.str("prog_name", ev.name2).num("prog_type", ev.extra).num("attach_type", ev.mode);
      sink.alert_with("bpf_load", "BPF program " + quote(ev.name2) + " (type " + std::to_string(ev.extra) +
                                      ") loaded " + who_human(ev.who), f, LOG_ERR);
      return false;
    }
    case BpfKind::Exec:
      return ev.in_root();
    default:
      return false;
  }
}

Status check_exec(BaselineReader& base, const BpfEvent& ev, StreamSink& sink) {
  if (ev.path.empty()) return {};
  FIM_TRY(base.seek(ev.path));
  Record r;
  auto got = base.range_next(&r);
  if (!got) return got.error();
  const bool known = *got && r.path == ev.path &&
                     (!r.has(Attr::Inode) || static_cast<uint64_t>(r.get(Attr::Inode).num) == ev.ino) &&
                     (!r.has(Attr::Dev) || static_cast<dev_t>(r.get(Attr::Dev).num) == ev.dev);
  if (known) return {};
  json::Writer f = sensor_fields(ev);
  f.str("action", "reported");
  sink.alert_with("exec_unknown", where(ev) + ", which the baseline does not record" +
                                      std::string(*got && r.path == ev.path ? " as it is now" : "") + ", was executed " +
                                      who_human(ev.who), f, LOG_ERR);
  return {};
}

}  // namespace fim::watchd

namespace fim::watchd {

bool wants_sensor_policy(const Policy& p) {
  return std::any_of(p.rules.begin(), p.rules.end(), [](const Rule& r) { return !r.exclude && (r.protect || r.deny_unknown_exec); });
}

SensorPolicy sensor_policy(const Policy& p, const Selector& sel, const std::vector<BaselineFile>& rows) {
  SensorPolicy sp;
  bool any_protect = false;
  for (const auto& r : p.rules) {
    if (r.exclude) continue;
    any_protect |= r.protect;
    if (r.deny_unknown_exec && r.kind == SelectorKind::Path) sp.guards.push_back(r.pattern);
  }
  for (const auto& row : rows) {
    if (any_protect && sp.protect.size() < kMaxProtected) {
      const int w = sel.winner(sel.scope_of(row.path), row.type, "");
      if (w >= 0 && p.rules[static_cast<size_t>(w)].protect) sp.protect.push_back(row.path);
    }
    if (row.type != FileType::File) continue;
    if (!std::any_of(sp.guards.begin(), sp.guards.end(), [&](const Bytes& g) { return path_within(row.path, g); })) continue;
    struct stat st;
    // As it is now: a file replaced since the baseline (another inode) is not allowed.
    if (::lstat(row.path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == row.ino) sp.allow.emplace_back(st.st_dev, st.st_ino);
  }
  return sp;
}

}  // namespace fim::watchd
