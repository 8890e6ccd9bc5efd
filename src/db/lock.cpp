// SPDX-License-Identifier: GPL-2.0-or-later
// One writer at a time: flock on "<baseline>.lock", which holds the writer's pid for the
// message the second writer prints. flock is released by the kernel when the process dies,
// so a killed init never leaves a stale lock.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <sys/stat.h>

#include "fim/base/sys.h"
#include "fim/db.h"

namespace fim {

Result<BaselineLock> BaselineLock::acquire(const Bytes& baseline_path) {
  const Bytes lock_path = baseline_path + ".lock";
  Bytes dir, name;
  split_path(baseline_path, &dir, &name);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return make_error(Errc::Io, "cannot create the baseline directory " + quote(dir), errno);
  FIM_TRY(check_baseline_dir(dir));
  // O_NOFOLLOW and the fstat below: a lock someone else planted (and holds, to block every
  // update) is refused by its owner, not waited for (docs/design.md, Threat model).
  UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600));
  if (!fd.valid() && errno == ELOOP) FIM_TRY(check_side_file(lock_path));
  if (!fd.valid()) return make_error(Errc::Io, "cannot open lock " + quote(lock_path), errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return make_error(Errc::Io, "cannot stat lock " + quote(lock_path), errno);
  FIM_TRY(check_side_file_stat(lock_path, st));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return make_error(Errc::Io, "cannot lock " + quote(lock_path), errno);
    char buf[32] = {};
    const ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    return make_error(Errc::Locked, "baseline " + quote(baseline_path) + " is locked by another fimctl (pid " +
                                        escape_terminal(holder) + ")");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) == 0) (void)!::pwrite(fd.get(), pid.data(), pid.size(), 0);
  return BaselineLock(std::move(fd));
}

}  // namespace fim
