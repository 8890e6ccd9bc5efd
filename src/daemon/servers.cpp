// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's server thread (servers.h tells what it promises): one poll(2) loop over the
// status and metrics listeners and their clients, each client a small state machine
// (reading its request, waiting for a fresh snapshot, writing its answer) with a deadline.
#include "servers.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/watch.h"
#include "fim_config.h"

namespace fim::watchd {

namespace {

enum class Kind { Status, Metrics };
enum class Phase { Reading, Waiting, Writing };

struct Conn {
  UniqueFd fd;
  Kind kind = Kind::Status;
  Phase phase = Phase::Reading;
  double deadline = 0;    // closed then, answered or not
  double wait_until = 0;  // Waiting: answered by then with the snapshot there is
  uint64_t ticket = 0;    // Waiting: answered by a snapshot that covers this request
  std::string in, out;
  size_t sent = 0;
  bool done = false;  // to be closed (answered, or the peer went away)
};

// Accepts per listener per round: a flood of connections cannot starve the open clients.
constexpr int kAcceptBurst = 64;
// After EMFILE (or ENFILE, ENOBUFS): the listeners rest this long, since a listener whose
// connection cannot be accepted stays readable and poll would spin.
constexpr double kAcceptPause = 0.1;

void metric(std::string& o, const char* name, const char* type, const char* help, double v) {
  char num[64];
  std::snprintf(num, sizeof num, "%.17g", v);
  o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + num + "\n";
}

/// A counter with one sample per server (label server="status" and server="metrics").
void per_server(std::string& o, const char* name, const char* help, uint64_t status, uint64_t metrics) {
  o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
  o += std::string(name) + "{server=\"status\"} " + std::to_string(status) + "\n";
  o += std::string(name) + "{server=\"metrics\"} " + std::to_string(metrics) + "\n";
}

/// A label value in the exposition format: \\, \" and \n escaped, and every byte that is not
/// printable ASCII written as the four characters \xNN (a path need not be UTF-8).
std::string label_value(std::string_view v) {
  std::string o;
  for (const unsigned char c : v) {
    if (c == '\\' || c == '"') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\\\x%02x", c);
      o += buf;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

/// A gauge with one sample per watched root (label root): bounded by the policy's roots.
void per_root(std::string& o, const char* name, const char* help, const std::vector<Bytes>& roots,
              const std::function<bool(const Bytes&)>& on) {
  o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
  for (const auto& r : roots) o += std::string(name) + "{root=\"" + label_value(r) + "\"} " + (on(r) ? "1" : "0") + "\n";
}

/// Sends what is left of c's answer without blocking; done when all of it went or the peer
/// is gone.
void push(Conn& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) break;
    c.sent += static_cast<size_t>(n);
  }
  // The answer is whole: the peer reads it to the end (an HTTP client sees the close).
  ::shutdown(c.fd.get(), SHUT_WR);
  c.done = true;
}

/// Reads what c's peer sent, up to kMaxHttpRequest; true when the peer closed or failed.
bool pull(Conn& c) {
  char buf[2048];
  while (c.in.size() < kMaxHttpRequest) {
    const ssize_t n = ::recv(c.fd.get(), buf, std::min(sizeof buf, kMaxHttpRequest - c.in.size()), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n <= 0) return true;
    c.in.append(buf, static_cast<size_t>(n));
  }
  return false;
}

}  // namespace

std::string metrics_text(const Snapshot& s, const ServerStats& status, const ServerStats& metrics) {
  std::string o;
  const WatchStatus& w = s.status;
  const auto d = [](uint64_t v) { return static_cast<double>(v); };
  o += "# HELP fimctl_build_info the fimctl that serves these metrics: version, record schema, baseline schema\n"
        "# TYPE fimctl_build_info gauge\n"
        "fimctl_build_info{version=\"" + label_value(FIM_VERSION) + "\",report_schema=\"" + kReportSchema +
       "\",baseline_schema=\"" + std::to_string(kSchemaVersion) + "\"} 1\n";
  metric(o, "fimctl_events_total", "counter", "fanotify events read", d(w.events));
  metric(o, "fimctl_changes_total", "counter", "differences from the baseline reported", d(w.changes));
  metric(o, "fimctl_overflows_total", "counter", "kernel event queue overflows (events lost, roots rescanned)",
         d(w.overflows));
  metric(o, "fimctl_unresolved_events_total", "counter", "events whose directory was gone before it could be named",
         d(w.unresolved));
  metric(o, "fimctl_coalesced_total", "counter",
         "times the pending set outgrew its bound and roots were rescanned instead", d(w.coalesced));
  metric(o, "fimctl_rescans_total", "counter", "root rescans (start, losses, scheduled full checks)", d(w.rescans));
  o += "# HELP fimctl_changes_by_severity_total differences reported, by the severity of the rule that selects the "
       "entry (none: no rule)\n# TYPE fimctl_changes_by_severity_total counter\n";
  static constexpr const char* kSeverities[] = {"none", "info", "low", "medium", "high", "critical"};
  for (size_t i = 0; i < s.changes_by_severity.size(); ++i)
    o += std::string("fimctl_changes_by_severity_total{severity=\"") + kSeverities[i] + "\"} " +
         std::to_string(s.changes_by_severity[i]) + "\n";
  metric(o, "fimctl_queue_depth", "gauge", "paths waiting to be compared", d(w.queue_depth));
  metric(o, "fimctl_dirty_roots", "gauge", "roots whose events were lost and whose rescan has not finished",
         d(w.dirty.size()));
  metric(o, "fimctl_degraded_roots", "gauge", "roots not watched in real time (a mark failed)", d(w.degraded.size()));
  per_root(o, "fimctl_root_dirty", "1 for a root whose events were lost and whose rescan has not finished", w.roots,
           [&](const Bytes& r) {
             return std::any_of(w.dirty.begin(), w.dirty.end(), [&](const auto& x) { return x.root == r; });
           });
  per_root(o, "fimctl_root_degraded", "1 for a root not watched in real time (a mark failed)", w.roots,
           [&](const Bytes& r) {
             // "ROOT: why" (marks.cpp)
             const std::string at = escape_terminal(r) + ": ";
             return std::any_of(w.degraded.begin(), w.degraded.end(), [&](const std::string& x) { return x.rfind(at, 0) == 0; });
           });
  metric(o, "fimctl_last_full_check_timestamp_seconds", "gauge", "when the last full compare of every root finished",
         static_cast<double>(s.last_full_ns) / 1e9);
  metric(o, "fimctl_start_time_seconds", "gauge", "when the daemon started", static_cast<double>(s.started_ns) / 1e9);
  metric(o, "fimctl_open_writers", "gauge",
         "watched files held open for writing or mapped shared-writable, compared every 5 s", d(s.open_writers));
  metric(o, "fimctl_open_writer_scans_incomplete_total", "counter",
         "scans for files held open for writing that a bound stopped before every process was seen",
         d(s.open_writer_incomplete));
  metric(o, "fimctl_bpf_lsm_active", "gauge",
         "1 when the BPF LSM sensors loaded and attached, 0 when watching on fanotify alone", w.bpf_active ? 1 : 0);
  metric(o, "fimctl_bpf_events_total", "counter", "BPF LSM events read", d(w.bpf_events));
  metric(o, "fimctl_bpf_lost_total", "counter", "BPF LSM events lost to a full ring buffer (roots rescanned)",
         d(w.bpf_lost));
  metric(o, "fimctl_bpf_denied_total", "counter", "operations on protected files denied", d(w.bpf_denied));
  if (s.falco) {
    metric(o, "fimctl_falco_posted_total", "counter", "events posted to the Falco URL", d(s.falco_posted));
    metric(o, "fimctl_falco_failed_total", "counter", "posts that got no 2xx answer", d(s.falco_failed));
    metric(o, "fimctl_falco_dropped_total", "counter", "events dropped from a full post queue", d(s.falco_dropped));
  }
  per_server(o, "fimctl_server_connections_total", "connections accepted by the status socket and the metrics endpoint",
             status.accepted, metrics.accepted);
  per_server(o, "fimctl_server_connections_refused_total",
             "connections closed at once because the server's cap of open connections was reached", status.refused,
             metrics.refused);
  per_server(o, "fimctl_server_connections_timed_out_total",
             "connections closed at their deadline before their answer was sent", status.timed_out, metrics.timed_out);
  return o;
}

Status Servers::start(UniqueFd status_listener, UniqueFd metrics_listener, Snapshot first) {
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  refresh_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid() || !refresh_.valid()) return make_error(Errc::Io, "cannot create the servers' eventfds", errno);
  status_fd_ = std::move(status_listener);
  metrics_fd_ = std::move(metrics_listener);
  serves_status_ = status_fd_.valid();
  snap_ = std::make_shared<const Snapshot>(std::move(first));
  thread_ = std::thread([this] { run(); });
  return {};
}

void Servers::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  const uint64_t one = 1;
  (void)::write(wake_.get(), &one, sizeof one);
  thread_.join();
  status_fd_.reset();
  metrics_fd_.reset();
}

void Servers::publish(const std::function<Snapshot()>& build) {
  uint64_t covers;
  {
    // Requests from here on are asked for again, and answered by the next publication.
    std::lock_guard<std::mutex> lk(mu_);
    covers = tickets_;
    if (refresh_pending_) {
      uint64_t v;
      (void)::read(refresh_.get(), &v, sizeof v);
      refresh_pending_ = false;
    }
  }
  auto fresh = std::make_shared<const Snapshot>(build());
  {
    std::lock_guard<std::mutex> lk(mu_);
    snap_ = std::move(fresh);
    covered_ = std::max(covered_, covers);
  }
  const uint64_t one = 1;
  (void)::write(wake_.get(), &one, sizeof one);
}

uint64_t Servers::ask_refresh() {
  std::lock_guard<std::mutex> lk(mu_);
  const uint64_t ticket = ++tickets_;
  const uint64_t one = 1;
  if (!refresh_pending_ && ::write(refresh_.get(), &one, sizeof one) == sizeof one) refresh_pending_ = true;
  return ticket;
}

/// The thread's own state: its clients and what they are answered from.
struct Servers::Loop {
  Servers& s;
  std::vector<Conn> conns;
  double paused_until = 0;
  std::shared_ptr<const Snapshot> snap;
  uint64_t covered = 0;  // snap answers the requests up to this ticket

  Counters& counters(Kind k) { return k == Kind::Status ? s.status_stats_ : s.metrics_stats_; }

  size_t open(Kind k) const {
    return static_cast<size_t>(std::count_if(conns.begin(), conns.end(), [&](const Conn& c) { return c.kind == k; }));
  }

  /// From now on c waits for a snapshot built after this moment, bounded.
  void await_fresh(Conn& c, double now) {
    c.phase = Phase::Waiting;
    c.ticket = s.ask_refresh();
    c.wait_until = std::min(c.deadline, now + s.limits_.fresh_wait_seconds);
  }

  void answer(Conn& c, std::string out) {
    c.out = std::move(out);
    c.phase = Phase::Writing;
    push(c);
  }

  /// A metrics request, read whole (or as far as it may go).
  void on_request(Conn& c, const HttpRequest& r, double now) {
    constexpr const char* kText = "text/plain; charset=utf-8";
    if (r.method.empty()) return answer(c, http_response(400, kText, "bad request\n"));
    if (r.method != "GET") return answer(c, http_response(405, kText, "GET only\n"));
    if (r.path != "/metrics" && r.path != "/") return answer(c, http_response(404, kText, "see /metrics\n"));
    await_fresh(c, now);
  }

  void render(Conn& c) {
    if (c.kind == Kind::Status && covered >= c.ticket) return answer(c, status_json(snap->status));
    if (c.kind == Kind::Status) {
      // Built before this request: its coverage says nothing of the events since (a check
      // would trust paths it has not yet recorded), so it is left out.
      WatchStatus stale = snap->status;
      stale.covered.clear();
      return answer(c, status_json(stale));
    }
    const std::string body = metrics_text(*snap, load(s.status_stats_), load(s.metrics_stats_));
    answer(c, http_response(200, "text/plain; version=0.0.4; charset=utf-8", body));
  }

  void accept_from(int listener, Kind k, double now) {
    Counters& n = counters(k);
    for (int i = 0; i < kAcceptBurst; ++i) {
      UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd.valid()) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
          paused_until = now + kAcceptPause;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN: none left
      }
      ++n.accepted;
      if (open(k) >= s.limits_.max_clients) {
        ++n.refused;  // closed here, at once
        continue;
      }
      Conn c;
      c.fd = std::move(fd), c.kind = k, c.deadline = now + s.limits_.deadline_seconds;
      if (k == Kind::Status) await_fresh(c, now);  // a status client sends nothing: it is answered
      conns.push_back(std::move(c));
    }
  }

  /// One round: what poll said about each client, then answers, deadlines and new clients.
  void serve(const std::vector<pollfd>& pfds, double now) {
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      if (!pfds[3 + i].revents) continue;
      if (c.phase == Phase::Reading) {
        const bool eof = pull(c);
        if (auto r = parse_http_request(c.in)) on_request(c, *r, now);  // also when half-closed after it
        else if (eof) c.done = true;  // gone before its request ended: nothing to answer
      } else if (c.phase == Phase::Writing) {
        push(c);
      }
    }
    for (Conn& c : conns)
      if (c.phase == Phase::Waiting && !c.done && (covered >= c.ticket || now >= c.wait_until)) render(c);
    for (Conn& c : conns)
      if (!c.done && now >= c.deadline) {
        c.done = true;
        ++counters(c.kind).timed_out;
      }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const Conn& c) { return c.done; }), conns.end());
    if (pfds[1].revents) accept_from(s.status_fd_.get(), Kind::Status, now);
    if (pfds[2].revents) accept_from(s.metrics_fd_.get(), Kind::Metrics, now);
  }

  /// The fds to poll (wake, the two listeners, then one per client in conns' order) and how
  /// long poll may wait (ms) before a deadline or a wait ends.
  int prepare(std::vector<pollfd>* pfds, double now) const {
    const bool listening = now >= paused_until;
    pfds->clear();
    pfds->push_back({s.wake_.get(), POLLIN, 0});
    pfds->push_back({listening ? s.status_fd_.get() : -1, POLLIN, 0});  // poll ignores fd -1
    pfds->push_back({listening ? s.metrics_fd_.get() : -1, POLLIN, 0});
    double next = listening ? now + 60 : paused_until;
    for (const Conn& c : conns) {
      // A waiting client is not polled at all: its hangup would wake poll until it is answered.
      if (c.phase == Phase::Waiting) pfds->push_back({-1, 0, 0});
      else pfds->push_back({c.fd.get(), c.phase == Phase::Reading ? short{POLLIN} : short{POLLOUT}, 0});
      next = std::min(next, c.phase == Phase::Waiting ? c.wait_until : c.deadline);
    }
    return static_cast<int>(std::ceil(std::max(0.0, next - now) * 1000));
  }
};

void Servers::run() {
  ::pthread_setname_np(::pthread_self(), "fimctl-servers");  // top -H, /proc/PID/task/*/comm
  Loop loop{*this, {}, 0, nullptr, 0};
  std::vector<pollfd> pfds;
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      loop.snap = snap_;
      loop.covered = covered_;
    }
    const int wait_ms = loop.prepare(&pfds, monotonic_seconds());
    if (::poll(pfds.data(), pfds.size(), wait_ms) < 0 && errno != EINTR) {
      // Not expected (EFAULT, EINVAL, ENOMEM): rest instead of spinning, then try again.
      ::poll(nullptr, 0, 100);
      continue;
    }
    if (pfds[0].revents) {
      uint64_t v;
      (void)::read(wake_.get(), &v, sizeof v);
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      loop.snap = snap_;
      loop.covered = covered_;
    }
    loop.serve(pfds, monotonic_seconds());
  }
}

}  // namespace fim::watchd
