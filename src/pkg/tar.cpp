// SPDX-License-Identifier: GPL-2.0-or-later
// The tar reader (fim/tar.h) and, on top of it, a .deb's data part as dpkg would unpack it,
// with each regular file's SHA-256. Archives are untrusted input: every field is bounded and
// checked (a .deb's is parsed only after its digest matched a signed index, an image layer's
// as it streams through its digest).
#include "fim/tar.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fim/base/digest.h"
#include "fim/pkg.h"

namespace fim {
namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxMeta = 1 << 20;  // a long name or pax header larger than this is refused

class Reader {
 public:
  Reader(int fd, const std::string& what) : fd_(fd), what_(what) {}
  /// Reads exactly n bytes; false at a clean end of file before any byte.
  Result<bool> read(char* p, size_t n) {
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, p + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return make_error(Errc::Io, "reading " + what_, errno);
      if (r == 0) {
        if (got == 0) return false;
        return truncated();
      }
      got += static_cast<size_t>(r);
    }
    return true;
  }
  /// Reads `size` bytes of member data (plus padding), handing them to `f` (may be null).
  Status data(uint64_t size, const std::function<Status(std::string_view)>& f) {
    char buf[64 * 1024];
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    uint64_t left = padded;
    uint64_t useful = size;
    while (left > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, sizeof buf));
      auto ok = read(buf, n);
      if (!ok) return ok.error();
      if (!*ok) return truncated();
      const size_t u = static_cast<size_t>(std::min<uint64_t>(useful, n));
      if (u && f) FIM_TRY(f(std::string_view(buf, u)));
      useful -= u;
      left -= n;
    }
    return {};
  }
  Error malformed(const std::string& why) const { return Error{Errc::Io, 0, what_ + " " + why}; }

 private:
  Error truncated() const { return Error{Errc::Io, 0, what_ + " is truncated"}; }
  int fd_;
  const std::string& what_;
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

/// What a pax extended header says about the next member.
struct Pax {
  std::string path, linkpath;
  bool has_mtime = false, has_size = false, has_uid = false, has_gid = false;
  int64_t mtime_ns = 0;
  uint64_t size = 0, uid = 0, gid = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

/// "1700000000.123456789" -> ns; false on anything else (negative times are refused).
bool parse_pax_time(std::string_view v, int64_t* ns) {
  const size_t dot = v.find('.');
  uint64_t sec = 0;
  if (!parse_decimal(v.substr(0, dot), &sec) || sec > 9'000'000'000ULL) return false;
  uint64_t frac = 0;
  if (dot != std::string_view::npos) {
    std::string_view f = v.substr(dot + 1, 9);
    if (f.empty() || !parse_decimal(f, &frac)) return false;
    for (size_t i = f.size(); i < 9; ++i) frac *= 10;
  }
  *ns = static_cast<int64_t>(sec) * 1'000'000'000 + static_cast<int64_t>(frac);
  return true;
}

/// pax records "<len> key=value\n".
bool parse_pax(std::string_view s, Pax* pax) {
  while (!s.empty()) {
    const size_t sp = s.find(' ');
    uint64_t len = 0;
    if (sp == std::string_view::npos || !parse_decimal(s.substr(0, sp), &len) || len <= sp + 1 || len > s.size())
      return false;
    std::string_view rec = s.substr(sp + 1, len - sp - 2);  // drop the newline
    s.remove_prefix(len);
    const size_t eq = rec.find('=');
    if (eq == std::string_view::npos) return false;
    const std::string_view k = rec.substr(0, eq), v = rec.substr(eq + 1);
    if (k == "path") pax->path = std::string(v);
    else if (k == "linkpath") pax->linkpath = std::string(v);
    else if (k == "mtime") pax->has_mtime = parse_pax_time(v, &pax->mtime_ns);
    else if (k == "size") pax->has_size = parse_decimal(v, &pax->size);
    else if (k == "uid") pax->has_uid = parse_decimal(v, &pax->uid);
    else if (k == "gid") pax->has_gid = parse_decimal(v, &pax->gid);
    else if (k.substr(0, 13) == "SCHILY.xattr.") pax->xattrs.emplace_back(std::string(k.substr(13)), std::string(v));
  }
  return true;
}

/// "./usr/bin/ls" -> "/usr/bin/ls"; "./" -> "/"; no trailing slash.
Bytes member_path(std::string name) {
  if (name.rfind("./", 0) == 0) name.erase(0, 1);
  else if (name == ".") name = "/";
  else if (name.empty() || name[0] != '/') name.insert(0, "/");
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  return name;
}

}  // namespace

Status read_tar(int fd, const std::string& what,
                const std::function<Status(const TarEntry&, const TarDataReader&)>& each) {
  Reader in(fd, what);
  std::string long_name, long_link;
  Pax pax;
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
    uint64_t sum = 0, want = 0, size = 0, mode = 0, uid = 0, gid = 0, mtime = 0, major = 0, minor = 0;
    for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    if (!parse_number(h + 148, 8, &want) || want != sum) return in.malformed("has a bad tar header checksum");
    if (!parse_number(h + 124, 12, &size) || !parse_number(h + 100, 8, &mode) || !parse_number(h + 108, 8, &uid) ||
        !parse_number(h + 116, 8, &gid) || !parse_number(h + 136, 12, &mtime) || !parse_number(h + 329, 8, &major) ||
        !parse_number(h + 337, 8, &minor))
      return in.malformed("has a malformed tar header");
    const char type = h[156] == '\0' ? '0' : h[156];
    if (type == 'L' || type == 'K' || type == 'x') {
      if (size > kMaxMeta) return in.malformed("has an oversized tar extension header");
      std::string meta;
      FIM_TRY(in.data(size, [&](std::string_view d) -> Status {
        meta.append(d);
        return {};
      }));
      if (type == 'x') {
        if (!parse_pax(meta, &pax)) return in.malformed("has a malformed pax header");
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
    TarEntry e;
    e.name = field(h, 100);
    const bool ustar = std::memcmp(h + 257, "ustar", 5) == 0;  // POSIX: the prefix field is a prefix
    if (ustar && std::memcmp(h + 257, "ustar  ", 8) != 0 && h[345]) e.name = field(h + 345, 155) + "/" + e.name;
    if (!long_name.empty()) e.name = long_name;
    if (!pax.path.empty()) e.name = pax.path;
    e.link = field(h + 157, 100);
    if (!long_link.empty()) e.link = long_link;
    if (!pax.linkpath.empty()) e.link = pax.linkpath;
    e.type = type == '7' ? '0' : type;
    e.mode = static_cast<uint32_t>(mode & 07777);
    e.uid = pax.has_uid ? pax.uid : uid;
    e.gid = pax.has_gid ? pax.gid : gid;
    e.uname = field(h + 265, 32);
    e.gname = field(h + 297, 32);
    e.size = pax.has_size ? pax.size : size;
    e.mtime_ns = pax.has_mtime ? pax.mtime_ns : static_cast<int64_t>(std::min<uint64_t>(mtime, 9'000'000'000ULL)) * 1'000'000'000;
    e.dev_major = static_cast<uint32_t>(std::min<uint64_t>(major, UINT32_MAX));
    e.dev_minor = static_cast<uint32_t>(std::min<uint64_t>(minor, UINT32_MAX));
    e.xattrs = std::move(pax.xattrs);
    long_name.clear();
    long_link.clear();
    pax = Pax{};
    // Only regular files carry data; a size on anything else is skipped, as tar does.
    bool consumed = false;
    const uint64_t data_size = e.size;
    const TarDataReader read_data = [&](const std::function<Status(std::string_view)>& f) -> Status {
      if (consumed) return make_error(Errc::Bug, "tar member data read twice");
      consumed = true;
      return in.data(data_size, f);
    };
    FIM_TRY(each(e, read_data));
    if (!consumed) FIM_TRY(in.data(data_size, nullptr));
  }
  return {};
}

namespace pkg {

Result<std::map<Bytes, DebMember>> parse_data_tar(int fd) {
  std::map<Bytes, DebMember> out;
  FIM_TRY(read_tar(fd, "the package's data archive", [&](const TarEntry& e, const TarDataReader& data) -> Status {
    DebMember m;
    m.type = e.type;
    m.mode = e.mode;
    m.uid = e.uid;
    m.gid = e.gid;
    m.uname = e.uname;
    m.gname = e.gname;
    if (m.type == '0') {
      Sha256Stream sha;
      FIM_TRY(data([&](std::string_view d) -> Status {
        sha.update(d);
        return {};
      }));
      m.sha256 = sha.finish();
    } else {
      if (m.type == '2') m.link = e.link;
      if (m.type == '1') {  // a hard link: its target's content
        auto t = out.find(member_path(e.link));
        if (t != out.end()) {
          m.type = '0';
          m.sha256 = t->second.sha256;
        }
      }
    }
    out[member_path(e.name)] = std::move(m);
    return {};
  }));
  return out;
}

}  // namespace pkg
}  // namespace fim
