// SPDX-License-Identifier: GPL-2.0-or-later
// container: image references resolved (OCI image layouts and containers-storage written by the
// test: index and platform selection, digests checked, store names and ids, malformed stores)
// and the tar reader's pax records (what image layers carry: xattrs, sub-second mtimes).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "doctest/doctest.h"
#include "fim/base/bytes.h"
#include "fim/base/digest.h"
#include "fim/base/fd.h"
#include "fim/image.h"
#include "fim/tar.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;
using fim::test::write_file;

namespace {

std::string digest_of(const std::string& data) { return "sha256:" + hex_encode(sha256_of(data)); }

/// An OCI layout with blobs written by the test; returns descriptors as JSON.
struct Layout {
  explicit Layout(const std::string& dir) : dir(dir) {
    REQUIRE(std::system(("mkdir -p " + dir + "/blobs/sha256").c_str()) == 0);
    write_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  }
  std::string blob(const std::string& data, const std::string& type) {
    const std::string d = digest_of(data);
    write_file(dir + "/blobs/sha256/" + d.substr(7), data);
    return R"({"mediaType":")" + type + R"(","digest":")" + d + R"(","size":)" + std::to_string(data.size());
  }
  std::string manifest(const std::string& layer_data) {
    const std::string layer = blob(layer_data, "application/vnd.oci.image.layer.v1.tar") + "}";
    const std::string config = blob("{}", "application/vnd.oci.image.config.v1+json") + "}";
    const std::string m = R"({"schemaVersion":2,"config":)" + config + R"(,"layers":[)" + layer + "]}";
    last_manifest = digest_of(m);
    return blob(m, "application/vnd.oci.image.manifest.v1+json");
  }
  void index(const std::string& descs) { write_file(dir + "/index.json", R"({"schemaVersion":2,"manifests":[)" + descs + "]}"); }
  std::string dir, last_manifest;
};

std::string tagged(const std::string& desc, const std::string& tag) {
  return desc + R"(,"annotations":{"org.opencontainers.image.ref.name":")" + tag + R"("}})";
}

}  // namespace

TEST_CASE("oci: a tag picks its manifest; the only one without a tag; several untagged refused") {
  TempDir t;
  Layout l(t / "layout");
  const std::string a = tagged(l.manifest("layer a"), "a");
  const std::string da = l.last_manifest;
  const std::string b = tagged(l.manifest("layer b"), "b");
  const std::string db = l.last_manifest;
  l.index(a + "," + b);
  auto ra = resolve_image("oci:" + l.dir + ":a");
  REQUIRE(ra);
  CHECK(ra->manifest_digest == da);
  CHECK(ra->index_digest.empty());
  REQUIRE(ra->layers.size() == 1);
  CHECK(ra->layers[0].digest == digest_of("layer a"));
  CHECK(!ra->layers[0].directory);
  auto rb = resolve_image("oci:" + l.dir + ":b");
  REQUIRE(rb);
  CHECK(rb->manifest_digest == db);
  auto none = resolve_image("oci:" + l.dir);
  REQUIRE(!none);
  CHECK(none.error().message.find("several manifests") != std::string::npos);
  CHECK(!resolve_image("oci:" + l.dir + ":c"));
}

TEST_CASE("oci: an index is followed to this machine's platform and recorded") {
  TempDir t;
  Layout l(t / "layout");
  const std::string m = l.manifest("layer");
  const std::string dm = l.last_manifest;
  const std::string arm = R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
                          std::string(64, '0') + R"(","size":1,"platform":{"os":"linux","architecture":"s390x"}})";
  const std::string mine = m + R"(,"platform":{"os":"linux","architecture":"amd64"}})";
  const std::string idx = R"({"schemaVersion":2,"manifests":[)" + arm + "," + mine + "]}";
  const std::string di = digest_of(idx);
  l.index(tagged(l.blob(idx, "application/vnd.oci.image.index.v1+json"), "1"));
  auto r = resolve_image("oci:" + l.dir + ":1");
#if defined(__x86_64__)
  REQUIRE(r);
  CHECK(r->manifest_digest == dm);
  CHECK(r->index_digest == di);
#endif
}

TEST_CASE("oci: a blob that does not match its digest, or a digest that names a path, is refused") {
  TempDir t;
  Layout l(t / "layout");
  const std::string m = tagged(l.manifest("layer"), "1");
  l.index(m);
  write_file(l.dir + "/blobs/sha256/" + l.last_manifest.substr(7), R"({"schemaVersion":2,"layers":[]})");
  auto r = resolve_image("oci:" + l.dir + ":1");
  REQUIRE(!r);
  CHECK(r.error().code == Errc::Trust);
  l.index(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd","size":1})");
  CHECK(!resolve_image("oci:" + l.dir));
  CHECK(!resolve_image("oci:" + std::string(t / "nothing")));
  CHECK(!resolve_image("docker://debian"));
}

TEST_CASE("containers-storage: names, short names, id prefixes, the layer chain; malformed stores refused") {
  TempDir t;
  const std::string s = t.path();
  REQUIRE(std::system(("mkdir -p " + s + "/overlay-images " + s + "/overlay-layers").c_str()) == 0);
  const std::string id(64, 'a'), top(64, 'c'), base(64, 'b'), other(64, 'd'), third(64, 'f');
  const std::string dig = "sha256:" + std::string(64, 'e');
  write_file(s + "/overlay-images/images.json",
             R"([{"id":")" + id + R"(","digest":")" + dig + R"(","names":["localhost/app:1"],"layer":")" + top + R"("},)"
             R"({"id":")" + other + R"(","names":["docker.io/library/app:2","docker.io/library/app:latest"],"layer":")" + base + R"("},)"
             R"({"id":")" + third + R"(","names":["quay.io/x/app:2"],"layer":")" + base + R"("}])");
  write_file(s + "/overlay-layers/layers.json",
             R"([{"id":")" + top + R"(","parent":")" + base + R"("},{"id":")" + base + R"("}])");
  for (const char* ref : {"localhost/app:1", "app:1", "aaaaaaaaaaaa"}) {
    auto img = find_stored_image(s, ref);
    REQUIRE_MESSAGE(img, ref);
    CHECK(img->id == id);
    CHECK(img->digest == dig);
    CHECK(img->layers == std::vector<std::string>{top, base});
  }
  auto r = resolve_image("containers-storage:app:1", s);
  REQUIRE(r);
  CHECK(r->manifest_digest == dig);
  REQUIRE(r->layers.size() == 2);
  CHECK(r->layers[0].path == s + "/overlay/" + base + "/diff");  // lowest first
  CHECK(r->layers[1].directory);
  CHECK(!find_stored_image(s, "app:2"));    // two images answer to it
  CHECK(!find_stored_image(s, "aaaa"));     // too short an id prefix
  CHECK(!find_stored_image(s, "nothere:1"));
  CHECK(!resolve_image("containers-storage:docker.io/library/app:2", s));  // no digest recorded
  write_file(s + "/overlay-layers/layers.json", R"([{"id":")" + top + R"(","parent":")" + top + R"("}])");
  CHECK(!find_stored_image(s, "app:1"));  // a layer that is its own parent: a loop, bounded
  write_file(s + "/overlay-layers/layers.json", R"([{"id":")" + top + R"(","parent":"../../etc"}])");
  CHECK(!find_stored_image(s, "app:1"));  // an id that would name a path
}

TEST_CASE("tar: pax xattrs, sub-second mtimes and sizes; a malformed pax record is refused") {
  TempDir t;
  const std::string root = t / "root";
  REQUIRE(std::system(("mkdir -p " + root + " && printf data > " + root + "/f").c_str()) == 0);
  const std::string tar = t / "layer.tar";
  // What buildah and skopeo write: pax headers with the xattrs and the mtime (python's tarfile).
  REQUIRE(std::system(("python3 -c 'import sys,tarfile\n"
                       "with tarfile.open(sys.argv[2], \"w\", format=tarfile.PAX_FORMAT) as t:\n"
                       " i = t.gettarinfo(sys.argv[1], \"f\"); i.uid = i.gid = 0\n"
                       " i.pax_headers = {\"SCHILY.xattr.user.tag\": \"hello\", \"mtime\": \"1700000000.123456789\"}\n"
                       " t.addfile(i, open(sys.argv[1], \"rb\"))' " + root + "/f " + tar).c_str()) == 0);
  UniqueFd fd(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
  std::vector<TarEntry> seen;
  std::string data;
  REQUIRE(read_tar(fd.get(), "the test's layer", [&](const TarEntry& e, const TarDataReader& read) -> Status {
    seen.push_back(e);
    return read([&](std::string_view d) -> Status {
      data.append(d);
      return {};
    });
  }));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].name == "f");
  CHECK(seen[0].size == 4);
  CHECK(data == "data");
  CHECK(seen[0].mtime_ns % 1'000'000'000 == 123456789);
  REQUIRE(seen[0].xattrs.size() == 1);
  CHECK(seen[0].xattrs[0] == std::pair<std::string, std::string>("user.tag", "hello"));

  // A pax header whose record length runs past its end.
  std::string bytes = fim::test::read_file(tar);
  const size_t rec = bytes.find(" mtime=");
  REQUIRE(rec != std::string::npos);
  bytes[rec - 2] = '9';  // "NN mtime=..." -> "9N mtime=...": longer than the header
  write_file(t / "bad.tar", bytes);
  UniqueFd bad(::open((t / "bad.tar").c_str(), O_RDONLY | O_CLOEXEC));
  CHECK(!read_tar(bad.get(), "bad", [](const TarEntry&, const TarDataReader&) -> Status { return {}; }));
}
