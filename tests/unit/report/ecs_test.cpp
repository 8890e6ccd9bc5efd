// SPDX-License-Identifier: GPL-2.0-or-later
// report: the ECS translation of record types the cli run does not reach (the watch daemon's:
// a change with the BPF sensors' writer, a container's drift in a pod, a coverage gap, a
// response), and of lines that are not records. Validity against the ECS field list is
// tests/cli/ecs_test.py's (python, with the ECS project's data).
#include "doctest/doctest.h"
#include "fim/json.h"
#include "fim/report.h"

using namespace fim;

namespace {

json::Value doc(const std::string& line) {
  auto v = json::parse(ecs_document(line));
  REQUIRE(v);
  return std::move(*v);
}

const json::Value& at(const json::Value& v, std::initializer_list<const char*> path) {
  const json::Value* cur = &v;
  for (const char* k : path) {
    cur = cur->get(k);
    REQUIRE_MESSAGE(cur, k);
  }
  return *cur;
}

}  // namespace

TEST_CASE("ecs: a watch change names its writer as process.* and user.id, the container and pod") {
  const auto d = doc(
      R"({"schema":"fimctl.v1","type":"change","kind":"added","path":"/usr/bin/x","file_type":"file","severity":"critical",)"
      R"("tags":["binaries"],"rule":"/etc/fimctl/fimctl.toml:3:1","new":{"mode":"4755","uid":0,"gid":0,"size":3,"sha256":"ab"},)"
      R"("source":"watch","pid":41,"comm":"sh","who":{"pid":42,"tgid":40,"ppid":1,"uid":1000,"loginuid":1000,"comm":"cp","exe":"/usr/bin/cp"},)"
      R"("container":{"runtime":"containerd","id":"c1","name":"web","image":"app:1","image_digest":"sha256:00","pid":7,)"
      R"("pod":{"namespace":"shop","name":"web-1","container":"nginx"}},"time":"2026-12-05T00:00:00.000000001Z","host":{"name":"n1","id":"m1"}})");
  CHECK(at(d, {"event", "type"}).items[0].string == "creation");
  CHECK(at(d, {"event", "severity"}).integer == 99);
  CHECK(at(d, {"process", "pid"}).integer == 40);
  CHECK(at(d, {"process", "parent", "pid"}).integer == 1);
  CHECK(at(d, {"process", "executable"}).string == "/usr/bin/cp");
  CHECK(at(d, {"user", "id"}).string == "1000");
  CHECK(at(d, {"container", "image", "hash", "all"}).items[0].string == "sha256:00");
  CHECK(at(d, {"orchestrator", "namespace"}).string == "shop");
  CHECK(at(d, {"orchestrator", "resource", "name"}).string == "web-1");
  CHECK(at(d, {"file", "uid"}).string == "0");
  CHECK(at(d, {"tags"}).items[0].string == "binaries");
  CHECK(at(d, {"rule", "name"}).string == "/etc/fimctl/fimctl.toml:3:1");
  CHECK(at(d, {"fimctl", "who", "loginuid"}).integer == 1000);  // nothing dropped
  CHECK(at(d, {"fimctl", "container", "pid"}).integer == 7);
  CHECK(!d.get("fimctl")->get("path"));  // file.path has it
}

TEST_CASE("ecs: gap, response and other records; lines that are not records") {
  const auto gap = doc(R"({"schema":"fimctl.v1","type":"gap","reason":"overflow","time":"2026-12-05T00:00:00Z","host":{"name":"n","id":"m"}})");
  CHECK(at(gap, {"event", "kind"}).string == "event");
  CHECK(at(gap, {"event", "category"}).items[0].string == "host");
  CHECK(at(gap, {"event", "action"}).string == "gap");
  CHECK(at(gap, {"fimctl", "reason"}).string == "overflow");
  const auto resp = doc(R"({"schema":"fimctl.v1","type":"response","action":"kill","pid":9,"killed":1,"time":"2026-12-05T00:00:00Z"})");
  CHECK(at(resp, {"event", "category"}).items[0].string == "process");
  CHECK(at(resp, {"event", "type"}).items[0].string == "end");
  // A rescan's progress maps as its start does: a host event named by its type, the rest
  // (counts, roots) under fimctl.*.
  const auto start = doc(R"({"schema":"fimctl.v1","type":"rescan_start","reason":"overflow","roots":["/etc"],"time":"2026-12-05T00:00:00Z"})");
  const auto prog = doc(R"({"schema":"fimctl.v1","type":"rescan_progress","reason":"overflow","roots":["/etc"],"entries":35012,"bytes":1200,"total_entries":100000,"total_bytes":3400,"seconds":10.001,"time":"2026-12-05T00:00:10Z"})");
  CHECK(at(prog, {"event", "kind"}).string == at(start, {"event", "kind"}).string);
  CHECK(at(prog, {"event", "category"}).items[0].string == at(start, {"event", "category"}).items[0].string);
  CHECK(at(prog, {"event", "action"}).string == "rescan_progress");
  CHECK(at(prog, {"fimctl", "reason"}).string == "overflow");
  CHECK(at(prog, {"fimctl", "entries"}).integer == 35012);
  CHECK(at(prog, {"fimctl", "total_entries"}).integer == 100000);
  CHECK(ecs_document("not json").empty());
  CHECK(ecs_document("[1,2]").empty());
}
