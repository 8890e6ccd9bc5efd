// SPDX-License-Identifier: GPL-2.0-or-later
// Files held open for writing (src/daemon/open_writers.h): the fdinfo and maps parsers, and
// one scan over a /proc tree of the test's own (symlinks to real files, fdinfo, maps).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "daemon/open_writers.h"
#include "testutil.h"

using namespace fim;
using namespace fim::watchd;

TEST_CASE("fdinfo flags are octal, and only write modes count") {
  CHECK(parse_fdinfo_flags("pos:\t0\nflags:\t0100002\nmnt_id:\t29\nino:\t1234\n") == 0100002u);
  CHECK(parse_fdinfo_flags("pos:\t12\nflags:\t02000001\n") == 02000001u);
  CHECK(parse_fdinfo_flags("flags:\t0\n") == 0u);
  CHECK(parse_fdinfo_flags("flags: 0100000") == 0100000u);  // no newline at the end
  CHECK_FALSE(parse_fdinfo_flags("pos:\t0\nmnt_id:\t29\n"));
  CHECK_FALSE(parse_fdinfo_flags("flags:\t0109\n"));     // not octal
  CHECK_FALSE(parse_fdinfo_flags("flags:\t\n"));
  CHECK_FALSE(parse_fdinfo_flags("flags:\t777777777777\n"));  // too long
  CHECK_FALSE(parse_fdinfo_flags("xflags:\t02\n"));
  CHECK(flags_open_for_write(0100002));   // O_RDWR|O_LARGEFILE
  CHECK(flags_open_for_write(02100001));  // O_WRONLY|O_APPEND...
  CHECK_FALSE(flags_open_for_write(0100000));  // O_RDONLY|O_LARGEFILE
  CHECK_FALSE(flags_open_for_write(02000000)); // O_RDONLY|O_CLOEXEC
}

TEST_CASE("maps lines: shared writable mappings of files") {
  auto m = parse_maps_line("7f2c5a1e6000-7f2c5a1e7000 rw-s 00001000 fd:01 1234567                    /usr/bin/tool\n");
  REQUIRE(m);
  CHECK(m->start == 0x7f2c5a1e6000ull);
  CHECK(m->end == 0x7f2c5a1e7000ull);
  CHECK(m->perms == "rw-s");
  CHECK(m->dev == makedev(0xfd, 0x01));
  CHECK(m->ino == 1234567);
  CHECK(m->path == "/usr/bin/tool");
  CHECK(maps_shared_writable(m->perms));

  // A name with spaces, a newline the kernel escaped, a file deleted since.
  m = parse_maps_line("1000-2000 -w-s 00000000 00:1f 42   /srv/a b\\012c (deleted)");
  REQUIRE(m);
  CHECK(m->path == "/srv/a b\nc (deleted)");
  CHECK(m->dev == makedev(0, 0x1f));
  CHECK(maps_shared_writable(m->perms));
  m = parse_maps_line("1000-2000 rw-s 00000000 103:02 42 /x");  // major above 0xff
  REQUIRE(m);
  CHECK(m->dev == makedev(0x103, 0x02));

  CHECK_FALSE(maps_shared_writable("rw-p"));  // private: copy on write, the file stays
  CHECK_FALSE(maps_shared_writable("r--s"));
  CHECK_FALSE(maps_shared_writable("rw-"));
  CHECK_FALSE(parse_maps_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]"));
  CHECK_FALSE(parse_maps_line("7ffd1000-7ffd2000 rw-s 00000000 00:00 0"));
  CHECK_FALSE(parse_maps_line("garbage"));
  CHECK_FALSE(parse_maps_line("1000-2000 rw-s 00000000 fd01 42 /x"));
  CHECK_FALSE(parse_maps_line("1000-2000 rw-s 0000000z 00:01 42 /x"));
  CHECK_FALSE(parse_maps_line("1000-2000 rw-s 00000000 00:01 4x2 /x"));
  CHECK_FALSE(parse_maps_line(""));
}

namespace {

std::string maps_line_for(const std::string& path, const char* perms) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  char b[512];
  std::snprintf(b, sizeof b, "7f0000000000-7f0000001000 %s 00000000 %02x:%02x %llu    %s\n", perms, major(st.st_dev),
                minor(st.st_dev), static_cast<unsigned long long>(st.st_ino), path.c_str());
  return b;
}

/// proc/PID with fd N -> target and its fdinfo flags.
void fake_fd(const test::TempDir& t, int pid, int fd, const std::string& target, const char* flags) {
  const std::string p = t / ("proc/" + std::to_string(pid));
  ::mkdir(p.c_str(), 0755);
  ::mkdir((p + "/fd").c_str(), 0755);
  ::mkdir((p + "/fdinfo").c_str(), 0755);
  REQUIRE(::symlink(target.c_str(), (p + "/fd/" + std::to_string(fd)).c_str()) == 0);
  test::write_file(p + "/fdinfo/" + std::to_string(fd), std::string("pos:\t0\nflags:\t") + flags + "\nmnt_id:\t29\n");
  test::write_file(p + "/comm", "holder" + std::to_string(pid) + "\n");
}

}  // namespace

TEST_CASE("a scan finds the watched files held for writing, by fd or shared map, within its bounds") {
  test::TempDir t;
  ::mkdir((t / "watched").c_str(), 0755);
  ::mkdir((t / "proc").c_str(), 0755);
  for (const char* f : {"rw", "ro", "self", "mapped", "private", "outside"}) test::write_file(t / ("watched/" + std::string(f)), f);
  test::write_file(t / "elsewhere", "x");
  fake_fd(t, 100, 3, t / "watched/rw", "0100002");    // O_RDWR: found
  fake_fd(t, 100, 4, t / "watched/ro", "0100000");    // O_RDONLY: not
  fake_fd(t, 200, 3, t / "watched/self", "0100001");  // the scanner's own pid: skipped
  fake_fd(t, 300, 7, t / "elsewhere", "0100001");     // not watched
  test::write_file(t / "proc/300/maps", "55d0-55e0 r-xp 00000000 fd:01 99 /usr/bin/cat\n" +
                                            maps_line_for(t / "watched/private", "rw-p") +
                                            maps_line_for(t / "watched/mapped", "rw-s"));
  test::write_file(t / "proc/self", "not a process");  // names that are not pids are ignored
  const Bytes watched_dir = t / "watched";
  const WatchedFn watched = [&](dev_t, uint64_t, const Bytes& path) { return path_within(path, watched_dir) && path != t / "watched/outside"; };

  ScanResult r = scan_open_writers(t / "proc", 200, 0, ScanLimits{}, watched);
  CHECK(r.incomplete == "");
  CHECK(r.stopped_at == 0);
  CHECK(r.processes == 2);
  REQUIRE(r.found.size() == 2);
  CHECK(r.found[0].path == t / "watched/rw");
  CHECK(r.found[0].pid == 100);
  CHECK(r.found[0].comm == "holder100");
  CHECK_FALSE(r.found[0].mapped);
  CHECK(r.found[1].path == t / "watched/mapped");
  CHECK(r.found[1].pid == 300);
  CHECK(r.found[1].mapped);
  struct stat st;
  REQUIRE(::stat((t / "watched/mapped").c_str(), &st) == 0);
  CHECK(r.found[1].ino == st.st_ino);
  CHECK(r.map_lines == 3);

  // A bound stops the pass and says which; the next pass goes on after where it stopped.
  ScanLimits one;
  one.max_processes = 1;
  r = scan_open_writers(t / "proc", 200, 0, one, watched);
  CHECK(r.incomplete == "processes");
  CHECK(r.stopped_at == 100);
  REQUIRE(r.found.size() == 1);
  CHECK(r.found[0].pid == 100);
  r = scan_open_writers(t / "proc", 200, r.stopped_at, one, watched);
  CHECK(r.incomplete == "processes");
  CHECK(r.stopped_at == 300);
  REQUIRE(r.found.size() == 1);
  CHECK(r.found[0].pid == 300);

  ScanLimits few_fds;
  few_fds.max_fds = 1;
  r = scan_open_writers(t / "proc", 200, 0, few_fds, watched);
  CHECK(r.incomplete == "fds");
  ScanLimits few_lines;
  few_lines.max_map_lines = 2;
  r = scan_open_writers(t / "proc", 200, 0, few_lines, watched);
  CHECK(r.incomplete == "map_lines");
  ScanLimits one_file;
  one_file.max_files = 1;
  r = scan_open_writers(t / "proc", 200, 0, one_file, watched);
  CHECK(r.incomplete == "files");
  CHECK(r.found.size() == 1);
  ScanLimits no_time;
  no_time.budget_seconds = -1;
  r = scan_open_writers(t / "proc", 200, 0, no_time, watched);
  CHECK(r.incomplete == "time");
  CHECK(r.found.empty());

  const std::atomic<bool> cancelled{true};
  r = scan_open_writers(t / "proc", 200, 0, ScanLimits{}, watched, &cancelled);
  CHECK(r.incomplete == "cancelled");
  CHECK(r.found.empty());

  r = scan_open_writers(t / "no-such-proc", 200, 0, ScanLimits{}, watched);
  CHECK(r.incomplete == "proc");
}
