// SPDX-License-Identifier: GPL-2.0-or-later
// Mounts over fimctl's own files (src/daemon/mount_guard.cpp): which paths the BPF mount hooks
// guard, and the alerts a hook's record becomes (denied, or allowed and reported).
#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/bpf.h"
#include "daemon/sink.h"
#include "fim_abi.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;
using fim::watchd::mount_guard_paths;
using fim::watchd::path_ancestors;

namespace {

bool has(const std::vector<Bytes>& v, const Bytes& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

/// The ndjson a sensor record becomes.
std::string report(const BpfEvent& ev) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = ::open_memstream(&buf, &len);
  {
    fim::watchd::StreamSink sink(out, Format::Ndjson, false);
    CHECK_FALSE(fim::watchd::report_sensor_event(ev, sink));
  }
  std::fclose(out);
  std::string s(buf, len);
  std::free(buf);
  return s;
}

BpfEvent mount_event(uint32_t flags, uint32_t scope, bool denied) {
  BpfEvent ev;
  ev.kind = BpfKind::Mount;
  ev.flags = denied ? FIM_F_DENIED : 0;
  ev.mode = flags;
  ev.extra = scope;
  ev.path = "/var/lib/fimctl";
  ev.source = "/tmp/empty";
  ev.name2 = "none";
  ev.who.tgid = ev.who.pid = 42;
  ev.who.comm = "mount";
  ev.who.mntns = 4026531841u;
  return ev;
}

}  // namespace

TEST_CASE("a directory's ancestors, / excluded, repeated and trailing slashes ignored") {
  const struct {
    Bytes dir;
    std::vector<Bytes> want;
  } cases[] = {
      {"/var/lib/fimctl", {"/var", "/var/lib", "/var/lib/fimctl"}},
      {"/var//lib/fimctl/", {"/var", "/var//lib", "/var//lib/fimctl"}},
      {"/etc", {"/etc"}},
      {"/", {}},
      {"relative/dir", {}},
      {"", {}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.dir);
    CHECK(path_ancestors(c.dir) == c.want);
  }
}

TEST_CASE("guarded: the directories and their ancestors as named and as real paths, then the files") {
  TempDir d;
  REQUIRE(::mkdir((d / "real").c_str(), 0755) == 0);
  REQUIRE(::mkdir((d / "real/fimctl").c_str(), 0755) == 0);
  REQUIRE(::symlink("real", (d / "link").c_str()) == 0);
  char* base = ::realpath(d.path().c_str(), nullptr);
  REQUIRE(base);
  const Bytes real = base;
  std::free(base);
  const auto got = mount_guard_paths({d / "link/fimctl"}, {d / "link/fimctl/baseline.db"});
  CHECK(has(got, d / "link"));  // a mount over the symlink's directory redirects the name
  CHECK(has(got, d / "link/fimctl"));
  CHECK(has(got, real + "/real"));  // a mount over the real parent hides the directory
  CHECK(has(got, real + "/real/fimctl"));
  CHECK(has(got, d / "link/fimctl/baseline.db"));
  CHECK_FALSE(has(got, "/"));
  CHECK(got.back() == d / "link/fimctl/baseline.db");
}

TEST_CASE("a mount hook's record: mount_denied when denied, mount_over_own_files when allowed") {
  const std::string denied = report(mount_event(MS_BIND, FIM_MNT_SELF_NS, true));
  CHECK(denied.find("\"code\":\"mount_denied\"") != std::string::npos);
  CHECK(denied.find("\"action\":\"denied\"") != std::string::npos);
  CHECK(denied.find("\"path\":\"/var/lib/fimctl\"") != std::string::npos);
  CHECK(denied.find("\"source\":\"/tmp/empty\"") != std::string::npos);
  CHECK(denied.find("\"flags_text\":\"bind\"") != std::string::npos);
  CHECK(denied.find("\"namespace\":\"daemon\"") != std::string::npos);
  CHECK(denied.find("\"hook\":\"sb_mount\"") != std::string::npos);
  CHECK(denied.find("bind mount of '/tmp/empty'") != std::string::npos);

  const std::string allowed = report(mount_event(0, FIM_MNT_HOST_NS | FIM_MNT_SHARED, false));
  CHECK(allowed.find("\"code\":\"mount_over_own_files\"") != std::string::npos);
  CHECK(allowed.find("\"action\":\"reported\"") != std::string::npos);
  CHECK(allowed.find("\"namespace\":\"host\"") != std::string::npos);
  CHECK(allowed.find("\"propagates\":true") != std::string::npos);
  CHECK(allowed.find("none mount of '/tmp/empty'") != std::string::npos);

  // A service's sandbox (another namespace, not shared): reported as invisible to the daemon.
  const std::string sandbox = report(mount_event(MS_BIND, 0, false));
  CHECK(sandbox.find("\"code\":\"mount_over_own_files\"") != std::string::npos);
  CHECK(sandbox.find("\"namespace\":\"other\"") != std::string::npos);
  CHECK(sandbox.find("neither the daemon nor the host sees") != std::string::npos);

  BpfEvent mv = mount_event(0, FIM_MNT_SELF_NS, true);
  mv.kind = BpfKind::MoveMount;
  mv.source.clear();
  mv.name2.clear();
  const std::string moved = report(mv);
  CHECK(moved.find("\"code\":\"mount_denied\"") != std::string::npos);
  CHECK(moved.find("\"hook\":\"move_mount\"") != std::string::npos);
}
