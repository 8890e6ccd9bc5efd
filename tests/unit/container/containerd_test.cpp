// SPDX-License-Identifier: GPL-2.0-or-later
// RuntimeMetadata for containerd: the image, its manifest digest and the CRI labels from the
// meta.db Debian's containerd 1.6.20 wrote (tests/data/containerd, README), put in a fake host
// root; an index image followed to this machine's manifest in the content store.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

#include "fim/container_identity.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;
using fim::test::write_file;

namespace {

const std::string kData = std::string(FIM_TEST_DATA) + "/containerd";
const std::string kWeb = "4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2";
const std::string kPlain = "a116c9ed46d6207734a43317d30fd88f52ac8634c37d904bbf4e41d865f90475";
const std::string kIndexHex = "3939f5d59d38f875b8f7a3c6fdbd411d6c68c9e164f67f9994cb241e7a64fff0";
const std::string kIndex = "sha256:" + kIndexHex;
const std::string kManifest = "sha256:662c79adeac1aa109527c1057a5e072acaf97800fedcc415206ca9f00db1f5da";
const std::string kBolt = "var/lib/containerd/io.containerd.metadata.v1.bolt";
const std::string kBlobs = "var/lib/containerd/io.containerd.content.v1.content/blobs/sha256";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void mkdirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i)
    if (i == path.size() || path[i] == '/') ::mkdir(path.substr(0, i).c_str(), 0755);
}

/// containerd's files below `root`: meta.db (as given) and the index blob (unless `index` is false).
void containerd_root(const TempDir& root, const std::string& db, bool index = true) {
  mkdirs(root / kBolt);
  mkdirs(root / kBlobs);
  write_file(root / kBolt + "/meta.db", db);
  if (index) write_file(root / kBlobs + "/" + kIndexHex, slurp(kData + "/index-3939f5d5.json"));
}

Container container(const std::string& id) {
  Container c;
  c.pid = 4242;
  c.id = ContainerId{"containerd", id};
  c.overlay = OverlayDirs{{"/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs"}, "/u", "/w"};
  return c;
}

}  // namespace

TEST_CASE("containerd: meta.db names the image, the pod and (through the index) the manifest digest") {
  TempDir root;
  containerd_root(root, slurp(kData + "/meta.db"));
  RuntimeMetadata meta(root.path());
  const Container c = container(kWeb);
  const auto id = meta.identify(c);
  CHECK(id.metadata == "containerd");
  CHECK(id.image == "localhost/fimtest/multi:1");
  CHECK(id.image_index_digest == kIndex);
  CHECK(id.image_digest == kManifest);  // the linux/amd64 entry, what `ctr images ls` showed for app:1
  CHECK(id.pod_namespace == "shop");
  CHECK(id.pod_name == "web-7d4");
  CHECK(id.pod_container == "nginx");
  CHECK(id.name == "nginx");
  const auto key = baseline_key_of(c, id);
  CHECK(key.kind == "manifest-digest");
  CHECK(key.key == "sha256-" + kManifest.substr(7));
  // The object every record carries: the index digest right after the manifest's.
  const std::string obj = container_object(c, id, key);
  CHECK(obj.find(R"("image_digest":")" + kManifest + R"(","image_index_digest":")" + kIndex + R"(","pid":4242)") !=
        std::string::npos);
  // A plain manifest image: its digest, no index.
  const auto plain = meta.identify(container(kPlain));
  CHECK(plain.image == "localhost/fimtest/app:1");
  CHECK(plain.image_digest == kManifest);
  CHECK(plain.image_index_digest.empty());
  CHECK(plain.pod_name.empty());
}

TEST_CASE("containerd: an index whose blob is absent or altered names no manifest: lower layers") {
  TempDir root;
  containerd_root(root, slurp(kData + "/meta.db"), false);
  SUBCASE("absent") {}
  SUBCASE("altered") {
    std::string text = slurp(kData + "/index-3939f5d5.json");
    text.replace(text.find("arm64"), 5, "amd64");  // the other entry first for this machine
    write_file(root / kBlobs + "/" + kIndexHex, text);
  }
  RuntimeMetadata meta(root.path());
  const Container c = container(kWeb);
  const auto id = meta.identify(c);
  CHECK(id.image == "localhost/fimtest/multi:1");
  CHECK(id.image_digest.empty());
  CHECK(id.image_index_digest.empty());
  CHECK(baseline_key_of(c, id).kind == "lower-layers");
}

TEST_CASE("containerd: meta.db first, the task bundle's annotations fill what it lacks") {
  TempDir root;
  containerd_root(root, slurp(kData + "/meta.db"));
  const std::string bundle = root / "run/containerd/io.containerd.runtime.v2.task/default/" + kPlain;
  mkdirs(bundle);
  write_file(bundle + "/config.json",
             R"({"annotations":{"io.kubernetes.cri.container-name":"api","io.kubernetes.cri.sandbox-name":"api-5f",)"
             R"("io.kubernetes.cri.sandbox-namespace":"prod","io.kubernetes.cri.image-name":"registry.example/api:2"}})");
  RuntimeMetadata meta(root.path());
  const auto id = meta.identify(container(kPlain));
  CHECK(id.image == "localhost/fimtest/app:1");
  CHECK(id.image_digest == kManifest);
  CHECK(id.pod_namespace == "prod");
  CHECK(id.pod_name == "api-5f");
  CHECK(id.name == "api");
}

TEST_CASE("containerd: attack: a digest in meta.db that is not a sha256 digest never becomes a file name") {
  // Values in bbolt's leaf pages carry no checksum: the digest rewritten in place, same length.
  std::string db = slurp(kData + "/meta.db");
  std::string path = "../../../../../../../../etc/fimctl/keys/signing";
  path.resize(64, '/');
  const std::string evil = "sha256:" + path;
  REQUIRE(evil.size() == kManifest.size());
  size_t n = 0;
  for (size_t at = db.find(kManifest); at != std::string::npos; at = db.find(kManifest, at + 1), ++n)
    db.replace(at, evil.size(), evil);
  REQUIRE(n > 0);
  TempDir root;
  containerd_root(root, db);
  RuntimeMetadata meta(root.path());
  const Container c = container(kPlain);
  const auto id = meta.identify(c);
  CHECK(id.image == "localhost/fimtest/app:1");
  CHECK(id.image_digest.empty());
  CHECK(baseline_key_of(c, id).kind == "lower-layers");
}

TEST_CASE("containerd: attack: a malformed meta.db is no metadata, not a crash; the bundle still names it") {
  TempDir root;
  std::string db = slurp(kData + "/meta.db");
  for (size_t i = 0; i < db.size(); i += 97) db[i] = static_cast<char>(db[i] ^ 0xA5);
  containerd_root(root, db);
  const std::string bundle = root / "run/containerd/io.containerd.runtime.v2.task/k8s.io/" + kWeb;
  mkdirs(bundle);
  write_file(bundle + "/config.json", R"({"annotations":{"io.kubernetes.cri.image-name":"registry.example/api:2"}})");
  RuntimeMetadata meta(root.path());
  const Container c = container(kWeb);
  const auto id = meta.identify(c);
  CHECK(id.metadata == "containerd");
  CHECK(id.image == "registry.example/api:2");
  CHECK(id.image_digest.empty());
  CHECK(baseline_key_of(c, id).kind == "lower-layers");
}
