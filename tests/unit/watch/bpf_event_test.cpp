// SPDX-License-Identifier: GPL-2.0-or-later
// BPF ring-buffer records (bpf/fim_abi.h) decoded: who-data, kernel dev_t, names, refusals.
#include <doctest/doctest.h>
#include <sys/sysmacros.h>

#include <cstring>

#include "fim/bpf.h"
#include "fim_abi.h"

using namespace fim;

namespace {

fim_event sample() {
  fim_event e;
  std::memset(&e, 0, sizeof e);
  e.abi_version = FIM_ABI_VERSION;
  e.kind = FIM_EV_CHMOD;
  e.flags = FIM_F_IN_ROOT | FIM_F_ADDS_EXEC;
  e.pid = 41;
  e.tgid = 40;
  e.ppid = 1;
  e.uid = 1000;
  e.loginuid = 1000;
  e.mntns = 4026531841u;
  e.cgroup_id = 77;
  e.dev = (8ull << 20) | 1;  // kernel encoding of 8:1
  e.ino = 12;
  e.root_dev = e.dev;
  e.root_ino = 2;
  e.mode = 0100755;
  e.extra = 0100644;
  e.depth = 2;
  std::strcpy(e.comm, "chmod");
  std::strcpy(e.comps[0], "script");
  std::strcpy(e.comps[1], "bin");
  return e;
}

std::string_view bytes(const fim_event& e) { return {reinterpret_cast<const char*>(&e), sizeof e}; }

}  // namespace

TEST_CASE("a record decodes with its who-data, user-space dev_t and names") {
  const fim_event e = sample();
  auto ev = decode_bpf_event(bytes(e));
  REQUIRE(ev);
  CHECK(ev->kind == BpfKind::Chmod);
  CHECK(bpf_kind_name(ev->kind) == "chmod");
  CHECK(ev->who.pid == 41);
  CHECK(ev->who.tgid == 40);
  CHECK(ev->who.uid == 1000);
  CHECK(ev->who.loginuid == 1000);
  CHECK(ev->who.cgroup_id == 77);
  CHECK(ev->who.comm == "chmod");
  CHECK(ev->dev == makedev(8, 1));
  CHECK(ev->ino == 12);
  CHECK(ev->adds_exec());
  CHECK(ev->in_root());
  CHECK_FALSE(ev->denied());
  CHECK(ev->dpath.empty());  // FIM_F_DPATH not set: path[] ignored
  REQUIRE(ev->names.size() == 2);
  CHECK(ev->names[0] == "script");
  CHECK(ev->names[1] == "bin");
}

TEST_CASE("a mount record: its source from path[] (not a d_path), its type in name2") {
  fim_event e = sample();
  e.kind = FIM_EV_MOUNT;
  e.flags = FIM_F_DENIED;
  e.mode = 4096;  // MS_BIND
  e.extra = FIM_MNT_SELF_NS;
  e.depth = 0;
  std::strcpy(e.path, "/tmp/empty");
  std::strcpy(e.name2, "none");
  auto ev = decode_bpf_event(bytes(e));
  REQUIRE(ev);
  CHECK(ev->kind == BpfKind::Mount);
  CHECK(bpf_kind_name(ev->kind) == "sb_mount");
  CHECK(ev->is_mount());
  CHECK(ev->denied());
  CHECK(ev->source == "/tmp/empty");
  CHECK(ev->dpath.empty());
  CHECK(ev->name2 == "none");
  CHECK(ev->extra == FIM_MNT_SELF_NS);
  e.kind = FIM_EV_MOVE_MOUNT;
  ev = decode_bpf_event(bytes(e));
  REQUIRE(ev);
  CHECK(ev->kind == BpfKind::MoveMount);
  CHECK(ev->is_mount());
  CHECK(ev->source.empty());
  e.kind = FIM_EV_KIND_MAX;
  CHECK_FALSE(decode_bpf_event(bytes(e)));
}

TEST_CASE("kernel and user dev_t round-trip, large minors included") {
  for (dev_t d : {makedev(8, 1), makedev(0, 26), makedev(259, 65536), makedev(4095, 1048575)})
    CHECK(user_dev(kernel_dev(d)) == d);
  CHECK(kernel_dev(makedev(8, 1)) == ((8ull << 20) | 1));
}

TEST_CASE("short records, other ABI versions and unknown kinds are refused") {
  fim_event e = sample();
  CHECK_FALSE(decode_bpf_event(bytes(e).substr(0, 100)));
  e.abi_version = FIM_ABI_VERSION + 1;
  CHECK_FALSE(decode_bpf_event(bytes(e)));
  e = sample();
  e.kind = FIM_EV_KIND_MAX;
  CHECK_FALSE(decode_bpf_event(bytes(e)));
  e.kind = 0;
  CHECK_FALSE(decode_bpf_event(bytes(e)));
}

TEST_CASE("unterminated strings stop at their field; module loads are recognised") {
  fim_event e = sample();
  e.kind = FIM_EV_KREAD;
  e.extra = 2;  // READING_MODULE
  e.flags = FIM_F_DPATH;
  std::memset(e.comm, 'x', sizeof e.comm);
  std::memset(e.path, 'p', sizeof e.path);
  e.depth = 1000;  // clamped to FIM_MAX_DEPTH
  auto ev = decode_bpf_event(bytes(e));
  REQUIRE(ev);
  CHECK(ev->who.comm == std::string(FIM_COMM_LEN, 'x'));
  CHECK(ev->dpath.size() == FIM_PATH_LEN);
  CHECK(ev->names.size() == FIM_MAX_DEPTH);
  CHECK(ev->is_module_load());
  e.extra = 1;  // READING_FIRMWARE
  CHECK_FALSE(decode_bpf_event(bytes(e))->is_module_load());
}
