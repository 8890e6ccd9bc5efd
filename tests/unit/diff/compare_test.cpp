// SPDX-License-Identifier: GPL-2.0-or-later
#include <doctest/doctest.h>

#include "fim/diff.h"

using namespace fim;

namespace {
Record file(int64_t mode, const char* sha) {
  Record r;
  r.path = "/x";
  r.set_num(Attr::Type, static_cast<int64_t>(FileType::File));
  r.set_num(Attr::Mode, mode);
  r.set_bytes(Attr::Sha256, sha);
  return r;
}
}  // namespace

TEST_CASE("compare reports exactly the attributes that differ") {
  struct {
    const char* name;
    Record old_rec, new_rec;
    AttrMask want;
  } cases[] = {
      {"identical", file(0644, "aa"), file(0644, "aa"), 0},
      {"mode", file(0644, "aa"), file(0600, "aa"), attr_bit(Attr::Mode)},
      {"content", file(0644, "aa"), file(0644, "bb"), attr_bit(Attr::Sha256)},
      {"both", file(0644, "aa"), file(0755, "bb"), attr_bit(Attr::Mode) | attr_bit(Attr::Sha256)},
  };
  for (auto& c : cases) {
    CAPTURE(c.name);
    CHECK(compare(c.old_rec, c.new_rec) == c.want);
  }
}

TEST_CASE("an attribute missing on one side is not a change unless the type changed") {
  Record old_rec = file(0644, "aa");
  Record unread = file(0644, "");
  unread.drop(Attr::Sha256);  // e.g. unreadable now: its status says so, not a fake change
  CHECK(compare(old_rec, unread) == 0);
  CHECK(compare(unread, old_rec) == 0);

  Record link;
  link.path = "/x";
  link.set_num(Attr::Type, static_cast<int64_t>(FileType::Symlink));
  link.set_num(Attr::Mode, 0777);
  link.set_bytes(Attr::Link, "/etc/shadow");
  const AttrMask m = compare(old_rec, link);
  CHECK((m & attr_bit(Attr::Type)));
  CHECK((m & attr_bit(Attr::Sha256)));  // the digest is gone: listed
  CHECK((m & attr_bit(Attr::Link)));    // the target is new: listed
  CHECK((m & attr_bit(Attr::Mode)));

  Record with_empty_caps = old_rec;
  with_empty_caps.set_bytes(Attr::Caps, "");  // collected, none set: not news when it goes
  CHECK_FALSE((compare(with_empty_caps, link) & attr_bit(Attr::Caps)));
  with_empty_caps.set_bytes(Attr::Caps, "x");
  CHECK((compare(with_empty_caps, link) & attr_bit(Attr::Caps)));
}

TEST_CASE("empty and absent values differ only when both were collected") {
  Record a = file(0644, "aa"), b = file(0644, "aa");
  a.set_bytes(Attr::Xattrs, "");
  b.set_bytes(Attr::Xattrs, std::string("\x04\0\0\0user\x01\0\0\0x", 13));
  CHECK(compare(a, b) == attr_bit(Attr::Xattrs));
}
