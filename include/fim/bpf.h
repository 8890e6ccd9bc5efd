// SPDX-License-Identifier: GPL-2.0-or-later
// BPF LSM sensors (docs/design.md, Real time): who changes what below the
// watched roots, module and BPF program loads, executions below the roots, and optional
// enforcement on protected inodes. Used only when the programs load AND attach: on hosts
// that refuse LSM programs (EPERM on the build machines) BpfSensor::open fails with
// Errc::Unsupported naming the errno, and the daemon runs on fanotify alone.
//
// The record decoder (decode_bpf_event) is a pure function over the ring buffer's bytes,
// built with or without libbpf, so it is unit-tested everywhere.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/base/result.h"

namespace fim {

enum class BpfKind : uint16_t {
  OpenWrite = 1, Truncate, Chmod, Chown, Create, Mkdir, Rename, Unlink, Exec, KernelRead, KernelLoad, BpfLoad,
  Mount,      ///< mount(2) over one of fimctl's own files or directories (sb_mount)
  MoveMount,  ///< move_mount(2) onto one of them (the new mount API's attach)
};
/// The hook's short name ("open_write", "chmod", "exec", "module_read", "bpf_prog_load"...).
std::string_view bpf_kind_name(BpfKind k);

/// Who did it: the task that ran the hook.
struct BpfWho {
  uint32_t pid = 0, tgid = 0, ppid = 0, uid = 0;
  uint32_t loginuid = UINT32_MAX;  ///< UINT32_MAX: not set (no login session)
  uint32_t mntns = 0;
  uint64_t cgroup_id = 0;
  uint64_t exe_dev = 0, exe_ino = 0;  ///< user-space dev_t
  std::string comm;
  std::string exe;  ///< /proc/TGID/exe when the event was read (empty when gone)
};

/// One decoded record. Devices are user-space dev_t (makedev), as stat(2) reports them.
struct BpfEvent {
  BpfKind kind = BpfKind::OpenWrite;
  uint32_t flags = 0;  ///< FIM_F_* of bpf/fim_abi.h (see the accessors)
  uint64_t ts_ns = 0;  ///< CLOCK_MONOTONIC
  BpfWho who;
  dev_t dev = 0;
  uint64_t ino = 0;
  dev_t root_dev = 0;
  uint64_t root_ino = 0;
  uint32_t mode = 0, extra = 0;
  Bytes dpath;               ///< bpf_d_path (writer's root), empty when not available
  std::vector<Bytes> names;  ///< from the object up to the root (leaf first)
  Bytes name2;               ///< rename target name, exec filename, BPF program name, mount's fs type
  Bytes source;              ///< a mount's source as given to mount(2) (Mount only)
  Bytes path;                ///< set by the sensor: root path + names, else dpath

  bool denied() const;
  bool adds_exec() const;
  bool in_root() const;
  bool is_module_load() const;  ///< a kernel module read or loaded
  bool is_mount() const;        ///< Mount or MoveMount: extra holds FIM_MNT_*, mode the MS_* flags
};

/// Decodes one ring-buffer record; Errc::Bug for a short record or another ABI version.
Result<BpfEvent> decode_bpf_event(std::string_view raw);
/// The kernel's dev_t encoding (major << 20 | minor) and back.
uint64_t kernel_dev(dev_t dev);
dev_t user_dev(uint64_t kdev);

struct BpfOptions {
  bool enforce = false;  ///< deny writes, renames, unlinks of protected inodes
  Bytes exempt_exe;      ///< this binary may change protected files (fimctl: update, accept)
};

/// The loaded and attached programs. One per daemon.
class BpfSensor {
 public:
  /// Probes by loading and attaching every program (never by version checks): fails with
  /// Errc::Unsupported, the errno and what failed when the kernel refuses.
  static Result<std::unique_ptr<BpfSensor>> open(const BpfOptions& opts);
  ~BpfSensor();
  BpfSensor(const BpfSensor&) = delete;
  BpfSensor& operator=(const BpfSensor&) = delete;

  /// What happens below `dir` is reported (its (dev, ino) goes into the map). Called again
  /// for the same path, it follows a directory replaced since (the old inode is dropped);
  /// Errc::Io when `dir` does not exist (yet).
  Status watch_root(const Bytes& dir);
  /// `path` is protected: reported, and denied with enforcement on. Re-protecting a path
  /// whose inode changed (a replaced baseline) adds the new inode.
  Status protect(const Bytes& path);
  /// A mount over `path` (fimctl's own file or directory, or an ancestor) is reported, and
  /// denied with enforcement where the daemon's or the host's mount namespace would see it.
  /// Events on it are named `path`. Called again, it adds a replaced inode.
  Status deny_mounts(const Bytes& path);
  /// Exec enforcement (with BpfOptions::enforce): executions below the `guards` directories
  /// are allowed only for the files in `allow` (user-space dev_t, inode). Replaces what an
  /// earlier call set. Errc::Usage when `allow` is larger than the kernel map (nothing is
  /// guarded then: an incomplete allowlist would deny what the baseline records).
  Status set_exec_policy(const std::vector<Bytes>& guards, const std::vector<std::pair<dev_t, uint64_t>>& allow);
  static constexpr size_t kMaxExecAllow = 65536;
  /// The ring buffer's fd, for epoll.
  int fd() const;
  /// Consumes what is queued; each record decoded, its path and exe filled in.
  Result<size_t> consume(const std::function<void(BpfEvent&&)>& on_event);
  /// Kernel-side counters summed over CPUs: records lost to a full ring buffer, submitted,
  /// operations denied.
  uint64_t lost() const;
  uint64_t submitted() const;
  uint64_t denied() const;
  /// The attached programs ("file_open,path_chmod,...").
  const std::string& hooks() const;

 private:
  struct Impl;
  explicit BpfSensor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Whether this fimctl was built with the BPF sensors (clang, bpftool, libbpf found).
bool bpf_built_in();

}  // namespace fim
