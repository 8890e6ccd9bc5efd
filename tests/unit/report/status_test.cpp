// SPDX-License-Identifier: GPL-2.0-or-later
// The status record: what the daemon writes (status_json) is what the client reads back
// (parse_status), for a running daemon and for what state.db remembers, and the struct
// rendered for people (status_text).
#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "fim/json.h"
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
  running.covered = {{"/usr", 1767225600123456789}};

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
  // Coverage to the nanosecond (a check compares it with each entry's last hash).
  REQUIRE(back->covered.size() == 1);
  CHECK(back->covered[0].root == "/usr");
  CHECK(back->covered[0].since_ns == 1767225600123456789);
  CHECK(status_json(running).find(R"j("covered_since":[{"root":"/usr","since":"2026-01-01T00:00:00.123456789Z",)j") !=
        std::string::npos);
  CHECK(status_text(running).find("covered_since:\n    - root=/usr, since=2026-01-01T00:00:00.123456789Z\n") !=
        std::string::npos);
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
  for (const std::string& bad : {std::string(R"({"dirty":[}]})"), std::string(R"({"schema":"fimctl.v1","type":"status","dirty":[)"),
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

TEST_CASE("status for people: rendered from the struct, one line per field of the record in its order") {
  WatchStatus running;
  running.running = true;
  running.pid = 42;
  running.baseline = "/b\x1b[31m.db";
  running.roots = {"/etc", "/usr"};
  running.events = 7;
  running.bpf_active = true;
  running.bpf_denied = 3;
  running.dirty = {{"/etc", "overflow", {}}};
  WatchStatus stopped;
  stopped.baseline = "/db";
  stopped.untrusted = "ignored the answer on /s";
  stopped.last_started = "s", stopped.last_heartbeat = "h", stopped.stopped = "not cleanly (killed or crashed)";
  stopped.dirty = {{"/etc", "daemon_down", "t"}};
  stopped.gaps = {{"a", "b", "daemon_down"}};
  for (const WatchStatus* s : std::initializer_list<const WatchStatus*>{&running, &stopped}) {
    const std::string text = status_text(*s);
    CAPTURE(text);
    // The keys of the text, in order, are the record's (less schema, type and _b64 twins).
    std::vector<std::string> keys;
    for (size_t pos = text.find('\n') + 1; pos < text.size(); pos = text.find('\n', pos) + 1)
      if (text.compare(pos, 4, "    ") != 0) keys.push_back(text.substr(pos + 2, text.find(':', pos) - pos - 2));
    auto rec = json::parse(status_json(*s));
    REQUIRE(rec.has_value());
    std::vector<std::string> expected;
    for (const auto& m : rec->members)
      if (m.key != "schema" && m.key != "type" && m.key.find("_b64") == std::string::npos) expected.push_back(m.key);
    CHECK(keys == expected);
  }
  const std::string text = status_text(running);
  CHECK(text.rfind("fimctl watch: running\n  running: true\n  pid: 42\n", 0) == 0);
  CHECK(text.find("  baseline: /b\\x1b[31m.db\n") != std::string::npos);  // terminal-safe
  CHECK(text.find("  roots:\n    - /etc\n    - /usr\n") != std::string::npos);
  CHECK(text.find("  bpf_denied: 3\n") != std::string::npos);
  CHECK(text.find("  degraded: none\n  covered_since: none\n  dirty:\n    - root=/etc, reason=overflow\n") != std::string::npos);
  CHECK(status_text(stopped).find("    - root=/etc, reason=daemon_down, since=t\n  gaps:\n    - start=a, end=b, "
                                  "reason=daemon_down\n") != std::string::npos);
  CHECK(status_text(stopped).rfind("fimctl watch: NOT running (changes are not seen in real time)\n", 0) == 0);
}
