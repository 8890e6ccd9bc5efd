// SPDX-License-Identifier: GPL-2.0-or-later
// /proc/PID/stat as written-by-dpkg reads it: comm may hold spaces and parentheses.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "doctest/doctest.h"
#include "fim/ancestry.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

TEST_CASE("read_proc takes ppid and start time after the last parenthesis") {
  TempDir d;
  const std::string dir = d.path() + "/42";
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  const std::string stat = "42 (a) b (c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10";
  const int fd = ::open((dir + "/stat").c_str(), O_WRONLY | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, stat.data(), stat.size()) == static_cast<ssize_t>(stat.size()));
  ::close(fd);
  auto p = pkg::read_proc(42, d.path().c_str());
  REQUIRE(p.has_value());
  CHECK(p->comm == "a) b (c");
  CHECK(p->ppid == 7);
  CHECK(p->start == 123456);
  CHECK(!pkg::read_proc(43, d.path().c_str()).has_value());
}

TEST_CASE("this process is no descendant of a dpkg: unknown and unrelated are not dpkg's") {
  auto me = pkg::read_proc(static_cast<int32_t>(::getpid()));
  REQUIRE(me.has_value());
  auto parent = pkg::read_proc(me->ppid);
  REQUIRE(parent.has_value());
  // Its parent is an ancestor, but no /usr/bin/dpkg is on the way.
  CHECK(!pkg::descends_from_dpkg_of(*me, parent->pid, parent->start));
  // The right pid with another start time is another process.
  CHECK(!pkg::descends_from_dpkg_of(*me, parent->pid, parent->start + 1));
}
