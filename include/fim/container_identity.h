// SPDX-License-Identifier: GPL-2.0-or-later
// container_identity: a running container named as its runtime names it (docs/design.md,
// Containers): name, image reference and manifest digest, and for Kubernetes pods the
// namespace, pod and container from the CRI labels, read from the runtime's own metadata on
// the host (containers-storage for podman and CRI-O, Docker's config.v2.json, containerd's
// metadata database meta.db and its task bundle's config.json). The manifest digest keys the baseline the container is compared
// with; without it, the digest of the overlay's lower directories does, labelled so.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/container.h"
#include "fim/json.h"

namespace fim {

namespace bolt {
class Db;
}

struct ContainerIdentity {
  std::string runtime;       ///< podman, cri-o, containerd, docker (from the cgroup), else empty
  std::string id;            ///< 64 hex digits, from the cgroup
  std::string name;          ///< as the runtime names it (podman ps, docker ps)
  std::string image;         ///< the reference it was started from (localhost/app:1, nginx:1.25)
  std::string image_id;      ///< the runtime's image id (a config digest), when it keeps one
  std::string image_digest;  ///< the manifest digest "sha256:<hex>" the runtime runs, when known
  /// The index digest when the image's reference names an OCI index (or a Docker manifest
  /// list) and image_digest is this machine's platform manifest in it (containerd); else empty.
  std::string image_index_digest;
  std::string pod_namespace, pod_name, pod_container;  ///< the CRI labels (Kubernetes)
  std::string metadata;      ///< where these came from: "containers-storage", "docker", "containerd"; empty: none
};

/// Which baseline a container is compared with: images/<key>.db beside the host's.
struct ImageBaselineKey {
  std::string key;
  /// "manifest-digest" (the runtime's metadata named the digest) or "lower-layers" (it did not:
  /// the digest of the overlay's ordered lower directories, image_key()).
  std::string kind;
  /// What the baseline at the key was made from, when there is one: "image" (init --image, the
  /// image's own layers) or "container" (init --containers, a running container of it).
  std::string source;
};

/// Reads the runtimes' metadata below `host_root`: "/" on the host; the DaemonSet mounts the
/// runtimes' directories (/var/lib/containers, /run/containers, /var/lib/docker, /run/containerd)
/// read-only at the same paths. (/proc/1/root is not used: a sandbox's pid 1 need not be the
/// host's, and reading it needs more than the pod's capabilities grant.) Each file is read at most once per
/// instance: one instance per listing, so a daemon polling every few seconds re-reads only when
/// it meets a container it has not named yet. Metadata is text other users wrote (a container's
/// name, labels): it names, it never decides a path outside images/ (the digest is checked by
/// image_digest_key) and is escaped wherever it is shown.
class RuntimeMetadata {
 public:
  explicit RuntimeMetadata(Bytes host_root = "/");
  ~RuntimeMetadata();
  RuntimeMetadata(const RuntimeMetadata&) = delete;
  RuntimeMetadata& operator=(const RuntimeMetadata&) = delete;

  ContainerIdentity identify(const Container& c);

 private:
  const json::Value* file(const Bytes& rel);  ///< parsed, cached; null when absent or not JSON
  void from_containers_storage(ContainerIdentity& id);
  void from_docker(ContainerIdentity& id);
  void from_containerd(ContainerIdentity& id);
  bool from_containerd_db(ContainerIdentity& id, const std::vector<std::string>& namespaces);
  void from_annotations(ContainerIdentity& id, const json::Value& annotations);

  Bytes root_;
  std::map<Bytes, std::unique_ptr<json::Value>> files_;
  std::unique_ptr<bolt::Db> containerd_db_;  ///< meta.db, opened once (null: absent or malformed)
  bool containerd_db_tried_ = false;
};

/// The baseline key: the manifest digest's (images/sha256-<hex>.db) when the metadata named one,
/// else the lower layers' (image_key()).
ImageBaselineKey baseline_key_of(const Container& c, const ContainerIdentity& id);

/// The members of the "container" object every container record carries (open object in `w`):
/// runtime, id, name, image, image_digest, image_index_digest, pid, pod {namespace, name, container} (pods only),
/// baseline_key, baseline_key_kind.
void container_identity_fields(json::Writer& w, const Container& c, const ContainerIdentity& id,
                               const ImageBaselineKey& key);
/// That object, whole: what check --containers and the watch daemon attach to every record.
std::string container_object(const Container& c, const ContainerIdentity& id, const ImageBaselineKey& key);

/// The alert container_no_baseline's message: `label` (container_label()), the image by its
/// reference (else its key), the baseline file looked for, and the commands that make one.
std::string no_image_baseline_message(const std::string& label, const ContainerIdentity& id,
                                      const ImageBaselineKey& key, const Bytes& db);

/// For people: "podman container web (localhost/app:1, pid 4242)", or the pod's names.
std::string container_label(const Container& c, const ContainerIdentity& id);

}  // namespace fim
