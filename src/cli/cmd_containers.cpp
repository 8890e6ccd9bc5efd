// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl containers: what discover_containers() finds, for people or as JSON.
#include <unistd.h>

#include <cstdio>

#include "commands.h"
#include "fim/base/bytes.h"
#include "fim/base/sys.h"
#include "fim/container.h"
#include "fim/pipeline.h"
#include "fim/report.h"

namespace fim::cli {

void container_fields(json::Writer& w, const Container& c, const ContainerIdentity& id, const ImageBaselineKey& key) {
  container_identity_fields(w, c, id, key);
  w.str("metadata", id.metadata).num("processes", c.processes);
  w.str("mnt_ns", c.mnt_ns).str("pid_ns", c.pid_ns).boolean("own_pid_ns", c.own_pid_ns);
  w.str("root_fstype", c.root_fstype).bytes("root_source", c.root_source);
  if (c.overlay) {
    w.bytes("upperdir", c.overlay->upper).bytes("workdir", c.overlay->work);
    w.array("lowerdirs");
    for (const auto& l : c.overlay->lower) w.str(l);
    w.close();
  }
}

namespace {

/// The key of the container's image baseline, and what the baseline there was made from.
ImageBaselineKey key_with_source(const Options& o, const Container& c, const ContainerIdentity& id) {
  ImageBaselineKey key = baseline_key_of(c, id);
  if (auto db = absolute_path(o.db)) key.source = baseline_source(image_baseline_path(*db, key.key));
  return key;
}

std::string container_record(const Options& o, const Container& c, const ContainerIdentity& id) {
  json::Writer w;
  w.schema("container");
  container_fields(w, c, id, key_with_source(o, c, id));
  return w.take();
}

}  // namespace

const char* const kContainersNeedRoot = "reads /proc/PID/root and the namespaces of other users' processes";

int cmd_containers(const Options& o) {
  // Not root, /proc shows only this user's processes' namespaces: a list that says "0
  // container(s)" on a host running dozens would be a wrong answer, not a short one.
  if (::geteuid() != 0) return needs_root(kContainersNeedRoot);
  auto found = discover_containers();
  if (!found) return report_error(found.error());
  RuntimeMetadata meta;
  std::vector<ContainerIdentity> ids;
  for (const auto& c : *found) ids.push_back(meta.identify(c));
  if (o.format == Format::Ndjson) {
    for (size_t i = 0; i < found->size(); ++i) std::printf("%s\n", container_record(o, (*found)[i], ids[i]).c_str());
  } else if (o.format == Format::Json) {
    json::Writer doc;
    doc.schema("containers").array("containers");
    for (size_t i = 0; i < found->size(); ++i) doc.raw(container_record(o, (*found)[i], ids[i]));
    std::printf("%s\n", doc.take().c_str());
  } else {
    std::printf("%zu container(s)\n", found->size());
    for (size_t i = 0; i < found->size(); ++i) {
      const Container& c = (*found)[i];
      const ContainerIdentity& id = ids[i];
      std::printf("%s\n  pid %d (%d process%s) %s%s, id %s\n  root: %s %s\n", container_label(c, id).c_str(), c.pid,
                  c.processes, c.processes == 1 ? "" : "es", c.mnt_ns.c_str(),
                  c.own_pid_ns ? " with its own pid namespace" : "", id.id.empty() ? "-" : id.id.substr(0, 12).c_str(),
                  c.root_fstype.c_str(), escape_terminal(c.root_source).c_str());
      if (!id.image_digest.empty()) std::printf("  image digest: %s\n", escape_terminal(id.image_digest).c_str());
      if (!id.image_index_digest.empty())
        std::printf("  image index digest: %s\n", escape_terminal(id.image_index_digest).c_str());
      const auto key = key_with_source(o, c, id);
      std::printf("  baseline: images/%s.db (%s, %s)\n", key.key.c_str(), key.kind.c_str(),
                  key.source == "image"       ? "built from the image"
                  : key.source == "container" ? "recorded from a running container"
                                              : "none yet");
      if (c.overlay) {
        std::printf("  upperdir: %s\n", escape_terminal(c.overlay->upper).c_str());
        for (const auto& l : c.overlay->lower) std::printf("  lowerdir: %s\n", escape_terminal(l).c_str());
      }
    }
  }
  return std::fflush(stdout) == 0 ? 0 : 20;
}

}  // namespace fim::cli
