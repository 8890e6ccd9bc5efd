// SPDX-License-Identifier: GPL-2.0-or-later
#include <doctest/doctest.h>

#include "fim/base/bytes.h"
#include "fim/base/sys.h"

using namespace fim;

TEST_CASE("escape_terminal leaves printable text and escapes everything a terminal acts on") {
  struct {
    std::string in, out;
  } cases[] = {
      {"plain/path.txt", "plain/path.txt"},
      {"caf\xc3\xa9", "caf\xc3\xa9"},                       // valid UTF-8 passes
      {"a\nb", "a\\nb"},
      {"tab\there", "tab\\there"},
      {"\x1b[31mFAKE\x1b[0m", "\\x1b[31mFAKE\\x1b[0m"},     // CVE-2025-54389
      {"back\\slash", "back\\\\slash"},
      {std::string("nul\0x", 5), "nul\\x00x"},
      {"\xff\xfe", "\\xff\\xfe"},                             // invalid UTF-8, byte by byte
      {"\xc2\x9b" "2J", "\\u009b2J"},                          // C1 CSI
      {"\xe2\x80\xae" "txt.exe", "\\u202etxt.exe"},           // right-to-left override
      {"\xc0\xaf", "\\xc0\\xaf"},                             // overlong '/'
      {"\xed\xa0\x80", "\\xed\\xa0\\x80"},                    // surrogate
      {"\x7f", "\\x7f"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    CHECK(escape_terminal(c.in) == c.out);
    for (const char ch : escape_terminal(c.in)) CHECK((static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f));
  }
}

TEST_CASE("append_json_string is valid JSON for any bytes and says when the input was not UTF-8") {
  struct {
    std::string in, out;
    bool utf8;
  } cases[] = {
      {"a", "\"a\"", true},
      {"q\"b\\", "\"q\\\"b\\\\\"", true},
      {"\n\t\x01", "\"\\n\\t\\u0001\"", true},
      {"\xc3\xa9", "\"\xc3\xa9\"", true},
      {"\xff", "\"\\u00ff\"", false},
      {"ok\xe2\x82", "\"ok\\u00e2\\u0082\"", false},  // truncated sequence
      {"\xe2\x80\xa8", "\"\\u2028\"", true},           // line separator breaks JavaScript
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    std::string out;
    CHECK(append_json_string(out, c.in) == c.utf8);
    CHECK(out == c.out);
  }
}

TEST_CASE("base64 and hex match RFC 4648 test vectors") {
  const char* vectors[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                              {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
  for (const auto& v : vectors) CHECK(base64_encode(v[0]) == v[1]);
  CHECK(base64_encode("\xff\xfe") == "//4=");
  CHECK(hex_encode(std::string("\x00\xab\xff", 3)) == "00abff");
}

TEST_CASE("paths: join, containment, lexical normalisation") {
  CHECK(join_path("/", "x") == "/x");
  CHECK(join_path("/a", "x") == "/a/x");
  CHECK(path_within("/a/b", "/a"));
  CHECK(path_within("/a", "/a"));
  CHECK_FALSE(path_within("/ab", "/a"));
  CHECK_FALSE(path_within("/a.b", "/a"));
  CHECK(path_within("/anything", "/"));
  struct {
    const char *in, *out;
  } norm[] = {{"/", "/"}, {"//a//b/", "/a/b"}, {"/a/./b", "/a/b"}, {"/a/b/../c", "/a/c"}, {"/../a", "/a"}};
  for (const auto& n : norm) CHECK(absolute_path(n.in).value() == n.out);
  CHECK(absolute_path("rel").value().front() == '/');
  CHECK_FALSE(absolute_path("").has_value());
  Bytes dir, name;
  split_path("/a/b", &dir, &name);
  CHECK((dir == "/a" && name == "b"));
  split_path("/a", &dir, &name);
  CHECK((dir == "/" && name == "a"));
  split_path("/", &dir, &name);
  CHECK((dir == "/" && name == "."));
}

TEST_CASE("time and errno formatting") {
  CHECK(format_time_ns(0) == "1970-01-01T00:00:00.000000000Z");
  CHECK(format_time_ns(1704067200LL * 1000000000 + 5) == "2024-01-01T00:00:00.000000005Z");
  CHECK(format_time_ns(-1) == "1969-12-31T23:59:59.999999999Z");
  CHECK(errno_name(EACCES) == "EACCES");
}

TEST_CASE("parse_decimal: digits only, at most 19") {
  uint64_t v = 0;
  CHECK(parse_decimal("0", &v));
  CHECK(v == 0);
  CHECK(parse_decimal("9999999999999999999", &v));
  CHECK(v == 9999999999999999999ULL);
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1x", "12345678901234567890"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_decimal(bad, &v));
  }
}

TEST_CASE("hex_decode inverts hex_encode and refuses anything that is not hex") {
  const std::string all = [] {
    std::string s;
    for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
    return s;
  }();
  CHECK(hex_decode(hex_encode(all)) == all);
  CHECK(hex_decode("DEADbeef") == std::string("\xde\xad\xbe\xef"));
  CHECK(hex_decode("") == std::string());
  for (const char* bad : {"0", "abc", "0g", "zz", " 0", "00 "}) {
    CAPTURE(bad);
    CHECK_FALSE(hex_decode(bad).has_value());
  }
}

TEST_CASE("quote: one quoting for messages, terminal-safe") {
  CHECK(quote("/etc/passwd") == "'/etc/passwd'");
  CHECK(quote("a\nb\x1b[31m") == "'a\\nb\\x1b[31m'");
}
