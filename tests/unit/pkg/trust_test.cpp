// SPDX-License-Identifier: GPL-2.0-or-later
// pkg: which apt signatures are believed (issue 19): gpgv's status lines judged as apt judges
// them (real lines, from gpgv 2.2.40), apt's sources in both formats, URItoFileName, and
// dearmouring. The root suite's apt_trust_test.py plays the same cases with apt and gpgv.
#include "doctest/doctest.h"
#include "fim/base/bytes.h"
#include "fim/base/digest.h"
#include "pkg/internal.h"

using namespace fim;
using namespace fim::pkg;

namespace {

constexpr const char* kFpr = "2E1A9A6CDFC0A1DA2037FD2CE7BBD3AB5A656189";

// A real signature by kFpr with digest algorithm `algo` (8 = SHA256, 2 = SHA1).
std::string good(int algo = 8) {
  return "[GNUPG:] NEWSIG\n"
         "[GNUPG:] KEY_CONSIDERED 2E1A9A6CDFC0A1DA2037FD2CE7BBD3AB5A656189 0\n"
         "[GNUPG:] SIG_ID QxCiBlCqF6pUB/+G8In2VxvjOWE 2026-12-04 1796390537\n"
         "[GNUPG:] KEY_CONSIDERED 2E1A9A6CDFC0A1DA2037FD2CE7BBD3AB5A656189 0\n"
         "[GNUPG:] GOODSIG E7BBD3AB5A656189 good <g@x>\n"
         "[GNUPG:] VALIDSIG 2E1A9A6CDFC0A1DA2037FD2CE7BBD3AB5A656189 2026-12-04 1796390537 0 4 0 22 " +
         std::to_string(algo) + " 01 2E1A9A6CDFC0A1DA2037FD2CE7BBD3AB5A656189\n";
}

constexpr const char* kExpired =
    "[GNUPG:] NEWSIG\n"
    "[GNUPG:] KEY_CONSIDERED 618A495568A2111B21BF134AFAC9DC5CCE104350 0\n"
    "[GNUPG:] KEYEXPIRED 1609372800\n"
    "[GNUPG:] SIG_ID yNQ4phPPR2tpbM0B08zA7/S0R2I 2020-02-01 1580515200\n"
    "[GNUPG:] KEY_CONSIDERED 618A495568A2111B21BF134AFAC9DC5CCE104350 0\n"
    "[GNUPG:] EXPKEYSIG FAC9DC5CCE104350 exp <e@x>\n"
    "[GNUPG:] VALIDSIG 618A495568A2111B21BF134AFAC9DC5CCE104350 2020-02-01 1580515200 0 4 0 22 8 00 "
    "618A495568A2111B21BF134AFAC9DC5CCE104350\n";

constexpr const char* kRevoked =
    "[GNUPG:] NEWSIG\n"
    "[GNUPG:] KEY_CONSIDERED E45EB096EBD849F5AF1C57DA8C44A3DEF4F91D84 0\n"
    "[GNUPG:] SIG_ID 2GQWstr4wAseqyvmlSLuWhiqeM4 2026-12-04 1796390562\n"
    "[GNUPG:] KEY_CONSIDERED E45EB096EBD849F5AF1C57DA8C44A3DEF4F91D84 0\n"
    "[GNUPG:] REVKEYSIG 8C44A3DEF4F91D84 rev <r@x>\n"
    "[GNUPG:] VALIDSIG E45EB096EBD849F5AF1C57DA8C44A3DEF4F91D84 2026-12-04 1796390562 0 4 0 22 8 00 "
    "E45EB096EBD849F5AF1C57DA8C44A3DEF4F91D84\n";

constexpr const char* kUnknown =
    "[GNUPG:] NEWSIG\n"
    "[GNUPG:] ERRSIG 8C44A3DEF4F91D84 22 8 00 1796390562 9 E45EB096EBD849F5AF1C57DA8C44A3DEF4F91D84\n"
    "[GNUPG:] NO_PUBKEY 8C44A3DEF4F91D84\n";

constexpr const char* kBad =
    "[GNUPG:] NEWSIG\n"
    "[GNUPG:] KEY_CONSIDERED 2E1A9A6CDFC0A1DA2037FD2CE7BBD3AB5A656189 0\n"
    "[GNUPG:] KEY_CONSIDERED 2E1A9A6CDFC0A1DA2037FD2CE7BBD3AB5A656189 0\n"
    "[GNUPG:] BADSIG E7BBD3AB5A656189 good <g@x>\n";

// gpg --armor --export of an ed25519 key "good <g@x>" (fingerprint kFpr).
constexpr const char* kArmoured =
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n"
    "\n"
    "mDMEaxK+ghYJKwYBBAHaRw8BAQdA4BrZga3dPCK5FH4KyoWGv2PLBSJUD69LOmie\n"
    "vyKAebG0Cmdvb2QgPGdAeD6IkAQTFggAOBYhBC4ammzfwKHaIDf9LOe706taZWGJ\n"
    "BQJrEr6CAhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEOe706taZWGJU5AA\n"
    "/istCxL9HO4/n5oUAxuGSQVe8sV0EJDPKah2fPI0P0eDAP9abUxoU6c4M+quKOQp\n"
    "PfVpKyiSGrD+IRIyni57koa7Dw==\n"
    "=m7Vo\n"
    "-----END PGP PUBLIC KEY BLOCK-----\n";
// sha256sum of gpg --export (binary) of the same key.
constexpr const char* kBinarySha256 = "5afe0153867137af847c8b9d61cf1017b9726a62269a6d69364571b35f556046";

}  // namespace

TEST_CASE("gpgv status: a good SHA-256 signature is accepted, with its signer") {
  const auto v = judge_gpgv_status("[GNUPG:] PLAINTEXT 74 0 \n" + good(), {});
  CHECK(v.ok);
  CHECK(v.signer == kFpr);
}

TEST_CASE("gpgv status: what apt refuses is refused, with the reason") {
  auto refused = [](const std::string& status, const char* why) {
    const auto v = judge_gpgv_status(status, {});
    CHECK_FALSE(v.ok);
    CHECK_MESSAGE(v.why.find(why) != std::string::npos, v.why);
  };
  refused(kExpired, "expired key FAC9DC5CCE104350");
  refused(kRevoked, "revoked key 8C44A3DEF4F91D84");
  refused(kUnknown, "unknown key 8C44A3DEF4F91D84");
  refused(kBad, "bad signature");
  refused(good(2), "weak digest algorithm SHA1");
  refused(good(1), "weak digest algorithm MD5");
  refused(good(3), "weak digest algorithm RIPEMD160");
  refused("", "no good signature");
  refused(good() + "[GNUPG:] NODATA 1\n", "NODATA");
  // GOODSIG without VALIDSIG (gpg's documented order is both): not enough.
  std::string half = good();
  half.erase(half.find("[GNUPG:] VALIDSIG"));
  refused(half, "without a matching VALIDSIG");
}

TEST_CASE("gpgv status: several signatures, as apt weighs them") {
  // A good one and one by a key this host lacks (Debian signs with several keys): accepted.
  CHECK(judge_gpgv_status(std::string(kUnknown) + good(), {}).ok);
  // A good one and an expired one: the good one counts.
  CHECK(judge_gpgv_status(std::string(kExpired) + good(), {}).ok);
  // One BADSIG anywhere: the text is not what was signed.
  CHECK_FALSE(judge_gpgv_status(good() + kBad, {}).ok);
  // EXPSIG inside the good signature's own lines makes it worthless.
  std::string exp = good();
  exp.insert(exp.find("[GNUPG:] GOODSIG"), "[GNUPG:] EXPSIG E7BBD3AB5A656189 good <g@x>\n");
  CHECK_FALSE(judge_gpgv_status(exp, {}).ok);
}

TEST_CASE("gpgv status: Signed-By fingerprints") {
  CHECK(judge_gpgv_status(good(), {kFpr}).ok);
  CHECK(judge_gpgv_status(good(), {std::string(kFpr) + "!"}).ok);
  const auto other = judge_gpgv_status(good(), {"E45EB096EBD849F5AF1C57DA8C44A3DEF4F91D84"});
  CHECK_FALSE(other.ok);
  CHECK(other.why.find("Signed-By fingerprints do not name") != std::string::npos);
  // A subkey's signature: its primary key's fingerprint allows it, unless marked exact ('!').
  std::string sub = good();
  const std::string subkey = "1111111111111111111111111111111111111111";
  sub.replace(sub.find("VALIDSIG ") + 9, 40, subkey);
  sub.replace(sub.find("GOODSIG ") + 8, 16, subkey.substr(24));
  CHECK(judge_gpgv_status(sub, {kFpr}).ok);
  CHECK_FALSE(judge_gpgv_status(sub, {std::string(kFpr) + "!"}).ok);
  CHECK(judge_gpgv_status(sub, {subkey + "!"}).ok);
}

TEST_CASE("one-line sources: options, comments, flat repositories") {
  const auto s = parse_sources_list(
      "# comment\n"
      "deb http://deb.debian.org/debian bookworm main contrib # trailing\n"
      "deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] https://u:p@example.org/repo/ stable main\n"
      "deb [trusted=yes]http://127.0.0.1:8080/ fimtest main\n"
      "deb-src http://deb.debian.org/debian bookworm main\n"
      "#deb http://disabled/ x main\n"
      "deb [signed-by=/k.gpg http://broken/ x main\n"
      "deb http://flat/repo ./\n"
      "rpm http://other/ x\n",
      "sources.list");
  REQUIRE(s.size() == 5);
  CHECK(s[0].uri == "http://deb.debian.org/debian/");
  CHECK(s[0].suite == "bookworm");
  CHECK(s[0].signed_by.empty());
  CHECK(s[0].where == "sources.list:2");
  CHECK(s[1].signed_by == "/etc/apt/keyrings/x.gpg");
  CHECK_FALSE(s[1].trusted_yes);
  CHECK(s[2].trusted_yes);
  CHECK(s[2].uri == "http://127.0.0.1:8080/");
  CHECK(s[3].where == "sources.list:5");
  CHECK(s[4].suite == "./");
  CHECK(release_stem(s[0]) == "deb.debian.org_debian_dists_bookworm_");
  CHECK(release_stem(s[1]) == "example.org_repo_dists_stable_");
  CHECK(release_stem(s[4]) == "flat_repo_._");
}

TEST_CASE("deb822 sources: several URIs and suites, Enabled: no, fingerprints, an inline key") {
  const std::string text =
      "# Debian\n"
      "Types: deb deb-src\n"
      "URIs: http://deb.debian.org/debian https://mirror.example/debian\n"
      "Suites: bookworm bookworm-updates\n"
      "Components: main\n"
      "Signed-By: 2E1A9A6CDFC0A1DA2037FD2CE7BBD3AB5A656189,\n"
      " E45EB096EBD849F5AF1C57DA8C44A3DEF4F91D84\n"
      "\n"
      "types: deb\n"
      "uris: http://off/\n"
      "suites: x\n"
      "enabled: no\n"
      "\n"
      "Types: deb\n"
      "URIs: http://127.0.0.1:8080/\n"
      "Suites: fimtest\n"
      "Trusted: yes\n"
      "Signed-By:\n"
      " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
      " .\n"
      " mDMEaxK+ghYJKwYBBAHaRw8BAQdA4BrZga3dPCK5FH4KyoWGv2PLBSJUD69LOmie\n"
      " =m7Vo\n"
      " -----END PGP PUBLIC KEY BLOCK-----\n";
  const auto s = parse_sources_deb822(text, "x.sources");
  REQUIRE(s.size() == 5);
  CHECK(s[0].uri == "http://deb.debian.org/debian/");
  CHECK(s[1].suite == "bookworm-updates");
  CHECK(s[3].uri == "https://mirror.example/debian/");
  CHECK(s[0].signed_by.find("E45EB096EBD849F5AF1C57DA8C44A3DEF4F91D84") != std::string::npos);
  CHECK(s[4].trusted_yes);
  CHECK(s[4].where == "x.sources stanza 3");
  // " ." is an empty line: the armour's header/body separator survives.
  CHECK(s[4].signed_by.find("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEaxK") != std::string::npos);
}

TEST_CASE("URItoFileName as apt computes it") {
  CHECK(uri_to_filename("http://127.0.0.1:8080/dists/fimtest/InRelease") == "127.0.0.1:8080_dists_fimtest_InRelease");
  CHECK(uri_to_filename("http://deb.debian.org/debian/dists/bookworm/InRelease") ==
        "deb.debian.org_debian_dists_bookworm_InRelease");
  CHECK(uri_to_filename("https://user:secret@example.org/a/") == "example.org_a_");
  CHECK(uri_to_filename("tor+http://x.onion/d/") == "x.onion_d_");
  CHECK(uri_to_filename("file:/srv/mirror/dists/x/") == "_srv_mirror_dists_x_");
  // QuoteString's list: '_' and '~' among them, and spaces.
  CHECK(uri_to_filename("http://h/~me/a_b c/") == "h_%7eme_a%5fb%20c_");
  CHECK(uri_to_filename("http://[::1]:3142/debian/") == "%5b::1%5d:3142_debian_");
}

TEST_CASE("dearmour: the binary key gpg exports, CRC24 checked") {
  auto bin = dearmor(kArmoured);
  REQUIRE(bin);
  CHECK(hex_encode(sha256_of(*bin)) == kBinarySha256);
  // Two blocks in one file: both keys.
  auto two = dearmor(std::string(kArmoured) + "\n" + kArmoured);
  REQUIRE(two);
  CHECK(two->size() == 2 * bin->size());
  // A changed byte: the CRC24 line no longer matches.
  std::string bad = kArmoured;
  bad[bad.find("mDMEaxK") + 10] = 'A';
  auto b = dearmor(bad);
  REQUIRE_FALSE(b);
  CHECK(b.error().message.find("CRC24") != std::string::npos);
  // Without a CRC line it is taken as it is.
  std::string nocrc = kArmoured;
  nocrc.erase(nocrc.find("=m7Vo\n"), 6);
  CHECK(dearmor(nocrc));
  CHECK_FALSE(dearmor("no key here"));
}

TEST_CASE("Valid-Until") {
  const std::string rel = "Origin: x\nValid-Until: Sat, 12 Dec 2026 08:00:00 UTC\nSHA256:\n";
  CHECK(check_valid_until(rel, 1796371200));             // 2026-12-04
  auto late = check_valid_until(rel, 1800000000);        // 2027
  REQUIRE_FALSE(late);
  CHECK(late.error().message.find("expired") != std::string::npos);
  CHECK(check_valid_until("Origin: x\n", 4000000000));  // none: no limit
  CHECK_FALSE(check_valid_until("Valid-Until: soon\n", 0));
}
