// SPDX-License-Identifier: GPL-2.0-or-later
#include <algorithm>

#include "../attr/hash.h"
#include "fim/rules.h"

namespace fim {

AttrMask default_attrs() { return kAllAttrs & ~attr_bit(Attr::Dev) & ~attr_bit(Attr::Xxh128); }

Policy default_policy() {
  Policy p;
  p.source = "built-in default";
  p.attrs = default_attrs();
  // On merged-/usr Debian /bin, /sbin and /lib* are symlinks: they are recorded as the links
  // they are and not descended, and their targets below /usr are roots of their own.
  p.roots = {
      "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
      "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec",
      "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib",
      "/etc/crontab", "/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
      "/etc/cron.monthly", "/etc/cron.yearly", "/var/spool/cron",
      "/etc/ssh", "/root/.ssh",
      "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow",
      "/etc/sudoers", "/etc/sudoers.d",
      "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ld.so.preload",
      "/etc/pam.conf", "/etc/pam.d", "/etc/security",
      "/etc/systemd/system", "/etc/modprobe.d", "/etc/modules", "/etc/modules-load.d",
  };
  p.roots = normalize_roots(std::move(p.roots));
  return p;
}

std::string policy_canonical(const Policy& p) {
  std::string out = "fimctl-policy-v1\nattrs=";
  bool first = true;
  for (size_t i = 0; i < kAttrCount; ++i) {
    if (!(p.attrs & attr_bit(static_cast<Attr>(i)))) continue;
    if (!first) out += ',';
    out += attr_info(static_cast<Attr>(i)).key;
    first = false;
  }
  out += "\ncross_fs=" + std::string(p.cross_fs ? "true" : "false");
  out += "\nmax_hash_bytes=" + std::to_string(p.max_hash_bytes) + "\n";
  return out;
}

std::string policy_digest(const Policy& p) { return hex_encode(attr::sha256_of(policy_canonical(p))); }

std::vector<Bytes> normalize_roots(std::vector<Bytes> roots) {
  std::sort(roots.begin(), roots.end());
  roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
  std::vector<Bytes> out;
  for (auto& r : roots) {
    const bool covered = std::any_of(out.begin(), out.end(), [&](const Bytes& o) { return path_within(r, o); });
    if (!covered) out.push_back(std::move(r));
  }
  // Sorting put "/a" before "/a.b" before "/a/x": a later root can only lie below an earlier
  // one that shares its prefix, but not necessarily the one just before it; the any_of
  // above checks all of them.
  return out;
}

}  // namespace fim
