// SPDX-License-Identifier: GPL-2.0-or-later
// Alternatives (accept --also): what matches one, and what a successor carries of them.
#include <doctest/doctest.h>

#include "fim/merge.h"

using namespace fim;

namespace {

Record file(const Bytes& path, const std::string& content, int64_t mtime) {
  Record r;
  r.path = path;
  r.set_num(Attr::Type, static_cast<int64_t>(FileType::File));
  r.set_num(Attr::Mode, 0644);
  r.set_num(Attr::Size, static_cast<int64_t>(content.size()));
  r.set_num(Attr::Mtime, mtime);
  r.set_num(Attr::Inode, mtime + 1);
  r.set_bytes(Attr::Sha256, content);  // stands for the digest
  return r;
}

}  // namespace

TEST_CASE("an alternative matches the same content written again, and nothing else") {
  const std::vector<Record> alts = {detail::as_alternative(file("/f", "v1", 1))};
  CHECK(detail::alternative_of(alts, file("/f", "v1", 99), false) == 2);  // new times and inode
  CHECK(detail::alternative_of(alts, file("/f", "v3", 1), false) == 0);
  Record setuid = file("/f", "v1", 99);
  setuid.set_num(Attr::Mode, 04755);
  CHECK(detail::alternative_of(alts, setuid, false) == 0);
  Record link = file("/f", "v1", 99);
  link.set_num(Attr::Type, static_cast<int64_t>(FileType::Symlink));
  CHECK(detail::alternative_of(alts, link, false) == 0);
}

TEST_CASE("an alternative kept under a weaker rule, or not fully read, vouches for nothing") {
  Record weak = detail::as_alternative(file("/f", "v1", 1));
  weak.have &= ~attr_bit(Attr::Sha256);  // a rule that did not hash
  CHECK(detail::alternative_of({weak}, file("/f", "EV", 99), false) == 0);
  Record unstable = detail::as_alternative(file("/f", "v1", 1));
  unstable.status = EntryStatus::Unstable;
  CHECK(detail::alternative_of({unstable}, file("/f", "v1", 99), false) == 0);
}

TEST_CASE("update's swap keeps the row only when it was fully read; ending them is journalled") {
  BaselineMeta meta;
  meta.alternatives["/f"] = {detail::as_alternative(file("/f", "v1", 1))};
  std::vector<std::string> notes;
  detail::SuccessorAlternatives s(meta, [&](const std::string& what, const Bytes& path, std::string o, std::string n) {
    notes.push_back(what + " " + path + " " + o + " " + n);
  });
  Record torn = file("/f", "", 5);
  torn.status = EntryStatus::Unstable;
  s.swapped(torn, file("/f", "v1", 6), 2);
  CHECK(notes.empty());
  s.swapped(file("/f", "v2", 5), file("/f", "v1", 6), 2);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].rfind("alternative 2 in use /f ", 0) == 0);
  s.present("/f");
  auto kept = s.take(true);
  REQUIRE(kept.at("/f").size() == 1);
  CHECK(kept.at("/f")[0].get(Attr::Sha256).bytes == "v2");
  CHECK_FALSE(kept.at("/f")[0].has(Attr::Mtime));

  detail::SuccessorAlternatives t(meta, [&](const std::string& what, const Bytes&, std::string, std::string n) {
    notes.push_back(what + " -> " + n);
  });
  t.ended("/f", "ended");
  CHECK(notes.back() == "ended -> -");
  CHECK(t.take(false).empty());
}
