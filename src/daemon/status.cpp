// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl status: the running watch daemon's status record over its socket, or what state.db
// remembers when no daemon answers. One struct (WatchStatus), one writer (status_json) and
// one reader (parse_status): the daemon and the client agree by construction. The client
// renders the struct it read (status_json again, or status_text for people), never the JSON.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/json.h"
#include "fim/pipeline.h"

namespace fim {
namespace {

/// What state.db remembers of the daemon on this baseline.
Result<WatchStatus> remembered(const Bytes& db_path) {
  Bytes dir, name;
  split_path(db_path, &dir, &name);
  auto st = StateStore::open(dir);
  if (!st && ::access(dir.c_str(), F_OK) != 0)  // the common mistake: a daemon started with another --db
    return make_error(st.error().code, "no directory " + quote(dir) + " for baseline " + quote(db_path) +
                                           ": status reads the state.db beside the baseline the daemon watches, so "
                                           "give the daemon's --db ('fimctl --db FILE status')");
  if (!st) return st.error();
  WatchStatus s;
  s.baseline = db_path;
  auto d = (*st)->daemon(db_path);
  if (!d) return d.error();
  if (*d) {
    s.last_started = format_time_ns((*d)->started_ns);
    s.last_heartbeat = format_time_ns((*d)->heartbeat_ns);
    s.stopped = (*d)->stopped_ns ? format_time_ns((*d)->stopped_ns) : "not cleanly (killed or crashed)";
  }
  auto dirty = (*st)->dirty(db_path);
  if (!dirty) return dirty.error();
  for (const auto& e : *dirty) s.dirty.push_back({e.root, e.reason, format_time_ns(e.first_ns)});
  auto gaps = (*st)->gaps(db_path, 20);
  if (!gaps) return gaps.error();
  for (const auto& g : *gaps) s.gaps.push_back({format_time_ns(g.start_ns), format_time_ns(g.end_ns), g.reason});
  return s;
}

constexpr size_t kMaxStatus = size_t{1} << 20;  // a real record is a few KiB
constexpr int kStatusTimeoutMs = 5000;           // for connect and the whole reply together
constexpr int64_t kMaxHeartbeatAgeNs = 120'000'000'000;  // the daemon beats every 10 s

/// The reply, bounded in size and in total time: a peer that never accepts, never closes or
/// drips a byte at a time ends the wait after kStatusTimeoutMs, never later.
Result<std::string> read_reply(int fd, const Bytes& socket_path) {
  std::string doc;
  const double deadline = monotonic_seconds() + kStatusTimeoutMs / 1000.0;
  char buf[4096];
  for (;;) {
    const int left = static_cast<int>((deadline - monotonic_seconds()) * 1000);
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, left) == 0)
      return make_error(Errc::Io, "the peer on " + quote(socket_path) + " did not answer within 5 s");
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return make_error(Errc::Io, "reading the daemon's status from " + quote(socket_path), errno);
    if (n == 0) return doc;
    doc.append(buf, static_cast<size_t>(n));
    if (doc.size() > kMaxStatus)
      return make_error(Errc::Io, "the peer on " + quote(socket_path) + " sent more than 1 MiB: not a status record");
  }
}

/// Why the answering peer is not the daemon on this baseline (empty: it may be): the peer's
/// uid (root, the running user or the baseline's owner), and its pid against the record's
/// and the one state.db's heartbeat names (docs/design.md, Status).
std::string distrust_peer(const ucred& cred, const WatchStatus& s, const Bytes& db_path) {
  struct stat st {};
  const bool owner = ::stat(db_path.c_str(), &st) == 0 && st.st_uid == cred.uid;
  if (cred.uid != 0 && cred.uid != ::geteuid() && !owner)
    return "the process answering (pid " + std::to_string(cred.pid) + ") runs as uid " + std::to_string(cred.uid) +
           ", neither root nor the baseline's owner";
  if (s.pid != cred.pid)
    return "the record names pid " + std::to_string(s.pid) + " but pid " + std::to_string(cred.pid) + " answered";
  Bytes dir, name;
  split_path(db_path, &dir, &name);
  auto store = StateStore::open(dir);
  if (!store) return "state.db cannot be read to confirm the daemon: " + store.error().describe();
  auto d = (*store)->daemon(db_path);
  if (!d || !*d) return "state.db has no heartbeat of a daemon on this baseline";
  if ((*d)->pid != cred.pid)
    return "state.db's heartbeat is of pid " + std::to_string((*d)->pid) + ", not of pid " + std::to_string(cred.pid);
  if ((*d)->stopped_ns) return "state.db says the daemon stopped at " + format_time_ns((*d)->stopped_ns);
  if (now_ns() - (*d)->heartbeat_ns > kMaxHeartbeatAgeNs)
    return "state.db's last heartbeat is from " + format_time_ns((*d)->heartbeat_ns) + ", more than 2 min ago";
  return {};
}

}  // namespace

Result<WatchStatus> watch_status(const Bytes& socket_path, const Bytes& db_path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof sa.sun_path) return remembered(db_path);
  Bytes dir, name;
  split_path(socket_path, &dir, &name);
  // Whoever can create the socket's name can answer for the daemon: its directory must be
  // trusted, with no sticky-bit exemption for it (a socket in /tmp is refused).
  if (::access(dir.c_str(), F_OK) == 0) FIM_TRY(check_trusted_path(dir, "status socket directory"));
  std::memcpy(sa.sun_path, socket_path.data(), socket_path.size());
  UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  // A listener that never accepts blocks connect() once its backlog is full: bounded too.
  timeval tv{kStatusTimeoutMs / 1000, 0};
  ::setsockopt(c.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno == EAGAIN || errno == EINPROGRESS)
      return make_error(Errc::Io, "the peer on " + quote(socket_path) + " did not accept within 5 s");
    return remembered(db_path);  // nobody answers
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return make_error(Errc::Io, "cannot identify the peer on " + quote(socket_path), errno);
  auto doc = read_reply(c.get(), socket_path);
  if (!doc) return doc.error();
  auto s = parse_status(*doc);
  if (!s) return make_error(Errc::Io, "the daemon on " + quote(socket_path) + " answered: " + s.error().describe());
  if (std::string why = distrust_peer(cred, *s, db_path); !why.empty()) {
    // Not the daemon, or not provably: what state.db remembers, and why the answer was not used.
    auto r = remembered(db_path);
    if (!r) return r.error();
    r->untrusted = "ignored the answer on " + escape_terminal(socket_path) + ": " + why;
    return r;
  }
  return s;
}

std::string status_json(const WatchStatus& s) {
  json::Writer w;
  w.schema("status").boolean("running", s.running);
  if (s.running) {
    w.num("pid", s.pid);
    w.str("started", s.started);
  }
  w.bytes("baseline", s.baseline);
  if (!s.untrusted.empty()) w.str("untrusted", s.untrusted);
  if (s.running) {
    w.str("baseline_sha256", s.baseline_sha256);
    w.array("roots");
    for (const auto& r : s.roots) w.str(r);
    w.close();
    w.num("events", s.events).num("changes", s.changes).num("overflows", s.overflows);
    w.num("unresolved", s.unresolved).num("coalesced", s.coalesced).num("rescans", s.rescans);
    w.num("queue_depth", s.queue_depth);
    w.str("last_full_check", s.last_full_check);
    w.str("bpf_lsm", s.bpf_lsm);
    if (s.bpf_active) w.num("bpf_events", s.bpf_events).num("bpf_lost", s.bpf_lost).num("bpf_denied", s.bpf_denied);
    w.boolean("busy", s.busy);
    w.array("degraded");
    for (const auto& d : s.degraded) w.str(d);
    w.close();
    w.array("covered_since");
    for (const auto& c : s.covered)
      w.object().bytes("root", c.root).str("since", format_time_ns(c.since_ns)).num("since_ns", c.since_ns).close();
    w.close();
  } else if (!s.last_started.empty()) {
    w.str("last_started", s.last_started).str("last_heartbeat", s.last_heartbeat).str("stopped", s.stopped);
  }
  w.array("dirty");
  for (const auto& d : s.dirty) {
    w.object().bytes("root", d.root).str("reason", d.reason);
    if (!s.running) w.str("since", d.since);
    w.close();
  }
  w.close();
  if (!s.running) {
    w.array("gaps");
    for (const auto& g : s.gaps) w.object().str("start", g.start).str("end", g.end).str("reason", g.reason).close();
    w.close();
  }
  return w.take() + "\n";
}

std::string status_text(const WatchStatus& s) {
  std::string o = "fimctl watch: ";
  o += s.running ? "running\n" : "NOT running (changes are not seen in real time)\n";
  const auto field = [&](std::string_view key, std::string_view v) {
    o.append("  ").append(key).append(": ").append(escape_terminal(v)).append("\n");
  };
  const auto count = [&](std::string_view key, uint64_t v) { field(key, std::to_string(v)); };
  const auto list = [&](std::string_view key, const std::vector<std::string>& items) {
    o.append("  ").append(key).append(items.empty() ? ": none\n" : ":\n");
    for (const auto& i : items) o.append("    - ").append(escape_terminal(i)).append("\n");
  };
  field("running", s.running ? "true" : "false");
  if (s.running) {
    field("pid", std::to_string(s.pid));
    field("started", s.started);
  }
  field("baseline", s.baseline);
  if (!s.untrusted.empty()) field("untrusted", s.untrusted);
  if (s.running) {
    field("baseline_sha256", s.baseline_sha256);
    list("roots", s.roots);
    count("events", s.events), count("changes", s.changes), count("overflows", s.overflows);
    count("unresolved", s.unresolved), count("coalesced", s.coalesced), count("rescans", s.rescans);
    count("queue_depth", s.queue_depth);
    field("last_full_check", s.last_full_check);
    field("bpf_lsm", s.bpf_lsm);
    if (s.bpf_active)
      count("bpf_events", s.bpf_events), count("bpf_lost", s.bpf_lost), count("bpf_denied", s.bpf_denied);
    field("busy", s.busy ? "true" : "false");
    list("degraded", s.degraded);
    std::vector<std::string> items;
    for (const auto& c : s.covered) items.push_back("root=" + c.root + ", since=" + format_time_ns(c.since_ns));
    list("covered_since", items);
  } else if (!s.last_started.empty()) {
    field("last_started", s.last_started), field("last_heartbeat", s.last_heartbeat), field("stopped", s.stopped);
  }
  std::vector<std::string> items;
  for (const auto& d : s.dirty)
    items.push_back("root=" + d.root + ", reason=" + d.reason + (s.running ? "" : ", since=" + d.since));
  list("dirty", items);
  if (!s.running) {
    items.clear();
    for (const auto& g : s.gaps) items.push_back("start=" + g.start + ", end=" + g.end + ", reason=" + g.reason);
    list("gaps", items);
  }
  return o;
}

Result<WatchStatus> parse_status(std::string_view doc) {
  auto v = json::parse(doc);
  if (!v) return v.error();
  if (v->kind != json::Value::Kind::Object || v->str("type") != "status")
    return make_error(Errc::Io, "not a status record");
  WatchStatus s;
  s.running = v->flag("running");
  s.baseline = v->bytes("baseline");
  s.pid = v->i64("pid");
  s.started = v->str("started");
  s.baseline_sha256 = v->str("baseline_sha256");
  s.last_full_check = v->str("last_full_check");
  s.bpf_lsm = v->str("bpf_lsm");
  const auto count = [&](std::string_view key) { return static_cast<uint64_t>(v->i64(key)); };
  s.events = count("events"), s.changes = count("changes"), s.overflows = count("overflows");
  s.unresolved = count("unresolved"), s.coalesced = count("coalesced"), s.rescans = count("rescans");
  s.queue_depth = count("queue_depth");
  s.bpf_active = v->get("bpf_events") != nullptr;
  s.bpf_events = count("bpf_events"), s.bpf_lost = count("bpf_lost"), s.bpf_denied = count("bpf_denied");
  s.busy = v->flag("busy");
  s.last_started = v->str("last_started");
  s.last_heartbeat = v->str("last_heartbeat");
  s.stopped = v->str("stopped");
  s.untrusted = v->str("untrusted");
  const auto list = [&](std::string_view key) -> const std::vector<json::Value>& {
    static const std::vector<json::Value> none;
    const json::Value* l = v->get(key);
    return l && l->kind == json::Value::Kind::Array ? l->items : none;
  };
  for (const auto& r : list("roots")) s.roots.push_back(r.string);
  for (const auto& d : list("degraded")) s.degraded.push_back(d.string);
  for (const auto& c : list("covered_since")) s.covered.push_back({c.bytes("root"), c.i64("since_ns")});
  for (const auto& d : list("dirty")) s.dirty.push_back({d.bytes("root"), d.str("reason"), d.str("since")});
  for (const auto& g : list("gaps")) s.gaps.push_back({g.str("start"), g.str("end"), g.str("reason")});
  return s;
}

}  // namespace fim
