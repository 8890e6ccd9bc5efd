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
//           sandbox-name, container-name, image-name). The image's digest lives only in its
//           bolt database, which is not read: such containers are keyed by their lower layers.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fim/base/bytes.h"
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

void RuntimeMetadata::from_containerd(ContainerIdentity& id) {
  const Bytes tasks = "run/containerd/io.containerd.runtime.v2.task";
  DIR* d = ::opendir(join_path(root_, tasks).c_str());
  if (!d) return;
  std::vector<std::string> namespaces;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') namespaces.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& ns : namespaces) {
    const json::Value* bundle = file(tasks + "/" + ns + "/" + id.id + "/config.json");
    const json::Value* a = bundle ? bundle->get("annotations") : nullptr;
    if (!a) continue;
    id.metadata = "containerd";
    from_annotations(id, *a);
    set_if_empty(id.name, id.pod_container);
    return;
  }
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
  return id;
}

ImageBaselineKey baseline_key_of(const Container& c, const ContainerIdentity& id) {
  if (auto k = image_digest_key(id.image_digest)) return {*k, "manifest-digest", ""};
  return {image_key(c), "lower-layers", ""};
}

void container_identity_fields(json::Writer& w, const Container& c, const ContainerIdentity& id,
                               const ImageBaselineKey& key) {
  w.str("runtime", id.runtime).str("id", id.id).str("name", id.name).str("image", id.image);
  w.str("image_digest", id.image_digest).num("pid", c.pid);
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
