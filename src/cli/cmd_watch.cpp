// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl watch / status: options -> WatchOptions -> the daemon; the status document printed.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "fim/base/duration.h"
#include "fim/base/sys.h"
#include "fim/pipeline.h"

namespace fim::cli {

Result<double> parse_duration(std::string_view text, const char* what) {
  // The grammar of every duration, here and in the policy file (base/duration.h).
  auto d = ::fim::parse_duration(text);
  if (!d) return make_error(Errc::Usage, std::string(what) + ": " + d.error().message);
  return d;
}

namespace {

/// watch and status on a host with no baseline: said as such (17), not as the state.db or
/// the baseline directory that is missing with it; one that exists but may not be read by
/// this user is a permission error (report_error: "needs root").
Status baseline_exists(const Bytes& db) {
  struct stat st;
  if (::stat(db.c_str(), &st) == 0) return {};
  if (errno == ENOENT || errno == ENOTDIR) return missing_baseline_error(db);
  return make_error(Errc::Io, "cannot read baseline " + quote(db), errno);
}

Result<WatchOptions> watch_options(const Options& o, FILE** out_file) {
  WatchOptions w;
  if (!o.sysroot.empty())
    return make_error(Errc::Usage, "watch does not take --sysroot: it watches this host's filesystems");
  auto policy = load_cli_policy(o);
  if (!policy) return policy.error();
  w.run.policy = std::move(*policy);
  auto db = absolute_path(o.db);
  if (!db) return db.error();
  w.run.db_path = *db;
  auto keys = absolute_path(o.keys);
  if (!keys) return keys.error();
  w.run.keys_dir = *keys;
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  w.run.jobs = o.jobs ? o.jobs : static_cast<unsigned>(cpus > 0 ? cpus : 1);
  w.run.allow_unsigned = o.allow_unsigned;
  auto full = parse_duration(o.full_check_interval, "--full-check-interval");
  if (!full) return full.error();
  w.full_check_seconds = *full;
  auto deb = parse_duration(o.debounce, "--debounce");
  if (!deb) return deb.error();
  if (*deb > 60) return make_error(Errc::Usage, "--debounce: at most 60 s (reports wait that long)");
  w.debounce_seconds = *deb;
  auto hb = parse_duration(o.heartbeat, "--heartbeat");
  if (!hb) return hb.error();
  w.heartbeat_seconds = *hb;
  auto sock = absolute_path(o.socket);
  if (!sock) return sock.error();
  w.socket_path = *sock;
  w.format = o.format;  // plain, ndjson or ecs (main.cpp's table)
  w.syslog = o.syslog;
  w.falco_url = o.falco_url;
  w.metrics_address = o.metrics;
  w.containers = o.containers;
  auto poll = parse_duration(o.container_poll, "--container-poll");
  if (!poll) return poll.error();
  if (*poll <= 0) return make_error(Errc::Usage, "--container-poll must be more than 0");
  w.container_poll_seconds = *poll;
  w.bpf = o.bpf;
  w.enforce = o.enforce;
  w.mount_events = o.mount_events;
  w.quiet = o.quiet;
  for (const auto& p : o.protect) {
    auto abs = absolute_path(p);
    if (!abs) return abs.error();
    w.protect.push_back(*abs);
  }
  FIM_TRY(baseline_exists(w.run.db_path));  // after the usage errors: they come first
  if (!o.output.empty()) {
    *out_file = std::fopen(o.output.c_str(), "ae");
    if (!*out_file) return make_error(Errc::Io, "cannot open --output " + quote(o.output), errno);
    w.out = *out_file;
  }
  // SIGHUP: the same policy source again (-c, or the default path and its drop-ins).
  w.reload_policy = [o]() { return load_cli_policy(o); };
  return w;
}

}  // namespace

int cmd_watch(const Options& o) {
  FILE* out_file = nullptr;
  auto w = watch_options(o, &out_file);
  if (!w) return report_error(w.error());
  if (!o.quiet)
    std::fprintf(stderr, "fimctl: watch: baseline %s, status socket %s\n", escape_terminal(w->run.db_path).c_str(),
                 escape_terminal(w->socket_path).c_str());
  const Status st = run_watch(*w);
  if (out_file) std::fclose(out_file);
  if (!st) return report_error(st.error());
  return 0;
}

int cmd_status(const Options& o) {
  auto db = absolute_path(o.db);
  if (!db) return report_error(db.error());
  auto sock = absolute_path(o.socket);
  if (!sock) return report_error(sock.error());
  if (o.watched) {
    // One record: {"type":"watched","roots":[{"root","since","since_ns","evented":[..]}]};
    // roots empty when nothing is vouched for (no trusted daemon, degraded, not covered).
    auto w = watched_roots(*sock, *db);
    if (!w) return report_error(w.error());
    json::Writer j;
    j.schema("watched").array("roots");
    for (const auto& r : *w) {
      j.object().bytes("root", r.root).str("since", format_time_ns(r.since_ns)).num("since_ns", r.since_ns);
      j.array("evented");
      for (const auto& p : r.evented) j.object().bytes("path", p).close();
      j.close().close();
    }
    std::fputs((j.take() + "\n").c_str(), stdout);
    return 0;
  }
  auto st = watch_status(*sock, *db);
  // Without an answer from a daemon, status reads the state.db beside the baseline: with no
  // baseline there, that is the error to name (a daemon started with another --db: give it).
  // Not when a daemon answered and its answer could not be vouched for (a mount hiding the
  // baseline's directory, tests/root/watch_mount_test.py): "run fimctl init" would then have the
  // admin record what an intruder left; that is status's incomplete answer (8) below.
  if ((!st || (!st->running && st->untrusted.empty())) && ::access(db->c_str(), F_OK) != 0) {
    const Status exists = baseline_exists(*db);
    if (!exists && exists.error().code == Errc::Database)
      return report_error(make_error(Errc::Database, exists.error().message +
                                                          " (or give the running daemon's --db: 'fimctl --db FILE status')"));
    if (!exists) return report_error(exists.error());
  }
  if (!st) return report_error(st.error());
  // A gap is open when no daemon runs, or some root waits for its rescan.
  // A degraded root (not watched in real time) is a gap too; so is an answer on the socket
  // that was not provably the daemon's (docs/design.md, Status).
  const int rc = st->running && st->dirty.empty() && st->degraded.empty() && st->untrusted.empty() ? 0 : 8;
  if (!st->untrusted.empty()) std::fprintf(stderr, "fimctl: status: %s\n", st->untrusted.c_str());
  if (o.format == Format::Plain) std::fputs(status_text(*st).c_str(), stdout);
  else std::fputs(status_json(*st).c_str(), stdout);  // json and ndjson: the one-line record
  return rc;
}

}  // namespace fim::cli
