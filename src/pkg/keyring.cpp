// SPDX-License-Identifier: GPL-2.0-or-later
// Every keyring apt trusts, bound to the sources apt binds it to:
//   default   /etc/apt/trusted.gpg, trusted.gpg.d/*.gpg (binary) and *.asc (armoured); apt
//             ignores other names there. Used by sources without Signed-By.
//   Signed-By key files (binary or armoured) and/or fingerprints (then the default keyrings,
//             but only signatures by those keys count), or an inline key block (deb822).
// Keyrings are read once into memory and handed to gpgv as memfds (/proc/self/fd/N): gpgv
// reads exactly the bytes judged here, and nothing is written to a shared directory.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "fim/base/bytes.h"
#include "fim/base/sys.h"
#include "internal.h"

namespace fim::pkg {
namespace {

constexpr std::string_view kBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
constexpr std::string_view kEnd = "-----END PGP PUBLIC KEY BLOCK-----";

// RFC 4880 6.1: the armour checksum.
uint32_t crc24(std::string_view data) {
  uint32_t crc = 0xB704CEu;
  for (const char ch : data) {
    crc ^= static_cast<uint32_t>(static_cast<unsigned char>(ch)) << 16;
    for (int i = 0; i < 8; ++i) {
      crc <<= 1;
      if (crc & 0x1000000u) crc ^= 0x1864CFBu;
    }
  }
  return crc & 0xFFFFFFu;
}

Result<std::string> base64(std::string_view b64) {
  if (b64.size() % 4 != 0) return make_error(Errc::Io, "armoured key: base64 length is not a multiple of 4");
  std::string out(b64.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return make_error(Errc::Io, "armoured key: invalid base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t len = static_cast<size_t>(n);
  if (!b64.empty() && b64.back() == '=') --len;
  if (b64.size() > 1 && b64[b64.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

Result<UniqueFd> to_memfd(std::string_view data) {
  UniqueFd fd(::memfd_create("fimctl-keyring", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return make_error(Errc::Io, "memfd_create", errno);
  for (size_t off = 0; off < data.size();) {
    const ssize_t w = ::write(fd.get(), data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return make_error(Errc::Io, "writing a keyring to memory", errno);
    off += static_cast<size_t>(w);
  }
  // Sealed: gpgv (or anything else holding the fd) cannot change what later runs read.
  ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  return fd;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Result<std::string> dearmor(std::string_view text) {
  std::string out;
  size_t pos = 0;
  bool any = false;
  while ((pos = text.find(kBegin, pos)) != std::string_view::npos) {
    const size_t end = text.find(kEnd, pos);
    if (end == std::string_view::npos) return make_error(Errc::Io, "armoured key: no END line");
    std::string_view body = text.substr(pos + kBegin.size(), end - pos - kBegin.size());
    pos = end + kEnd.size();
    // Armour headers ("Comment: ...") end at the first empty line.
    std::string b64, crc;
    bool headers = true;
    size_t p = 0;
    if (!body.empty() && body.front() == '\r') body.remove_prefix(1);
    if (!body.empty() && body.front() == '\n') body.remove_prefix(1);
    while (p < body.size()) {
      size_t e = body.find('\n', p);
      if (e == std::string_view::npos) e = body.size();
      std::string_view line = body.substr(p, e - p);
      p = e + 1;
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
      if (headers) {
        if (line.empty()) headers = false;
        else if (line.find(':') == std::string_view::npos) headers = false;  // no headers and no blank line
        else continue;
        if (line.empty()) continue;
      }
      if (line.empty()) continue;
      if (line.front() == '=' && line.size() == 5) {
        crc = std::string(line.substr(1));
        continue;
      }
      b64 += line;
    }
    auto bin = base64(b64);
    if (!bin) return bin.error();
    if (!crc.empty()) {
      auto c = base64(crc);
      if (!c || c->size() != 3) return make_error(Errc::Io, "armoured key: unreadable CRC24 line");
      const uint32_t want = (static_cast<uint32_t>(static_cast<unsigned char>((*c)[0])) << 16) |
                            (static_cast<uint32_t>(static_cast<unsigned char>((*c)[1])) << 8) |
                            static_cast<unsigned char>((*c)[2]);
      if (crc24(*bin) != want) return make_error(Errc::Io, "armoured key: CRC24 does not match");
    }
    if (bin->empty()) return make_error(Errc::Io, "armoured key: empty block");
    out += *bin;
    any = true;
  }
  if (!any) return make_error(Errc::Io, "no armoured public key block");
  return out;
}

AptKeys AptKeys::load(const Options& o) {
  AptKeys k;
  // A keyring from `data` (armoured when `armoured`), or null with a problem noted.
  auto keep = [&](const std::string& name, std::string data, bool armoured) -> const Keyring* {
    if (armoured) {
      auto bin = dearmor(data);
      if (!bin) {
        k.problems_.push_back(quote(name) + ": " + bin.error().describe());
        return nullptr;
      }
      data = std::move(*bin);
    }
    if (data.empty()) return nullptr;
    auto fd = to_memfd(data);
    if (!fd) {
      k.problems_.push_back(fd.error().describe());
      return nullptr;
    }
    k.keyrings_.push_back(std::make_unique<Keyring>(Keyring{name, std::move(*fd)}));
    return k.keyrings_.back().get();
  };
  auto read_key_file = [&](const std::string& path, bool in_root) -> const Keyring* {
    auto data = in_root ? read_in_root(o, path, 32 << 20) : read_small_file(path.c_str(), 32 << 20);
    if (!data) {
      k.problems_.push_back(data.error().describe());
      return nullptr;
    }
    // apt dearmours .asc files; an armoured file under another name is read the same way.
    const bool armoured = ends_with(path, ".asc") || data->find(kBegin) != std::string::npos;
    return keep(path, std::move(*data), armoured);
  };

  if (!o.keyrings.empty()) {  // given keyrings (host paths) bind every Release file
    Trust t;
    t.label = "the given keyrings";
    for (const auto& p : o.keyrings)
      if (const Keyring* r = read_key_file(p, false)) t.keyrings.push_back(r);
    k.everything_ = std::move(t);
    return k;
  }

  if (::faccessat(AT_FDCWD, under_root(o.root, "/etc/apt/trusted.gpg").c_str(), F_OK, 0) == 0)
    if (const Keyring* r = read_key_file("/etc/apt/trusted.gpg", true)) k.defaults_.push_back(r);
  std::vector<std::string> names;
  if (const std::unique_ptr<DIR, CDeleter<::closedir>> d(::opendir(under_root(o.root, "/etc/apt/trusted.gpg.d").c_str()));
      d) {
    while (dirent* e = ::readdir(d.get())) names.emplace_back(e->d_name);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    // apt's rules for files in a .d directory: [A-Za-z0-9_.-] names, and here only these two kinds.
    const bool name_ok = std::all_of(n.begin(), n.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    });
    if (!name_ok || n[0] == '.' || !(ends_with(n, ".gpg") || ends_with(n, ".asc"))) continue;
    const std::string path = "/etc/apt/trusted.gpg.d/" + n;
    auto data = read_in_root(o, path, 32 << 20);
    if (!data) {
      k.problems_.push_back(data.error().describe());
      continue;
    }
    if (const Keyring* r = keep(path, std::move(*data), ends_with(n, ".asc"))) k.defaults_.push_back(r);
  }

  std::map<std::string, std::string> how;  // stem -> its sources' Signed-By/trusted, to find disagreement
  for (const auto& s : read_apt_sources(o, &k.problems_)) {
    const std::string stem = release_stem(s);
    const std::string said = (s.trusted_yes ? "trusted=yes " : "") + s.signed_by;
    if (auto it = how.find(stem); it != how.end()) {
      if (it->second != said)
        k.by_stem_[stem].refused = "its sources disagree on Signed-By or trusted= (" + s.where + "); apt refuses them too";
      continue;
    }
    how[stem] = said;
    Trust t;
    if (s.trusted_yes) {
      t.refused = "its source (" + s.where + ") says trusted=yes: apt skips verification, fimctl does not trust it";
    } else if (s.signed_by.find(kBegin) != std::string::npos) {
      t.label = "the inline Signed-By key of " + s.where;
      if (const Keyring* r = keep("inline key of " + s.where, s.signed_by, true))
        t.keyrings.push_back(r);
      else
        t.refused = "the inline Signed-By key of " + s.where + " is unreadable";
    } else {
      std::string v = s.signed_by;
      std::replace(v.begin(), v.end(), ',', ' ');
      std::vector<std::string> files;
      for (size_t i = 0; i < v.size();) {
        while (i < v.size() && std::isspace(static_cast<unsigned char>(v[i]))) ++i;
        size_t j = i;
        while (j < v.size() && !std::isspace(static_cast<unsigned char>(v[j]))) ++j;
        if (j > i) {
          const std::string w = v.substr(i, j - i);
          if (w[0] == '/') files.push_back(w);
          else t.fingerprints.push_back(upper(w));
        }
        i = j;
      }
      for (const auto& f : files)
        if (const Keyring* r = read_key_file(f, true)) t.keyrings.push_back(r);
      if (files.empty()) {
        t.keyrings = k.defaults_;
        t.label = "the default keyrings (trusted.gpg, trusted.gpg.d)";
      } else {
        t.label = "Signed-By";
        for (const auto& f : files) t.label += " " + f;
        if (t.keyrings.empty()) t.refused = "none of its Signed-By keyrings (" + t.label.substr(10) + ") is readable";
      }
      if (!t.fingerprints.empty()) {
        t.label += " limited to key";
        for (const auto& f : t.fingerprints) t.label += " " + f;
      }
    }
    k.by_stem_[stem] = std::move(t);
  }
  return k;
}

Trust AptKeys::trust_for(const std::string& stem) const {
  if (everything_) return *everything_;
  if (auto it = by_stem_.find(stem); it != by_stem_.end()) return it->second;
  Trust t;
  t.refused = "no configured apt source (sources.list, sources.list.d) explains it";
  return t;
}

}  // namespace fim::pkg
