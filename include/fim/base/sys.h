// SPDX-License-Identifier: GPL-2.0-or-later
// Thin helpers around the OS and the clock that several modules share.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "fim/base/bytes.h"
#include "fim/base/result.h"

namespace fim {

/// Lexically normalised absolute path: relative paths are taken against the working
/// directory; "//", "/./" and trailing slashes are folded, ".." is resolved by name.
/// Symlinks are not resolved: a root that is a symlink stays the symlink it is.
Result<Bytes> absolute_path(std::string_view path);

/// The parent directory and last component of an absolute normalised path;
/// for "/" they are "/" and ".".
void split_path(std::string_view path, Bytes* dir, Bytes* name);

/// Nanoseconds since the epoch of a stat timestamp.
inline int64_t timespec_ns(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

/// ISO 8601 UTC with nanoseconds: 2024-01-01T00:00:00.000000000Z.
std::string format_time_ns(int64_t ns);
int64_t now_ns();
double monotonic_seconds();

/// The symbolic errno name ("EACCES"), or the number when unknown.
std::string errno_name(int err);

/// Raises the soft open-file limit to the hard limit: deep trees hold one fd per level.
void raise_fd_limit();

/// Opens `path` (absolute) with `flags`: with root_fd < 0 as open(2) does; otherwise inside the
/// directory root_fd, as if it were "/" (openat2 RESOLVE_IN_ROOT: "..", absolute symlinks and
/// magic links cannot leave it). Returns the fd, or -1 with errno set. A path longer than
/// PATH_MAX is opened a piece at a time (the watch daemon compares such subtrees).
int open_in_root(int root_fd, const Bytes& path, int flags);
/// fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) through statx(2), so the birth time comes with it
/// at no extra cost: *btime_ns is -1 where the filesystem keeps none. 0, or -1 with errno.
int lstat_at(int dirfd, const char* name, struct stat* st, int64_t* btime_ns);
/// lstat(2) that also works for paths longer than PATH_MAX (through the parent's fd).
int lstat_path(const Bytes& path, struct stat* st);

/// Reads `fd` from its offset to the end, 64 KiB at a time (EINTR retried), handing each chunk
/// to `each`; stops at the first error `each` returns. A read error is Errc::Io naming `what`.
Status read_chunks(int fd, const char* what, const std::function<Status(std::string_view)>& each);
/// The rest of `fd`, refused (Errc::Io: "`shown` is too large") past `limit` bytes; `shown` (a
/// quoted path) names it in errors.
Result<std::string> read_to_end(int fd, size_t limit, const std::string& shown);
/// Writes all of `data` to `fd` (short writes continued, EINTR retried).
Status write_all(int fd, std::string_view data, const char* what);

/// Contents of a small file (at most `limit` bytes), e.g. /etc/machine-id.
Result<std::string> read_small_file(const char* path, size_t limit);

/// Files a fatal signal must not leave behind: a baseline being written (its temp file) and
/// init --force's link to the replaced one. The CLI's SIGINT/SIGTERM handler removes them with
/// remove_temp_files(), which is async-signal-safe (fixed slots, unlink(2) only). A few slots:
/// one writer at a time, plus its .prev link; a path that does not fit is simply not tracked
/// (the next writer removes stale temp files anyway).
void track_temp_file(const Bytes& path);
void untrack_temp_file(const Bytes& path);
/// Removes every tracked file; returns how many there were. Async-signal-safe.
int remove_temp_files();
/// The writer's rename installed a baseline in this process (read by the signal handler, to
/// say whether one was written). Async-signal-safe.
void note_baseline_installed();
bool baseline_installed();

/// This machine's id (/etc/machine-id, trailing newline removed; "unknown" when unreadable),
/// as baselines record it and records carry it in `host`.
std::string machine_id();
/// gethostname(2) ("unknown" when it fails): `host.name` of every record.
std::string host_name();

/// docs/design.md, Threat model, trusted paths: refuses (Errc::Usage, naming the component) a file
/// that anyone but root or the effective user could replace: the file or any directory on its path
/// (links resolved) owned by someone else, or writable by group or others, except a root-owned
/// sticky directory such as /tmp. `what` names the file in the message ("signing key").
Status check_trusted_path(const Bytes& path, const char* what);

}  // namespace fim
