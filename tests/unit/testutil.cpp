// SPDX-License-Identifier: GPL-2.0-or-later
#include "testutil.h"

#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstdio>
#include <stdexcept>

#include "fim/base/digest.h"
#include "fim/base/bytes.h"

namespace fim::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/fimctl-unit.XXXXXX";
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

namespace {
/// Removes everything below dirfd, relative to it: tests build paths longer than PATH_MAX,
/// which nftw and rm -r by full path cannot remove.
void remove_contents(int dirfd) {
  DIR* d = ::fdopendir(::dup(dirfd));
  if (!d) return;
  while (const struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (::unlinkat(dirfd, name.c_str(), 0) == 0) continue;
    const int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) continue;
    ::fchmod(sub, 0700);
    remove_contents(sub);
    ::close(sub);
    ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR);
  }
  ::closedir(d);
}
}  // namespace

TempDir::~TempDir() {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    remove_contents(fd);
    ::close(fd);
  }
  ::rmdir(path_.c_str());
}

void write_file(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    ::close(fd);
    throw std::runtime_error("cannot write " + path);
  }
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::string bytes;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot read " + path);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  std::fclose(f);
  return bytes;
}

std::string sha256_hex(const std::string& data) { return hex_encode(sha256_of(data)); }

std::string md5_hex(const std::string& data) {
  DigestStream d("md5");
  d.update(data);
  return hex_encode(d.finish());
}

Record file_record(const std::string& path, uint32_t mode, const std::string& content) {
  Record r;
  r.path = path;
  r.set_num(Attr::Type, static_cast<int64_t>(FileType::File));
  r.set_num(Attr::Mode, mode);
  r.set_num(Attr::Uid, 0);
  r.set_num(Attr::Gid, 0);
  r.set_bytes(Attr::Sha256, sha256_of(content));
  return r;
}

}  // namespace fim::test
