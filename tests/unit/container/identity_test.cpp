// SPDX-License-Identifier: GPL-2.0-or-later
// RuntimeMetadata: a container named from its runtime's files, as podman 4.3 (containers-storage),
// CRI-O, Docker and containerd's CRI plugin write them, in a fake host root.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <string>

#include "fim/container_identity.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;
using fim::test::write_file;

namespace {

const std::string kId = "d2fe6be1aeb20d7b7cb9531779a69d396870c8d2c7904f6e5412c058565082d1";
const std::string kImage = "edff5a86c73cc817c84b9a8117f6fcc9d6049b2782c7255749b96d0950e91ac1";
const std::string kDigest = "sha256:fce4a6e191e77e95c23417b3319ab5a88602c67eb54225f9f2af6dddff3d001c";

void mkdirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i)
    if (i == path.size() || path[i] == '/') ::mkdir(path.substr(0, i).c_str(), 0755);
}

Container container(const std::string& runtime) {
  Container c;
  c.pid = 4242;
  c.id = ContainerId{runtime, kId};
  c.overlay = OverlayDirs{{"/var/lib/containers/storage/overlay/l/ABC"}, "/u", "/w"};
  return c;
}

void podman_store(const TempDir& root, const std::string& digest = kDigest) {
  const std::string s = root / "var/lib/containers/storage";
  mkdirs(s + "/overlay-containers/" + kId + "/userdata");
  mkdirs(s + "/overlay-images");
  write_file(s + "/overlay-containers/containers.json",
             R"([{"id":"0000","names":["other"],"image":"1111"},{"id":")" + kId + R"(","names":["web"],"image":")" +
                 kImage + R"(","layer":"f605","metadata":"{\"image-name\":\"localhost/app:1\",\"image-id\":\")" +
                 kImage + R"(\",\"name\":\"web\",\"created-at\":1796431430}"}])");
  write_file(s + "/overlay-images/images.json", R"([{"id":")" + kImage + R"(","digest":")" + digest +
                                                    R"(","names":["localhost/app:1"],"layer":"4264"}])");
}

}  // namespace

TEST_CASE("podman: name, image and manifest digest from containers-storage") {
  TempDir root;
  podman_store(root);
  RuntimeMetadata meta(root.path());
  const Container c = container("podman");
  const auto id = meta.identify(c);
  CHECK(id.metadata == "containers-storage");
  CHECK(id.name == "web");
  CHECK(id.image == "localhost/app:1");
  CHECK(id.image_id == kImage);
  CHECK(id.image_digest == kDigest);
  CHECK(id.pod_name.empty());
  const auto key = baseline_key_of(c, id);
  CHECK(key.kind == "manifest-digest");
  CHECK(key.key == "sha256-" + kDigest.substr(7));
  CHECK(container_label(c, id) == "podman container web (localhost/app:1, pid 4242)");
}

TEST_CASE("CRI-O: the pod's namespace, name and container from the bundle's annotations") {
  TempDir root;
  podman_store(root);
  const std::string bundle = root / "run/containers/storage/overlay-containers/" + kId + "/userdata";
  mkdirs(bundle);
  write_file(bundle + "/config.json",
             R"({"annotations":{"io.kubernetes.cri-o.Labels":"{\"io.kubernetes.container.name\":\"nginx\",)"
             R"(\"io.kubernetes.pod.name\":\"web-7d4\",\"io.kubernetes.pod.namespace\":\"shop\"}"}})");
  RuntimeMetadata meta(root.path());
  const auto id = meta.identify(container("cri-o"));
  CHECK(id.pod_namespace == "shop");
  CHECK(id.pod_name == "web-7d4");
  CHECK(id.pod_container == "nginx");
  json::Writer w;
  w.object();
  container_identity_fields(w, container("cri-o"), id, baseline_key_of(container("cri-o"), id));
  const auto text = w.take();
  CHECK(text.find(R"("pod":{"namespace":"shop","name":"web-7d4","container":"nginx"})") != std::string::npos);
}

TEST_CASE("docker: config.v2.json and the digest repositories.json maps to its image") {
  TempDir root;
  mkdirs(root / "var/lib/docker/containers/" + kId);
  mkdirs(root / "var/lib/docker/image/overlay2");
  write_file(root / "var/lib/docker/containers/" + kId + "/config.v2.json",
             R"({"ID":")" + kId + R"(","Name":"/db","Image":"sha256:)" + kImage +
                 R"(","Config":{"Image":"postgres:16","Labels":{"io.kubernetes.pod.namespace":"data"}}})");
  write_file(root / "var/lib/docker/image/overlay2/repositories.json",
             R"({"Repositories":{"postgres":{"postgres:16":"sha256:)" + kImage + R"(","postgres@)" + kDigest +
                 R"(":"sha256:)" + kImage + R"("}}})");
  RuntimeMetadata meta(root.path());
  const auto id = meta.identify(container("docker"));
  CHECK(id.metadata == "docker");
  CHECK(id.name == "db");
  CHECK(id.image == "postgres:16");
  CHECK(id.image_digest == kDigest);
  CHECK(id.pod_namespace == "data");
}

TEST_CASE("containerd: the CRI plugin's annotations; no digest, so keyed by its lower layers") {
  TempDir root;
  const std::string bundle = root / "run/containerd/io.containerd.runtime.v2.task/k8s.io/" + kId;
  mkdirs(bundle);
  write_file(bundle + "/config.json",
             R"({"annotations":{"io.kubernetes.cri.container-name":"api","io.kubernetes.cri.sandbox-name":"api-5f",)"
             R"("io.kubernetes.cri.sandbox-namespace":"prod","io.kubernetes.cri.image-name":"registry.example/api:2"}})");
  RuntimeMetadata meta(root.path());
  const Container c = container("containerd");
  const auto id = meta.identify(c);
  CHECK(id.metadata == "containerd");
  CHECK(id.name == "api");
  CHECK(id.image == "registry.example/api:2");
  CHECK(id.pod_namespace == "prod");
  CHECK(id.pod_name == "api-5f");
  CHECK(id.image_digest.empty());
  const auto key = baseline_key_of(c, id);
  CHECK(key.kind == "lower-layers");
  CHECK(key.key == image_key(c));
}

TEST_CASE("a digest in the metadata that is not one never becomes a file name") {
  // Whoever can write the runtime's metadata is root already; still, the digest is text that
  // names a file below images/, checked once where it is read.
  TempDir root;
  podman_store(root, "sha256:../../../../etc/fimctl/keys/signing");
  RuntimeMetadata meta(root.path());
  const Container c = container("podman");
  const auto id = meta.identify(c);
  CHECK(id.image_digest.empty());
  CHECK(baseline_key_of(c, id).kind == "lower-layers");
}

TEST_CASE("no metadata, unreadable metadata, a container with no id: unnamed, keyed by its layers") {
  TempDir root;
  mkdirs(root / "var/lib/containers/storage/overlay-containers");
  write_file(root / "var/lib/containers/storage/overlay-containers/containers.json", "{not json");
  RuntimeMetadata meta(root.path());
  const auto id = meta.identify(container("podman"));
  CHECK(id.metadata.empty());
  CHECK(id.name.empty());
  CHECK(id.runtime == "podman");
  Container anon = container("podman");
  anon.id.reset();
  const auto none = meta.identify(anon);
  CHECK(none.runtime.empty());
  CHECK(container_label(anon, none) == "container (pid 4242)");
}
