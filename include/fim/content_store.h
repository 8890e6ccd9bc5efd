// SPDX-License-Identifier: GPL-2.0-or-later
// The content store (docs/design.md, Content store): `content/` beside the baseline, root's
// (0700, files 0600), one zlib-compressed file per kept version of a text file, named by the
// lowercase hex SHA-256 of the file's real bytes (so a baseline row's sha256 finds it); what
// is stored is the masked text. Part of the db module (files beside the baseline).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "fim/base/bytes.h"
#include "fim/base/fd.h"
#include "fim/base/result.h"

namespace fim {

/// "DIR/content" for the baseline at `db_path` (--db moves it with the baseline).
Bytes content_store_dir(const Bytes& db_path);

class ContentStore {
 public:
  /// Opens the store directory: it must pass the baseline directory's trusted-path check and
  /// be a real directory (a symlink is refused, never followed). With `create`, a missing one
  /// is made 0700; without, a missing one is Errc::Database ("no content store").
  static Result<std::unique_ptr<ContentStore>> open(const Bytes& dir, bool create);

  /// Whether version `sha_hex` is kept (a regular file of that name).
  bool has(const std::string& sha_hex) const;
  /// Keeps `masked` as version `sha_hex` (64 lowercase hex digits): compressed into a temp file
  /// in the directory, fsynced, renamed. A version already kept is left alone.
  Status put(const std::string& sha_hex, std::string_view masked);
  /// The masked text of version `sha_hex`; none when it is not kept. A symlink or other
  /// non-regular file there is Errc::Trust (opened O_NOFOLLOW, never followed).
  Result<std::optional<std::string>> get(const std::string& sha_hex) const;
  /// Every kept version: name, size on disk, mtime (ns). Other names (temp files) are skipped.
  Status for_each(const std::function<void(const std::string&, uint64_t, int64_t)>& each) const;
  Status remove(const std::string& sha_hex);
  const Bytes& dir() const { return dir_; }

  /// The most a kept version may decompress to.
  static constexpr size_t kMaxText = 16u << 20;

 private:
  ContentStore(Bytes dir, UniqueFd fd) : dir_(std::move(dir)), fd_(std::move(fd)) {}
  Bytes dir_;
  UniqueFd fd_;
};

/// Whether `s` is 64 lowercase hex digits (a kept version's name).
bool is_content_name(std::string_view s);

}  // namespace fim
