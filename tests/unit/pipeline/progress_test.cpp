// SPDX-License-Identifier: GPL-2.0-or-later
// init's pre-walk (src/pipeline/progress.cpp): the totals it gives the progress line.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "fim/rules.h"
#include "pipeline/progress.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

TEST_CASE("init's pre-walk: the entries' total, then the bytes the scan will hash, while the scan leaves CPU idle") {
  TempDir d;
  for (const char* dir : {"r", "r/sub", "r/meta"}) REQUIRE(::mkdir((d / dir).c_str(), 0755) == 0);
  test::write_file(d / "r/a", std::string(100, 'a'));
  test::write_file(d / "r/sub/b", std::string(1000, 'b'));
  test::write_file(d / "r/big", std::string(5000, 'c'));   // over its rule's hash limit: not hashed
  test::write_file(d / "r/meta/m", std::string(700, 'm'));  // a rule without content: not hashed
  REQUIRE(::symlink("a", (d / "r/link").c_str()) == 0);
  auto policy = parse_policy_text("[[rule]]\npath = \"" + d / "r" + "\"\n"
                                  "[[rule]]\npath = \"" + d / "r/big" + "\"\nmax_hash_size = 4096\n"
                                  "[[rule]]\npath = \"" + d / "r/meta" + "\"\nattrs = \"perms\"\n",
                                  "t.toml");
  REQUIRE(policy.has_value());

  ScanProgress last;
  const std::function<void(const ScanProgress&)> f = [&](const ScanProgress& p) { last = p; };
  detail::ProgressTracker tracker(f);
  tracker.count_in_background({d / "r"}, *policy, -1);
  ScanOptions so;
  tracker.attach(&so);  // the scan's `waiting` hook: the tracker reports (at most every 250 ms)
  // This "scan" sleeps: the process leaves its CPUs idle, so the second pass runs. Its wait for
  // spare CPU samples half a second; a loaded machine only makes it slower.
  for (int i = 0; i < 300 && last.total_bytes == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    so.waiting();
  }
  CHECK_FALSE(last.counting);
  CHECK(last.total_entries == 8);  // r, r/a, r/big, r/link, r/meta, r/meta/m, r/sub, r/sub/b
  CHECK(last.total_bytes == 1100);
  tracker.finish(8);
  CHECK(last.done);
}
