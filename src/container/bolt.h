// SPDX-License-Identifier: GPL-2.0-or-later
// bolt: a minimal, read-only reader of bbolt database files (go.etcd.io/bbolt's on-disk format,
// version 2), for the one such file fimctl reads: containerd's metadata database
// (/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db), where containerd keeps the
// image digest of each container. Internal to libfim (src/container/identity.cpp).
//
// The file is another program's, read while that program may be writing it, and treated as
// untrusted input: pages are read with pread (no mmap: a file truncated under us is a short
// read and an error, never SIGBUS), every offset and count is checked against the page and the
// file, tree descent is depth-bounded and a walk refuses a page it has already visited, so a
// malformed or hostile file is an error (Errc::Database), never a crash or an endless loop.
// containerd's lock (flock on the file) is never taken and nothing is ever written: a reader
// that races a commit may see a torn tree, which is an error or a missing key, never more.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "fim/base/bytes.h"
#include "fim/base/fd.h"
#include "fim/base/result.h"

namespace fim::bolt {

/// A bucket: the root page of its B+tree, or (inline buckets, root 0) the page bytes held in
/// its parent's value.
struct Bucket {
  uint64_t root = 0;
  std::string inline_page;
};

/// One key of a bucket: its value, or (is_bucket) a nested bucket.
struct Entry {
  std::string_view key;
  std::string_view value;
  bool is_bucket = false;
};

class Db {
 public:
  /// Opens `path` read-only and picks the valid meta page (magic 0xED0CDAED, version 2, FNV-64a
  /// checksum) with the higher txid.
  static Result<Db> open(const Bytes& path);

  Db(Db&&) = default;
  Db& operator=(Db&&) = default;

  const Bucket& root() const { return root_; }
  uint64_t txid() const { return txid_; }
  uint32_t page_size() const { return page_size_; }

  /// The nested bucket `name` of `parent`; nothing when absent or when `name` holds a value.
  Result<std::optional<Bucket>> bucket(const Bucket& parent, std::string_view name);
  /// The nested bucket at `path` below the root (v1 / default / containers / ID).
  Result<std::optional<Bucket>> bucket_at(std::initializer_list<std::string_view> path);
  /// The value of `key` in `b`; nothing when absent or when `key` names a bucket.
  Result<std::optional<std::string>> get(const Bucket& b, std::string_view key);
  /// Every key of `b` in the file's order; `f` returning false stops the walk. At most
  /// kMaxEntries keys: a bucket with more is an error.
  Status for_each(const Bucket& b, const std::function<bool(const Entry&)>& f);

  static constexpr uint32_t kMagic = 0xED0CDAED;
  static constexpr int kMaxDepth = 32;        ///< B+tree levels in one bucket (bbolt: ~log_fanout(n))
  static constexpr size_t kMaxEntries = 1u << 20;
  static constexpr size_t kMaxPageBytes = size_t{16} << 20;  ///< one page with its overflow

 private:
  Db() = default;
  /// The bytes of page `id` with its overflow pages, cached; checked against the file.
  Result<const std::string*> page(uint64_t id);
  Result<std::optional<Entry>> find(const Bucket& b, std::string_view key);
  Status walk(std::string_view page, int depth, std::map<uint64_t, bool>& seen, size_t& n,
              const std::function<bool(const Entry&)>& f, bool& stop);

  Bytes path_;
  UniqueFd fd_;
  uint64_t file_size_ = 0;
  uint32_t page_size_ = 0;
  uint64_t high_water_ = 0;  ///< meta.pgid: pages at or above it are not part of the tree
  uint64_t txid_ = 0;
  Bucket root_;
  std::map<uint64_t, std::string> pages_;
  size_t cached_bytes_ = 0;
};

/// FNV-64a, as bbolt checksums its meta pages.
uint64_t fnv64a(std::string_view data);

}  // namespace fim::bolt
