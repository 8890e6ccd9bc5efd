// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's logic through the replay source: no root, no fanotify. Each case makes a
// tree and a baseline, runs the daemon on its own thread, feeds it the events the kernel
// would report for what the case did, and reads the records it writes.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <fstream>
#include <thread>

#include "replay_daemon.h"

using namespace fim;
using fim::test::TempDir;
using namespace fim::test::replay;

TEST_CASE("replay: a write through a hard link outside every root is compared under the baseline's name") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  ::mkdir((d / "t/sbin").c_str(), 0755);
  ::mkdir((d / "outside").c_str(), 0755);
  test::write_file(d / "t/sbin/sshd", "the real sshd\n");
  Daemon w(d, {d / "t"});
  REQUIRE(::link((d / "t/sbin/sshd").c_str(), (d / "outside/x").c_str()) == 0);
  std::ofstream(d / "outside/x", std::ios::app) << "backdoor\n";
  Event ev = named(FAN_CLOSE_WRITE, d / "outside", "x");
  ReplaySource::with_object(ev, d / "outside/x");
  w.push(std::move(ev));
  const auto r = w.wait_for({"\"kind\":\"changed\"", q(d / "t/sbin/sshd")});
  CHECK(r.find("\"via\":" + q(d / "outside/x")) != std::string::npos);
  CHECK(r.find("\"attr\":\"sha256\"") != std::string::npos);
}

TEST_CASE("replay: an event outside every root on a file the baseline does not record is dropped") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  ::mkdir((d / "outside").c_str(), 0755);
  test::write_file(d / "t/f", "watched\n");
  Daemon w(d, {d / "t"});
  test::write_file(d / "outside/db", "a busy database\n");
  Event ev = named(FAN_CLOSE_WRITE, d / "outside", "db");
  ReplaySource::with_object(ev, d / "outside/db");
  w.push(std::move(ev));
  // Then a real change, to know the first event was handled.
  std::ofstream(d / "t/f", std::ios::app) << "more\n";
  w.push(named(FAN_CLOSE_WRITE, d / "t", "f"));
  w.wait_for({"\"kind\":\"changed\"", q(d / "t/f")});
  CHECK(w.count("outside") == 0);
}

TEST_CASE("replay: a root with a symlinked ancestor reports the path the baseline uses") {
  TempDir d;
  ::mkdir((d / "data").c_str(), 0755);
  ::mkdir((d / "data/etc").c_str(), 0755);
  test::write_file(d / "data/etc/passwd", "root:x:0:0\n");
  REQUIRE(::symlink((d / "data").c_str(), (d / "link").c_str()) == 0);
  Daemon w(d, {d / "link/etc"});
  std::ofstream(d / "data/etc/passwd", std::ios::app) << "evil:x:0:0\n";
  w.push(named(FAN_CLOSE_WRITE, d / "data/etc", "passwd"));  // the kernel names the real path
  w.wait_for({"\"kind\":\"changed\"", q(d / "link/etc/passwd")});
}

TEST_CASE("replay: rewrites within the debounce are compared once, with the last content") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  test::write_file(d / "t/f", "v0");
  Daemon w(d, {d / "t"});
  for (int i = 1; i <= 200; ++i) {
    test::write_file(d / "t/f", "v" + std::to_string(i));
    w.push(named(FAN_CLOSE_WRITE, d / "t", "f"));
  }
  const auto r = w.wait_for({"\"kind\":\"changed\"", q(d / "t/f"), test::sha256_hex("v200")});
  CHECK(w.count(q(d / "t/f")) < 200);
}

TEST_CASE("replay: a file created and removed before the compare is a transient record, and its directory is compared") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  ::mkdir((d / "t/cron.d").c_str(), 0755);
  test::write_file(d / "t/cron.d/backup", "0 3 * * * root /backup\n");
  Daemon w(d, {d / "t"});
  test::write_file(d / "t/cron.d/evil", "* * * * * root /tmp/x\n");
  w.push(named(FAN_CREATE, d / "t/cron.d", "evil"));
  ::unlink((d / "t/cron.d/evil").c_str());
  w.push(named(FAN_DELETE, d / "t/cron.d", "evil"));
  const auto r = w.wait_for({"\"kind\":\"transient\"", q(d / "t/cron.d/evil")});
  CHECK(r.find("\"create\"") != std::string::npos);
  CHECK(r.find("\"pid\":" + std::to_string(::getpid())) != std::string::npos);
  w.wait_for({"\"kind\":\"changed\"", q(d / "t/cron.d") + ","});
}

TEST_CASE("replay: a rename within a root is the old name removed and the new one added") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  test::write_file(d / "t/sshd_config", "PermitRootLogin no\n");
  Daemon w(d, {d / "t"});
  REQUIRE(::rename((d / "t/sshd_config").c_str(), (d / "t/sshd_config.bak").c_str()) == 0);
  w.push(named(FAN_MOVED_FROM, d / "t", "sshd_config"));
  w.push(named(FAN_MOVED_TO, d / "t", "sshd_config.bak"));
  w.wait_for({"\"kind\":\"removed\"", q(d / "t/sshd_config")});
  w.wait_for({"\"kind\":\"added\"", q(d / "t/sshd_config.bak")});
}

TEST_CASE("replay: a lost event is a gap that runs to the end of the rescan, and the rescan finds the change") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  test::write_file(d / "t/f", "v0");
  Daemon w(d, {d / "t"});
  test::write_file(d / "t/f", "changed while events were lost");
  Event loss;
  loss.mask = FAN_Q_OVERFLOW;
  loss.loss = "overflow";
  w.push(std::move(loss));
  w.wait_for({"\"kind\":\"changed\"", q(d / "t/f"), "\"rescan\":\"overflow\""});
  const auto gap = w.wait_for({"\"type\":\"gap\"", "\"reason\":\"overflow\""});
  // The gap record comes after the rescan that closes it.
  const auto recs = w.records();
  size_t done = recs.size(), gap_at = recs.size();
  for (size_t i = 0; i < recs.size(); ++i) {
    if (recs[i].find("\"type\":\"rescan_done\",\"reason\":\"overflow\"") != std::string::npos) done = i;
    if (recs[i] == gap) gap_at = i;
  }
  CHECK(done < gap_at);
}

TEST_CASE("replay: a change below a directory deeper than PATH_MAX is located and compared") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  // mkdir(2) of a path this long fails: the tree is made with directory fds.
  int fd = ::open((d / "t").c_str(), O_RDONLY | O_DIRECTORY);
  std::string deep = d / "t";
  for (int i = 0; i < 40; ++i) {
    const std::string name = "L" + std::to_string(100 + i) + std::string(120, 'd');
    ::mkdirat(fd, name.c_str(), 0755);
    const int next = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY);
    ::close(fd);
    fd = next;
    deep += "/" + name;
  }
  REQUIRE(deep.size() > PATH_MAX);
  int f = ::openat(fd, "target", O_WRONLY | O_CREAT, 0644);
  REQUIRE(::write(f, "original\n", 9) == 9);
  ::close(f);
  Daemon w(d, {d / "t"});
  f = ::openat(fd, "target", O_WRONLY | O_APPEND);
  REQUIRE(::write(f, "tampered\n", 9) == 9);
  ::close(f);
  ::close(fd);
  w.push(named(FAN_CLOSE_WRITE, deep, "target"));
  w.wait_for({"\"kind\":\"changed\"", q(deep + "/target")});
}
