// SPDX-License-Identifier: GPL-2.0-or-later
// json::Writer and json::parse: the one JSON writer and the one reader.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "fim/json.h"

using namespace fim;

TEST_CASE("json::Writer: nesting, escaping, the _b64 twin, numbers") {
  struct Case {
    const char* what;
    std::function<void(json::Writer&)> build;
    const char* want;
  };
  const Case cases[] = {
      {"empty object", [](json::Writer& w) { w.object(); }, "{}"},
      {"schema header", [](json::Writer& w) { w.schema("alert").str("code", "x"); },
       R"({"schema":"fimctl.v1","type":"alert","code":"x"})"},
      {"escaping", [](json::Writer& w) { w.object().str("k\"", "a\"b\\c\n\x01"); },
       R"({"k\"":"a\"b\\c\n\u0001"})"},
      {"UTF-8 bytes: no twin", [](json::Writer& w) { w.object().bytes("path", "/caf\xc3\xa9"); },
       "{\"path\":\"/caf\xc3\xa9\"}"},
      {"invalid UTF-8: the _b64 twin", [](json::Writer& w) { w.object().bytes("path", "/x/\xff\x01"); },
       R"({"path":"/x/\u00ff\u0001","path_b64":"L3gv/wE="})"},
      {"integers, signed and not",
       [](json::Writer& w) { w.object().num("a", int64_t{-5}).num("b", uint64_t{18446744073709551615u}).num("c", 0); },
       R"({"a":-5,"b":18446744073709551615,"c":0})"},
      {"fixed decimals", [](json::Writer& w) { w.object().fixed("seconds", 0.0424, 3).fixed("n", 2.0, 1); },
       R"({"seconds":0.042,"n":2.0})"},
      {"booleans", [](json::Writer& w) { w.object().boolean("t", true).boolean("f", false); },
       R"({"t":true,"f":false})"},
      {"nesting", [](json::Writer& w) {
         w.object().array("l").str("a").num(1).object().str("k", "v").close().array().close().close().object("o").close();
       },
       R"({"l":["a",1,{"k":"v"},[]],"o":{}})"},
      {"raw values", [](json::Writer& w) { w.object().raw("who", R"({"pid":1})").array("r").raw("2").raw("3"); },
       R"({"who":{"pid":1},"r":[2,3]})"},
      {"members of fields()", [](json::Writer& w) {
         json::Writer f = json::Writer::fields();
         f.str("source", "watch").array("events").str("modify").close();
         w.schema("change").members(f).members(json::Writer::fields()).str("time", "t");
       },
       R"({"schema":"fimctl.v1","type":"change","source":"watch","events":["modify"],"time":"t"})"},
      {"members into an empty object", [](json::Writer& w) {
         json::Writer f = json::Writer::fields();
         f.num("pid", 3);
         w.object().members(f);
       },
       R"({"pid":3})"},
      {"take closes what is open", [](json::Writer& w) { w.object().array("a").object().object("x"); }, R"({"a":[{"x":{}}]})"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    json::Writer w;
    c.build(w);
    CHECK(w.take() == c.want);
  }
  json::Writer f = json::Writer::fields();
  f.str("a", "1").num("b", 2);
  CHECK(f.take() == R"("a":"1","b":2)");
}

TEST_CASE("json::Writer::flush streams a document in parts") {
  json::Writer doc;
  doc.schema("report").raw("summary", "{}").array("records");
  const std::string head = doc.flush();
  CHECK(head == R"({"schema":"fimctl.v1","type":"report","summary":{},"records":[)");
  CHECK(doc.take() == "]}");
}

TEST_CASE("json::parse reads what json::Writer writes, exact bytes included") {
  json::Writer w;
  w.schema("status").boolean("running", true).num("pid", 42).num("big", int64_t{-7}).fixed("s", 1.5, 1);
  w.bytes("baseline", "/var/\xff.db").array("roots").str("/etc").str("/usr").close();
  w.array("dirty").object().str("reason", "overflow").close().close();
  auto v = json::parse(w.take());
  REQUIRE(v.has_value());
  CHECK(v->kind == json::Value::Kind::Object);
  CHECK(v->str("schema") == "fimctl.v1");
  CHECK(v->flag("running"));
  CHECK(v->i64("pid") == 42);
  CHECK(v->i64("big") == -7);
  CHECK(v->get("s")->number == 1.5);
  CHECK(!v->get("s")->integral);
  CHECK(v->bytes("baseline") == "/var/\xff.db");
  REQUIRE(v->get("roots") != nullptr);
  CHECK(v->get("roots")->items.size() == 2);
  CHECK(v->get("roots")->items[1].string == "/usr");
  CHECK(v->get("dirty")->items[0].str("reason") == "overflow");
  CHECK(v->get("absent") == nullptr);
  CHECK(v->str("absent", "fallback") == "fallback");
  CHECK(v->i64("schema", -1) == -1);  // another kind: the fallback
  // Member order is the document's.
  CHECK(v->members[0].key == "schema");
  CHECK(v->members[2].key == "running");
}

TEST_CASE("json::parse refuses what is not JSON, too long or too deep") {
  const char* bad[] = {"", "{", "{\"a\":}", "[1,]", "{\"a\":1} trailing", "nul", "\"\xff\""};
  for (const char* b : bad) {
    CAPTURE(b);
    auto v = json::parse(b);
    REQUIRE(!v.has_value());
    CHECK(v.error().code == Errc::Io);
  }
  CHECK(!json::parse(std::string(100, ' ') + "1", 50).has_value());
  CHECK(json::parse("[[[1]]]", 1024, 3).has_value());
  CHECK(!json::parse("[[[[1]]]]", 1024, 3).has_value());
  CHECK(!json::parse(std::string(100000, '[') + std::string(100000, ']')).has_value());
}
