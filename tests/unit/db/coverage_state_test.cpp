// SPDX-License-Identifier: GPL-2.0-or-later
// state.db's coverage tables (state_coverage.cpp): a root's coverage begins with no evented
// path, evented paths are counted once and read back sorted, together with their row.
#include <doctest/doctest.h>

#include "fim/coverage_rows.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

TEST_CASE("state.db coverage: begun empty, evented paths counted once and sorted, ended per root or all") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  CoverageRows rows(**s);
  const Bytes b = "/var/lib/fimctl/baseline.db";
  REQUIRE(rows.start(b, "/etc", 100, 7).has_value());
  REQUIRE(rows.start(b, "/usr", 200, 7).has_value());
  auto added = rows.add_evented(b, {{"/etc", {"/etc/z", "/etc/a"}}, {"/usr", {"/usr/bin/x"}}});
  REQUIRE(added.has_value());
  CHECK((*added)["/etc"] == 2);
  added = rows.add_evented(b, {{"/etc", {"/etc/a", "/etc/b"}}});
  REQUIRE(added.has_value());
  CHECK((*added)["/etc"] == 1);  // /etc/a was there
  std::vector<Bytes> ev;
  auto row = rows.get(b, "/etc", &ev);
  REQUIRE(row.has_value());
  REQUIRE(row->has_value());
  CHECK((*row)->since_ns == 100);
  CHECK((*row)->pid == 7);
  CHECK(ev == std::vector<Bytes>{"/etc/a", "/etc/b", "/etc/z"});
  // Begun again: later, and nothing named before counts.
  REQUIRE(rows.start(b, "/etc", 300, 7).has_value());
  row = rows.get(b, "/etc", &ev);
  REQUIRE(row.has_value());
  CHECK((*row)->since_ns == 300);
  CHECK(ev.empty());
  REQUIRE(rows.end(b, "/etc").has_value());
  row = rows.get(b, "/etc", &ev);
  CHECK_FALSE(row->has_value());
  row = rows.get(b, "/usr", &ev);
  REQUIRE(row->has_value());
  CHECK(ev == std::vector<Bytes>{"/usr/bin/x"});
  REQUIRE(rows.end(b, Bytes()).has_value());
  row = rows.get(b, "/usr", &ev);
  CHECK_FALSE(row->has_value());
}
