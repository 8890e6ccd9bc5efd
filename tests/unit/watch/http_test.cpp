// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's address parsing: what --falco-url and --metrics accept and refuse.
#include <doctest/doctest.h>

#include "fim/watch.h"

using namespace fim;

TEST_CASE("falcosidekick URLs") {
  auto u = parse_http_url("http://falcosidekick:2801/");
  REQUIRE(u);
  CHECK(u->host == "falcosidekick");
  CHECK(u->port == 2801);
  CHECK(u->path == "/");
  u = parse_http_url("http://10.0.0.5");
  REQUIRE(u);
  CHECK(u->port == 80);
  CHECK(u->path == "/");
  u = parse_http_url("http://[::1]:8080/events");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == 8080);
  CHECK(u->path == "/events");
  for (const char* bad : {"https://x/", "ftp://x/", "http://", "http://:80/", "http://x:0/", "http://x:65536/",
                          "http://x:8o/", "http://[::1/", "http://x/a b", "http://x/\r\nHost: y"}) {
    CAPTURE(bad);
    CHECK(!parse_http_url(bad));
  }
  CHECK(parse_http_url("https://x/").error().message.find("falcosidekick") != std::string::npos);
}

TEST_CASE("metrics listen addresses") {
  auto a = parse_listen_address("127.0.0.1:9464");
  REQUIRE(a);
  CHECK(a->first == "127.0.0.1");
  CHECK(a->second == 9464);
  a = parse_listen_address(":9464");
  REQUIRE(a);
  CHECK(a->first.empty());
  a = parse_listen_address("[::1]:9464");
  REQUIRE(a);
  CHECK(a->first == "::1");
  for (const char* bad : {"9464", "host:", "host:x", "[::1]9464", "h:70000"}) {
    CAPTURE(bad);
    CHECK(!parse_listen_address(bad));
  }
}
