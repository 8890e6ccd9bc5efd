// SPDX-License-Identifier: GPL-2.0-or-later
// container: finding the containers running on this host from /proc alone (docs/design.md,
// Containers). Every runtime (containerd, CRI-O, Docker, Podman)
// ends in processes in their own mount namespace, usually with an overlayfs root; the
// runtime and the container id are read from the cgroup path where it names them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/base/result.h"

namespace fim {

/// One line of /proc/PID/mountinfo (proc(5)), with its octal escapes (\040 ...) decoded. The
/// one parser of it: container discovery and the watch daemon's mount watch both use it.
struct MountEntry {
  uint64_t mount_id = 0, parent_id = 0;
  std::string device;             ///< major:minor
  Bytes root;                     ///< the path inside its filesystem that is mounted ("/": all of it)
  Bytes mount_point;              ///< relative to the reading process's root
  std::string options;            ///< the mount's own (rw, nosuid, relatime, ...)
  std::vector<std::string> tags;  ///< the optional fields (shared:N, master:N, ...)
  std::string fstype;
  Bytes source;
  std::string super_options;      ///< the filesystem's
  /// Same place, filesystem and options: a change of propagation (tags) alone is not a change.
  bool same(const MountEntry& o) const;
};

/// One line (without its newline), fields separated by single spaces (an empty source is an
/// empty field); nothing when it is not a mount.
std::optional<MountEntry> parse_mount_line(std::string_view line);
/// Every well-formed line; malformed ones are skipped (another process's file, read while it
/// changes; a parser of it must still never read past a line).
std::vector<MountEntry> parse_mountinfo(std::string_view text);

/// The directories of an overlay mount, from its super options (lowerdir=A:B,upperdir=U,
/// workdir=W; "\:" and "\," escape separators inside a path).
struct OverlayDirs {
  std::vector<Bytes> lower;  ///< topmost first
  Bytes upper, work;         ///< empty for a read-only overlay
};
std::optional<OverlayDirs> overlay_dirs(std::string_view super_options);

/// The runtime and container id a cgroup path names (/proc/PID/cgroup): docker-<id>.scope or
/// /docker/<id> (Docker), cri-containerd-<id>.scope (containerd), crio-<id>.scope (CRI-O),
/// libpod-<id>.scope (Podman), /kubepods/.../<id> (Kubernetes, runtime unknown).
struct ContainerId {
  std::string runtime;
  std::string id;  ///< 64 hex digits
};
std::optional<ContainerId> container_from_cgroup(std::string_view cgroup_text);

struct Container {
  int pid = 0;                   ///< host pid of its init: the lowest in its own pid namespace
  int processes = 0;             ///< how many processes share that mount namespace
  std::string mnt_ns, pid_ns;    ///< "mnt:[4026532177]" as /proc/PID/ns shows them
  bool own_pid_ns = false;       ///< a pid namespace other than the host's
  std::optional<ContainerId> id;
  std::string root_fstype;       ///< of its "/" mount (overlay for runtimes)
  Bytes root_source;
  std::optional<OverlayDirs> overlay;
};

/// The key of a container's image, shared by every container of that image (docs/design.md,
/// Containers: per-image baselines): the SHA-256 (hex) of the ordered lower-layer directories
/// of its overlay root, or, without one, of its root's source and device and inode.
std::string image_key(const Container& c, const Bytes& proc_dir = "/proc");

/// The file key of an image baseline keyed by its manifest digest ("sha256:<64 hex>", as OCI
/// and every runtime write it): "sha256-<hex>", a name with no ':' in it (images/<key>.db).
/// Nothing for anything else (another algorithm, upper case, wrong length): a digest read from
/// a runtime's metadata or an image layout is untrusted text that becomes a file name.
std::optional<std::string> image_digest_key(std::string_view digest);

/// The response to drift (a rule's response = "kill"): SIGKILL to every process in the
/// container's mount namespace (and, when it has one, its own pid namespace: not a runtime
/// helper of the host's that shares the mount namespace). Returns how many were signalled.
Result<int> kill_container(const Container& c, const Bytes& proc_dir = "/proc");

/// The response "kill_process": SIGKILL to `pid` when it is a process of the container (its
/// mount namespace). Errc::Usage when it is not (gone, or another's).
Status kill_container_process(const Container& c, int pid, const Bytes& proc_dir = "/proc");

/// Processes grouped by mount namespace (other than this process's), kept when they look like a
/// container: a pid namespace of their own, an overlay root, or a runtime's cgroup. (A systemd
/// service with PrivateTmp= has a mount namespace too, but none of these.) Sorted by pid.
Result<std::vector<Container>> discover_containers(const Bytes& proc_dir = "/proc");

}  // namespace fim
