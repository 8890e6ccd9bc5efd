// SPDX-License-Identifier: GPL-2.0-or-later
// The package manager's formats on arbitrary bytes: control stanzas (dpkg's status, apt's
// Packages), Release SHA256 sections, and the data.tar reader (through a memfd, as it reads
// dpkg-deb's pipe). Nothing may crash or hang; a parsed Release digest is always 64 chars.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "fim/pkg.h"

using namespace fim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  size_t fields = 0;
  pkg::parse_stanzas(in, [&](const pkg::Stanza& s) {
    fields += s.size();
    return fields < 10000;
  });
  for (const auto& [path, hex] : pkg::release_sha256(in))
    if (hex.size() != 64 || path.empty()) __builtin_trap();
  const int fd = ::memfd_create("pkg-fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (::write(fd, data, size) == static_cast<ssize_t>(size) && ::lseek(fd, 0, SEEK_SET) == 0) {
    auto members = pkg::parse_data_tar(fd);
    if (members)
      for (const auto& [path, m] : *members)
        if (path.empty() || path[0] != '/') __builtin_trap();
  }
  ::close(fd);
  return 0;
}
