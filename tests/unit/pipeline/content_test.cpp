// SPDX-License-Identifier: GPL-2.0-or-later
// read_kept_text and the content store (docs/design.md, Content store): content is kept only as
// the bytes the baseline hashed, never through a link, never of a denied or private file; the
// store refuses what it did not write.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fim/content_store.h"
#include "pipeline/content.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

namespace {

Rule diff_rule() {
  Rule r;
  r.content_diff = true;
  auto m = compile_content_masks({"(password=)[^ ]+"});
  REQUIRE(m);
  r.masks = *m;
  return r;
}

}  // namespace

TEST_CASE("read_kept_text keeps only the bytes the record hashed, masked") {
  TempDir t;
  const Policy p;
  const Rule rule = diff_rule();
  test::write_file(t / "f", "a password=x\n");
  ::chmod((t / "f").c_str(), 0644);
  auto k = detail::read_kept_text(-1, p, rule, test::file_record(t / "f", 0644, "a password=x\n"));
  REQUIRE(k.text);
  CHECK(*k.text == "a password=***\n");
  // Other bytes than were hashed (the file changed, or was swapped, since): not kept.
  k = detail::read_kept_text(-1, p, rule, test::file_record(t / "f", 0644, "public\n"));
  CHECK(!k.text);
  CHECK(k.why == "changed since it was hashed");
  // A symlink now where the file was: not followed, even to the bytes that were hashed.
  test::write_file(t / "target", "public\n");
  ::chmod((t / "target").c_str(), 0644);
  ::symlink((t / "target").c_str(), (t / "link").c_str());
  k = detail::read_kept_text(-1, p, rule, test::file_record(t / "link", 0644, "public\n"));
  CHECK(!k.text);
  CHECK(k.why == "a symbolic link now (not followed)");
  // Private (by the record or by the file now), denied, binary, too large: not kept.
  k = detail::read_kept_text(-1, p, rule, test::file_record(t / "f", 0600, "a password=x\n"));
  CHECK(k.why.find("not world-readable") == 0);
  ::chmod((t / "f").c_str(), 0600);
  k = detail::read_kept_text(-1, p, rule, test::file_record(t / "f", 0644, "a password=x\n"));
  CHECK(k.why.find("not world-readable") == 0);
  test::write_file(t / "etc_shadow", "x\n");
  k = detail::read_kept_text(-1, p, rule, test::file_record(t.path() + "/etc/shadow", 0644, "x\n"));
  CHECK(k.why == "on the content deny list");
  test::write_file(t / "bin", std::string("a\0b", 3));
  ::chmod((t / "bin").c_str(), 0644);
  k = detail::read_kept_text(-1, p, rule, test::file_record(t / "bin", 0644, std::string("a\0b", 3)));
  CHECK(k.why == "not UTF-8 text");
  Rule small = diff_rule();
  small.content_max_bytes = 4;
  ::chmod((t / "f").c_str(), 0644);
  k = detail::read_kept_text(-1, p, small, test::file_record(t / "f", 0644, "a password=x\n"));
  CHECK(!k.text);
}

TEST_CASE("the content store round-trips, and refuses links and a linked directory") {
  TempDir t;
  ::chmod(t.path().c_str(), 0755);
  auto s = ContentStore::open(t / "content", true);
  REQUIRE(s);
  const std::string name = test::sha256_hex("x");
  REQUIRE((*s)->put(name, "masked text\n"));
  auto got = (*s)->get(name);
  REQUIRE(got);
  REQUIRE(*got);
  CHECK(**got == "masked text\n");
  struct stat st;
  REQUIRE(::stat((t / "content/" + name).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((t / "content").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  // Not kept: none; a link under a version's name: Trust, not followed.
  auto missing = (*s)->get(test::sha256_hex("y"));
  REQUIRE(missing);
  CHECK(!missing->has_value());
  ::symlink((t / "content/" + name).c_str(), (t / "content/" + test::sha256_hex("z")).c_str());
  auto linked = (*s)->get(test::sha256_hex("z"));
  REQUIRE(!linked);
  CHECK(linked.error().code == Errc::Trust);
  CHECK(!(*s)->put(test::sha256_hex("z"), "other"));
  // The directory itself a link: refused.
  ::symlink((t / "content").c_str(), (t / "content2").c_str());
  auto via_link = ContentStore::open(t / "content2", false);
  REQUIRE(!via_link);
  CHECK(via_link.error().code == Errc::Trust);
  // Missing without create: Database (no store yet).
  auto none = ContentStore::open(t / "nothing", false);
  REQUIRE(!none);
  CHECK(none.error().code == Errc::Database);
}
