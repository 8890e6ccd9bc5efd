// SPDX-License-Identifier: GPL-2.0-or-later
// content_mask and the content deny list (docs/design.md, Content store).
#include <doctest/doctest.h>

#include "fim/rules.h"

using namespace fim;

TEST_CASE("content_mask replaces matches with ***, keeping the first group") {
  auto m = compile_content_masks({"(?i)((password|token)[[:space:]]*[=:][[:space:]]*)[^[:space:]]+", "AKIA[A-Z0-9]{16}"});
  REQUIRE(m);
  CHECK(mask_content(m->get(), "user = a\nPassword = hunter2\ntoken:abc def\n") ==
        "user = a\nPassword = ***\ntoken:*** def\n");
  CHECK(mask_content(m->get(), "id AKIAABCDEFGHIJKLMNOP end") == "id *** end");
  CHECK(mask_content(m->get(), "no newline password=x") == "no newline password=***");
  CHECK(mask_content(nullptr, "password=x") == "password=x");
  // glibc's \s \S work too.
  auto g = compile_content_masks({"(secret\\s*=\\s*)\\S+"});
  REQUIRE(g);
  CHECK(mask_content(g->get(), "secret = s3cr3t\n") == "secret = ***\n");
}

TEST_CASE("content_mask refuses what a rule regex may not be") {
  CHECK(!compile_content_masks({"(a)\\1"}));      // back-reference
  CHECK(!compile_content_masks({"(a{1,100}){1,100}"}));  // repetitions multiplied
  CHECK(!compile_content_masks({"[unclosed"}));   // invalid
  CHECK(!compile_content_masks({""}));
  CHECK(!compile_content_masks({std::string(2000, 'a')}));
}

TEST_CASE("the built-in content deny list cannot be left out") {
  for (const char* p : {"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/srv/root/etc/gshadow-",
                        "/etc/ssh/ssh_host_ed25519_key", "/etc/ssl/private/x.pem", "/etc/fimctl/keys/signing.key",
                        "/var/lib/containers/x/merged/etc/shadow"})
    CHECK_MESSAGE(content_denied(p, {}), p);
  for (const char* p : {"/etc/passwd", "/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssl/certs/x.pem", "/etc/shadowsocks"})
    CHECK_MESSAGE(!content_denied(p, {}), p);
  CHECK(content_denied("/etc/app/secret.conf", {"/etc/app/*.conf"}));
  CHECK(content_denied("/etc/app/secret.conf", {"/etc/app/secret.conf"}));
}
