// SPDX-License-Identifier: GPL-2.0-or-later
// The status record: what the daemon writes (status_json) is what the client reads back
// (parse_status), for a running daemon and for what state.db remembers.
#include <doctest/doctest.h>

#include <initializer_list>

#include "fim/pipeline.h"

using namespace fim;

TEST_CASE("status record: written, read back, written again, byte for byte") {
  WatchStatus running;
  running.running = true;
  running.pid = 42;
  running.started = "2026-01-01T00:00:00Z";
  running.baseline = "/var/lib/fimctl/\xff.db";
  running.baseline_sha256 = "ab";
  running.roots = {"/etc", "/usr"};
  running.events = 7, running.changes = 2, running.queue_depth = 1;
  running.bpf_lsm = "active (x)";
  running.bpf_active = true;
  running.bpf_denied = 3;
  running.busy = true;
  running.degraded = {"/mnt: EPERM"};
  running.dirty = {{"/etc", "overflow", {}}};

  WatchStatus stopped;
  stopped.baseline = "/db";
  stopped.last_started = "s", stopped.last_heartbeat = "h", stopped.stopped = "not cleanly (killed or crashed)";
  stopped.dirty = {{"/etc", "daemon_down", "t"}};
  stopped.gaps = {{"a", "b", "daemon_down"}};

  const WatchStatus empty;
  for (const WatchStatus* s : std::initializer_list<const WatchStatus*>{&running, &stopped, &empty}) {
    const std::string doc = status_json(*s);
    CAPTURE(doc);
    CHECK(doc.back() == '\n');
    auto back = parse_status(doc);
    REQUIRE(back.has_value());
    CHECK(status_json(*back) == doc);
  }
  auto back = parse_status(status_json(running));
  REQUIRE(back.has_value());
  CHECK(back->baseline == running.baseline);  // exact bytes, through baseline_b64
  CHECK(back->bpf_denied == 3);
  CHECK(back->dirty.size() == 1);
  CHECK(status_json(running).find(R"j("bpf_lsm":"active (x)","bpf_events":0,"bpf_lost":0,"bpf_denied":3,"busy":true)j") !=
        std::string::npos);
  CHECK(status_json(stopped) == "{\"schema\":\"fimctl.v1\",\"type\":\"status\",\"running\":false,\"baseline\":\"/db\","
                                "\"last_started\":\"s\",\"last_heartbeat\":\"h\",\"stopped\":\"not cleanly (killed or "
                                "crashed)\",\"dirty\":[{\"root\":\"/etc\",\"reason\":\"daemon_down\",\"since\":\"t\"}],"
                                "\"gaps\":[{\"start\":\"a\",\"end\":\"b\",\"reason\":\"daemon_down\"}]}\n");
}

TEST_CASE("parse_status refuses what is not a status record") {
  for (const char* bad : {"", "not json", "[]", R"({"schema":"fimctl.v1","type":"alert"})"}) {
    CAPTURE(bad);
    auto s = parse_status(bad);
    REQUIRE(!s.has_value());
    CHECK(s.error().code == Errc::Io);
  }
}

TEST_CASE("parse_status: malformed and hostile replies end in an error, never a loop") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const std::string bad : {std::string(R"({"dirty":[}]})"), std::string(R"({"schema":"fimctl.v1","type":"status","dirty":[)"),
                                std::string(R"({"schema":"fimctl.v1","type":"status","dirty":[}]})"), deep,
                                std::string(size_t{1} << 25, ' ')}) {
    CAPTURE(bad.substr(0, 60));
    auto s = parse_status(bad);
    REQUIRE(!s.has_value());
    CHECK(s.error().code == Errc::Io);
  }
}

TEST_CASE("status record: 'untrusted' is written and read back") {
  WatchStatus s;
  s.baseline = "/b.db";
  s.untrusted = "ignored the answer on /s: uid 65534";
  auto back = parse_status(status_json(s));
  REQUIRE(back.has_value());
  CHECK(back->untrusted == s.untrusted);
  CHECK(!back->running);
}
