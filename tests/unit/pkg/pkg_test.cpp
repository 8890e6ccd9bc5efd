// SPDX-License-Identifier: GPL-2.0-or-later
// pkg: control-file parsing, the data.tar reader (on archives GNU tar writes, long names and
// hard links included) and the verdicts on a dpkg database of the test's own making (no apt
// chain here: that is the root suite's package test, in a debootstrap root).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "fim/base/digest.h"
#include "doctest/doctest.h"
#include "fim/pkg.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;
using fim::test::file_record;
using fim::test::md5_hex;
using fim::test::write_file;

namespace {

}  // namespace

TEST_CASE("stanzas: fields, continuation lines, several stanzas, early stop") {
  std::vector<pkg::Stanza> got;
  pkg::parse_stanzas("Package: a\nVersion: 1\nConffiles:\n /etc/a 0123\n /etc/b 4567 obsolete\n\nPackage: b\r\n\n\nPackage: c\n",
                     [&](const pkg::Stanza& s) {
                       got.push_back(s);
                       return got.size() < 2;
                     });
  REQUIRE(got.size() == 2);
  CHECK(got[0].at("Package") == "a");
  CHECK(got[0].at("Conffiles") == "\n/etc/a 0123\n/etc/b 4567 obsolete");
  CHECK(got[1].at("Package") == "b");
}

TEST_CASE("release: the SHA256 section only, malformed lines skipped") {
  const auto m = pkg::release_sha256(
      "Origin: Debian\nMD5Sum:\n 0123456789abcdef0123456789abcdef 10 main/binary-amd64/Packages\nSHA256:\n " +
      std::string(64, 'a') + " 50060337 main/binary-amd64/Packages\n " + std::string(63, 'b') +
      " 1 short/Packages\n " + std::string(64, 'c') + " 2 contrib/i18n/Translation-en\n");
  REQUIRE(m.size() == 2);
  CHECK(m.at("main/binary-amd64/Packages") == std::string(64, 'a'));
  CHECK(m.count("short/Packages") == 0);
}

TEST_CASE("data.tar: files, symlinks, hard links, long names, modes, owners") {
  TempDir t;
  const std::string root = t / "root";
  const std::string longdir = std::string(120, 'd');
  REQUIRE(std::system(("mkdir -p " + root + "/usr/bin " + root + "/" + longdir).c_str()) == 0);
  write_file(root + "/usr/bin/tool", "#!/bin/sh\necho tool\n");
  ::chmod((root + "/usr/bin/tool").c_str(), 04755);
  write_file(root + "/" + longdir + "/f", "long");
  REQUIRE(::symlink("tool", (root + "/usr/bin/alias").c_str()) == 0);
  REQUIRE(::link((root + "/usr/bin/tool").c_str(), (root + "/usr/bin/hard").c_str()) == 0);
  const std::string tar = t / "data.tar";
  REQUIRE(std::system(("tar --format=gnu --owner=root:0 --group=root:0 -C " + root + " -cf " + tar + " .").c_str()) == 0);
  UniqueFd fd(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
  auto m = pkg::parse_data_tar(fd.get());
  REQUIRE(m);
  const auto& tool = m->at("/usr/bin/tool");
  CHECK(tool.type == '0');
  CHECK(tool.mode == 04755);
  CHECK(tool.uname == "root");
  CHECK(tool.sha256 == sha256_of("#!/bin/sh\necho tool\n"));
  CHECK(m->at("/usr/bin/alias").type == '2');
  CHECK(m->at("/usr/bin/alias").link == "tool");
  // Whichever name tar stored first, the other carries the same content digest.
  CHECK(m->at("/usr/bin/hard").sha256 == tool.sha256);
  CHECK(m->at("/" + longdir + "/f").sha256 == sha256_of("long"));
  CHECK(m->at("/usr").type == '5');

  SUBCASE("a corrupted header is refused") {
    std::string bytes = fim::test::read_file(tar);
    bytes[600] ^= 0x5a;  // inside the second header
    write_file(t / "bad.tar", bytes);
    UniqueFd bad(::open((t / "bad.tar").c_str(), O_RDONLY | O_CLOEXEC));
    CHECK(!pkg::parse_data_tar(bad.get()));
  }
  SUBCASE("a truncated archive is refused") {
    REQUIRE(::truncate(tar.c_str(), 1000) == 0);
    UniqueFd cut(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
    CHECK(!pkg::parse_data_tar(cut.get()));
  }
}

TEST_CASE("verdicts from dpkg's own records (no apt chain: evidence dpkg-md5 at best)") {
  TempDir t;
  const std::string r = t.path();
  REQUIRE(std::system(("mkdir -p " + r + "/var/lib/dpkg/info " + r + "/usr/bin " + r + "/etc/tool " + r +
                       "/var/lib/apt/lists " + r + "/etc").c_str()) == 0);
  const std::string shipped = "shipped content\n", conf = "key=value\n";
  write_file(r + "/var/lib/dpkg/status",
             "Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\nConffiles:\n "
             "/etc/tool/tool.conf " + md5_hex(conf) + "\n\n"
             "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.9\n");
  write_file(r + "/var/lib/dpkg/info/tool.list", "/.\n/usr\n/usr/bin\n/usr/bin/tool\n/usr/bin/other\n/etc/tool/tool.conf\n");
  write_file(r + "/var/lib/dpkg/info/tool.md5sums", md5_hex(shipped) + "  usr/bin/tool\n");
  write_file(r + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  write_file(r + "/usr/bin/tool", shipped);
  write_file(r + "/etc/tool/tool.conf", conf);
  pkg::Options o;
  o.root = r;
  o.keyrings = {"/nonexistent-keyring"};
  auto v = pkg::Verifier::open(o);
  REQUIRE(v);

  const Record old = file_record("/usr/bin/tool", 0755, "old content\n");
  SUBCASE("the package's content: verified, weak evidence, labelled") {
    const Record now = file_record("/usr/bin/tool", 0755, shipped);
    const auto n = (*v)->explain(&old, &now);
    CHECK(n.verdict == pkg::Verdict::Verified);
    CHECK(n.evidence == pkg::Evidence::DpkgMd5);
    CHECK(n.package == "tool");
    CHECK(n.version == "1.0-1");
  }
  SUBCASE("other content: mismatch") {
    write_file(r + "/usr/bin/tool", "trojan\n");
    const Record now = file_record("/usr/bin/tool", 0755, "trojan\n");
    const auto n = (*v)->explain(&old, &now);
    CHECK(n.verdict == pkg::Verdict::Mismatch);
    CHECK(n.evidence == pkg::Evidence::DpkgMd5);
  }
  SUBCASE("the package's content made set-uid: dpkg's MD5 cannot vouch for the mode") {
    const Record now = file_record("/usr/bin/tool", 04755, shipped);
    CHECK((*v)->explain(&old, &now).verdict == pkg::Verdict::Mismatch);
  }
  SUBCASE("a capability appeared: no package records those") {
    Record now = file_record("/usr/bin/tool", 0755, shipped);
    now.set_bytes(Attr::Caps, "\x01\x00\x00\x02");
    Record was = old;
    was.set_bytes(Attr::Caps, "");
    const auto n = (*v)->explain(&was, &now);
    CHECK(n.verdict == pkg::Verdict::Mismatch);
    CHECK(n.detail.find("caps") != std::string::npos);
  }
  SUBCASE("content that changed since it was reported is not vouched for") {
    const Record now = file_record("/usr/bin/tool", 0755, "what was reported\n");
    CHECK((*v)->explain(&old, &now).verdict != pkg::Verdict::Verified);
  }
  SUBCASE("listed without an MD5: unverifiable") {
    write_file(r + "/usr/bin/other", "x");
    const Record now = file_record("/usr/bin/other", 0755, "x");
    CHECK((*v)->explain(nullptr, &now).verdict == pkg::Verdict::Unverifiable);
  }
  SUBCASE("not in any package: unpackaged; gone and unlisted: removed; gone but listed: mismatch") {
    const Record stray = file_record("/usr/bin/stray", 0755, "x");
    CHECK((*v)->explain(nullptr, &stray).verdict == pkg::Verdict::Unpackaged);
    CHECK((*v)->explain(&stray, nullptr).verdict == pkg::Verdict::Removed);
    CHECK((*v)->explain(&old, nullptr).verdict == pkg::Verdict::Mismatch);
  }
  SUBCASE("a conffile: as shipped is verified, edited is a local edit") {
    const Record was = file_record("/etc/tool/tool.conf", 0644, "older\n");
    const Record same = file_record("/etc/tool/tool.conf", 0644, conf);
    CHECK((*v)->explain(&was, &same).verdict == pkg::Verdict::Verified);
    write_file(r + "/etc/tool/tool.conf", "key=mine\n");
    const Record edited = file_record("/etc/tool/tool.conf", 0644, "key=mine\n");
    CHECK((*v)->explain(&was, &edited).verdict == pkg::Verdict::Conffile);
  }
  SUBCASE("merged /usr: a path dpkg lists below a symlinked directory") {
    REQUIRE(::symlink("usr/bin", (r + "/bin").c_str()) == 0);
    write_file(r + "/var/lib/dpkg/info/tool.list", "/bin\n/bin/tool\n");
    write_file(r + "/var/lib/dpkg/info/tool.md5sums", md5_hex(shipped) + "  bin/tool\n");
    auto v2 = pkg::Verifier::open(o);
    REQUIRE(v2);
    const Record now = file_record("/usr/bin/tool", 0755, shipped);
    CHECK((*v2)->explain(&old, &now).verdict == pkg::Verdict::Verified);
  }
  SUBCASE("installed versions come from the status file alone (config-files only: not installed)") {
    Status st;
    const auto iv = pkg::installed_versions(o, &st);
    REQUIRE(st);
    CHECK(iv.size() == 1);
    CHECK(iv.at("tool:amd64") == "1.0-1");
  }
}
