// SPDX-License-Identifier: GPL-2.0-or-later
// RuntimeMetadata (fim/container_identity.h): a container's name, image and pod from the
// files its runtime keeps on the host. Formats, as the runtimes write them:
//   containers-storage (podman, CRI-O), graph root /var/lib/containers/storage:
//     overlay-containers/containers.json  [{id, names[], image (image id), metadata (JSON text:
//                                           image-name, name)}]
//     overlay-images/images.json          [{id, digest (manifest), names[]}]
//     overlay-containers/<id>/userdata/config.json (also below the run root /run/containers/
//                                           storage): the OCI bundle, its annotations (CRI-O
//                                           sets io.kubernetes.pod.* and io.kubernetes.cri-o.Labels)
//   Docker: /var/lib/docker/containers/<id>/config.v2.json {Name "/web", Image "sha256:<id>",
//           Config {Image, Labels}}; image/overlay2/repositories.json maps "repo@sha256:<d>"
//           to an image id: the manifest digest.
//   containerd: /run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json, the
//           bundle; the CRI plugin's annotations (io.kubernetes.cri.sandbox-namespace,
//           sandbox-name, container-name, image-name); and the metadata database
//           /var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db (a bbolt file, read by
//           bolt.h, never locked nor written): the image name, its CRI labels and the image's
//           target digest, an index followed to this machine's manifest in the content store.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bolt.h"
#include "fim/base/bytes.h"
#include "fim/base/digest.h"
#include "fim/base/fd.h"
#include "fim/base/sys.h"
#include "fim/container_identity.h"

namespace fim {
namespace {

// containers.json of a host running thousands of containers is a few MB; a file larger than
// this is not a runtime's metadata.
constexpr size_t kMaxMetadata = size_t{64} << 20;

const char* const kStorage = "var/lib/containers/storage";
const char* const kStorageRun = "run/containers/storage";

const json::Value* find_by_id(const json::Value* list, std::string_view id) {
  if (!list || list->kind != json::Value::Kind::Array) return nullptr;
  for (const auto& v : list->items)
    if (v.str("id") == id) return &v;
  return nullptr;
}

std::string first_string(const json::Value* list) {
  if (!list || list->kind != json::Value::Kind::Array || list->items.empty()) return {};
  return list->items.front().kind == json::Value::Kind::String ? list->items.front().string : std::string();
}

void set_if_empty(std::string& field, std::string_view v) {
  if (field.empty()) field = v;
}

/// The CRI labels, as the kubelet sets them on every container (CRI-O and cri-dockerd keep them
/// as labels or annotations under these names).
void from_cri_labels(ContainerIdentity& id, const json::Value& labels) {
  set_if_empty(id.pod_namespace, labels.str("io.kubernetes.pod.namespace"));
  set_if_empty(id.pod_name, labels.str("io.kubernetes.pod.name"));
  set_if_empty(id.pod_container, labels.str("io.kubernetes.container.name"));
}

}  // namespace

RuntimeMetadata::RuntimeMetadata(Bytes host_root) : root_(std::move(host_root)) {}
RuntimeMetadata::~RuntimeMetadata() = default;

const json::Value* RuntimeMetadata::file(const Bytes& rel) {
  auto it = files_.find(rel);
  if (it == files_.end()) {
    std::unique_ptr<json::Value> v;
    const Bytes path = join_path(root_, rel);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    Result<std::string> text = make_error(Errc::Io, "absent");
    if (fd.valid()) text = read_to_end(fd.get(), kMaxMetadata, quote(path));
    if (text)
      if (auto parsed = json::parse(*text, kMaxMetadata)) v = std::make_unique<json::Value>(std::move(*parsed));
    it = files_.emplace(rel, std::move(v)).first;
  }
  return it->second.get();
}

void RuntimeMetadata::from_annotations(ContainerIdentity& id, const json::Value& a) {
  from_cri_labels(id, a);
  // containerd's CRI plugin.
  set_if_empty(id.pod_namespace, a.str("io.kubernetes.cri.sandbox-namespace"));
  set_if_empty(id.pod_name, a.str("io.kubernetes.cri.sandbox-name"));
  set_if_empty(id.pod_container, a.str("io.kubernetes.cri.container-name"));
  set_if_empty(id.image, a.str("io.kubernetes.cri.image-name"));
  // CRI-O: its labels as one JSON text, and the image it resolved.
  if (const auto labels = a.str("io.kubernetes.cri-o.Labels"); !labels.empty())
    if (auto v = json::parse(labels, size_t{1} << 20, 4)) from_cri_labels(id, *v);
  set_if_empty(id.image, a.str("io.kubernetes.cri-o.ImageName"));
}

void RuntimeMetadata::from_containers_storage(ContainerIdentity& id) {
  const Bytes containers = std::string(kStorage) + "/overlay-containers/containers.json";
  const json::Value* c = find_by_id(file(containers), id.id);
  if (!c) return;
  id.metadata = "containers-storage";
  id.name = first_string(c->get("names"));
  id.image_id = c->str("image");
  if (const auto meta = c->str("metadata"); !meta.empty())
    if (auto m = json::parse(meta, size_t{1} << 20, 4)) {
      set_if_empty(id.image, m->str("image-name"));
      set_if_empty(id.name, m->str("name"));
    }
  if (const json::Value* img = find_by_id(file(std::string(kStorage) + "/overlay-images/images.json"), id.image_id)) {
    id.image_digest = img->str("digest");
    set_if_empty(id.image, first_string(img->get("names")));
  }
  for (const char* base : {kStorage, kStorageRun}) {
    const json::Value* bundle = file(std::string(base) + "/overlay-containers/" + id.id + "/userdata/config.json");
    if (const json::Value* a = bundle ? bundle->get("annotations") : nullptr) from_annotations(id, *a);
  }
}

void RuntimeMetadata::from_docker(ContainerIdentity& id) {
  const json::Value* c = file("var/lib/docker/containers/" + id.id + "/config.v2.json");
  if (!c) return;
  id.metadata = "docker";
  id.name = c->str("Name");
  if (!id.name.empty() && id.name.front() == '/') id.name.erase(0, 1);
  id.image_id = c->str("Image");
  if (const json::Value* config = c->get("Config")) {
    id.image = config->str("Image");
    if (const json::Value* labels = config->get("Labels")) from_cri_labels(id, *labels);
  }
  // The manifest digest: the "repo@sha256:..." name that maps to this image id.
  const json::Value* repos = file("var/lib/docker/image/overlay2/repositories.json");
  const json::Value* all = repos ? repos->get("Repositories") : nullptr;
  if (!all || id.image_id.empty()) return;
  for (const auto& repo : all->members)
    for (const auto& ref : repo.value.members) {
      const auto at = ref.key.find('@');
      if (at != std::string::npos && ref.value.kind == json::Value::Kind::String && ref.value.string == id.image_id) {
        id.image_digest = ref.key.substr(at + 1);
        return;
      }
    }
}

namespace {

const char* const kContainerdDb = "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db";
const char* const kContainerdBlobs = "var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/";
constexpr size_t kMaxNamespaces = 64;  // containerd namespaces looked through for one container id
constexpr size_t kMaxIndex = size_t{4} << 20;

/// This machine's OCI architecture name, as an index's platform entries spell it.
std::string_view oci_arch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#else
  return "";
#endif
}

bool is_index_type(std::string_view t) {
  return t == "application/vnd.oci.image.index.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.list.v2+json";
}

std::string db_string(bolt::Db& db, const bolt::Bucket& b, std::string_view key) {
  auto v = db.get(b, key);
  return v && *v ? **v : std::string();
}

}  // namespace

/// containerd's metadata (bolt.h; containerd 1.6/1.7, metadata schema v1):
///   v1/<namespace>/containers/<id>/image            the image name (reference)
///   v1/<namespace>/containers/<id>/labels/<key>     the CRI labels (io.kubernetes.*)
///   v1/<namespace>/images/<name>/target/digest      the manifest or index digest
///   v1/<namespace>/images/<name>/target/mediatype
/// An index target is followed in the content store (blobs/sha256/<hex>, checked against its
/// digest) to this machine's linux platform manifest: the digest the container runs.
bool RuntimeMetadata::from_containerd_db(ContainerIdentity& id, const std::vector<std::string>& namespaces) {
  if (!containerd_db_tried_) {
    containerd_db_tried_ = true;
    if (auto db = bolt::Db::open(join_path(root_, kContainerdDb))) containerd_db_ = std::make_unique<bolt::Db>(std::move(*db));
  }
  if (!containerd_db_) return false;
  bolt::Db& db = *containerd_db_;
  std::vector<std::string> names = namespaces;
  if (names.empty()) {  // no task bundle names it: every namespace (CRI: k8s.io; ctr: default)
    auto v1 = db.bucket(db.root(), "v1");
    if (!v1 || !*v1) return false;
    (void)db.for_each(**v1, [&](const bolt::Entry& e) {
      if (e.is_bucket) names.emplace_back(e.key);
      return names.size() < kMaxNamespaces;
    });
  }
  for (const auto& ns : names) {
    auto c = db.bucket_at({"v1", ns, "containers", id.id});
    if (!c || !*c) continue;
    id.metadata = "containerd";
    id.image = db_string(db, **c, "image");
    if (auto labels = db.bucket(**c, "labels"); labels && *labels) {
      id.pod_namespace = db_string(db, **labels, "io.kubernetes.pod.namespace");
      id.pod_name = db_string(db, **labels, "io.kubernetes.pod.name");
      id.pod_container = db_string(db, **labels, "io.kubernetes.container.name");
    }
    auto target = id.image.empty() ? Result<std::optional<bolt::Bucket>>(std::optional<bolt::Bucket>())
                                   : db.bucket_at({"v1", ns, "images", id.image, "target"});
    if (!target || !*target) return true;
    const std::string digest = db_string(db, **target, "digest");
    const auto key = image_digest_key(digest);
    if (!key) return true;  // not a sha256 digest: it names no file, and no baseline
    if (!is_index_type(db_string(db, **target, "mediatype"))) {
      id.image_digest = digest;
      return true;
    }
    id.image_index_digest = digest;
    const std::string hex = digest.substr(7);  // checked by image_digest_key: 64 hex digits
    auto text = read_small_file(join_path(root_, kContainerdBlobs + hex).c_str(), kMaxIndex);
    if (!text || "sha256:" + hex_encode(sha256_of(*text)) != digest) return true;
    auto index = json::parse(*text, kMaxIndex, 8);
    const json::Value* ms = index ? index->get("manifests") : nullptr;
    if (!ms || ms->kind != json::Value::Kind::Array) return true;
    for (const auto& d : ms->items) {
      const json::Value* p = d.get("platform");
      if (p && p->str("os") == "linux" && p->str("architecture") == oci_arch() && !is_index_type(d.str("mediaType"))) {
        id.image_digest = d.str("digest");
        break;
      }
    }
    return true;
  }
  return false;
}

void RuntimeMetadata::from_containerd(ContainerIdentity& id) {
  // The task bundle (running containers) names the namespace and carries the CRI plugin's
  // annotations; meta.db names the image and its digest. meta.db first: the bundle's
  // annotations fill only what it lacks.
  const Bytes tasks = "run/containerd/io.containerd.runtime.v2.task";
  std::vector<std::string> namespaces, with_bundle;
  if (DIR* d = ::opendir(join_path(root_, tasks).c_str())) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.' && namespaces.size() < kMaxNamespaces) namespaces.emplace_back(e->d_name);
    ::closedir(d);
  }
  const json::Value* annotations = nullptr;
  for (const auto& ns : namespaces) {
    const json::Value* bundle = file(tasks + "/" + ns + "/" + id.id + "/config.json");
    if ((annotations = bundle ? bundle->get("annotations") : nullptr)) {
      with_bundle = {ns};
      break;
    }
  }
  from_containerd_db(id, with_bundle);
  if (annotations) {
    id.metadata = "containerd";
    from_annotations(id, *annotations);
  }
  if (!id.metadata.empty()) set_if_empty(id.name, id.pod_container);
}

ContainerIdentity RuntimeMetadata::identify(const Container& c) {
  ContainerIdentity id;
  if (!c.id) return id;
  id.runtime = c.id->runtime;
  id.id = c.id->id;
  if (id.runtime == "podman" || id.runtime == "cri-o") {
    from_containers_storage(id);
  } else if (id.runtime == "docker") {
    from_docker(id);
  } else if (id.runtime == "containerd") {
    from_containerd(id);
  } else {  // a kubepods cgroup that does not say which runtime: whichever knows the id
    from_containers_storage(id);
    if (id.metadata.empty()) from_containerd(id);
    if (id.metadata.empty()) from_docker(id);
  }
  // The digest becomes a file name: anything but a well-formed one is dropped here, once.
  if (!image_digest_key(id.image_digest)) id.image_digest.clear();
  if (id.image_digest.empty() || !image_digest_key(id.image_index_digest)) id.image_index_digest.clear();
  return id;
}

ImageBaselineKey baseline_key_of(const Container& c, const ContainerIdentity& id) {
  if (auto k = image_digest_key(id.image_digest)) return {*k, "manifest-digest", ""};
  return {image_key(c), "lower-layers", ""};
}

void container_identity_fields(json::Writer& w, const Container& c, const ContainerIdentity& id,
                               const ImageBaselineKey& key) {
  w.str("runtime", id.runtime).str("id", id.id).str("name", id.name).str("image", id.image);
  w.str("image_digest", id.image_digest).str("image_index_digest", id.image_index_digest).num("pid", c.pid);
  if (!id.pod_namespace.empty() || !id.pod_name.empty() || !id.pod_container.empty()) {
    w.object("pod").str("namespace", id.pod_namespace).str("name", id.pod_name).str("container", id.pod_container);
    w.close();
  }
  w.str("baseline_key", key.key).str("baseline_key_kind", key.kind);
  if (!key.source.empty()) w.str("baseline_source", key.source);
}

std::string container_object(const Container& c, const ContainerIdentity& id, const ImageBaselineKey& key) {
  json::Writer w;
  w.object();
  container_identity_fields(w, c, id, key);
  return w.take();
}

std::string no_image_baseline_message(const std::string& label, const ContainerIdentity& id,
                                      const ImageBaselineKey& key, const Bytes& db) {
  return label + ": no baseline of its image " + escape_terminal(id.image.empty() ? key.key : id.image) + " (" +
         escape_terminal(db) + "): run 'fimctl init --image' for it, or 'fimctl init --containers'";
}

std::string container_label(const Container& c, const ContainerIdentity& id) {
  std::string s = id.runtime.empty() ? "container" : id.runtime + " container";
  if (!id.pod_name.empty()) {
    s += " " + id.pod_namespace + "/" + id.pod_name + "/" + id.pod_container;
  } else if (!id.name.empty()) {
    s += " " + id.name;
  } else if (!id.id.empty()) {
    s += " " + id.id.substr(0, 12);
  }
  s += " (";
  if (!id.image.empty()) s += id.image + ", ";
  return escape_terminal(s + "pid " + std::to_string(c.pid) + ")");
}

}  // namespace fim
