// SPDX-License-Identifier: GPL-2.0-or-later
// The baseline reader on corrupted baselines: a valid baseline is built once, then each input
// is a list of (offset, xor) byte edits applied to it. The reader must refuse or read the
// result, never crash or over-read (ASan), and whatever it returns must render.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fim/db.h"

using namespace fim;

namespace {

std::string g_path;
std::string g_valid;  // the bytes of a valid baseline

std::string read_all(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  char buf[65536];
  ssize_t n;
  while (fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  if (fd >= 0) ::close(fd);
  return out;
}

void build_seed() {
  char templ[] = "/tmp/fimctl-fuzz-baseline.XXXXXX";
  if (!::mkdtemp(templ)) std::abort();
  g_path = std::string(templ) + "/b.db";
  auto w = BaselineWriter::create(g_path);
  if (!w) std::abort();
  for (int i = 0; i < 40; ++i) {
    Record r;
    char name[32];
    std::snprintf(name, sizeof name, "/r/%03d", i);
    r.path = name;
    r.set_num(Attr::Type, static_cast<int64_t>(i % 3 ? FileType::File : FileType::Symlink));
    r.set_num(Attr::Mode, 0644);
    r.set_num(Attr::Size, i * 1000);
    r.set_bytes(Attr::Sha256, std::string(32, static_cast<char>(i)));
    r.set_bytes(Attr::Xattrs, encode_xattrs({{"user.k", std::string(static_cast<size_t>(i), 'v')}}));
    r.set_bytes(Attr::AclAccess, std::string("\x02\0\0\0\x01\0\x06\0\xff\xff\xff\xff", 12));
    if (!(*w)->add(r)) std::abort();
  }
  BaselineMeta m;
  m.roots = {"/r"};
  m.roots_source = "cli";
  if (!(*w)->commit(&m)) std::abort();
  g_valid = read_all(g_path);
  std::atexit([] {
    ::unlink(g_path.c_str());
    ::rmdir(g_path.substr(0, g_path.rfind('/')).c_str());
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  build_seed();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes = g_valid;
  for (size_t i = 0; i + 5 <= size; i += 5) {
    uint32_t off;
    std::memcpy(&off, data + i, 4);
    bytes[off % bytes.size()] ^= static_cast<char>(data[i + 4] | 1);
  }
  if (size % 5 == 4) bytes.resize(bytes.size() - (data[size - 1] * 64u) % bytes.size());  // truncation
  const int fd = ::open(g_path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::abort();
  ::close(fd);
  auto reader = BaselineReader::open(g_path);
  if (!reader) return 0;
  Record r;
  for (;;) {
    auto more = (*reader)->next(&r);
    if (!more || !*more) break;
    for (size_t i = 0; i < kAttrCount; ++i)
      if (r.has(static_cast<Attr>(i))) (void)render_attr(static_cast<Attr>(i), r.get(static_cast<Attr>(i)));
  }
  (void)(*reader)->verify();
  return 0;
}
