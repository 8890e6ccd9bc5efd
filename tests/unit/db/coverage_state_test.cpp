// SPDX-License-Identifier: GPL-2.0-or-later
// state.db's coverage tables (state_coverage.cpp): a root's coverage begins with no evented
// path, evented paths are counted once and read back sorted, together with their row.
#include <doctest/doctest.h>

#include "fim/db.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

TEST_CASE("state.db coverage: begun empty, evented paths counted once and sorted, ended per root or all") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  const Bytes b = "/var/lib/fimctl/baseline.db";
  REQUIRE((*s)->start_coverage(b, "/etc", 100, 7).has_value());
  REQUIRE((*s)->start_coverage(b, "/usr", 200, 7).has_value());
  auto added = (*s)->add_evented(b, {{"/etc", {"/etc/z", "/etc/a"}}, {"/usr", {"/usr/bin/x"}}});
  REQUIRE(added.has_value());
  CHECK((*added)["/etc"] == 2);
  added = (*s)->add_evented(b, {{"/etc", {"/etc/a", "/etc/b"}}});
  REQUIRE(added.has_value());
  CHECK((*added)["/etc"] == 1);  // /etc/a was there
  std::vector<Bytes> ev;
  auto row = (*s)->coverage(b, "/etc", &ev);
  REQUIRE(row.has_value());
  REQUIRE(row->has_value());
  CHECK((*row)->since_ns == 100);
  CHECK((*row)->pid == 7);
  CHECK(ev == std::vector<Bytes>{"/etc/a", "/etc/b", "/etc/z"});
  // Begun again: later, and nothing named before counts.
  REQUIRE((*s)->start_coverage(b, "/etc", 300, 7).has_value());
  row = (*s)->coverage(b, "/etc", &ev);
  REQUIRE(row.has_value());
  CHECK((*row)->since_ns == 300);
  CHECK(ev.empty());
  REQUIRE((*s)->end_coverage(b, "/etc").has_value());
  row = (*s)->coverage(b, "/etc", &ev);
  CHECK_FALSE(row->has_value());
  row = (*s)->coverage(b, "/usr", &ev);
  REQUIRE(row->has_value());
  CHECK(ev == std::vector<Bytes>{"/usr/bin/x"});
  REQUIRE((*s)->end_coverage(b, Bytes()).has_value());
  row = (*s)->coverage(b, "/usr", &ev);
  CHECK_FALSE(row->has_value());
}
