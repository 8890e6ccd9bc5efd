// SPDX-License-Identifier: GPL-2.0-or-later
// Directories under an upgrade (pkg::directory_note): vouched for by what changed inside
// them, never past an unverified entry in them.
#include "doctest/doctest.h"
#include "fim/pkg.h"

using namespace fim;
using pkg::Evidence;
using pkg::Verdict;

namespace {

Record dir_record(const std::string& path, uint32_t mode, int64_t uid = 0) {
  Record r;
  r.path = path;
  r.set_num(Attr::Type, static_cast<int64_t>(FileType::Dir));
  r.set_num(Attr::Mode, mode);
  r.set_num(Attr::Uid, uid);
  r.set_num(Attr::Gid, 0);
  return r;
}

pkg::Note note(Verdict v, Evidence e) {
  pkg::Note n;
  n.verdict = v;
  n.evidence = e;
  n.package = "hello";
  return n;
}

}  // namespace

TEST_CASE("a directory an upgrade unpacked into: as good as the weakest of its changed entries") {
  const Record old = dir_record("/usr/share/doc/hello", 0755), now = old;
  const pkg::Note own = note(Verdict::Verified, Evidence::DpkgList);
  pkg::Children kids;
  kids.add("/usr/share/doc/hello/copyright", note(Verdict::Verified, Evidence::DebSha256));
  SUBCASE("all changed entries deb-sha256: deb-sha256") {
    const auto n = pkg::directory_note(own, &old, &now, true, kids);
    CHECK(n.verdict == Verdict::Verified);
    CHECK(n.evidence == Evidence::DebSha256);
  }
  SUBCASE("one changed entry only derived: derived") {
    kids.add("/usr/share/doc/hello/x.pyc", note(Verdict::Verified, Evidence::Derived));
    CHECK(pkg::directory_note(own, &old, &now, true, kids).evidence == Evidence::Derived);
  }
  SUBCASE("a file dropped into it (unpackaged): the directory's time change is not verified either") {
    kids.add("/usr/share/doc/hello/dropper", note(Verdict::Unpackaged, Evidence::None));
    const auto n = pkg::directory_note(own, &old, &now, true, kids);
    CHECK(n.verdict != Verdict::Verified);
    CHECK(n.detail.find("dropper") != std::string::npos);
  }
  SUBCASE("a changed entry not being accepted counts as unverified") {
    kids.add_unknown("/usr/share/doc/hello/other");
    CHECK(pkg::directory_note(own, &old, &now, true, kids).verdict != Verdict::Verified);
  }
  SUBCASE("more than times changed (mode): its own verdict stands") {
    const pkg::Note mismatch = note(Verdict::Mismatch, Evidence::DebSha256);
    CHECK(pkg::directory_note(mismatch, &old, &now, false, kids).verdict == Verdict::Mismatch);
  }
  SUBCASE("nothing changed inside: its own verdict stands (dpkg-list, weak)") {
    const auto n = pkg::directory_note(own, &old, &now, true, pkg::Children{});
    CHECK(n.evidence == Evidence::DpkgList);
  }
}

TEST_CASE("an added directory: its own package record first, then its entries") {
  const Record now = dir_record("/usr/lib/python3/dist-packages/fimtest/__pycache__", 0755);
  pkg::Children kids;
  kids.add(now.path + "/m.cpython-311.pyc", note(Verdict::Verified, Evidence::Derived));
  SUBCASE("shipped by a .deb: the weaker of the two") {
    const auto n = pkg::directory_note(note(Verdict::Verified, Evidence::DebSha256), nullptr, &now, false, kids);
    CHECK(n.verdict == Verdict::Verified);
    CHECK(n.evidence == Evidence::Derived);
  }
  SUBCASE("no package ships it (__pycache__), every entry derived: derived") {
    const auto n = pkg::directory_note(note(Verdict::Unpackaged, Evidence::None), nullptr, &now, false, kids);
    CHECK(n.verdict == Verdict::Verified);
    CHECK(n.evidence == Evidence::Derived);
  }
  SUBCASE("no package ships it and the entries are deb-sha256: still at most derived") {
    pkg::Children strong;
    strong.add(now.path + "/a", note(Verdict::Verified, Evidence::DebSha256));
    CHECK(pkg::directory_note(note(Verdict::Unpackaged, Evidence::None), nullptr, &now, false, strong).evidence ==
          Evidence::Derived);
  }
  SUBCASE("a world-writable or someone else's new directory is not vouched for by its entries") {
    const Record ww = dir_record(now.path, 0777), theirs = dir_record(now.path, 0755, 1000);
    CHECK(pkg::directory_note(note(Verdict::Unpackaged, Evidence::None), nullptr, &ww, false, kids).verdict ==
          Verdict::Unpackaged);
    CHECK(pkg::directory_note(note(Verdict::Unpackaged, Evidence::None), nullptr, &theirs, false, kids).verdict ==
          Verdict::Unpackaged);
  }
  SUBCASE("an empty new directory no package ships (/root/.ssh made by hand): unpackaged") {
    const Record ssh = dir_record("/root/.ssh", 0700);
    CHECK(pkg::directory_note(note(Verdict::Unpackaged, Evidence::None), nullptr, &ssh, false, pkg::Children{}).verdict ==
          Verdict::Unpackaged);
  }
}
