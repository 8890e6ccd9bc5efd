// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl watch: fanotify events feed the same compare as check (docs/design.md, Architecture).
//
// Two threads. The main thread owns the kernel side: it reads fanotify, resolves each event
// to a path, keeps the paths below the baseline's roots in a pending set (bounded), and
// answers signals, timers and 'fimctl status'. The worker takes the pending paths after a
// short debounce and compares each subtree with the baseline (a verified BaselineReader,
// range lookups), through the merge check uses. Loss is never silent: a queue overflow, a
// failed mark, a pending set that outgrew its bound and the time the daemon was not running
// mark roots dirty in state.db; the worker rescans exactly those, and clears them only when
// a rescan that began after the loss has finished.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "fim/base/sys.h"
#include "fim/pipeline.h"
#include "fim/watch.h"
#include "merge.h"
#include "watch_bpf.h"
#include "watch_sink.h"

namespace fim {
namespace {

using namespace watchd;

std::string q(const Bytes& p) { return "'" + escape_terminal(p) + "'"; }

std::string comm_of(int32_t pid) {
  if (pid <= 0) return {};
  auto c = read_small_file(("/proc/" + std::to_string(pid) + "/comm").c_str(), 64);
  if (!c) return {};
  std::string s = *c;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

/// Blocks the signals the daemon handles, so the worker thread inherits the mask.
sigset_t daemon_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

class Watcher {
 public:
  explicit Watcher(const WatchOptions& o)
      : o_(o), sink_(o.out, o.ndjson, o.syslog), policy_(std::make_unique<Policy>(o.run.policy)) {
    Bytes dir, name;
    split_path(o.run.db_path, &dir, &name);
    own_files_ = {o.run.db_path, o.run.db_path + ".lock", join_path(dir, "state.db"), join_path(dir, "state.db-journal")};
  }
  Status run();

 private:
  // Main thread.
  Status setup();
  Status open_socket();
  void on_event(FanEvent&& ev);
  void enqueue(const Bytes& path, const FanEvent& ev, bool inode_event);
  void mark_all_dirty(const std::string& reason, int64_t since_ns);
  void mark_root(const Bytes& root, int64_t now);
  /// Roots of an adopted baseline that no mark covers yet (main thread, from tick()).
  void mark_new_roots();
  /// The BPF sensors: probed, given the roots and the protected files (main thread).
  Status start_sensors();
  std::vector<Bytes> protected_paths();
  void on_sensor_event(BpfEvent&& ev);
  /// A new sensor policy (protect rules, exec guards) from the worker, into the kernel.
  void apply_sensor_policy();
  void serve_status();
  std::string status_json();
  std::string metrics_text();
  void tick();
  void reload();

  // Worker thread.
  void worker();
  Status verify_baseline(bool first);
  Status compare_path(const Bytes& p, const Trigger& t, bool cancellable);
  Status rescan_roots(const std::vector<Bytes>& roots, const std::string& reason, bool cancellable);
  void fatal(Error e);

  const WatchOptions& o_;
  std::vector<Bytes> own_files_;  // the baseline, its lock, state.db: events on them are ignored
  StreamSink sink_;
  std::unique_ptr<StateStore> state_;         // main thread's connection
  std::unique_ptr<StateStore> worker_state_;  // the worker's
  std::optional<FanotifySource> fan_;
  Sensors sensors_;
  double next_protect_ = 0;
  int64_t last_bpf_read_ns_ = now_ns();  // a kernel-side loss happened after this
  Resolver resolver_;
  Notifier notifier_;
  UniqueFd sigfd_, timerfd_, wakefd_, sockfd_, metricsfd_;
  std::unique_ptr<HttpPoster> falco_;
  std::set<Bytes> marked_roots_;  // main thread
  int64_t started_ns_ = now_ns();
  int64_t last_read_ns_ = now_ns();
  double next_full_ = 0, next_heartbeat_ = 0, next_beat_ = 0;
  uint64_t last_progress_ = 0;
  double next_watchdog_ = 0, next_status_ = 0, last_progress_at_ = 0;

  // Worker-owned (set before the worker starts, then only the worker touches them).
  std::unique_ptr<Policy> policy_;
  Policy effective_;
  std::unique_ptr<Selector> sel_;
  std::unique_ptr<BaselineReader> reader_;
  struct Reported {
    std::string key;
    uint64_t pass = 0;
  };
  std::map<Bytes, Reported> reported_;  // what was last reported per path (no repeats)
  uint64_t pass_ = 0;

  // Shared, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Bytes, Trigger> pending_;
  std::vector<BpfEvent> execs_;  // executions below a root, for the worker to look up
  SensorPolicy sensor_policy_;   // from the verified baseline and the policy's rules
  bool sensor_policy_fresh_ = false;
  struct Mark {
    std::string reason;
    int64_t at_ns = 0;  // the latest loss: a rescan clears it only when it began after this
  };
  std::map<Bytes, Mark> dirty_;
  std::vector<Bytes> roots_;
  std::vector<std::string> degraded_;
  std::unique_ptr<Policy> new_policy_;
  bool full_due_ = false, stop_ = false, busy_ = false;
  std::optional<Error> fatal_;
  std::string baseline_sha_;
  int64_t last_full_ns_ = 0;

  // Counters for status and metrics.
  std::atomic<uint64_t> events_{0}, changes_{0}, overflows_{0}, unresolved_{0}, rescans_{0}, progress_{0};
  std::atomic<uint64_t> coalesced_{0};
};

Status Watcher::verify_baseline(bool first) {
  // A sink that drops what open_trusted says on the way: alerts are re-issued below once.
  auto trusted = detail::open_trusted(o_.run, sink_);
  if (!trusted) return trusted.error();
  Record r;
  // The protect and deny_unknown_exec rules need the baseline's files: kept only then.
  const bool keep = wants_sensor_policy(*policy_);
  std::vector<BaselineFile> rows;
  for (;;) {
    auto more = trusted->base->next(&r);
    if (!more) return more.error();
    if (!*more) break;
    if (keep) rows.push_back({r.path, static_cast<uint64_t>(r.get(Attr::Inode).num), r.type()});
  }
  FIM_TRY(trusted->base->verify());
  const BaselineMeta& meta = trusted->base->meta();
  if (trusted->state) (void)(*trusted->state)->note_sequence(o_.run.db_path, meta.sequence, meta.content_sha256);
  const bool replaced = !first && meta.content_sha256 != baseline_sha_;
  reader_ = std::move(trusted->base);
  effective_ = *policy_;
  if (meta.roots_source == "cli") add_path_rules(&effective_, meta.roots, "baseline roots (init PATH)");
  sel_ = std::make_unique<Selector>(effective_);
  if (meta.policy_digest != policy_digest(*policy_) || (meta.roots_source == "policy" && policy_->roots() != meta.roots))
    sink_.alert("policy_changed", "the policy differs from the one the baseline was written under (" + meta.policy_source +
                                      " -> " + policy_->source + "); re-baseline with 'fimctl update'");
  if (replaced) {
    reported_.clear();  // differences are relative to the new baseline now
    sink_.alert("baseline_replaced", "the baseline was replaced (fimctl update or accept): verified again (sequence " +
                                         std::to_string(meta.sequence) + "), every root is compared with it");
  }
  SensorPolicy sp = sensor_policy(effective_, *sel_, rows);
  if (!policy_->source.empty() && policy_->source[0] == '/') sp.policy_file = policy_->source;  // worker-owned policy_
  std::lock_guard<std::mutex> lk(mu_);
  baseline_sha_ = meta.content_sha256;
  roots_ = meta.roots;
  sensor_policy_ = std::move(sp);
  sensor_policy_fresh_ = true;  // the main thread applies it (tick)
  return {};
}

Status Watcher::open_socket() {
  if (o_.socket_path.empty()) return {};
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (o_.socket_path.size() >= sizeof sa.sun_path) return make_error(Errc::Usage, "socket path too long: " + q(o_.socket_path));
  std::memcpy(sa.sun_path, o_.socket_path.data(), o_.socket_path.size());
  Bytes dir, name;
  split_path(o_.socket_path, &dir, &name);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return make_error(Errc::Io, "cannot create " + q(dir), errno);
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
      return make_error(Errc::Locked, "another fimctl watch answers on " + q(o_.socket_path));
  }
  struct stat st;
  if (::lstat(o_.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error(Errc::Usage, q(o_.socket_path) + " exists and is not a socket");
    ::unlink(o_.socket_path.c_str());  // a stale socket nobody listens on
  }
  sockfd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const mode_t old = ::umask(0177);
  const int rc = ::bind(sockfd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::umask(old);
  if (rc != 0 || ::listen(sockfd_.get(), 16) != 0) return make_error(Errc::Io, "cannot listen on " + q(o_.socket_path), errno);
  return {};
}

Status Watcher::setup() {
  Bytes dir, name;
  split_path(o_.run.db_path, &dir, &name);
  auto st = StateStore::open(dir);
  if (!st) return st.error();
  state_ = std::move(*st);
  auto wst = StateStore::open(dir);
  if (!wst) return wst.error();
  worker_state_ = std::move(*wst);

  if (!o_.falco_url.empty()) {
    auto url = parse_http_url(o_.falco_url);
    if (!url) return url.error();
    falco_ = std::make_unique<HttpPoster>(std::move(*url), 10000);
    sink_.set_falco(falco_.get());
  }
  if (!o_.metrics_address.empty()) {
    auto addr = parse_listen_address(o_.metrics_address);
    if (!addr) return addr.error();
    auto fd = listen_tcp(addr->first, addr->second);
    if (!fd) return fd.error();
    metricsfd_ = std::move(*fd);
  }

  // Trust first: nothing is reported from a baseline that does not verify.
  FIM_TRY(verify_baseline(true));

  auto fan = FanotifySource::open();
  if (!fan) return fan.error();
  fan_.emplace(std::move(*fan));
  FIM_TRY(open_socket());
  FIM_TRY(start_sensors());

  // The time nobody watched: since the last clean stop (or last heartbeat of a daemon that
  // died), else since the baseline was written.
  auto prev = state_->daemon(o_.run.db_path);
  int64_t down_since = reader_->meta().created_ns;
  if (prev && *prev) down_since = (*prev)->stopped_ns ? (*prev)->stopped_ns : (*prev)->heartbeat_ns;
  const int64_t now = now_ns();
  (void)state_->daemon_beat(o_.run.db_path, ::getpid(), started_ns_, now, false);

  // Marks before the first rescan, so nothing falls between the two.
  std::vector<Bytes> roots;
  {
    std::lock_guard<std::mutex> lk(mu_);
    roots = roots_;
  }
  for (const auto& r : roots) mark_root(r, now);
  {
    std::string f;
    add_str(f, "start", format_time_ns(down_since));
    add_str(f, "end", format_time_ns(now));
    add_str(f, "reason", "daemon_down");
    f += ",\"roots\":" + roots_json(roots);
    sink_.event("gap", f, "not watched from " + format_time_ns(down_since) + " to " + format_time_ns(now) +
                              " (daemon not running): rescanning every root");
    (void)state_->add_gap(o_.run.db_path, {down_since, now, "daemon_down"});
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& r : roots) {
      (void)state_->mark_dirty(o_.run.db_path, r, "daemon_down", now);
      dirty_[r] = Mark{"start", now};
    }
  }
  return {};
}

void Watcher::mark_root(const Bytes& r, int64_t now) {
  marked_roots_.insert(r);
  (void)sensors_.watch_root(r);  // a root that does not exist yet: fanotify's rescan covers it
  Bytes at = r;  // a root that does not exist yet: its nearest existing ancestor's filesystem
  struct stat sb {};
  while (::stat(at.c_str(), &sb) != 0 && at != "/") {
    Bytes parent, base;
    split_path(at, &parent, &base);
    at = parent.empty() ? "/" : parent;
  }
  if (!S_ISDIR(sb.st_mode)) {
    Bytes parent, base;
    split_path(at, &parent, &base);
    at = parent.empty() ? "/" : parent;
  }
  Status ms = fan_->mark_filesystem(at);
  if (ms) ms = resolver_.add_filesystem(at);
  if (ms) return;
  const std::string why = ms.error().describe();
  {
    std::lock_guard<std::mutex> lk(mu_);
    degraded_.push_back(escape_terminal(r) + ": " + why);
  }
  std::string f;
  add_str(f, "reason", "mark_failed");
  f += ",\"roots\":" + roots_json({r});
  add_str(f, "message", why);
  sink_.event("degraded", f, escape_terminal(r) + " is not watched in real time (" + why +
                                 "); it is checked at start and by every full check");
  (void)state_->mark_dirty(o_.run.db_path, r, "mark_failed", now);
}

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
  sensors_.protect(protected_paths());
  apply_sensor_policy();
  sink_.set_who([this](const Record* o, const Record* n, int32_t pid) { return sensors_.who_for(o, n, pid); });
  return {};
}

void Watcher::on_sensor_event(BpfEvent&& ev) {
  if (!report_sensor_event(ev, sink_)) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (execs_.size() < 4096) execs_.push_back(std::move(ev));  // beyond: the exec burst is not looked up
  cv_.notify_one();
}

void Watcher::mark_new_roots() {
  std::vector<Bytes> fresh;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& r : roots_)
      if (!marked_roots_.count(r)) fresh.push_back(r);
  }
  if (fresh.empty()) return;
  const int64_t now = now_ns();
  for (const auto& r : fresh) mark_root(r, now);
  // Compared again now that they are marked: nothing between the two is missed.
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& r : fresh) dirty_[r] = Mark{"new_root", now};
  cv_.notify_one();
}

void Watcher::mark_all_dirty(const std::string& reason, int64_t since_ns) {
  const int64_t now = now_ns();
  std::vector<Bytes> roots;
  {
    std::lock_guard<std::mutex> lk(mu_);
    roots = roots_;
    for (const auto& r : roots) dirty_[r] = Mark{reason, now};
    pending_.clear();  // the rescans cover them
  }
  for (const auto& r : roots) (void)state_->mark_dirty(o_.run.db_path, r, reason, now);
  if (reason != "coalesced") {
    (void)state_->add_gap(o_.run.db_path, {since_ns, now, reason});
    std::string f;
    add_str(f, "start", format_time_ns(since_ns));
    add_str(f, "end", format_time_ns(now));
    add_str(f, "reason", reason);
    f += ",\"roots\":" + roots_json(roots);
    sink_.event("gap", f, "events lost (" + reason + "): rescanning every root", LOG_WARNING);
  }
  cv_.notify_one();
}

void Watcher::enqueue(const Bytes& path, const FanEvent& ev, bool inode_event) {
  // fimctl's own files never trigger work (a root above them would loop).
  if (std::find(own_files_.begin(), own_files_.end(), path) != own_files_.end()) return;
  bool overfull = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& r : roots_) {
      const Bytes* key = path_within(path, r) ? &path : path_within(r, path) ? &r : nullptr;
      if (!key) continue;
      Trigger& t = pending_[*key];
      t.mask |= ev.mask;
      t.inode_event |= inode_event && key == &path;
      if (ev.pid > 0 && ev.pid != t.pid) {
        t.pid = ev.pid;
        t.comm = comm_of(ev.pid);
      }
      if (!t.first_ns) t.first_ns = now_ns();
    }
    overfull = pending_.size() > o_.max_pending;
  }
  if (overfull) {
    ++coalesced_;
    mark_all_dirty("coalesced", now_ns());
  }
  cv_.notify_one();
}

void Watcher::on_event(FanEvent&& ev) {
  ++events_;
  if (ev.overflow()) {
    ++overflows_;
    mark_all_dirty("overflow", last_read_ns_);
    return;
  }
  const bool has_name = std::any_of(ev.infos.begin(), ev.infos.end(), [](const FanInfo& i) {
    return i.kind == FanInfo::Kind::DfidName || i.kind == FanInfo::Kind::OldDfidName || i.kind == FanInfo::Kind::NewDfidName;
  });
  for (const auto& info : ev.infos) {
    if (has_name && (info.kind == FanInfo::Kind::Fid || info.kind == FanInfo::Kind::Dfid)) continue;
    auto dir = resolver_.resolve(info);
    if (!dir) {
      // A directory gone or moved before we looked: its own delete/move event, on a parent
      // that still exists, covers what was in it.
      ++unresolved_;
      continue;
    }
    const bool named = !info.name.empty() && info.name != ".";
    enqueue(named ? join_path(*dir, info.name) : *dir, ev, info.kind == FanInfo::Kind::Fid);
  }
  if (ev.dir_renamed()) resolver_.invalidate();
}

std::string Watcher::status_json() {
  std::string o = "{\"schema\":\"";
  o += kReportSchema;
  o += "\",\"type\":\"status\",\"running\":true";
  add_num(o, "pid", static_cast<uint64_t>(::getpid()));
  add_str(o, "started", format_time_ns(started_ns_));
  {
    std::string b = "{";
    json::add_bytes(b, "baseline", o_.run.db_path);
    o += "," + b.substr(1);
  }
  std::lock_guard<std::mutex> lk(mu_);
  add_str(o, "baseline_sha256", baseline_sha_);
  o += ",\"roots\":" + roots_json(roots_);
  add_num(o, "events", events_);
  add_num(o, "changes", changes_);
  add_num(o, "overflows", overflows_);
  add_num(o, "unresolved", unresolved_);
  add_num(o, "coalesced", coalesced_);
  add_num(o, "rescans", rescans_);
  add_num(o, "queue_depth", pending_.size());
  add_str(o, "last_full_check", last_full_ns_ ? format_time_ns(last_full_ns_) : "");
  add_str(o, "bpf_lsm", sensors_.state());
  if (sensors_.active()) {
    add_num(o, "bpf_events", sensors_.events());
    add_num(o, "bpf_lost", sensors_.lost_total());
    add_num(o, "bpf_denied", sensors_.denied());
  }
  o += ",\"busy\":";
  o += busy_ ? "true" : "false";
  o += ",\"degraded\":[";
  for (size_t i = 0; i < degraded_.size(); ++i) {
    if (i) o += ',';
    append_json_string(o, degraded_[i]);
  }
  o += "],\"dirty\":[";
  bool first = true;
  for (const auto& [root, mark] : dirty_) {
    std::string d = "{";
    json::add_bytes(d, "root", root);
    add_str(d, "reason", mark.reason);
    o += (first ? "" : ",") + d + "}";
    first = false;
  }
  return o + "]}\n";
}

std::string Watcher::metrics_text() {
  std::string o;
  const auto metric = [&](const char* name, const char* type, const char* help, double v) {
    char num[64];
    std::snprintf(num, sizeof num, "%.17g", v);
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + num + "\n";
  };
  size_t depth, dirty, degraded;
  int64_t last_full;
  {
    std::lock_guard<std::mutex> lk(mu_);
    depth = pending_.size();
    dirty = dirty_.size();
    degraded = degraded_.size();
    last_full = last_full_ns_;
  }
  metric("fimctl_events_total", "counter", "fanotify events read", static_cast<double>(events_));
  metric("fimctl_changes_total", "counter", "differences from the baseline reported", static_cast<double>(changes_));
  metric("fimctl_overflows_total", "counter", "kernel event queue overflows (events lost, roots rescanned)",
         static_cast<double>(overflows_));
  metric("fimctl_unresolved_events_total", "counter", "events whose directory was gone before it could be named",
         static_cast<double>(unresolved_));
  metric("fimctl_coalesced_total", "counter", "times the pending set outgrew its bound and roots were rescanned instead",
         static_cast<double>(coalesced_));
  metric("fimctl_rescans_total", "counter", "root rescans (start, losses, scheduled full checks)", static_cast<double>(rescans_));
  metric("fimctl_queue_depth", "gauge", "paths waiting to be compared", static_cast<double>(depth));
  metric("fimctl_dirty_roots", "gauge", "roots whose events were lost and whose rescan has not finished", static_cast<double>(dirty));
  metric("fimctl_degraded_roots", "gauge", "roots not watched in real time (a mark failed)", static_cast<double>(degraded));
  metric("fimctl_last_full_check_timestamp_seconds", "gauge", "when the last full compare of every root finished",
         static_cast<double>(last_full) / 1e9);
  metric("fimctl_start_time_seconds", "gauge", "when the daemon started", static_cast<double>(started_ns_) / 1e9);
  metric("fimctl_bpf_lsm_active", "gauge", "1 when the BPF LSM sensors loaded and attached, 0 when watching on fanotify alone",
         sensors_.active() ? 1 : 0);
  metric("fimctl_bpf_events_total", "counter", "BPF LSM events read", static_cast<double>(sensors_.events()));
  metric("fimctl_bpf_lost_total", "counter", "BPF LSM events lost to a full ring buffer (roots rescanned)",
         static_cast<double>(sensors_.lost_total()));
  metric("fimctl_bpf_denied_total", "counter", "operations on protected files denied", static_cast<double>(sensors_.denied()));
  if (falco_) {
    metric("fimctl_falco_posted_total", "counter", "events posted to the Falco URL", static_cast<double>(falco_->sent()));
    metric("fimctl_falco_failed_total", "counter", "posts that got no 2xx answer", static_cast<double>(falco_->failed()));
    metric("fimctl_falco_dropped_total", "counter", "events dropped from a full post queue", static_cast<double>(falco_->dropped()));
  }
  return o;
}

void Watcher::serve_status() {
  for (;;) {
    UniqueFd c(::accept4(sockfd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c.valid()) return;
    const std::string doc = status_json();
    size_t off = 0;
    while (off < doc.size()) {
      const ssize_t n = ::send(c.get(), doc.data() + off, doc.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
}

void Watcher::reload() {
  if (!o_.reload_policy) return;
  auto p = o_.reload_policy();
  if (!p) {
    sink_.alert("reload_failed", "SIGHUP: the policy did not load, the daemon keeps the one it has: " + p.error().describe());
    return;
  }
  sink_.event("reload", "", "policy reloaded from " + p->source);
  std::lock_guard<std::mutex> lk(mu_);
  new_policy_ = std::make_unique<Policy>(std::move(*p));
  cv_.notify_one();
}

void Watcher::tick() {
  mark_new_roots();
  const double now = monotonic_seconds();
  if (sensors_.active()) {
    // Kernel-side loss: the same recovery as a fanotify overflow.
    if (const uint64_t lost = sensors_.new_losses(); lost > 0) mark_all_dirty("bpf_loss", last_bpf_read_ns_);
    apply_sensor_policy();  // the baseline or the policy changed
    if (now >= next_protect_) {  // a replaced baseline (update) or policy: its new inode
      sensors_.protect(protected_paths());
      // Roots created (or replaced) since they were marked: their inode into the map.
      std::vector<Bytes> roots;
      {
        std::lock_guard<std::mutex> lk(mu_);
        roots = roots_;
      }
      for (const auto& r : roots) (void)sensors_.watch_root(r);
      next_protect_ = now + 5;
    }
  }
  const int64_t wall = now_ns();
  if (now >= next_beat_) {
    (void)state_->daemon_beat(o_.run.db_path, ::getpid(), started_ns_, wall, false);
    next_beat_ = now + 10;
  }
  if (o_.full_check_seconds > 0 && now >= next_full_) {
    next_full_ = now + o_.full_check_seconds;
    std::lock_guard<std::mutex> lk(mu_);
    full_due_ = true;
    cv_.notify_one();
  }
  if (o_.heartbeat_seconds > 0 && now >= next_heartbeat_) {
    next_heartbeat_ = now + o_.heartbeat_seconds;
    std::string f;
    add_num(f, "events", events_);
    add_num(f, "changes", changes_);
    add_num(f, "overflows", overflows_);
    size_t depth;
    {
      std::lock_guard<std::mutex> lk(mu_);
      depth = pending_.size();
    }
    add_num(f, "queue_depth", depth);
    sink_.event("heartbeat", f, std::to_string(events_) + " events, " + std::to_string(changes_) + " changes", LOG_INFO);
  }
  // The watchdog is fed by progress: an idle worker, or one whose counter moved.
  bool busy;
  {
    std::lock_guard<std::mutex> lk(mu_);
    busy = busy_;
  }
  if (!busy || progress_ != last_progress_) last_progress_at_ = now;
  last_progress_ = progress_;
  const bool healthy = now - last_progress_at_ < static_cast<double>(notifier_.watchdog_usec()) / 2e6;
  // Ping at a quarter of the interval systemd asked for; a stuck worker stops the pings.
  if (healthy && notifier_.watchdog_usec() && now >= next_watchdog_) {
    notifier_.send("WATCHDOG=1");
    next_watchdog_ = now + static_cast<double>(notifier_.watchdog_usec()) / 4e6;
  }
  if (notifier_.active() && now >= next_status_) {
    next_status_ = now + 5;
    notifier_.send("STATUS=" + std::to_string(events_) + " events, " + std::to_string(changes_) + " changes, " +
                   std::to_string(overflows_) + " overflows, " + std::to_string(rescans_) + " rescans");
  }
}

// ---- worker ----

void Watcher::fatal(Error e) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!fatal_) fatal_ = std::move(e);
  const uint64_t one = 1;
  (void)::write(wakefd_.get(), &one, sizeof one);
}

Status Watcher::compare_path(const Bytes& p, const Trigger& t, bool cancellable) {
  FIM_TRY(reader_->seek(p));
  ScanOptions so;
  so.roots = {p};
  so.walk.selector = sel_.get();
  so.walk.roots_must_exist = false;
  so.jobs = o_.run.jobs;
  so.read_timeout_seconds = policy_->read_timeout_seconds;
  Summary s;
  ++pass_;
  sink_.set_trigger(&t);
  detail::Merge m{effective_, *sel_, &s, sink_, {}, {}, {}, {}, {}};
  m.next_old = [&](Record* r) { return reader_->range_next(r); };
  m.selected = [](const Bytes&) { return true; };
  m.report = [&](ChangeKind k, const Record* o, const Record* n, AttrMask changed, const Rule* rule) -> Status {
    const Bytes& path = (n ? n : o)->path;
    const std::string key = std::string(change_kind_name(k)) + ":" + (n ? detail::row_digest(*n) : "-");
    auto it = reported_.find(path);
    if (it != reported_.end() && it->second.key == key) {
      it->second.pass = pass_;
      return {};  // reported already, unchanged since
    }
    if (reported_.size() < 1000000) reported_[path] = Reported{key, pass_};
    ++changes_;
    sink_.change(k, o, n, changed, rule);
    return {};
  };
  m.on_entry = [&](const Record&) -> Status {
    ++progress_;
    if (cancellable) {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return make_error(Errc::Cancelled, "cancelled");
    }
    return {};
  };
  const Status st = detail::merge_compare(so, m);
  sink_.set_trigger(nullptr);
  FIM_TRY(st);
  // What was reported below p and is now as the baseline says again (a file added and
  // removed, a mode changed back): say so once and forget it, so a new change is reported.
  for (auto it = reported_.lower_bound(p); it != reported_.end() && (it->first == p || it->first.compare(0, p.size(), p) == 0);) {
    if (path_within(it->first, p) && it->second.pass != pass_) {
      std::string f = "{";
      json::add_bytes(f, "path", it->first);
      f = "," + f.substr(1);
      f += trigger_fields(&t);
      sink_.event("restored", f, escape_terminal(it->first) + " is as the baseline records it again");
      it = reported_.erase(it);
    } else {
      ++it;
    }
  }
  return {};
}

Status Watcher::rescan_roots(const std::vector<Bytes>& roots, const std::string& reason, bool cancellable) {
  const int64_t began = now_ns();
  const double t0 = monotonic_seconds();
  const uint64_t changes_before = changes_;
  ++rescans_;
  std::string f;
  add_str(f, "reason", reason);
  f += ",\"roots\":" + roots_json(roots);
  sink_.event("rescan_start", f, "rescanning " + std::to_string(roots.size()) + " root(s) (" + reason + ")");
  Trigger t;
  t.rescan = reason;
  for (const auto& r : roots) {
    FIM_TRY(compare_path(r, t, cancellable));
    (void)worker_state_->clear_dirty(o_.run.db_path, r, began);
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = dirty_.find(r); it != dirty_.end() && it->second.at_ns <= began) dirty_.erase(it);
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.3f", monotonic_seconds() - t0);
  std::string d = f;
  add_num(d, "changes", changes_ - changes_before);
  d += ",\"seconds\":";
  d += secs;
  sink_.event("rescan_done", d, "rescan done (" + reason + "), " + std::to_string(changes_ - changes_before) + " new difference(s)");
  return {};
}

void Watcher::worker() {
  for (;;) {
    std::map<Bytes, Trigger> batch;
    std::map<Bytes, Mark> dirty;
    std::vector<BpfEvent> execs;
    bool full = false, stopping = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      busy_ = false;
      cv_.wait(lk, [&] { return stop_ || !pending_.empty() || !dirty_.empty() || new_policy_ || full_due_ || !execs_.empty(); });
      stopping = stop_;
      if (stopping && pending_.empty()) return;
      busy_ = true;
      if (new_policy_) {
        policy_ = std::move(new_policy_);
        full_due_ = true;  // new rules: compare everything under them once
      }
      full = full_due_ && !stopping;
      full_due_ = false;
      if (!stopping) dirty = dirty_;
      if (!pending_.empty() && !stopping) {
        // Debounce: let a burst of events on the same files settle into one compare.
        lk.unlock();
        std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(o_.debounce_seconds * 1e6)));
        lk.lock();
      }
      batch.swap(pending_);
      execs.swap(execs_);
    }
    // Who made these changes: what the hooks queued before fanotify reported them, read now
    // (the main thread may not have got to it yet).
    if (sensors_.active() && !batch.empty()) {
      if (Status d = sensors_.drain([this](BpfEvent&& ev) { on_sensor_event(std::move(ev)); }); !d)
        sink_.alert("read_error", d.error().describe());
    }
    Status st;
    for (const auto& ev : execs) {
      if (!st) break;
      st = check_exec(*reader_, ev, sink_);
    }
    if (full) {
      st = verify_baseline(false);
      if (st) {
        std::vector<Bytes> roots;
        {
          std::lock_guard<std::mutex> lk(mu_);
          roots = roots_;
        }
        st = rescan_roots(roots, "scheduled", true);
        if (st) {
          std::lock_guard<std::mutex> lk(mu_);
          last_full_ns_ = now_ns();
          dirty.clear();  // rescan_roots cleared what it covered
        }
      }
    }
    // Rescans by reason, each reason's roots in one pass.
    std::map<std::string, std::vector<Bytes>> by_reason;
    for (const auto& [root, mark] : dirty) by_reason[mark.reason].push_back(root);
    for (const auto& [reason, roots] : by_reason) {
      if (!st) break;
      st = rescan_roots(roots, reason, true);
      if (st && reason == "start") {
        std::lock_guard<std::mutex> lk(mu_);
        last_full_ns_ = now_ns();
      }
    }
    // An event on a file's own handle (link(2) changes the link count of every name of the
    // file, and the kernel names only one): the baseline's other names of that inode too.
    std::vector<std::pair<Bytes, Trigger>> siblings;
    for (const auto& [path, trig] : batch) {
      struct stat sb;
      if (!trig.inode_event || ::lstat(path.c_str(), &sb) != 0 || S_ISDIR(sb.st_mode)) continue;
      if (auto names = reader_->paths_with_inode(sb.st_ino))
        for (auto& n : *names)
          if (n != path) siblings.emplace_back(std::move(n), trig);
    }
    for (auto& [p, t] : siblings) batch.emplace(std::move(p), std::move(t));
    // Then the paths events named, outermost first (a subtree compare covers what is below).
    const Bytes* outer = nullptr;
    for (const auto& item : batch) {
      const Bytes& path = item.first;
      if (!st) break;
      if (outer && path_within(path, *outer)) continue;
      if (std::any_of(dirty.begin(), dirty.end(), [&](const auto& d) { return path_within(path, d.first); })) continue;
      outer = &path;
      st = compare_path(path, item.second, false);
    }
    if (!st) {
      if (st.error().code == Errc::Cancelled) continue;
      if (st.error().code == Errc::Trust) {
        // Replaced (an update) or edited: trust it again or stop.
        if (Status v = verify_baseline(false); !v) return fatal(v.error());
        std::vector<Bytes> roots;
        {
          std::lock_guard<std::mutex> lk(mu_);
          roots = roots_;
          for (const auto& r : roots) dirty_[r] = Mark{"baseline_replaced", now_ns()};
        }
        continue;
      }
      sink_.alert("compare_failed", st.error().describe());
      std::this_thread::sleep_for(std::chrono::seconds(1));  // no busy loop on a persistent error
    }
  }
}

Status Watcher::run() {
  const sigset_t sigs = daemon_signals();
  if (::pthread_sigmask(SIG_BLOCK, &sigs, nullptr) != 0) return make_error(Errc::Bug, "pthread_sigmask", errno);
  sigfd_.reset(::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK));
  timerfd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  wakefd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!sigfd_.valid() || !timerfd_.valid() || !wakefd_.valid()) return make_error(Errc::Io, "cannot create the event loop's fds", errno);
  FIM_TRY(setup());

  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  const auto add = [&](int fd) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    return ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &e) == 0;
  };
  itimerspec its{};
  its.it_interval.tv_nsec = 250'000'000;
  its.it_value.tv_nsec = 250'000'000;
  ::timerfd_settime(timerfd_.get(), 0, &its, nullptr);
  if (!add(fan_->fd()) || !add(sigfd_.get()) || !add(timerfd_.get()) || !add(wakefd_.get()) ||
      (sockfd_.valid() && !add(sockfd_.get())) || (metricsfd_.valid() && !add(metricsfd_.get())) ||
      (sensors_.active() && !add(sensors_.fd())))
    return make_error(Errc::Io, "epoll_ctl", errno);
  next_full_ = monotonic_seconds() + o_.full_check_seconds;
  next_heartbeat_ = monotonic_seconds() + o_.heartbeat_seconds;

  {
    std::string f;
    f += ",\"roots\":" + roots_json(roots_);
    add_num(f, "pid", static_cast<uint64_t>(::getpid()));
    sink_.event("watch_start", f, "watching " + std::to_string(roots_.size()) + " root(s)");
  }
  std::thread worker_thread([this] { worker(); });
  notifier_.send("READY=1\nSTATUS=watching");

  const auto drain = [&]() -> Status {
    for (;;) {
      auto got = fan_->read([this](FanEvent&& ev) { on_event(std::move(ev)); });
      if (!got) return got.error();
      if (!*got) return {};
      last_read_ns_ = now_ns();
    }
  };
  Status result;
  bool stopping = false;
  while (!stopping) {
    epoll_event evs[8];
    const int n = ::epoll_wait(ep.get(), evs, 8, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = make_error(Errc::Io, "epoll_wait", errno);
      break;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (fd == fan_->fd()) {
        const uint64_t before = events_;
        if (Status st = drain(); !st) {
          // A read error loses events: say so, rescan, go on.
          sink_.alert("read_error", st.error().describe());
          mark_all_dirty("read_error", last_read_ns_);
        }
        // Under a stream of events, let them gather for a moment instead of waking for each
        // one: a busy writer pays for every wakeup (docs/design.md, Real time: -57% per event,
        // -33% batched). Bounded latency cost; the kernel queue holds them meanwhile.
        if (events_ - before > 0 && o_.batch_seconds > 0)
          std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(o_.batch_seconds * 1e6)));
      } else if (sensors_.active() && fd == sensors_.fd()) {
        if (Status st = sensors_.drain([this](BpfEvent&& ev) { on_sensor_event(std::move(ev)); }); !st) {
          sink_.alert("read_error", st.error().describe());
          mark_all_dirty("read_error", last_bpf_read_ns_);
        }
        last_bpf_read_ns_ = now_ns();
      } else if (fd == sigfd_.get()) {
        signalfd_siginfo si;
        while (::read(sigfd_.get(), &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) reload();
          else stopping = true;
        }
      } else if (fd == timerfd_.get()) {
        uint64_t expirations;
        (void)::read(timerfd_.get(), &expirations, sizeof expirations);
        tick();
      } else if (fd == wakefd_.get()) {
        uint64_t v;
        (void)::read(wakefd_.get(), &v, sizeof v);
        std::lock_guard<std::mutex> lk(mu_);
        if (fatal_) {
          result = *fatal_;
          stopping = true;
        }
      } else if (fd == sockfd_.get()) {
        serve_status();
      } else if (fd == metricsfd_.get()) {
        // One scrape at a time, bounded by serve_http's 2 s deadline.
        UniqueFd c(::accept4(metricsfd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (c.valid())
          serve_http(c.get(), [&](std::string_view method, std::string_view path, int* status, std::string* type) {
            if (method != "GET") return *status = 405, std::string("GET only\n");
            if (path != "/metrics" && path != "/") return *status = 404, std::string("see /metrics\n");
            *status = 200;
            *type = "text/plain; version=0.0.4; charset=utf-8";
            return metrics_text();
          });
      }
    }
  }
  // SIGTERM: take what the kernel still holds, let the worker compare it, then stop.
  notifier_.send("STOPPING=1");
  (void)sensors_.drain([this](BpfEvent&& ev) { on_sensor_event(std::move(ev)); });
  (void)drain();
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  worker_thread.join();
  (void)state_->daemon_beat(o_.run.db_path, ::getpid(), started_ns_, now_ns(), true);
  if (sockfd_.valid()) ::unlink(o_.socket_path.c_str());
  if (result) {
    std::string f;
    add_num(f, "events", events_);
    add_num(f, "changes", changes_);
    sink_.event("watch_stop", f, "stopped after " + std::to_string(events_) + " events");
  }
  return result;
}

}  // namespace

Status run_watch(const WatchOptions& opts) {
  // The daemon's signals go to its event loop only: block them before any thread starts.
  const sigset_t sigs = daemon_signals();
  if (::pthread_sigmask(SIG_BLOCK, &sigs, nullptr) != 0) return make_error(Errc::Bug, "pthread_sigmask", errno);
  std::atomic<bool> stop{false};
  Status containers;
  std::thread container_thread;
  if (opts.containers)
    container_thread = std::thread([&] { containers = detail::watch_containers(opts, stop); });
  Watcher w(opts);
  Status st = w.run();
  stop = true;
  if (container_thread.joinable()) container_thread.join();
  if (st && !containers) return containers;
  return st;
}

}  // namespace fim
