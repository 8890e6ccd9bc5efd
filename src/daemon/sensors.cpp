// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's BPF sensor glue (see daemon.h and bpf.h: what it protects,
// the exec policy it hands the kernel, the events it reports) and what the daemon says about
// itself: the snapshot of its state the servers (servers.h) render the status record and
// the Prometheus metrics from.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon.h"

namespace fim::watchd {

std::vector<Bytes> Watcher::protected_paths() {
  // fimctl's own baseline, state, keys, policy and binary, and what --protect names.
  std::vector<Bytes> p = own_files_;
  p.push_back(join_path(o_.run.keys_dir, "signing.key"));
  p.push_back(join_path(o_.run.keys_dir, "signing.pub"));
  char exe[4096];
  if (const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe); n > 0) p.emplace_back(exe, static_cast<size_t>(n));
  p.insert(p.end(), o_.protect.begin(), o_.protect.end());
  std::lock_guard<std::mutex> lk(mu_);
  p.insert(p.end(), sensor_policy_.protect.begin(), sensor_policy_.protect.end());
  if (!sensor_policy_.policy_file.empty()) p.push_back(sensor_policy_.policy_file);
  return p;
}

void Watcher::apply_sensor_policy() {
  SensorPolicy sp;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!sensor_policy_fresh_) return;
    sensor_policy_fresh_ = false;
    sp = sensor_policy_;
  }
  sensors_.protect(protected_paths());
  sensors_.deny_mounts(mount_guarded());  // the policy's directory
  if (!o_.enforce) return;  // guards only deny; without --enforce execs are reported only
  if (Status st = sensors_.set_exec_policy(sp); !st)
    sink_.alert("exec_enforcement_off", st.error().describe());
}

Status Watcher::start_sensors() {
  const BpfMode mode = o_.bpf == "off" ? BpfMode::Off : o_.bpf == "required" ? BpfMode::Required : BpfMode::Auto;
  BpfOptions bo;
  bo.enforce = o_.enforce;
  char exe[4096];
  if (const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe); n > 0) bo.exempt_exe.assign(exe, static_cast<size_t>(n));
  FIM_TRY(sensors_.start(mode, bo, o_.quiet));
  // Not loaded: Sensors::start said so once on stderr; status and metrics say it too. Asked
  // for enforcement, the record stream says so as well: nothing is denied.
  if (!sensors_.active()) {
    if (o_.enforce) sink_.alert("enforcement_unavailable", "--enforce: nothing is denied, the BPF LSM is " + sensors_.state());
    return {};
  }
  bpf_ = std::make_unique<BpfEvents>(sensors_);
  bpf_->last_read_ns = now_ns();
  sensors_.protect(protected_paths());
  sensors_.deny_mounts(mount_guarded());
  apply_sensor_policy();
  sink_.set_who([this](const Record* o, const Record* n, int32_t pid) { return sensors_.who_for(o, n, pid); });
  return {};
}

void Watcher::on_sensor_event(BpfEvent&& ev) {
  if (ev.kind == BpfKind::OpenWrite && !ev.denied() && ev.in_root() && !ev.path.empty())
    writers_.note({ev.dev, ev.ino, ev.path, static_cast<int32_t>(ev.who.tgid), ev.who.comm, false});
  if (!report_sensor_event(ev, sink_)) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (execs_.size() < 4096) execs_.push_back(std::move(ev));  // beyond: the exec burst is not looked up
  cv_.notify_one();
}

Status Watcher::open_socket() {
  if (o_.socket_path.empty()) return {};
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (o_.socket_path.size() >= sizeof sa.sun_path) return make_error(Errc::Usage, "socket path too long: " + quote(o_.socket_path));
  std::memcpy(sa.sun_path, o_.socket_path.data(), o_.socket_path.size());
  Bytes dir, name;
  split_path(o_.socket_path, &dir, &name);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return make_error(Errc::Io, "cannot create " + quote(dir), errno);
  // Whoever can create names in the socket's directory can bind first and answer for the
  // daemon: no sticky-bit exemption for it (docs/design.md, Status).
  FIM_TRY(check_trusted_path(dir, "status socket directory"));
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
    {
      ucred cred{};
      socklen_t len = sizeof cred;
      const bool known = ::getsockopt(probe.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
      return make_error(Errc::Locked, "another process answers on " + quote(o_.socket_path) +
                                          (known ? " (pid " + std::to_string(cred.pid) + ", uid " +
                                                       std::to_string(cred.uid) + ")" : std::string()));
    }
  }
  struct stat st;
  if (::lstat(o_.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error(Errc::Usage, quote(o_.socket_path) + " exists and is not a socket");
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
      return make_error(Errc::Locked, "stale socket " + quote(o_.socket_path) + " is owned by uid " +
                                          std::to_string(st.st_uid) + ": remove it after looking who made it");
    ::unlink(o_.socket_path.c_str());  // a stale socket nobody listens on
  }
  sockfd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const mode_t old = ::umask(0177);
  const int rc = ::bind(sockfd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::umask(old);
  if (rc != 0 || ::listen(sockfd_.get(), 16) != 0) return make_error(Errc::Io, "cannot listen on " + quote(o_.socket_path), errno);
  return {};
}

Snapshot Watcher::snapshot() {
  read_queued();
  sync_coverage();  // state.db holds every evented path before a coverage is answered
  Snapshot snap;
  snap.started_ns = started_ns_;
  if (falco_) {
    snap.falco = true;
    snap.falco_posted = falco_->sent(), snap.falco_failed = falco_->failed(), snap.falco_dropped = falco_->dropped();
  }
  snap.open_writers = writers_.held();
  snap.open_writer_incomplete = writers_.incomplete_passes();
  snap.changes_by_severity = sink_.changes_by_severity();
  WatchStatus& s = snap.status;
  s.running = true;
  s.pid = ::getpid();
  s.started = format_time_ns(started_ns_);
  s.baseline = o_.run.db_path;
  s.events = events_, s.changes = changes_, s.overflows = overflows_, s.unresolved = unresolved_;
  s.coalesced = coalesced_, s.rescans = rescans_;
  s.bpf_lsm = sensors_.state();
  s.bpf_active = sensors_.active();
  if (s.bpf_active) s.bpf_events = sensors_.events(), s.bpf_lost = sensors_.lost_total(), s.bpf_denied = sensors_.denied();
  std::lock_guard<std::mutex> lk(mu_);
  s.baseline_sha256 = baseline_sha_;
  s.roots = roots_;
  s.queue_depth = pending_.size();
  s.last_full_check = last_full_ns_ ? format_time_ns(last_full_ns_) : "";
  snap.last_full_ns = last_full_ns_;
  s.busy = busy_;
  s.degraded = degraded_;
  for (const auto& [root, mark] : dirty_) s.dirty.push_back({root, mark.reason, {}});
  // Events named by inode and not yet placed on a path: no coverage is vouched for until
  // the worker has noted their names.
  if (pending_inodes_.empty() && !resolving_inodes_)
    for (const auto& [root, since] : covered_) s.covered.push_back({root, since});
  return snap;
}

}  // namespace fim::watchd
