// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl containers: what discover_containers() finds, for people or as JSON.
#include <cstdio>

#include "commands.h"
#include "fim/base/bytes.h"
#include "fim/container.h"
#include "fim/report.h"

namespace fim::cli {

std::string container_json(const Container& c) {
  std::string o = "{\"schema\":\"";
  o += kReportSchema;
  o += "\",\"type\":\"container\",\"pid\":" + std::to_string(c.pid) + ",\"processes\":" + std::to_string(c.processes);
  const auto str = [&](const char* k, std::string_view v) {
    o += ",\"";
    o += k;
    o += "\":";
    append_json_string(o, v);
  };
  str("mnt_ns", c.mnt_ns);
  str("pid_ns", c.pid_ns);
  o += std::string(",\"own_pid_ns\":") + (c.own_pid_ns ? "true" : "false");
  str("runtime", c.id ? c.id->runtime : "");
  str("id", c.id ? c.id->id : "");
  str("root_fstype", c.root_fstype);
  {
    std::string b = "{";
    json::add_bytes(b, "root_source", c.root_source);
    o += "," + b.substr(1);
  }
  if (c.overlay) {
    std::string b = "{";
    json::add_bytes(b, "upperdir", c.overlay->upper);
    json::add_bytes(b, "workdir", c.overlay->work);
    o += "," + b.substr(1) + ",\"lowerdirs\":[";
    for (size_t i = 0; i < c.overlay->lower.size(); ++i) {
      if (i) o += ',';
      append_json_string(o, c.overlay->lower[i]);
    }
    o += "]";
  }
  return o + "}";
}


int cmd_containers(const Options& o) {
  auto found = discover_containers();
  if (!found) return report_error(found.error());
  if (o.format == "ndjson") {
    for (const auto& c : *found) std::printf("%s\n", container_json(c).c_str());
  } else if (o.format == "json") {
    std::printf("{\"schema\":\"%s\",\"type\":\"containers\",\"containers\":[", kReportSchema);
    for (size_t i = 0; i < found->size(); ++i) std::printf("%s%s", i ? "," : "", container_json((*found)[i]).c_str());
    std::printf("]}\n");
  } else {
    std::printf("%zu container(s)\n", found->size());
    for (const auto& c : *found) {
      std::printf("pid %d (%d process%s) %s%s, runtime %s, id %s\n  root: %s %s\n", c.pid, c.processes,
                  c.processes == 1 ? "" : "es", c.mnt_ns.c_str(), c.own_pid_ns ? " with its own pid namespace" : "",
                  c.id ? c.id->runtime.c_str() : "unknown", c.id ? c.id->id.substr(0, 12).c_str() : "-",
                  c.root_fstype.c_str(), escape_terminal(c.root_source).c_str());
      if (c.overlay) {
        std::printf("  upperdir: %s\n", escape_terminal(c.overlay->upper).c_str());
        for (const auto& l : c.overlay->lower) std::printf("  lowerdir: %s\n", escape_terminal(l).c_str());
      }
    }
  }
  return std::fflush(stdout) == 0 ? 0 : 20;
}

}  // namespace fim::cli
