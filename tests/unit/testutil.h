// SPDX-License-Identifier: GPL-2.0-or-later
// Helpers for tests that need a real directory (ninja's ScopedTempDir).
#pragma once

#include <cstdint>
#include <string>

#include "fim/attr.h"

namespace fim::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content);
/// The whole content of `path` (the test fails where it cannot be read).
std::string read_file(const std::string& path);
std::string sha256_hex(const std::string& data);
/// MD5 as dpkg's md5sums files write it.
std::string md5_hex(const std::string& data);
/// A baseline record of a root-owned regular file at `path` holding `content`.
Record file_record(const std::string& path, uint32_t mode, const std::string& content);

}  // namespace fim::test
