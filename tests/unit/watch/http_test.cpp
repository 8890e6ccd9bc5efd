// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's HTTP: what --falco-url and --metrics accept and refuse, and how a metrics
// request is read and answered.
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

TEST_CASE("metrics requests: read until the header ends, bounded") {
  CHECK(!parse_http_request(""));
  CHECK(!parse_http_request("GET /metrics HTTP/1.1\r\nHost: x\r\n"));  // more to come
  auto r = parse_http_request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(r);
  CHECK(r->method == "GET");
  CHECK(r->path == "/metrics");
  r = parse_http_request("garbage\r\n\r\n");
  REQUIRE(r);
  CHECK(r->method.empty());  // answered 400
  // No end of header within kMaxHttpRequest: taken as it stands, never read further.
  r = parse_http_request("GET /x " + std::string(kMaxHttpRequest, 'a'));
  REQUIRE(r);
  CHECK(r->path == "/x");
  r = parse_http_request(std::string(kMaxHttpRequest, 'a'));
  REQUIRE(r);
  CHECK(r->method.empty());
}

TEST_CASE("HTTP answers: status line, type, length, close") {
  CHECK(http_response(200, "text/plain", "ok\n") ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
  CHECK(http_response(404, "t", "").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
  CHECK(http_response(405, "t", "").rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
  CHECK(http_response(400, "t", "").rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
}
