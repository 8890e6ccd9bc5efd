// SPDX-License-Identifier: GPL-2.0-or-later
// Who a process descends from, read from /proc (written-by-dpkg, docs/design.md, Packages).
// A process is named by its pid and its start time (field 22 of /proc/PID/stat, clock ticks
// since boot): a pid the kernel gave to a new process after the first one exited is not the
// same process. A process that has exited has no /proc entry: its ancestry is unknown, and
// unknown is never taken for dpkg's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "fim/base/bytes.h"
#include "fim/base/result.h"

namespace fim::pkg {

struct ProcInfo {
  int32_t pid = 0, ppid = 0;
  uint64_t start = 0;  ///< field 22 of /proc/PID/stat
  std::string comm;
};

/// /proc/PID/stat of `pid` (under `proc`, "/proc" on a host); none when it is gone or unreadable.
std::optional<ProcInfo> read_proc(int32_t pid, const char* proc = "/proc");
/// The target of /proc/PID/exe ("" when gone or unreadable; " (deleted)" kept).
Bytes proc_exe(int32_t pid, const char* proc = "/proc");

/// The apt process the apt hook runs under: walking up from the hook's parent, the first
/// whose program is /usr/bin/apt or /usr/bin/apt-get, else the first that is not a shell
/// (apt runs hooks through /bin/sh -c; unattended-upgrades is python). None: no parent.
std::optional<ProcInfo> find_apt_process();

/// Whether `writer` descends from the apt process `apt_pid`/`apt_start` through a process
/// whose program is /usr/bin/dpkg (the writer itself may be dpkg). Walks ppid links at most
/// 64 deep; a parent that started after its child (its pid reused mid-walk), a process gone,
/// or a chain that ends before the apt process: false.
bool descends_from_dpkg_of(const ProcInfo& writer, int32_t apt_pid, uint64_t apt_start);

}  // namespace fim::pkg
