// SPDX-License-Identifier: GPL-2.0-or-later
// Containers from /proc: mountinfo parsing, overlay directories, runtime ids from cgroup
// paths, and the grouping of processes by mount namespace (see container.h).
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <map>

#include <signal.h>
#include <sys/stat.h>

#include "fim/base/digest.h"
#include "fim/base/fd.h"
#include "fim/base/sys.h"
#include "fim/container.h"

namespace fim {

namespace {

/// The kernel escapes space, tab, newline and backslash in paths as \ooo (fs/proc_namespace.c).
Bytes unescape_octal(std::string_view s) {
  Bytes out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto octal = [&](size_t k) { return i + k < s.size() && s[i + k] >= '0' && s[i + k] <= '7'; };
    if (s[i] == '\\' && octal(1) && octal(2) && octal(3) && s[i + 1] <= '3') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// Fields separated by single spaces: an empty source (mount -t tmpfs '' DIR) is an empty field.
std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> f;
  size_t start = 0;
  for (;;) {
    const size_t sp = line.find(' ', start);
    f.push_back(line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start));
    if (sp == std::string_view::npos) return f;
    start = sp + 1;
  }
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c)); });
}

std::string ns_of(const Bytes& proc, const std::string& pid, const char* ns) {
  char buf[64];
  const Bytes link = proc + "/" + pid + "/ns/" + ns;
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

bool MountEntry::same(const MountEntry& o) const {
  return mount_id == o.mount_id && parent_id == o.parent_id && device == o.device && root == o.root &&
         mount_point == o.mount_point && options == o.options && fstype == o.fstype && source == o.source &&
         super_options == o.super_options;
}

std::optional<MountEntry> parse_mount_line(std::string_view line) {
  // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
  const auto f = fields_of(line);
  const auto sep = std::find(f.begin() + std::min<size_t>(f.size(), 6), f.end(), "-");
  if (f.size() < 10 || sep == f.end() || f.end() - sep != 4) return std::nullopt;
  MountEntry m;
  if (!parse_decimal(f[0], &m.mount_id) || !parse_decimal(f[1], &m.parent_id)) return std::nullopt;
  if (f[4].empty() || f[4][0] != '/') return std::nullopt;
  m.device = f[2];
  m.root = unescape_octal(f[3]);
  m.mount_point = unescape_octal(f[4]);
  m.options = f[5];
  for (auto it = f.begin() + 6; it != sep; ++it) m.tags.emplace_back(*it);
  m.fstype = unescape_octal(sep[1]);
  m.source = unescape_octal(sep[2]);
  m.super_options = unescape_octal(sep[3]);
  return m;
}

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (auto m = parse_mount_line(line)) out.push_back(std::move(*m));
  }
  return out;
}

std::optional<OverlayDirs> overlay_dirs(std::string_view opts) {
  // Options split at unescaped commas; lowerdir layers at unescaped colons.
  OverlayDirs d;
  bool any = false;
  std::string cur;
  std::vector<std::string> options;
  for (size_t i = 0; i < opts.size(); ++i) {
    if (opts[i] == '\\' && i + 1 < opts.size()) {
      cur += opts[i];
      cur += opts[++i];
    } else if (opts[i] == ',') {
      options.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += opts[i];
    }
  }
  options.push_back(std::move(cur));
  const auto unescape = [](std::string_view s) {
    Bytes o;
    for (size_t i = 0; i < s.size(); ++i) o += (s[i] == '\\' && i + 1 < s.size()) ? s[++i] : s[i];
    return o;
  };
  for (const auto& o : options) {
    const std::string_view v(o);
    if (v.rfind("lowerdir=", 0) == 0) {
      std::string layer;
      const std::string_view l = v.substr(9);
      for (size_t i = 0; i < l.size(); ++i) {
        if (l[i] == '\\' && i + 1 < l.size()) {
          layer += l[i];
          layer += l[++i];
        } else if (l[i] == ':') {
          d.lower.push_back(unescape(layer));
          layer.clear();
        } else {
          layer += l[i];
        }
      }
      if (!layer.empty()) d.lower.push_back(unescape(layer));
      any = true;
    } else if (v.rfind("upperdir=", 0) == 0) {
      d.upper = unescape(v.substr(9));
      any = true;
    } else if (v.rfind("workdir=", 0) == 0) {
      d.work = unescape(v.substr(8));
    }
  }
  if (!any) return std::nullopt;
  return d;
}

std::optional<ContainerId> container_from_cgroup(std::string_view text) {
  // Each line: hierarchy-ID:controllers:path. The last path component that names a container.
  std::optional<ContainerId> found;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const size_t c1 = line.find(':');
    const size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view path = line.substr(c2 + 1);
    bool kube = path.find("kubepods") != std::string_view::npos;
    while (!path.empty()) {
      const size_t slash = path.rfind('/');
      std::string_view comp = path.substr(slash == std::string_view::npos ? 0 : slash + 1);
      path = slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
      if (comp.size() > 6 && comp.substr(comp.size() - 6) == ".scope") comp.remove_suffix(6);
      static const std::pair<std::string_view, const char*> kPrefixes[] = {
          {"docker-", "docker"}, {"cri-containerd-", "containerd"}, {"crio-", "cri-o"}, {"libpod-", "podman"}};
      for (const auto& [prefix, runtime] : kPrefixes) {
        if (comp.rfind(prefix, 0) == 0 && is_hex64(comp.substr(prefix.size())))
          return ContainerId{runtime, std::string(comp.substr(prefix.size()))};
      }
      if (is_hex64(comp)) {
        // /docker/<id> (cgroup v1), or a kubepods leaf whose runtime the path does not say.
        const bool docker = path.size() >= 7 && path.substr(path.size() - 7) == "/docker";
        found = ContainerId{docker ? "docker" : kube ? "kubernetes" : "unknown", std::string(comp)};
        break;
      }
    }
  }
  return found;
}

Result<std::vector<Container>> discover_containers(const Bytes& proc) {
  const std::string own_mnt = ns_of(proc, "self", "mnt"), own_pid = ns_of(proc, "self", "pid");
  if (own_mnt.empty()) return make_error(Errc::Io, "cannot read " + escape_terminal(proc) + "/self/ns/mnt", errno);
  std::unique_ptr<DIR, CDeleter<::closedir>> dir(::opendir(proc.c_str()));
  if (!dir) return make_error(Errc::Io, "cannot list " + escape_terminal(proc), errno);
  std::map<std::string, Container> by_ns;
  while (const dirent* e = ::readdir(dir.get())) {
    const std::string pid = e->d_name;
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    const std::string mnt = ns_of(proc, pid, "mnt");
    if (mnt.empty() || mnt == own_mnt) continue;  // gone, a kernel thread, or the host's
    Container& c = by_ns[mnt];
    ++c.processes;
    const int p = std::atoi(pid.c_str());
    const std::string pidns = ns_of(proc, pid, "pid");
    // The container's own processes (in a pid namespace of their own) represent it, not a
    // runtime helper that shares its mount namespace from the host's pid namespace (unshare,
    // a shim): the lowest of those, else the lowest of all.
    const bool own = !pidns.empty() && pidns != own_pid;
    if (c.pid == 0 || (own && !c.own_pid_ns) || (own == c.own_pid_ns && p < c.pid)) {
      c.pid = p;
      c.mnt_ns = mnt;
      c.pid_ns = pidns;
      c.own_pid_ns = own;
    }
  }
  std::vector<Container> out;
  for (auto& [ns, c] : by_ns) {
    const std::string pid = std::to_string(c.pid);
    if (auto cg = read_small_file((proc + "/" + pid + "/cgroup").c_str(), 64 * 1024)) c.id = container_from_cgroup(*cg);
    if (auto mi = read_small_file((proc + "/" + pid + "/mountinfo").c_str(), 4 << 20)) {
      const auto mounts = parse_mountinfo(*mi);
      // The root the process sees: the last mount on "/" (mounts stack in order).
      for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
        if (it->mount_point != "/") continue;
        c.root_fstype = it->fstype;
        c.root_source = it->source;
        if (it->fstype == "overlay") c.overlay = overlay_dirs(it->super_options);
        break;
      }
    }
    if (c.own_pid_ns || c.root_fstype == "overlay" || c.id) out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const Container& a, const Container& b) { return a.pid < b.pid; });
  return out;
}

Result<int> kill_container(const Container& c, const Bytes& proc) {
  if (c.mnt_ns.empty() || c.mnt_ns == ns_of(proc, "self", "mnt"))
    return make_error(Errc::Bug, "refusing to kill the processes of this host's own mount namespace");
  std::unique_ptr<DIR, CDeleter<::closedir>> dir(::opendir(proc.c_str()));
  if (!dir) return make_error(Errc::Io, "cannot list " + escape_terminal(proc), errno);
  int killed = 0;
  while (const dirent* e = ::readdir(dir.get())) {
    const std::string pid = e->d_name;
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) continue;
    if (ns_of(proc, pid, "mnt") != c.mnt_ns) continue;
    if (c.own_pid_ns && ns_of(proc, pid, "pid") != c.pid_ns) continue;
    if (::kill(std::atoi(pid.c_str()), SIGKILL) == 0) ++killed;
  }
  return killed;
}

Status kill_container_process(const Container& c, int pid, const Bytes& proc) {
  if (pid <= 0 || c.mnt_ns.empty() || ns_of(proc, std::to_string(pid), "mnt") != c.mnt_ns)
    return make_error(Errc::Usage, "pid " + std::to_string(pid) + " is not a process of the container");
  if (::kill(pid, SIGKILL) != 0) return make_error(Errc::Io, "kill " + std::to_string(pid), errno);
  return {};
}

std::string image_key(const Container& c, const Bytes& proc_dir) {
  std::string id;
  if (c.overlay && !c.overlay->lower.empty()) {
    id = "overlay-lower\n";
    for (const auto& l : c.overlay->lower) id += std::to_string(l.size()) + ":" + l + "\n";
  } else {
    struct stat st {};
    ::stat((proc_dir + "/" + std::to_string(c.pid) + "/root/").c_str(), &st);
    id = "root\n" + std::to_string(c.root_source.size()) + ":" + c.root_source + "\n" + std::to_string(st.st_dev) +
         ":" + std::to_string(st.st_ino) + "\n";
  }
  return hex_encode(sha256_of(id));
}

std::optional<std::string> image_digest_key(std::string_view digest) {
  constexpr std::string_view kAlgo = "sha256:";
  if (digest.size() != kAlgo.size() + 64 || digest.substr(0, kAlgo.size()) != kAlgo) return std::nullopt;
  for (char ch : digest.substr(kAlgo.size()))
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return std::nullopt;
  return "sha256-" + std::string(digest.substr(kAlgo.size()));
}

}  // namespace fim
