// SPDX-License-Identifier: GPL-2.0-or-later
// Container roots (src/daemon/container_roots.h): an event's host path to the container path
// it names, the containers a discovery starts and stops, and a loss marking each dirty.
#include <doctest/doctest.h>

#include "daemon/container_roots.h"

using namespace fim;
using fim::watchd::ContainerQueue;
using fim::watchd::ContainerRoots;
using fim::watchd::upper_path;

namespace {

Container overlay_container(int pid, const Bytes& upper, const Bytes& lower) {
  Container c;
  c.pid = pid;
  c.overlay = OverlayDirs{{lower}, upper, upper + ".work"};
  return c;
}

}  // namespace

TEST_CASE("a path below an upper directory is that container's path") {
  const std::set<Bytes> uppers{"/var/lib/c/1/diff", "/var/lib/c/2/diff"};
  auto at = upper_path(uppers, "/var/lib/c/1/diff/etc/cron.d/evil");
  REQUIRE(at);
  CHECK(at->upper == "/var/lib/c/1/diff");
  CHECK(at->inside == "/etc/cron.d/evil");
  at = upper_path(uppers, "/var/lib/c/2/diff");
  REQUIRE(at);
  CHECK(at->upper == "/var/lib/c/2/diff");
  CHECK(at->inside == "/");
}

TEST_CASE("the work directory and a sibling sharing a prefix are below no upper directory") {
  const std::set<Bytes> uppers{"/var/lib/c/1/diff"};
  CHECK_FALSE(upper_path(uppers, "/var/lib/c/1/work/work/#1234"));
  CHECK_FALSE(upper_path(uppers, "/var/lib/c/1/diff2/etc"));
  CHECK_FALSE(upper_path(uppers, "/var/lib/c/1"));
  CHECK_FALSE(upper_path({}, "/etc/passwd"));
}

TEST_CASE("an upper directory below another: the deeper one owns its paths") {
  const std::set<Bytes> uppers{"/srv/a", "/srv/a/nested/upper"};
  auto at = upper_path(uppers, "/srv/a/nested/upper/usr/bin/x");
  REQUIRE(at);
  CHECK(at->upper == "/srv/a/nested/upper");
  CHECK(at->inside == "/usr/bin/x");
  at = upper_path(uppers, "/srv/a/nested/other");
  REQUIRE(at);
  CHECK(at->upper == "/srv/a");
  CHECK(at->inside == "/nested/other");
}

TEST_CASE("discovery starts and stops containers by upper directory, each named in its records") {
  ContainerRoots roots("/var/lib/fimctl/baseline.db", 2);
  Container ro;
  ro.pid = 30;  // no overlay upper layer: nothing in it can drift
  auto ch = roots.update({overlay_container(10, "/u/1", "/img/a"), ro});
  REQUIRE(ch.started.size() == 1);
  CHECK(ch.stopped.empty());
  const auto& r = *ch.started[0];
  CHECK(r.upper == "/u/1");
  CHECK(r.key.key.size() == 64);
  CHECK(r.key.kind == "lower-layers");
  CHECK(r.db == "/var/lib/fimctl/images/" + r.key.key + ".db");
  // No runtime named it (no cgroup id): unnamed, keyed by its lower layers, and said so.
  CHECK(r.field == R"({"runtime":"","id":"","name":"","image":"","image_digest":"","image_index_digest":"","pid":10,"baseline_key":")" + r.key.key +
                       R"(","baseline_key_kind":"lower-layers"})");
  CHECK(r.label == "container (pid 10)");
  CHECK(roots.uppers() == std::set<Bytes>{"/u/1"});

  // Found again: nothing new. A second one of the same image shares its baseline.
  ch = roots.update({overlay_container(10, "/u/1", "/img/a"), overlay_container(11, "/u/2", "/img/a")});
  REQUIRE(ch.started.size() == 1);
  CHECK(ch.started[0]->db == r.db);

  ch = roots.update({overlay_container(11, "/u/2", "/img/a")});
  CHECK(ch.started.empty());
  REQUIRE(ch.stopped.size() == 1);
  CHECK(ch.stopped[0]->c.pid == 10);
  CHECK(roots.uppers() == std::set<Bytes>{"/u/2"});
}

TEST_CASE("discovery is due every poll, and at once and more often after a mount") {
  ContainerRoots roots("/db/baseline.db", 2);
  CHECK(roots.due(100));
  CHECK_FALSE(roots.due(101));
  CHECK(roots.due(102));
  roots.poke(102.5);
  CHECK(roots.due(102.5));
  CHECK(roots.due(102.75));  // a quarter of a second while the burst lasts
  CHECK_FALSE(roots.due(102.8));
  CHECK(roots.due(106));
  CHECK_FALSE(roots.due(107));  // the burst is over: every poll again
}

TEST_CASE("a loss marks every tracked container dirty and drops its pending paths") {
  ContainerQueue q;
  ContainerRoots roots("/db/baseline.db", 2);
  for (const auto& r : roots.update({overlay_container(10, "/u/1", "/img/a"), overlay_container(11, "/u/2", "/img/b")}).started)
    q.tracked[r->upper] = r;
  q.work["/u/1"].paths = {"/etc/cron.d/evil"};
  q.paths = 1;
  CHECK(q.has_work());
  CHECK_FALSE(q.dirty_for("overflow"));
  q.all_dirty("overflow", 42);
  CHECK(q.work.empty());
  CHECK(q.paths == 0);
  REQUIRE(q.dirty.size() == 2);
  CHECK(q.dirty.at("/u/2").reason == "overflow");
  CHECK(q.dirty.at("/u/2").at_ns == 42);
  CHECK(q.dirty_for("overflow"));
  CHECK_FALSE(q.dirty_for("read_error"));
  CHECK(q.has_work());
}
