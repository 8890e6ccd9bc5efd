// SPDX-License-Identifier: GPL-2.0-or-later
// Decoders of attacker-controlled kernel formats: known vectors, then malformed input.
#include <doctest/doctest.h>

#include <cstring>

#include "fim/attr.h"

using namespace fim;

namespace {
std::string le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string le16(uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); }
std::string acl_entry(uint16_t tag, uint16_t perm, uint32_t id) { return le16(tag) + le16(perm) + le32(id); }
}  // namespace

TEST_CASE("POSIX ACL xattrs render like getfacl") {
  const std::string acl = le32(2) + acl_entry(0x01, 6, 0xffffffff) + acl_entry(0x02, 4, 12345) +
                          acl_entry(0x04, 4, 0xffffffff) + acl_entry(0x08, 5, 103221) +
                          acl_entry(0x10, 5, 0xffffffff) + acl_entry(0x20, 0, 0xffffffff);
  CHECK(render_acl(acl) == "user::rw-,user:12345:r--,group::r--,group:103221:r-x,mask::r-x,other::---");
  CHECK(render_acl("") == "");
}

TEST_CASE("malformed ACLs render as hex, never crash") {
  const std::string bad[] = {
      "x",                                              // shorter than the header
      le32(1) + acl_entry(1, 6, 0),                     // wrong version
      le32(2) + acl_entry(1, 6, 0).substr(0, 5),        // truncated entry
      le32(2) + acl_entry(0x40, 6, 0),                  // unknown tag
      le32(2) + acl_entry(0x01, 0x80, 0),               // unknown permission bits
  };
  for (const auto& b : bad) CHECK(render_acl(b).rfind("invalid:0x", 0) == 0);
}

TEST_CASE("file capabilities render like getcap") {
  // VFS_CAP_REVISION_2 | effective, permitted = net_raw (13) | net_admin (12)
  const std::string v2 = le32(0x02000001) + le32((1u << 13) | (1u << 12)) + le32(0) + le32(0) + le32(0);
  CHECK(render_caps(v2) == "cap_net_admin,cap_net_raw=ep");
  // revision 3 carries the namespace root uid
  const std::string v3 = le32(0x03000000) + le32(1u << 0) + le32(1u << 0) + le32(0) + le32(0) + le32(1000);
  CHECK(render_caps(v3) == "cap_chown=ip rootid=1000");
  // a bit in the upper word: cap_bpf is 39
  const std::string hi = le32(0x02000001) + le32(0) + le32(0) + le32(1u << (39 - 32)) + le32(0);
  CHECK(render_caps(hi) == "cap_bpf=ep");
  const std::string unknown_bit = le32(0x02000000) + le32(0) + le32(0) + le32(1u << 30) + le32(0);
  CHECK(render_caps(unknown_bit) == "cap_62=p");
  CHECK(render_caps(le32(0x02000000) + le32(1)).rfind("invalid:0x", 0) == 0);  // wrong size
  CHECK(render_caps(le32(0x07000000) + std::string(16, '\0')).rfind("invalid:0x", 0) == 0);
}

TEST_CASE("chattr flags render by name, unknown bits in hex") {
  CHECK(render_flags(0) == "-");
  CHECK(render_flags(0x10 | 0x20) == "immutable,append");
  CHECK(render_flags(0x80000 | 0x80000000u) == "extents,0x80000000");
}

TEST_CASE("xattr encoding is canonical and round-trips any bytes") {
  std::vector<XattrEntry> in = {{"user.b", std::string("\0\xff", 2)}, {"user.a", "text"}, {"user.big", std::string(65536, 'x')}};
  const Bytes enc = encode_xattrs(in);
  std::vector<XattrEntry> out;
  REQUIRE(decode_xattrs(enc, &out));
  REQUIRE(out.size() == 3);
  CHECK(out[0].name == "user.a");  // sorted by name: the encoding does not depend on listing order
  CHECK(out[1].name == "user.b");
  CHECK(out[1].value == std::string("\0\xff", 2));
  CHECK(out[2].value.size() == 65536);
  std::swap(in[0], in[2]);
  CHECK(encode_xattrs(in) == enc);
  CHECK(render_xattrs(encode_xattrs({{"user.a", "text"}, {"user.b", std::string("\x01", 1)}})) ==
        "user.a=\"text\"; user.b=0x01");
}

TEST_CASE("malformed xattr encodings are rejected, not over-read") {
  const Bytes good = encode_xattrs({{"user.a", "v"}});
  for (size_t cut = 1; cut < good.size(); ++cut) {
    std::vector<XattrEntry> out;
    CHECK_FALSE(decode_xattrs(good.substr(0, cut), &out));
  }
  Bytes huge_len = good;
  huge_len[0] = '\xff';
  huge_len[3] = '\x7f';
  std::vector<XattrEntry> out;
  CHECK_FALSE(decode_xattrs(huge_len, &out));
  CHECK(render_xattrs(huge_len).rfind("invalid:0x", 0) == 0);
}

TEST_CASE("attribute table: keys are unique and resolve back") {
  for (size_t i = 0; i < kAttrCount; ++i) {
    const Attr a = static_cast<Attr>(i);
    CHECK(attr_from_key(attr_info(a).key) == a);
  }
  CHECK_FALSE(attr_from_key("nope").has_value());
  // Persisted ids: appending is fine, reordering breaks every baseline.
  CHECK(static_cast<int>(Attr::Type) == 0);
  CHECK(static_cast<int>(Attr::Sha256) == 12);
  CHECK(static_cast<int>(Attr::Xxh128) == 19);
}
