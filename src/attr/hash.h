// SPDX-License-Identifier: GPL-2.0-or-later
// Content digests. OpenSSL and xxHash headers stay in hash.cpp (docs/design.md, Conventions 12).
#pragma once

#include <cstddef>

#include "fim/base/bytes.h"

namespace fim::attr {

/// SHA-256 (OpenSSL EVP, SHA-NI where the CPU has it) and optionally XXH3-128, computed in
/// one pass over the bytes. One per worker thread; reused across files.
class Digester {
 public:
  Digester();
  ~Digester();
  Digester(const Digester&) = delete;
  Digester& operator=(const Digester&) = delete;

  void begin(bool sha256, bool xxh128);
  void update(const void* data, size_t n);
  /// Writes the raw digests of the selected algorithms.
  void finish(Bytes* sha256, Bytes* xxh128);

 private:
  struct Impl;
  Impl* impl_;
};

/// One-shot SHA-256 of a buffer (used for baseline content and policy digests).
Bytes sha256_of(std::string_view data);

/// Incremental digest by OpenSSL name ("sha256", "md5"): MD5 only to compare with records other
/// tools wrote (dpkg's md5sums), never as fimctl's own evidence.
class DigestStream {
 public:
  explicit DigestStream(const char* algorithm);
  ~DigestStream();
  DigestStream(const DigestStream&) = delete;
  DigestStream& operator=(const DigestStream&) = delete;
  void update(std::string_view data);
  Bytes finish();  ///< the raw digest

 private:
  void* ctx_;
};

/// Incremental SHA-256 for streamed canonical encodings.
class Sha256Stream : public DigestStream {
 public:
  Sha256Stream() : DigestStream("sha256") {}
};

}  // namespace fim::attr
