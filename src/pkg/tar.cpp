// SPDX-License-Identifier: GPL-2.0-or-later
// The data part of a .deb as a tar stream: what dpkg would unpack, with each regular file's
// SHA-256. The archive is only parsed after its .deb's digest matched a signed index, but the
// parser still treats it as untrusted input: every field is bounded and checked.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fim/base/digest.h"
#include "fim/pkg.h"

namespace fim::pkg {
namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxMeta = 1 << 20;  // a long name or pax header larger than this is refused

class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  /// Reads exactly n bytes; false at a clean end of file before any byte.
  Result<bool> read(char* p, size_t n) {
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, p + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return make_error(Errc::Io, "reading the package's data archive", errno);
      if (r == 0) {
        if (got == 0) return false;
        return make_error(Errc::Io, "the package's data archive is truncated");
      }
      got += static_cast<size_t>(r);
    }
    return true;
  }
  /// Reads `size` bytes of member data (plus padding), handing them to `f`.
  Status data(uint64_t size, const std::function<void(std::string_view)>& f) {
    char buf[64 * 1024];
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    uint64_t left = padded;
    uint64_t useful = size;
    while (left > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, sizeof buf));
      auto ok = read(buf, n);
      if (!ok) return ok.error();
      if (!*ok) return make_error(Errc::Io, "the package's data archive is truncated");
      const size_t u = static_cast<size_t>(std::min<uint64_t>(useful, n));
      if (u && f) f(std::string_view(buf, u));
      useful -= u;
      left -= n;
    }
    return {};
  }

 private:
  int fd_;
};

bool parse_number(const char* p, size_t n, uint64_t* out) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  if (u[0] & 0x80) {  // GNU base-256
    if (u[0] != 0x80) return false;  // negative or huge
    uint64_t v = 0;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 56) return false;
      v = v << 8 | u[i];
    }
    *out = v;
    return true;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  bool any = false;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return false;
    v = v * 8 + static_cast<uint64_t>(p[i] - '0');
    any = true;
  }
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != '\0') return false;
  *out = any ? v : 0;
  return true;
}

std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

/// "./usr/bin/ls" -> "/usr/bin/ls"; "./" -> "/"; no trailing slash.
Bytes member_path(std::string name) {
  if (name.rfind("./", 0) == 0) name.erase(0, 1);
  else if (name == ".") name = "/";
  else if (name.empty() || name[0] != '/') name.insert(0, "/");
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  return name;
}

/// pax records "<len> key=value\n".
void parse_pax(std::string_view s, std::string* path, std::string* linkpath) {
  while (!s.empty()) {
    const size_t sp = s.find(' ');
    uint64_t len = 0;
    if (sp == std::string_view::npos || !parse_decimal(s.substr(0, sp), &len) || len <= sp + 1 || len > s.size()) return;
    std::string_view rec = s.substr(sp + 1, len - sp - 2);  // drop the newline
    s.remove_prefix(len);
    const size_t eq = rec.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view k = rec.substr(0, eq), v = rec.substr(eq + 1);
    if (k == "path") *path = std::string(v);
    if (k == "linkpath") *linkpath = std::string(v);
  }
}

}  // namespace

Result<std::map<Bytes, DebMember>> parse_data_tar(int fd) {
  Reader in(fd);
  std::map<Bytes, DebMember> out;
  std::string long_name, long_link, pax_path, pax_link;
  char h[kBlock];
  int zero_blocks = 0;
  for (;;) {
    auto ok = in.read(h, kBlock);
    if (!ok) return ok.error();
    if (!*ok) break;
    if (std::all_of(h, h + kBlock, [](char c) { return c == 0; })) {
      if (++zero_blocks == 2) break;
      continue;
    }
    zero_blocks = 0;
    uint64_t sum = 0, want = 0, size = 0, mode = 0, uid = 0, gid = 0;
    for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    if (!parse_number(h + 148, 8, &want) || want != sum)
      return make_error(Errc::Io, "the package's data archive has a bad tar header checksum");
    if (!parse_number(h + 124, 12, &size) || !parse_number(h + 100, 8, &mode) || !parse_number(h + 108, 8, &uid) ||
        !parse_number(h + 116, 8, &gid))
      return make_error(Errc::Io, "the package's data archive has a malformed tar header");
    const char type = h[156] == '\0' ? '0' : h[156];
    if (type == 'L' || type == 'K' || type == 'x') {
      if (size > kMaxMeta) return make_error(Errc::Io, "the package's data archive has an oversized tar extension header");
      std::string meta;
      FIM_TRY(in.data(size, [&](std::string_view d) { meta.append(d); }));
      if (type == 'x') {
        parse_pax(meta, &pax_path, &pax_link);
      } else {
        meta.resize(strnlen(meta.c_str(), meta.size()));
        (type == 'L' ? long_name : long_link) = meta;
      }
      continue;
    }
    if (type == 'g') {
      FIM_TRY(in.data(size, nullptr));
      continue;
    }
    std::string name = field(h, 100);
    const bool ustar = std::memcmp(h + 257, "ustar\0", 6) == 0;  // POSIX: the prefix field is a prefix
    if (ustar && h[345]) name = field(h + 345, 155) + "/" + name;
    if (!long_name.empty()) name = long_name;
    if (!pax_path.empty()) name = pax_path;
    std::string link = field(h + 157, 100);
    if (!long_link.empty()) link = long_link;
    if (!pax_link.empty()) link = pax_link;
    long_name.clear();
    long_link.clear();
    pax_path.clear();
    pax_link.clear();

    DebMember m;
    m.type = type == '7' ? '0' : type;
    m.mode = static_cast<uint32_t>(mode & 07777);
    m.uid = uid;
    m.gid = gid;
    m.uname = field(h + 265, 32);
    m.gname = field(h + 297, 32);
    if (m.type == '0') {
      Sha256Stream sha;
      FIM_TRY(in.data(size, [&](std::string_view d) { sha.update(d); }));
      m.sha256 = sha.finish();
    } else {
      FIM_TRY(in.data(size, nullptr));
      if (m.type == '2') m.link = link;
      if (m.type == '1') {  // a hard link: its target's content
        auto t = out.find(member_path(link));
        if (t != out.end()) {
          m.type = '0';
          m.sha256 = t->second.sha256;
        }
      }
    }
    out[member_path(name)] = std::move(m);
  }
  return out;
}

}  // namespace fim::pkg
