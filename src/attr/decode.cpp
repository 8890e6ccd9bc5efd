// SPDX-License-Identifier: GPL-2.0-or-later
// Decoders for kernel xattr formats. Every input is attacker-controlled (CVE-2021-45417 was a
// heap overflow in AIDE's encoder for a 64 KiB xattr): each function bounds-checks every read
// and renders what it cannot parse as hex instead of failing.
#include <algorithm>
#include <cstring>

#include "fim/attr.h"

namespace fim {
namespace {

uint32_t le32(std::string_view s, size_t off) {
  uint32_t v;
  std::memcpy(&v, s.data() + off, 4);
  return le32toh(v);
}
uint16_t le16(std::string_view s, size_t off) {
  uint16_t v;
  std::memcpy(&v, s.data() + off, 2);
  return le16toh(v);
}

std::string invalid(std::string_view raw) { return "invalid:0x" + hex_encode(raw); }

// include/uapi/linux/capability.h, in bit order; bits past the table print as numbers.
constexpr const char* kCapNames[] = {
    "cap_chown",           "cap_dac_override",  "cap_dac_read_search", "cap_fowner",
    "cap_fsetid",          "cap_kill",          "cap_setgid",          "cap_setuid",
    "cap_setpcap",         "cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
    "cap_net_admin",       "cap_net_raw",       "cap_ipc_lock",        "cap_ipc_owner",
    "cap_sys_module",      "cap_sys_rawio",     "cap_sys_chroot",      "cap_sys_ptrace",
    "cap_sys_pacct",       "cap_sys_admin",     "cap_sys_boot",        "cap_sys_nice",
    "cap_sys_resource",    "cap_sys_time",      "cap_sys_tty_config",  "cap_mknod",
    "cap_lease",           "cap_audit_write",   "cap_audit_control",   "cap_setfcap",
    "cap_mac_override",    "cap_mac_admin",     "cap_syslog",          "cap_wake_alarm",
    "cap_block_suspend",   "cap_audit_read",    "cap_perfmon",         "cap_bpf",
    "cap_checkpoint_restore",
};

std::string cap_name(unsigned bit) {
  if (bit < std::size(kCapNames)) return kCapNames[bit];
  return "cap_" + std::to_string(bit);
}

}  // namespace

std::string render_acl(std::string_view raw) {
  // struct posix_acl_xattr_header { __le32 a_version; } then entries of
  // { __le16 e_tag; __le16 e_perm; __le32 e_id; } (include/uapi/linux/posix_acl_xattr.h).
  if (raw.empty()) return "";
  if (raw.size() < 4 || (raw.size() - 4) % 8 != 0 || le32(raw, 0) != 2) return invalid(raw);
  std::string out;
  for (size_t off = 4; off < raw.size(); off += 8) {
    const uint16_t tag = le16(raw, off), perm = le16(raw, off + 2);
    const uint32_t id = le32(raw, off + 4);
    if (!out.empty()) out += ',';
    switch (tag) {
      case 0x01: out += "user::"; break;
      case 0x02: out += "user:" + std::to_string(id) + ":"; break;
      case 0x04: out += "group::"; break;
      case 0x08: out += "group:" + std::to_string(id) + ":"; break;
      case 0x10: out += "mask::"; break;
      case 0x20: out += "other::"; break;
      default: return invalid(raw);
    }
    out += (perm & 4) ? 'r' : '-';
    out += (perm & 2) ? 'w' : '-';
    out += (perm & 1) ? 'x' : '-';
    if (perm & ~7u) return invalid(raw);
  }
  return out;
}

std::string render_caps(std::string_view raw) {
  // struct vfs_ns_cap_data { __le32 magic_etc; struct { __le32 permitted, inheritable; }
  // data[2]; __le32 rootid; } (include/uapi/linux/capability.h); revision 1 has one data.
  if (raw.empty()) return "";
  if (raw.size() < 4) return invalid(raw);
  const uint32_t magic = le32(raw, 0);
  const uint32_t revision = magic & 0xFF000000u;
  const bool effective = magic & 0x1u;
  size_t words;
  if (revision == 0x01000000u && raw.size() == 12)
    words = 1;
  else if (revision == 0x02000000u && raw.size() == 20)
    words = 2;
  else if (revision == 0x03000000u && raw.size() == 24)
    words = 2;
  else
    return invalid(raw);
  uint64_t permitted = 0, inheritable = 0;
  for (size_t w = 0; w < words; ++w) {
    permitted |= static_cast<uint64_t>(le32(raw, 4 + 8 * w)) << (32 * w);
    inheritable |= static_cast<uint64_t>(le32(raw, 8 + 8 * w)) << (32 * w);
  }
  // Group capabilities by their flag letters, as getcap does ("cap_a,cap_b=ep cap_c=i").
  std::string groups[8];
  for (unsigned bit = 0; bit < 64; ++bit) {
    const bool p = permitted >> bit & 1, i = inheritable >> bit & 1;
    if (!p && !i) continue;
    const unsigned key = (effective ? 4 : 0) | (i ? 2 : 0) | (p ? 1 : 0);
    if (!groups[key].empty()) groups[key] += ',';
    groups[key] += cap_name(bit);
  }
  std::string out;
  for (unsigned key = 1; key < 8; ++key) {
    if (groups[key].empty()) continue;
    if (!out.empty()) out += ' ';
    out += groups[key] + '=';
    if (key & 4) out += 'e';
    if (key & 2) out += 'i';
    if (key & 1) out += 'p';
  }
  if (out.empty()) out = effective ? "=e" : "=";
  if (revision == 0x03000000u) out += " rootid=" + std::to_string(le32(raw, 20));
  return out;
}

std::string render_flags(uint32_t flags) {
  // include/uapi/linux/fs.h FS_*_FL, named as chattr(1) names them.
  static constexpr struct {
    uint32_t bit;
    const char* name;
  } kFlags[] = {
      {0x00000001, "secure_deletion"}, {0x00000002, "undelete"},  {0x00000004, "compressed"},
      {0x00000008, "sync"},            {0x00000010, "immutable"}, {0x00000020, "append"},
      {0x00000040, "nodump"},          {0x00000080, "noatime"},   {0x00001000, "indexed"},
      {0x00004000, "journal_data"},    {0x00008000, "notail"},    {0x00010000, "dirsync"},
      {0x00020000, "topdir"},          {0x00080000, "extents"},   {0x00100000, "verity"},
      {0x00200000, "ea_inode"},        {0x00800000, "nocow"},     {0x02000000, "dax"},
      {0x10000000, "inline_data"},     {0x20000000, "projinherit"}, {0x40000000, "casefold"},
  };
  std::string out;
  uint32_t rest = flags;
  for (const auto& f : kFlags) {
    if (!(flags & f.bit)) continue;
    if (!out.empty()) out += ',';
    out += f.name;
    rest &= ~f.bit;
  }
  if (rest) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%x", rest);
    if (!out.empty()) out += ',';
    out += buf;
  }
  return out.empty() ? "-" : out;
}

Bytes encode_xattrs(std::vector<XattrEntry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const XattrEntry& a, const XattrEntry& b) { return a.name < b.name; });
  Bytes out;
  const auto put32 = [&](size_t n) {
    const uint32_t v = htole32(static_cast<uint32_t>(n));
    out.append(reinterpret_cast<const char*>(&v), 4);
  };
  for (const auto& e : entries) {
    put32(e.name.size());
    out += e.name;
    put32(e.value.size());
    out += e.value;
  }
  return out;
}

bool decode_xattrs(std::string_view raw, std::vector<XattrEntry>* out) {
  out->clear();
  size_t off = 0;
  const auto take = [&](Bytes* dst) {
    if (raw.size() - off < 4) return false;
    const uint32_t n = le32(raw, off);
    off += 4;
    if (raw.size() - off < n) return false;
    dst->assign(raw.substr(off, n));
    off += n;
    return true;
  };
  while (off < raw.size()) {
    XattrEntry e;
    if (!take(&e.name) || !take(&e.value)) return false;
    out->push_back(std::move(e));
  }
  return true;
}

std::string render_xattrs(std::string_view raw) {
  std::vector<XattrEntry> entries;
  if (!decode_xattrs(raw, &entries)) return invalid(raw);
  const auto printable = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; });
  };
  std::string out;
  for (const auto& e : entries) {
    if (!out.empty()) out += "; ";
    out += printable(e.name) ? e.name : "0x" + hex_encode(e.name);
    out += '=';
    // A trailing NUL is common in text values set by C programs; keep it visible but readable.
    if (printable(e.value))
      out += '"' + e.value + '"';
    else
      out += "0x" + hex_encode(e.value);
  }
  return out;
}

}  // namespace fim
