// SPDX-License-Identifier: GPL-2.0-or-later
// The BPF ring buffer's records decoded (bpf/fim_abi.h): a pure function over the bytes, built
// with or without libbpf, unit-tested and checked against the ABI's layout here too.
#include <sys/sysmacros.h>

#include <cstddef>
#include <cstring>

#include "fim/bpf.h"
#include "fim_abi.h"

namespace fim {

// The layout the BPF side asserts (_Static_assert in fim_abi.h), checked again from C++.
static_assert(sizeof(fim_event) == 1024);
static_assert(offsetof(fim_event, comps) + sizeof(fim_event::comps) == sizeof(fim_event));
static_assert(sizeof(fim_event::comm) == FIM_COMM_LEN);
static_assert(static_cast<int>(BpfKind::BpfLoad) == FIM_EV_BPF && static_cast<int>(BpfKind::Exec) == FIM_EV_EXEC &&
              static_cast<int>(BpfKind::KernelLoad) == FIM_EV_KLOAD);
static_assert(static_cast<int>(BpfKind::Mount) == FIM_EV_MOUNT && static_cast<int>(BpfKind::MoveMount) == FIM_EV_MOVE_MOUNT &&
              FIM_EV_KIND_MAX == FIM_EV_MOVE_MOUNT + 1);

std::string_view bpf_kind_name(BpfKind k) {
  switch (k) {
    case BpfKind::OpenWrite: return "open_write";
    case BpfKind::Truncate: return "truncate";
    case BpfKind::Chmod: return "chmod";
    case BpfKind::Chown: return "chown";
    case BpfKind::Create: return "create";
    case BpfKind::Mkdir: return "mkdir";
    case BpfKind::Rename: return "rename";
    case BpfKind::Unlink: return "unlink";
    case BpfKind::Exec: return "exec";
    case BpfKind::KernelRead: return "kernel_read_file";
    case BpfKind::KernelLoad: return "kernel_load_data";
    case BpfKind::BpfLoad: return "bpf_prog_load";
    case BpfKind::Mount: return "sb_mount";
    case BpfKind::MoveMount: return "move_mount";
  }
  return "unknown";
}

bool BpfEvent::denied() const { return flags & FIM_F_DENIED; }
bool BpfEvent::adds_exec() const { return flags & FIM_F_ADDS_EXEC; }
bool BpfEvent::in_root() const { return flags & FIM_F_IN_ROOT; }
bool BpfEvent::is_module_load() const {
  // enum kernel_read_file_id READING_MODULE, enum kernel_load_data_id LOADING_MODULE: both 2.
  return (kind == BpfKind::KernelRead || kind == BpfKind::KernelLoad) && extra == 2;
}

bool BpfEvent::is_mount() const { return kind == BpfKind::Mount || kind == BpfKind::MoveMount; }

uint64_t kernel_dev(dev_t dev) {
  return (static_cast<uint64_t>(major(dev)) << 20) | (minor(dev) & 0xfffff);
}

dev_t user_dev(uint64_t kdev) {
  return makedev(static_cast<unsigned>(kdev >> 20), static_cast<unsigned>(kdev & 0xfffff));
}

namespace {

/// A fixed-size char field up to its first NUL (or its whole size).
Bytes field(const char* p, size_t n) {
  const void* nul = std::memchr(p, 0, n);
  return Bytes(p, nul ? static_cast<size_t>(static_cast<const char*>(nul) - p) : n);
}

}  // namespace

Result<BpfEvent> decode_bpf_event(std::string_view raw) {
  if (raw.size() < sizeof(fim_event))
    return make_error(Errc::Bug, "BPF record of " + std::to_string(raw.size()) + " bytes, expected " +
                                     std::to_string(sizeof(fim_event)));
  fim_event e;
  std::memcpy(&e, raw.data(), sizeof e);
  if (e.abi_version != FIM_ABI_VERSION)
    return make_error(Errc::Bug, "BPF record of ABI version " + std::to_string(e.abi_version) + ", expected " +
                                     std::to_string(FIM_ABI_VERSION));
  if (e.kind == 0 || e.kind >= FIM_EV_KIND_MAX)
    return make_error(Errc::Bug, "BPF record of unknown kind " + std::to_string(e.kind));
  BpfEvent ev;
  ev.kind = static_cast<BpfKind>(e.kind);
  ev.flags = e.flags;
  ev.ts_ns = e.ts_ns;
  ev.who.pid = e.pid;
  ev.who.tgid = e.tgid;
  ev.who.ppid = e.ppid;
  ev.who.uid = e.uid;
  ev.who.loginuid = e.loginuid;
  ev.who.mntns = e.mntns;
  ev.who.cgroup_id = e.cgroup_id;
  ev.who.exe_dev = e.exe_dev ? user_dev(e.exe_dev) : 0;
  ev.who.exe_ino = e.exe_ino;
  ev.who.comm = field(e.comm, sizeof e.comm);
  ev.dev = e.dev ? user_dev(e.dev) : 0;
  ev.ino = e.ino;
  ev.root_dev = e.root_dev ? user_dev(e.root_dev) : 0;
  ev.root_ino = e.root_ino;
  ev.mode = e.mode;
  ev.extra = e.extra;
  if (e.flags & FIM_F_DPATH) ev.dpath = field(e.path, sizeof e.path);
  if (ev.kind == BpfKind::Mount) ev.source = field(e.path, sizeof e.path);  // dev_name, not a d_path
  ev.name2 = field(e.name2, sizeof e.name2);
  const uint32_t depth = e.depth < FIM_MAX_DEPTH ? e.depth : FIM_MAX_DEPTH;
  for (uint32_t i = 0; i < depth; ++i) ev.names.push_back(field(e.comps[i], sizeof e.comps[i]));
  return ev;
}

}  // namespace fim
