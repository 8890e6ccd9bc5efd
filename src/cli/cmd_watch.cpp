// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl watch / status: options -> WatchOptions -> the daemon; the status document printed.
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
  w.ndjson = o.format != "plain";
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
  w.quiet = o.quiet;
  for (const auto& p : o.protect) {
    auto abs = absolute_path(p);
    if (!abs) return abs.error();
    w.protect.push_back(*abs);
  }
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

namespace {

/// Reads a JSON string starting at doc[i] == '"'; leaves i after the closing quote.
std::string json_string(std::string_view doc, size_t& i) {
  std::string out;
  for (++i; i < doc.size() && doc[i] != '"'; ++i) {
    if (doc[i] == '\\' && i + 1 < doc.size()) {
      const char e = doc[++i];
      out += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'u' ? '?' : e;
      if (e == 'u') i += 4;
    } else {
      out += doc[i];
    }
  }
  ++i;
  return out;
}

/// A scalar or a bracketed value as text, starting at doc[i]; leaves i after it.
std::string json_value(std::string_view doc, size_t& i) {
  if (doc[i] == '"') return json_string(doc, i);
  const size_t start = i;
  int depth = 0;
  bool in_str = false;
  for (; i < doc.size(); ++i) {
    const char c = doc[i];
    if (in_str) {
      if (c == '\\') ++i;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (depth == 0) break;
      if (--depth == 0) {
        ++i;
        break;
      }
    } else if (c == ',' && depth == 0) {
      break;
    }
  }
  return std::string(doc.substr(start, i - start));
}

/// The key/value pairs of one flat JSON object ({"k":v,...}), values as text.
std::vector<std::pair<std::string, std::string>> status_fields(std::string_view doc) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = doc.find('{');
  if (i == std::string_view::npos) return out;
  ++i;
  while (i < doc.size()) {
    while (i < doc.size() && (doc[i] == ',' || doc[i] == ' ' || doc[i] == '\n')) ++i;
    if (i >= doc.size() || doc[i] != '"') break;
    std::string key = json_string(doc, i);
    if (i >= doc.size() || doc[i] != ':') break;
    ++i;
    out.emplace_back(std::move(key), json_value(doc, i));
  }
  return out;
}

/// A JSON list of strings or flat objects, each as one line ("k=v, k=v" for an object).
std::vector<std::string> status_list(std::string_view list) {
  std::vector<std::string> out;
  size_t i = 1;
  while (i < list.size() && list[i] != ']') {
    if (list[i] == ',' || list[i] == ' ') {
      ++i;
      continue;
    }
    const std::string v = json_value(list, i);
    if (!v.empty() && v[0] == '{') {
      std::string line;
      for (const auto& [k, val] : status_fields(v)) line += (line.empty() ? "" : ", ") + k + "=" + val;
      out.push_back(line);
    } else {
      out.push_back(v);
    }
  }
  return out;
}

}  // namespace

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
  // For people: one line per field; lists one element per line. The document is fimctl's
  // own JSON (flat objects, lists of strings or flat objects), so a small reader suffices.
  std::printf("fimctl watch: %s\n", running ? "running" : "NOT running (changes are not seen in real time)");
  for (const auto& [key, value] : status_fields(*doc)) {
    if (key == "schema" || key == "type") continue;
    if (value.empty() || value[0] != '[') {
      std::printf("  %s: %s\n", key.c_str(), escape_terminal(value).c_str());
      continue;
    }
    const auto items = status_list(value);
    std::printf("  %s:%s\n", key.c_str(), items.empty() ? " none" : "");
    for (const auto& item : items) std::printf("    - %s\n", escape_terminal(item).c_str());
  }
  return rc;
}

}  // namespace fim::cli
