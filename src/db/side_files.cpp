// SPDX-License-Identifier: GPL-2.0-or-later
// The baseline's directory and the files fimctl keeps beside the baseline (state.db and its
// SQLite side files, the writer lock): docs/design.md, Threat model, trusted paths. The
// directory gets no sticky-bit exemption: in a sticky world-writable directory anyone may
// create the names fimctl is about to open (a state.db with a higher sequence forces false
// rollback alerts, a held lock blocks every update, a -journal symlink makes root write
// where it points). So the directory must be writable by root or its owner alone, and a side
// file that exists must be a regular file (not a link) of root or the running user.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "fim/base/sys.h"
#include "fim/db.h"

namespace fim {

Status check_baseline_dir(const Bytes& dir) {
  // check_trusted_path exempts sticky root-owned directories only above the path it checks,
  // never the path itself: the directory is held to the strict rule, its ancestors are not.
  if (Status st = check_trusted_path(dir, "baseline directory"); !st)
    return make_error(Errc::Trust, st.error().message + " (a sticky bit does not help: others could plant state.db "
                                                        "or the lock beside the baseline)",
                      st.error().sys_errno);
  return {};
}

Status check_side_file_stat(const Bytes& path, const struct stat& st) {
  std::string why;
  if (S_ISLNK(st.st_mode)) why = "is a symbolic link";
  else if (!S_ISREG(st.st_mode)) why = "is not a regular file";
  else if (st.st_uid != 0 && st.st_uid != ::geteuid()) why = "is owned by uid " + std::to_string(st.st_uid);
  else if (st.st_nlink > 1) why = "has " + std::to_string(st.st_nlink) + " hard links";
  if (why.empty()) return {};
  return make_error(Errc::Trust, quote(path) + " " + why + ": fimctl's files beside the baseline must be regular "
                                     "files of root or the running user; someone planted it, remove it after looking");
}

Status check_side_file(const Bytes& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return make_error(Errc::Io, "cannot check " + quote(path), errno);
  }
  return check_side_file_stat(path, st);
}

}  // namespace fim
