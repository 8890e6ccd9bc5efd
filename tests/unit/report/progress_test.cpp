// SPDX-License-Identifier: GPL-2.0-or-later
// report: the progress line's text (include/fim/progress.h): numbers, percent, rate, time
// left, unknown totals, the terminal and the log variants, the final line, and the pacing of
// the watch daemon's rescan_progress records.
#include "doctest/doctest.h"
#include "fim/progress.h"

using namespace fim;

TEST_CASE("thousands, bytes and durations") {
  CHECK(group_thousands(0) == "0");
  CHECK(group_thousands(999) == "999");
  CHECK(group_thousands(1000) == "1,000");
  CHECK(group_thousands(35012) == "35,012");
  CHECK(group_thousands(1234567) == "1,234,567");
  CHECK(human_bytes(0) == "0 B");
  CHECK(human_bytes(999) == "999 B");
  CHECK(human_bytes(1000) == "1.0 kB");
  CHECK(human_bytes(1.2e9) == "1.2 GB");
  CHECK(human_bytes(3.4e9) == "3.4 GB");
  CHECK(human_bytes(999999) == "1.0 MB");  // never "1000.0 kB"
  CHECK(human_bytes(210e6) == "210 MB");
  CHECK(human_bytes(999.6e3) == "1.0 MB");
  CHECK(human_bytes(99.5e6) == "99.5 MB");
  CHECK(human_bytes(-5) == "0 B");
  CHECK(clock_duration(0) == "0:00");
  CHECK(clock_duration(41.2) == "0:42");
  CHECK(clock_duration(723) == "12:03");
  CHECK(clock_duration(3723) == "1:02:03");
}

TEST_CASE("rate over a window") {
  RateMeter m(10);
  CHECK(m.bytes_per_second() == 0);
  m.add(0, 0, 0);
  CHECK(m.bytes_per_second() == 0);
  m.add(1, 100, 1000);
  CHECK(m.bytes_per_second() == doctest::Approx(1000));
  CHECK(m.entries_per_second() == doctest::Approx(100));
  // A burst long ago leaves the window: the rate is the recent one.
  for (int t = 2; t <= 30; ++t) m.add(t, 100 + static_cast<uint64_t>(t - 1) * 10, 1000 + static_cast<uint64_t>(t - 1) * 50);
  CHECK(m.bytes_per_second() == doctest::Approx(50));
  CHECK(m.entries_per_second() == doctest::Approx(10));
}

TEST_CASE("fraction and time left") {
  ScanProgress p;
  p.entries = 35012;
  p.total_entries = 100000;
  CHECK(progress_fraction(p) == doctest::Approx(0.35012));
  CHECK(progress_eta(p, 0, 1000) == doctest::Approx(64.988));
  CHECK(progress_eta(p, 0, 0) < 0);  // no rate yet
  p.bytes = 1'200'000'000;
  p.total_bytes = 3'400'000'000;
  CHECK(progress_fraction(p) == doctest::Approx(1.2 / 3.4));  // bytes decide when known
  CHECK(progress_eta(p, 100e6, 1000) == doctest::Approx(22));
  p.bytes = 4'000'000'000;  // a file grew: never past the end before the end
  CHECK(progress_fraction(p) < 1);
  CHECK(progress_eta(p, 100e6, 0) == 0);
  ScanProgress unknown;
  unknown.entries = 5;
  CHECK(progress_fraction(unknown) < 0);
  CHECK(progress_eta(unknown, 100, 100) < 0);
  unknown.total_entries = 10;
  unknown.counting = true;  // a pre-walk's partial count is no total
  CHECK(progress_fraction(unknown) < 0);
}

TEST_CASE("the terminal and the log line") {
  ScanProgress p;
  p.entries = 35012;
  p.total_entries = 100000;
  p.bytes = 1'200'000'000;
  p.total_bytes = 3'400'000'000;
  const std::string tty = progress_line("check", p, 210e6, 5000, true);
  CHECK(tty == "fimctl check: [#######.............] 35% 35,012/100,000 entries, 1.2 GB/3.4 GB, 210 MB/s, 0:11 left");
  const std::string plain = progress_line("check", p, 210e6, 5000, false);
  CHECK(plain == "fimctl check: 35% 35,012/100,000 entries, 1.2 GB/3.4 GB, 210 MB/s, 0:11 left");
  for (const std::string& s : {tty, plain}) {
    CHECK(s.find('\r') == std::string::npos);
    CHECK(s.find('\x1b') == std::string::npos);
    CHECK(s.find('\n') == std::string::npos);
  }
}

TEST_CASE("unknown totals: counts and rate, no percent or time left") {
  ScanProgress p;
  p.entries = 1234;
  p.bytes = 5'000'000;
  CHECK(progress_line("init", p, 1e6, 100, true) == "fimctl init: 1,234 entries, 5.0 MB, 1.0 MB/s");
  p.counting = true;
  p.total_entries = 9000;  // so far: not shown as a total
  CHECK(progress_line("init", p, 1e6, 100, false) == "fimctl init: 1,234 entries, 5.0 MB, 1.0 MB/s, counting...");
  ScanProgress e;  // nothing read (check --fast, metadata only): entries/s
  e.entries = 500;
  e.total_entries = 1000;
  CHECK(progress_line("check", e, 0, 250, false) == "fimctl check: 50% 500/1,000 entries, 250 entries/s, 0:02 left");
  CHECK(progress_line("check", ScanProgress{}, 0, 0, true) == "fimctl check: 0 entries");
}

TEST_CASE("the final line") {
  ScanProgress p;
  p.entries = 100000;
  p.bytes = 3'400'000'000;
  CHECK(progress_final_line("check", p, 12.34) == "fimctl check: 100,000 entries, 3.4 GB in 12.3 s");
  p.entries = 1;
  CHECK(progress_final_line("accept", p, 0.04).rfind("fimctl accept: 1 entry, ", 0) == 0);
}

TEST_CASE("rescan_progress pacing: one per interval, none for a short rescan") {
  RescanPacer pacer(100, 10);
  CHECK_FALSE(pacer.due(100));
  CHECK_FALSE(pacer.due(109.9));
  CHECK(pacer.due(110));
  CHECK_FALSE(pacer.due(110.1));
  CHECK_FALSE(pacer.due(119.9));
  CHECK(pacer.due(120.5));
  CHECK(pacer.due(171));  // a long pause: one record, not five
  CHECK_FALSE(pacer.due(179));
  CHECK(pacer.due(180));
}
