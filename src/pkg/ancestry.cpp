// SPDX-License-Identifier: GPL-2.0-or-later
// Process ancestry from /proc (see fim/ancestry.h).
#include "fim/ancestry.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "fim/base/sys.h"

namespace fim::pkg {

namespace {

constexpr int kMaxDepth = 64;
constexpr const char* kDpkg = "/usr/bin/dpkg";

bool is_shell(const Bytes& exe) {
  static const char* const kShells[] = {"/usr/bin/dash", "/bin/dash", "/usr/bin/bash", "/bin/bash", "/usr/bin/sh", "/bin/sh"};
  return std::any_of(std::begin(kShells), std::end(kShells), [&](const char* s) { return exe == s; });
}

}  // namespace

std::optional<ProcInfo> read_proc(int32_t pid, const char* proc) {
  if (pid <= 0) return std::nullopt;
  auto stat = read_small_file((std::string(proc) + "/" + std::to_string(pid) + "/stat").c_str(), 4096);
  if (!stat) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted
  // from the last ')'.
  const std::string& s = *stat;
  const size_t open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  ProcInfo p;
  p.pid = pid;
  p.comm = s.substr(open + 1, close - open - 1);
  size_t pos = close + 1;
  for (int field = 3; field <= 22; ++field) {
    while (pos < s.size() && s[pos] == ' ') ++pos;
    const size_t end = std::min(s.find(' ', pos), s.size());
    if (pos >= end) return std::nullopt;
    const std::string v = s.substr(pos, end - pos);
    if (field == 4) p.ppid = static_cast<int32_t>(std::strtol(v.c_str(), nullptr, 10));
    if (field == 22) p.start = std::strtoull(v.c_str(), nullptr, 10);
    pos = end;
  }
  return p;
}

Bytes proc_exe(int32_t pid, const char* proc) {
  char buf[4096];
  const std::string link = std::string(proc) + "/" + std::to_string(pid) + "/exe";
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return {};
  return Bytes(buf, static_cast<size_t>(n));
}

std::optional<ProcInfo> find_apt_process() {
  std::optional<ProcInfo> first_other;
  auto cur = read_proc(static_cast<int32_t>(::getppid()));
  for (int depth = 0; cur && depth < kMaxDepth && cur->pid > 1; ++depth) {
    const Bytes exe = proc_exe(cur->pid);
    if (exe == "/usr/bin/apt" || exe == "/usr/bin/apt-get") return cur;
    if (!first_other && !exe.empty() && !is_shell(exe)) first_other = cur;
    auto parent = read_proc(cur->ppid);
    if (!parent || parent->start > cur->start) break;
    cur = parent;
  }
  return first_other;
}

bool descends_from_dpkg_of(const ProcInfo& writer, int32_t apt_pid, uint64_t apt_start) {
  bool dpkg = false;
  ProcInfo cur = writer;
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    if (cur.pid == apt_pid) return cur.start == apt_start && dpkg;
    // dpkg upgrading itself runs on, its program replaced: " (deleted)".
    const Bytes exe = proc_exe(cur.pid);
    if (exe == kDpkg || exe == std::string(kDpkg) + " (deleted)") dpkg = true;
    if (cur.ppid <= 1) return false;
    auto parent = read_proc(cur.ppid);
    if (!parent || parent->start > cur.start) return false;
    cur = *parent;
  }
  return false;
}

}  // namespace fim::pkg
