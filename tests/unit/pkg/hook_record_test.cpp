// SPDX-License-Identifier: GPL-2.0-or-later
// The apt hook's records (fim/pkg.h HookRecord): the canonical encoding, the signature every
// reader checks before use (a record edited in state.db is refused), the weak standing of an
// unsigned record, the hook's input (protocol 3 and 1), and the verdicts they give the
// Verifier on a dpkg database of the test's own making (no apt chain here: no .deb at hand,
// as after 'apt' deleted it).
#include <cstdlib>

#include "doctest/doctest.h"
#include "fim/base/digest.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/merge.h"
#include "fim/pkg.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;
using fim::test::file_record;
using fim::test::md5_hex;
using fim::test::write_file;

namespace {

const std::string kShipped = "shipped content\n";

pkg::HookRecord sample() {
  pkg::HookRecord r;
  r.name = "tool";
  r.version = "1.0-1";
  r.arch = "amd64";
  r.deb_sha256 = std::string(64, 'a');
  r.at_ns = 1700000000123456789;
  r.old_version = "0.9";
  pkg::DebMember f;
  f.mode = 0755;
  f.uname = f.gname = "root";
  f.sha256 = sha256_of(kShipped);
  r.members["/usr/bin/tool"] = f;
  pkg::DebMember l;
  l.type = '2';
  l.mode = 0777;
  l.link = "tool";
  r.members["/usr/bin/tool-link"] = l;
  pkg::DebMember odd = f;
  r.members["/usr/share/doc/a\nb:1:x"] = odd;  // a newline and colons in a path cannot shift fields
  r.old_list = {"/usr/bin/tool", "/usr/lib/tool/old"};
  return r;
}

/// A root with dpkg's records of 'tool' 1.0-1 (usr/bin/tool, its MD5) and no apt chain.
std::string dpkg_root(const TempDir& t) {
  const std::string r = t.path() + "/root";
  REQUIRE(std::system(("mkdir -p " + r + "/var/lib/dpkg/info " + r + "/usr/bin " + r + "/var/lib/apt/lists " + r +
                       "/etc").c_str()) == 0);
  write_file(r + "/var/lib/dpkg/status",
             "Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n");
  write_file(r + "/var/lib/dpkg/info/tool.list", "/.\n/usr\n/usr/bin\n/usr/bin/tool\n/usr/bin/tool-link\n");
  write_file(r + "/var/lib/dpkg/info/tool.md5sums", md5_hex(kShipped) + "  usr/bin/tool\n");
  write_file(r + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  write_file(r + "/etc/group", "root:x:0:\n");
  write_file(r + "/usr/bin/tool", kShipped);
  return r;
}

pkg::Options dpkg_options(const std::string& r) {
  pkg::Options o;
  o.root = r;
  o.keyrings = {"/nonexistent-keyring"};  // no apt chain: only the records can stand for the .deb
  return o;
}

}  // namespace

TEST_CASE("hook record: canonical encoding round trip; anything else is refused") {
  const pkg::HookRecord r = sample();
  const std::string body = pkg::encode_hook_record(r);
  auto back = pkg::decode_hook_record(body);
  REQUIRE(back);
  CHECK(pkg::encode_hook_record(*back) == body);
  CHECK(back->members.size() == 3);
  CHECK(back->members.at("/usr/bin/tool").sha256 == sha256_of(kShipped));
  CHECK(back->members.at("/usr/bin/tool-link").link == "tool");
  CHECK(back->old_list == r.old_list);
  CHECK(back->at_ns == r.at_ns);
  CHECK_FALSE(pkg::decode_hook_record(body.substr(0, body.size() - 1)));  // truncated
  CHECK_FALSE(pkg::decode_hook_record(body + "1:x\n"));                   // trailing field
  CHECK_FALSE(pkg::decode_hook_record("x" + body));                       // not a record
  std::string longer = body;
  longer.replace(longer.find("4:tool\n"), 7, "04:tool\n");  // another encoding of the same name
  CHECK_FALSE(pkg::decode_hook_record(longer));
}

TEST_CASE("hook record: the signature covers every member; a tampered record does not verify") {
  TempDir t;
  REQUIRE(SigningKey::generate(t.path()));
  auto sk = SigningKey::load(t / "signing.key");
  auto vk = VerifyKey::load(t / "signing.pub");
  REQUIRE(sk);
  REQUIRE(vk);
  const std::string body = pkg::encode_hook_record(sample());
  auto sig = sk->sign(body);
  REQUIRE(sig);
  CHECK(vk->verify(body, *sig));
  pkg::HookRecord forged = sample();
  forged.members["/usr/bin/tool"].sha256 = sha256_of("trojan\n");
  CHECK_FALSE(vk->verify(pkg::encode_hook_record(forged), *sig));
  forged = sample();
  forged.members["/usr/bin/tool"].mode = 04755;
  CHECK_FALSE(vk->verify(pkg::encode_hook_record(forged), *sig));
}

TEST_CASE("hook input: protocol 3 (installs from .debs only) and protocol 1") {
  const auto v3 = pkg::parse_hook_input(
      "VERSION 3\nAPT::Architecture=amd64\nDPkg::Tools::Options::x=y\n\n"
      "tool 1.0 amd64 same < 2.0 amd64 same /var/cache/apt/archives/tool_2.0_amd64.deb\n"
      "new - - none < 1:3 all foreign /var/cache/apt/archives/new_1%3a3_all.deb\n"
      "tool 1.0 amd64 same < 2.0 amd64 same **CONFIGURE**\n"
      "old 1 amd64 none > - - none **REMOVE**\n");
  REQUIRE(v3.size() == 2);
  CHECK(v3[0].name == "tool");
  CHECK(v3[0].version == "2.0");
  CHECK(v3[0].arch == "amd64");
  CHECK(v3[0].deb == "/var/cache/apt/archives/tool_2.0_amd64.deb");
  CHECK(v3[1].version == "1:3");
  CHECK(v3[1].arch == "all");
  const auto v1 = pkg::parse_hook_input("/var/cache/apt/archives/a_1_amd64.deb\n/tmp/b c_2_all.deb\n");
  REQUIRE(v1.size() == 2);
  CHECK(v1[0].name.empty());  // read from the name (or the .deb) by record_debs
  CHECK(v1[1].deb == "/tmp/b c_2_all.deb");
}

TEST_CASE("verdicts from hook records: signed stands for the .deb, unsigned is weak, lists vouch for removals") {
  TempDir t;
  const std::string r = dpkg_root(t);
  auto v = pkg::Verifier::open(dpkg_options(r));
  REQUIRE(v);
  pkg::HookRecord rec = sample();
  rec.at_ns = 2000;
  const Record old = file_record("/usr/bin/tool", 0755, "old content\n");
  const Record now = file_record("/usr/bin/tool", 0755, kShipped);

  SUBCASE("signed record of exactly the installed version: deb-sha256, said so") {
    (*v)->set_hook_records({{rec, true, true}}, {});
    const auto n = (*v)->explain(&old, &now);
    CHECK(n.verdict == pkg::Verdict::Verified);
    CHECK(n.evidence == pkg::Evidence::DebSha256);
    CHECK(n.detail.find("as recorded from the signed .deb by the apt hook at") != std::string::npos);
  }
  SUBCASE("signed record: a file made set-uid is a mismatch") {
    (*v)->set_hook_records({{rec, true, true}}, {});
    const Record suid = file_record("/usr/bin/tool", 04755, kShipped);
    const auto n = (*v)->explain(&old, &suid);
    CHECK(n.verdict == pkg::Verdict::Mismatch);
    CHECK(n.evidence == pkg::Evidence::DebSha256);
  }
  SUBCASE("a record of another version does not count") {
    rec.version = "1.0-2";
    (*v)->set_hook_records({{rec, true, true}}, {});
    CHECK((*v)->explain(&old, &now).evidence == pkg::Evidence::DpkgMd5);
  }
  SUBCASE("unsigned record: never more than dpkg-md5, labelled") {
    (*v)->set_hook_records({{rec, false, true}}, {});
    const auto n = (*v)->explain(&old, &now);
    CHECK(n.verdict == pkg::Verdict::Verified);
    CHECK(n.evidence == pkg::Evidence::DpkgMd5);
    CHECK(n.detail.find("unsigned hook record") != std::string::npos);
    CHECK_FALSE(pkg::strong_evidence(pkg::evidence_name(n.evidence)));
  }
  SUBCASE("an unsigned record listing a trojan's digest cannot outvote dpkg's MD5") {
    rec.members["/usr/bin/tool"].sha256 = sha256_of("trojan\n");
    (*v)->set_hook_records({{rec, false, true}}, {});
    write_file(r + "/usr/bin/tool", "trojan\n");
    const Record trojan = file_record("/usr/bin/tool", 0755, "trojan\n");
    const auto n = (*v)->explain(&old, &trojan);
    CHECK(n.verdict == pkg::Verdict::Mismatch);
    CHECK(n.evidence == pkg::Evidence::DpkgMd5);
  }
  SUBCASE("a refused record is named in the detail") {
    (*v)->set_hook_records({}, {{"tool 1.0-1 amd64", "the apt hook's record of tool 1.0-1 amd64 was ignored: forged"}});
    const auto n = (*v)->explain(&old, &now);
    CHECK(n.evidence == pkg::Evidence::DpkgMd5);
    CHECK(n.detail.find("was ignored") != std::string::npos);
  }
  SUBCASE("removal: the replaced version's recorded list held it, nothing installed ships it") {
    const Record gone = file_record("/usr/lib/tool/old", 0644, "x");
    (*v)->set_hook_records({{rec, true, true}}, {});
    auto n = (*v)->explain(&gone, nullptr);
    CHECK(n.verdict == pkg::Verdict::Verified);
    CHECK(n.evidence == pkg::Evidence::DpkgList);
    CHECK(n.version == "0.9");
    const Record other = file_record("/usr/lib/tool/never-listed", 0644, "x");
    CHECK((*v)->explain(&other, nullptr).verdict == pkg::Verdict::Removed);
  }
  SUBCASE("removal: a record older than the baseline does not explain it") {
    const Record gone = file_record("/usr/lib/tool/old", 0644, "x");
    (*v)->set_hook_records({{rec, true, false}}, {});
    CHECK((*v)->explain(&gone, nullptr).verdict == pkg::Verdict::Removed);
  }
}

TEST_CASE("hook records in state.db: verified with the public key before use; edited ones refused") {
  TempDir t;
  const std::string r = dpkg_root(t);
  REQUIRE(std::system(("mkdir -m 700 " + t.path() + "/state " + t.path() + "/keys").c_str()) == 0);
  REQUIRE(SigningKey::generate(t / "keys"));
  auto sk = SigningKey::load(t / "keys/signing.key");
  REQUIRE(sk);
  auto state = StateStore::open(t / "state");
  REQUIRE(state);
  const auto row_of = [&](const pkg::HookRecord& rec, bool sign) {
    StateStore::HookRow row{rec.name, rec.version, rec.arch, rec.at_ns, pkg::encode_hook_record(rec), "", ""};
    if (sign) {
      row.key_id = sk->key_id();
      auto sig = sk->sign(row.body);
      REQUIRE(sig);
      row.signature = *sig;
    }
    return row;
  };
  RunOptions opts;
  opts.keys_dir = t / "keys";
  opts.package_sources = dpkg_options(r);
  const auto verdict = [&] {
    detail::Packages p;
    auto v = pkg::Verifier::open(opts.package_sources);
    REQUIRE(v);
    p.verifier = std::move(*v);
    detail::load_hook_records(opts, **state, 0, &p);
    const Record old = file_record("/usr/bin/tool", 0755, "old\n");
    const Record now = file_record("/usr/bin/tool", 0755, kShipped);
    return std::make_pair(p.verifier->explain(&old, &now), p.alerts);
  };
  pkg::HookRecord rec = sample();
  SUBCASE("signed and intact: deb-sha256") {
    REQUIRE((*state)->add_hook_records({row_of(rec, true)}));
    auto [n, alerts] = verdict();
    CHECK(n.evidence == pkg::Evidence::DebSha256);
    CHECK(alerts.empty());
  }
  SUBCASE("a member digest edited after signing: refused, alert, dpkg's MD5 decides") {
    auto row = row_of(rec, true);
    rec.members["/usr/bin/tool"].sha256 = sha256_of("trojan\n");
    row.body = pkg::encode_hook_record(rec);
    REQUIRE((*state)->add_hook_records({row}));
    auto [n, alerts] = verdict();
    CHECK(n.evidence == pkg::Evidence::DpkgMd5);
    REQUIRE(alerts.size() == 1);
    CHECK(alerts[0].find("did not verify") != std::string::npos);
    CHECK(n.detail.find("signature does not verify") != std::string::npos);
  }
  SUBCASE("a record filed under another version than it holds: refused") {
    auto row = row_of(rec, true);
    row.version = "9.9";
    REQUIRE((*state)->add_hook_records({row}));
    CHECK(verdict().second.size() == 1);
  }
  SUBCASE("pruning keeps only what is named; the bounds hold") {
    pkg::HookRecord other = rec;
    other.version = "2.0";
    REQUIRE((*state)->add_hook_records({row_of(rec, true), row_of(other, false)}));
    auto dropped = (*state)->prune_hook_records({"tool 1.0-1 amd64"});
    REQUIRE(dropped);
    CHECK(*dropped == 1);
    auto rows = (*state)->hook_records();
    REQUIRE(rows);
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].version == "1.0-1");
  }
}
