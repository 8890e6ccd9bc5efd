// SPDX-License-Identifier: GPL-2.0-or-later
// bolt::Db: containerd's meta.db as Debian's containerd 1.6.20 wrote it (tests/data/containerd,
// its README says how), read as containerd would; and files made malformed on purpose: each is
// an error, never a crash, an endless loop or a read outside the file.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "container/bolt.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;
using fim::test::write_file;

namespace {

const std::string kMetaDb = std::string(FIM_TEST_DATA) + "/containerd/meta.db";
// What `ctr images ls` and `ctr containers ls` showed when it was written (README).
const std::string kWeb = "4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2";
const std::string kPlain = "a116c9ed46d6207734a43317d30fd88f52ac8634c37d904bbf4e41d865f90475";
const std::string kIndex = "sha256:3939f5d59d38f875b8f7a3c6fdbd411d6c68c9e164f67f9994cb241e7a64fff0";
const std::string kManifest = "sha256:662c79adeac1aa109527c1057a5e072acaf97800fedcc415206ca9f00db1f5da";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

template <class T>
void put(std::string& s, size_t off, T v) {
  std::memcpy(s.data() + off, &v, sizeof v);
}

/// A bbolt file of `pages` (page size 1024): pages 0 and 1 are metas (txid 2 and 3, root page
/// `root`, high-water mark the page count); the rest as given, their headers written here.
struct Page {
  uint16_t flags = 0x02;
  uint32_t overflow = 0;
  // elements: key, value, bucket flag (leaf) or child (branch)
  struct El {
    std::string key, value;
    uint64_t child = 0;
    bool bucket = false;
  };
  std::vector<El> els;
  int64_t id = -1;  ///< the id its header claims; -1: its own
};

std::string page_bytes(const Page& p, uint64_t id, size_t size) {
  std::string s(size, '\0');
  put<uint64_t>(s, 0, p.id < 0 ? id : static_cast<uint64_t>(p.id));
  put<uint16_t>(s, 8, p.flags);
  put<uint16_t>(s, 10, static_cast<uint16_t>(p.els.size()));
  put<uint32_t>(s, 12, p.overflow);
  size_t data = 16 + 16 * p.els.size();
  for (size_t i = 0; i < p.els.size(); ++i) {
    const size_t e = 16 + 16 * i;
    const auto& el = p.els[i];
    if (p.flags == 0x01) {
      put<uint32_t>(s, e, static_cast<uint32_t>(data - e));
      put<uint32_t>(s, e + 4, static_cast<uint32_t>(el.key.size()));
      put<uint64_t>(s, e + 8, el.child);
    } else {
      put<uint32_t>(s, e, el.bucket ? 1 : 0);
      put<uint32_t>(s, e + 4, static_cast<uint32_t>(data - e));
      put<uint32_t>(s, e + 8, static_cast<uint32_t>(el.key.size()));
      put<uint32_t>(s, e + 12, static_cast<uint32_t>(el.value.size()));
    }
    s.replace(data, el.key.size() + el.value.size(), el.key + el.value);
    data += el.key.size() + el.value.size();
  }
  return s;
}

std::string meta_page(uint64_t id, uint64_t root, uint64_t pages, uint64_t txid) {
  std::string s(1024, '\0');
  put<uint64_t>(s, 0, id);
  put<uint16_t>(s, 8, 0x04);
  put<uint32_t>(s, 16, 0xED0CDAED);
  put<uint32_t>(s, 20, 2);
  put<uint32_t>(s, 24, 1024);
  put<uint64_t>(s, 32, root);
  put<uint64_t>(s, 56, pages);
  put<uint64_t>(s, 64, txid);
  put<uint64_t>(s, 72, bolt::fnv64a(std::string_view(s).substr(16, 56)));
  return s;
}

std::string bucket_value(uint64_t root, const std::string& inline_page = {}) {
  std::string v(16, '\0');
  put<uint64_t>(v, 0, root);
  return v + inline_page;
}

std::string make_db(const std::vector<Page>& pages, uint64_t root = 2) {
  std::string s = meta_page(0, root, 2 + pages.size(), 2) + meta_page(1, root, 2 + pages.size(), 3);
  for (size_t i = 0; i < pages.size(); ++i) s += page_bytes(pages[i], 2 + i, 1024);
  return s;
}

std::string db_file(const TempDir& d, const std::string& bytes) {
  write_file(d / "meta.db", bytes);
  return d / "meta.db";
}

}  // namespace

TEST_CASE("bolt: containerd's meta.db: a container's image, its labels and the image's target") {
  auto db = bolt::Db::open(kMetaDb);
  REQUIRE(db);
  CHECK(db->page_size() == 4096);
  auto c = db->bucket_at({"v1", "default", "containers", kWeb});
  REQUIRE(c);
  REQUIRE(*c);
  auto image = db->get(**c, "image");
  REQUIRE(image);
  CHECK(*image == std::optional<std::string>("localhost/fimtest/multi:1"));
  auto labels = db->bucket(**c, "labels");
  REQUIRE(labels);
  REQUIRE(*labels);
  CHECK(db->get(**labels, "io.kubernetes.pod.namespace").value() == std::optional<std::string>("shop"));
  CHECK(db->get(**labels, "io.kubernetes.pod.name").value() == std::optional<std::string>("web-7d4"));
  CHECK(db->get(**labels, "io.kubernetes.container.name").value() == std::optional<std::string>("nginx"));
  auto target = db->bucket_at({"v1", "default", "images", "localhost/fimtest/multi:1", "target"});
  REQUIRE(target);
  REQUIRE(*target);
  CHECK(db->get(**target, "digest").value() == std::optional<std::string>(kIndex));
  CHECK(db->get(**target, "mediatype").value() == std::optional<std::string>("application/vnd.oci.image.index.v1+json"));
  auto plain = db->bucket_at({"v1", "default", "images", "localhost/fimtest/app:1", "target"});
  REQUIRE(plain);
  REQUIRE(*plain);
  CHECK(db->get(**plain, "digest").value() == std::optional<std::string>(kManifest));
  // Absent keys and buckets are nothing, not errors; a bucket is not a value and vice versa.
  CHECK(!db->bucket_at({"v1", "default", "containers", "nope"}).value());
  CHECK(!db->bucket_at({"v1", "k8s.io"}).value());
  CHECK(!db->get(**c, "labels").value());
  CHECK(!db->bucket(**c, "image").value());
}

TEST_CASE("bolt: for_each lists a bucket's keys, nested buckets marked") {
  auto db = bolt::Db::open(kMetaDb);
  REQUIRE(db);
  auto containers = db->bucket_at({"v1", "default", "containers"});
  REQUIRE(containers);
  REQUIRE(*containers);
  std::vector<std::string> ids;
  REQUIRE(db->for_each(**containers, [&](const bolt::Entry& e) {
    CHECK(e.is_bucket);
    ids.emplace_back(e.key);
    return true;
  }));
  CHECK(ids == std::vector<std::string>{kWeb, kPlain});
  std::vector<std::string> ns;
  auto v1 = db->bucket(db->root(), "v1");
  REQUIRE(v1);
  REQUIRE(*v1);
  REQUIRE(db->for_each(**v1, [&](const bolt::Entry& e) {
    if (e.is_bucket) ns.emplace_back(e.key);
    return true;
  }));
  CHECK(ns == std::vector<std::string>{"default"});
}

TEST_CASE("bolt: the valid meta with the higher txid is used; a torn one is skipped") {
  const std::string good = slurp(kMetaDb);
  REQUIRE(good.size() > 8192);
  uint64_t tx0 = 0, tx1 = 0;
  std::memcpy(&tx0, good.data() + 64, 8);
  std::memcpy(&tx1, good.data() + 4096 + 64, 8);
  TempDir d;
  auto db = bolt::Db::open(db_file(d, good));
  REQUIRE(db);
  CHECK(db->txid() == std::max(tx0, tx1));
  // The newer meta's checksum broken (a torn commit): the older meta is used.
  std::string torn = good;
  torn[(tx0 > tx1 ? 0 : 4096) + 40] ^= 1;
  auto older = bolt::Db::open(db_file(d, torn));
  REQUIRE(older);
  CHECK(older->txid() == std::min(tx0, tx1));
  // Both broken: not a bbolt file.
  torn[(tx0 > tx1 ? 4096 : 0) + 40] ^= 1;
  auto none = bolt::Db::open(db_file(d, torn));
  REQUIRE(!none);
  CHECK(none.error().code == Errc::Database);
}

TEST_CASE("bolt: attack: a page whose branch points at itself is an error, not an endless loop") {
  Page loop;
  loop.flags = 0x01;
  loop.els = {{"a", "", 2}, {"m", "", 2}};
  TempDir d;
  auto db = bolt::Db::open(db_file(d, make_db({loop})));
  REQUIRE(db);
  auto found = db->get(db->root(), "z");
  REQUIRE(!found);
  CHECK(found.error().message.find("deeper") != std::string::npos);
  auto walked = db->for_each(db->root(), [](const bolt::Entry&) { return true; });
  REQUIRE(!walked);
  CHECK(walked.error().message.find("reached twice") != std::string::npos);
}

TEST_CASE("bolt: attack: a shared subtree is walked once, then refused") {
  Page branch;
  branch.flags = 0x01;
  branch.els = {{"a", "", 3}, {"b", "", 3}};
  Page leaf;
  leaf.els = {{"a", "1"}, {"b", "2"}};
  TempDir d;
  auto db = bolt::Db::open(db_file(d, make_db({branch, leaf})));
  REQUIRE(db);
  CHECK(db->get(db->root(), "b").value() == std::optional<std::string>("2"));
  CHECK(!db->for_each(db->root(), [](const bolt::Entry&) { return true; }));
}

TEST_CASE("bolt: attack: offsets, counts and page ids outside the file are errors") {
  TempDir d;
  Page leaf;
  leaf.els = {{"k", "v"}};
  SUBCASE("element past the page's end") {
    std::string s = make_db({leaf});
    put<uint32_t>(s, 2048 + 16 + 12, 0xFFFFFFFF);  // vsize
    auto db = bolt::Db::open(db_file(d, s));
    REQUIRE(db);
    CHECK(!db->get(db->root(), "k"));
  }
  SUBCASE("count past the page's end") {
    std::string s = make_db({leaf});
    put<uint16_t>(s, 2048 + 10, 0xFFFF);
    auto db = bolt::Db::open(db_file(d, s));
    REQUIRE(db);
    CHECK(!db->get(db->root(), "k"));
  }
  SUBCASE("root page beyond the file") {
    CHECK(!bolt::Db::open(db_file(d, make_db({leaf}, 9))));
    CHECK(!bolt::Db::open(db_file(d, make_db({leaf}, 0))));
  }
  SUBCASE("high-water mark beyond the file (a truncated file)") {
    const std::string s = make_db({leaf, leaf, leaf});
    CHECK(!bolt::Db::open(db_file(d, s.substr(0, 3 * 1024))));
  }
  SUBCASE("overflow beyond the file") {
    Page big = leaf;
    big.overflow = 1000;
    auto db = bolt::Db::open(db_file(d, make_db({big})));
    REQUIRE(db);
    CHECK(!db->get(db->root(), "k"));
  }
  SUBCASE("a child page id that is a meta page or out of range") {
    for (uint64_t child : {uint64_t{0}, uint64_t{1}, uint64_t{3}, ~uint64_t{0}}) {
      Page branch;
      branch.flags = 0x01;
      branch.els = {{"a", "", child}};
      auto db = bolt::Db::open(db_file(d, make_db({branch})));
      REQUIRE(db);
      CHECK(!db->get(db->root(), "a"));
    }
  }
  SUBCASE("a page whose header names another page (reused under us)") {
    Page other = leaf;
    other.id = 7;
    auto db = bolt::Db::open(db_file(d, make_db({other})));
    REQUIRE(db);
    CHECK(!db->get(db->root(), "k"));
  }
  SUBCASE("a freelist page where a leaf should be") {
    Page fl = leaf;
    fl.flags = 0x10;
    auto db = bolt::Db::open(db_file(d, make_db({fl})));
    REQUIRE(db);
    CHECK(!db->get(db->root(), "k"));
  }
  SUBCASE("not a regular file, absent") {
    CHECK(!bolt::Db::open(d.path()));
    CHECK(bolt::Db::open(d / "absent").error().code == Errc::Io);
  }
}

TEST_CASE("bolt: inline buckets: the page in the value, bounds-checked") {
  Page inner;
  inner.els = {{"digest", "sha256:x"}};
  const std::string inline_page = page_bytes(inner, 0, 16 + 16 + 6 + 8);
  Page root;
  root.els = {{"target", bucket_value(0, inline_page), 0, true}, {"z", bucket_value(40), 0, true}};
  TempDir d;
  auto db = bolt::Db::open(db_file(d, make_db({root})));
  REQUIRE(db);
  auto t = db->bucket(db->root(), "target");
  REQUIRE(t);
  REQUIRE(*t);
  CHECK(db->get(**t, "digest").value() == std::optional<std::string>("sha256:x"));
  CHECK(!db->bucket(db->root(), "z"));  // a root page beyond the file
  // The inline page's element claims more than the value holds.
  Page lying = root;
  std::string cut = inline_page;
  put<uint32_t>(cut, 16 + 12, 4000);
  lying.els[0].value = bucket_value(0, cut);
  auto db2 = bolt::Db::open(db_file(d, make_db({lying})));
  REQUIRE(db2);
  auto t2 = db2->bucket(db2->root(), "target");
  REQUIRE(t2);
  REQUIRE(*t2);
  CHECK(!db2->get(**t2, "digest"));
}

TEST_CASE("bolt: every single-byte corruption of the real file is read or refused, never a crash") {
  const std::string good = slurp(kMetaDb);
  TempDir d;
  // Every 41st byte of the pages in use (cheap enough for a unit test; the fuzz target goes further).
  size_t refused = 0;
  for (size_t off = 0; off < 34 * 4096 && off < good.size(); off += 41) {
    std::string bad = good;
    bad[off] = static_cast<char>(bad[off] ^ 0x5A);
    auto db = bolt::Db::open(db_file(d, bad));
    if (!db) {
      ++refused;
      continue;
    }
    auto c = db->bucket_at({"v1", "default", "containers", kWeb});
    if (c && *c) (void)db->get(**c, "image");
    if (!c || !db->for_each(db->root(), [](const bolt::Entry&) { return true; })) ++refused;
  }
  CHECK(refused > 0);
}
