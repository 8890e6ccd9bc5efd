// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl watch / status: options -> WatchOptions -> the daemon; the status document printed.
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "commands.h"
#include "fim/base/sys.h"
#include "fim/pipeline.h"

namespace fim::cli {

Result<double> parse_duration(std::string_view text, const char* what) {
  // "90", "90s", "250ms", "5m", "6h", "1d": a number and an optional unit (seconds by default).
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  const std::string unit = end ? std::string(end) : std::string();
  double scale = -1;
  if (unit.empty() || unit == "s") scale = 1;
  else if (unit == "ms") scale = 1e-3;
  else if (unit == "m") scale = 60;
  else if (unit == "h") scale = 3600;
  else if (unit == "d") scale = 86400;
  if (s.empty() || end == s.c_str() || errno != 0 || scale < 0 || !std::isfinite(v) || v < 0 || v * scale > 1e9)
    return make_error(Errc::Usage, std::string(what) + ": '" + escape_terminal(s) +
                                       "' is not a duration (a number with s, ms, m, h or d, such as 6h)");
  return v * scale;
}

namespace {

Result<WatchOptions> watch_options(const Options& o, FILE** out_file) {
  WatchOptions w;
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
  w.ndjson = o.format != "plain";
  w.syslog = o.syslog;
  w.falco_url = o.falco_url;
  w.metrics_address = o.metrics;
  if (!o.output.empty()) {
    *out_file = std::fopen(o.output.c_str(), "ae");
    if (!*out_file) return make_error(Errc::Io, "cannot open --output '" + escape_terminal(o.output) + "'", errno);
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
  bool running = false;
  auto doc = watch_status(*sock, *db, &running);
  if (!doc) return report_error(doc.error());
  // A gap is open when no daemon runs, or some root waits for its rescan.
  const bool dirty = doc->find("\"dirty\":[]") == std::string::npos;
  const int rc = running && !dirty ? 0 : 8;
  if (o.format != "plain") {
    std::fputs(doc->c_str(), stdout);
    return rc;
  }
  // For people: the document, one field per line, without the JSON punctuation.
  std::printf("fimctl watch: %s\n", running ? "running" : "NOT running (changes are not seen in real time)");
  std::string line;
  int depth = 0;
  bool in_str = false, esc = false;
  for (const char c : *doc) {
    if (in_str) {
      if (esc) esc = false;
      else if (c == '\\') esc = true;
      else if (c == '"') in_str = false;
      if (c != '"' || esc) line += c;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') ++depth, line += (c == '[' ? "" : "");
    else if (c == '}' || c == ']') --depth;
    else if (c == ',' && depth == 1) {
      std::printf("  %s\n", escape_terminal(line).c_str());
      line.clear();
    } else if (c == ':' && depth == 1) line += ": ";
    else if (c == ',') line += ", ";
    else if (c == ':') line += "=";
    else if (c != '\n') line += c;
  }
  if (!line.empty()) std::printf("  %s\n", escape_terminal(line).c_str());
  return rc;
}

}  // namespace fim::cli
