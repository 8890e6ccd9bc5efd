// SPDX-License-Identifier: GPL-2.0-or-later
// A baseline's identity (docs/design.md, Baseline: identity): its id, roots, key and sequence,
// pinned per baseline path in state.db and, out of reach of whoever can only write the
// baseline's directory, in the trusted.fimctl.identity extended attribute of the file.
#include <endian.h>
#include <openssl/rand.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "fim/base/digest.h"
#include "fim/db.h"

namespace fim {

BaselineIdentity identity_of(const BaselineMeta& m) {
  return BaselineIdentity{m.baseline_id, roots_digest(m.roots), m.is_signed ? m.key_id : std::string(), m.sequence,
                           false, std::string()};
}

std::string roots_digest(const std::vector<Bytes>& roots) {
  Bytes text;
  for (const Bytes& r : roots) {
    const uint32_t n = htole32(static_cast<uint32_t>(r.size()));
    text.append(reinterpret_cast<const char*>(&n), 4);
    text += r;
  }
  return hex_encode(sha256_of(text));
}

std::string new_baseline_id() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) std::abort();  // no CSPRNG: nothing here can be trusted
  return hex_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

std::string path_tag(const Bytes& path) { return hex_encode(sha256_of(path)).substr(0, 32); }

std::string identity_xattr_text(const BaselineIdentity& i) {
  return std::string(i.at.empty() ? "v1" : "v2") + " id=" + (i.id.empty() ? std::string("-") : i.id) +
         " key=" + (i.key_id.empty() ? std::string("-") : i.key_id) + " seq=" + std::to_string(i.sequence) +
         (i.at.empty() ? std::string() : " at=" + i.at);
}

std::optional<BaselineIdentity> parse_identity_xattr(std::string_view text) {
  const std::string whole(text);
  BaselineIdentity i;
  const auto field = [&](std::string_view key, std::string* out) {
    if (text.substr(0, key.size()) != key) return false;
    text.remove_prefix(key.size());
    const size_t end = text.find(' ');
    *out = std::string(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (*out == "-") out->clear();
    return true;
  };
  std::string seq;
  const bool v2 = text.substr(0, 3) == "v2 ";
  if (!field(v2 ? "v2 id=" : "v1 id=", &i.id) || !field("key=", &i.key_id) || !field("seq=", &seq) ||
      (v2 && (!field("at=", &i.at) || i.at.size() != 32)) || !text.empty())
    return std::nullopt;
  if (seq.empty() || seq.find_first_not_of("0123456789") != std::string::npos || seq.size() > 19) return std::nullopt;
  i.sequence = std::strtoull(seq.c_str(), nullptr, 10);
  if (identity_xattr_text(i) != whole) return std::nullopt;  // one spelling: nothing smuggled in
  return i;
}

IdentityXattr read_identity_xattr(const Bytes& path, BaselineIdentity* out, int* err) {
  *err = 0;
  // Without CAP_SYS_ADMIN the kernel hides trusted.* (ENODATA): not the same as absent.
  if (::geteuid() != 0) {
    *err = EPERM;
    return IdentityXattr::Unavailable;
  }
  char buf[256];
  const ssize_t n = ::lgetxattr(path.c_str(), kIdentityXattr, buf, sizeof buf);
  if (n < 0) {
    *err = errno;
    return errno == ENODATA ? IdentityXattr::Absent : IdentityXattr::Unavailable;
  }
  auto parsed = parse_identity_xattr(std::string_view(buf, static_cast<size_t>(n)));
  if (!parsed) return IdentityXattr::Malformed;
  *out = std::move(*parsed);
  return IdentityXattr::Present;
}

int write_identity_xattr(int fd, const BaselineIdentity& i, const Bytes& path) {
  BaselineIdentity named = i;
  named.at = path_tag(path);
  const std::string text = identity_xattr_text(named);
  return ::fsetxattr(fd, kIdentityXattr, text.data(), text.size(), 0) == 0 ? 0 : errno;
}

BaselineIdentity identity_as_installed(const Bytes& path, const BaselineMeta& m) {
  BaselineIdentity id = identity_of(m);
  BaselineIdentity x;
  int err = 0;
  id.xattr = read_identity_xattr(path, &x, &err) == IdentityXattr::Present && x.id == id.id &&
             x.key_id == id.key_id && x.sequence == id.sequence && x.at == path_tag(path);  // it has no roots
  return id;
}

}  // namespace fim
