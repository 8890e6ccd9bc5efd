// SPDX-License-Identifier: GPL-2.0-or-later
// Helpers of the watch daemon's records (see watch_sink.h).
#include <unistd.h>

#include "watch_sink.h"

namespace fim::watchd {

void add_str(std::string& o, std::string_view k, std::string_view v) {
  o += ",\"";
  o += k;
  o += "\":";
  append_json_string(o, v);
}

void add_num(std::string& o, std::string_view k, uint64_t v) {
  o += ",\"";
  o += k;
  o += "\":" + std::to_string(v);
}

std::string roots_json(const std::vector<Bytes>& roots) {
  std::string o = "[";
  for (size_t i = 0; i < roots.size(); ++i) {
    if (i) o += ',';
    append_json_string(o, roots[i]);
  }
  return o + "]";
}

/// ,"source":"watch" and what triggered the compare: the events, pid and command, or the
/// rescan's reason.
std::string trigger_fields(const Trigger* t) {
  std::string o = ",\"source\":\"watch\"";
  if (!t) return o;
  if (!t->rescan.empty()) {
    add_str(o, "rescan", t->rescan);
    return o;
  }
  o += ",\"events\":[";
  const auto names = fan_mask_names(t->mask);
  for (size_t i = 0; i < names.size(); ++i) o += (i ? ",\"" : "\"") + names[i] + "\"";
  o += "]";
  if (t->pid > 0) add_num(o, "pid", static_cast<uint64_t>(t->pid));
  if (!t->comm.empty()) add_str(o, "comm", t->comm);
  if (t->first_ns) add_str(o, "event_time", format_time_ns(t->first_ns));
  return o;
}

/// Falco's priority names (falcosidekick filters and routes on them) for fimctl's severities.
std::string_view falco_priority(const Rule* rule) {
  if (!rule) return "Warning";
  switch (rule->severity) {
    case Severity::Info: return "Informational";
    case Severity::Low: return "Notice";
    case Severity::Medium: return "Warning";
    case Severity::High: return "Error";
    case Severity::Critical: return "Critical";
  }
  return "Warning";
}

std::string this_host() {
  char h[256] = {};
  if (::gethostname(h, sizeof h - 1) != 0) return "unknown";
  return h;
}

/// The JSON Falco writes with json_output (what falcosidekick's POST / accepts): output,
/// priority, rule, time, source, tags, hostname and output_fields (`fields`: ",k":v pairs).
std::string falco_payload(std::string_view rule, std::string_view priority, std::string_view output,
                          const std::string& fields, const std::vector<std::string>& tags, const std::string& host) {
  std::string o = "{";
  const auto str = [&](std::string_view k, std::string_view v) {
    o += (o.size() > 1 ? ",\"" : "\"") + std::string(k) + "\":";
    append_json_string(o, v);
  };
  str("output", output);
  str("priority", priority);
  str("rule", rule);
  str("time", format_time_ns(now_ns()));
  str("source", "fimctl");
  str("hostname", host);
  o += ",\"tags\":[\"fimctl\",\"filesystem\"";
  for (const auto& t : tags) {
    o += ',';
    append_json_string(o, t);
  }
  o += "],\"output_fields\":{" + (fields.empty() ? std::string() : fields.substr(1)) + "}}";
  return o;
}

}  // namespace fim::watchd
