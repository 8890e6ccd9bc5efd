// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl seal (docs/design.md, Evidence): fs-verity enabled on baselined files whose rule says
// seal = true, so that check --fast measures them (FS_IOC_MEASURE_VERITY) instead of reading
// them, and the kernel fails every read of a block that no longer matches (EIO).
#pragma once

#include <string>
#include <vector>

#include "fim/pipeline.h"

namespace fim {

struct SealOutcome {
  enum class Kind {
    Sealed,         ///< fs-verity enabled now on the recorded content
    AlreadySealed,  ///< had fs-verity already, content as recorded
    Refused,        ///< not in the baseline, no sha256 recorded, or its rule does not say seal = true
    Changed,        ///< its content is not the baseline's: not sealed (or sealed by a racing writer)
    Failed,         ///< the kernel refused (a writer has it open, permission, size)
  };
  Bytes path;
  Kind kind = Kind::Failed;
  std::string why;     ///< Refused, Changed, Failed: one clause; Sealed: the verity digest
};

struct SealResult {
  std::vector<SealOutcome> files;
  /// Regular files below a directory PATH whose rule does not allow sealing: left alone (a
  /// file named itself is refused instead).
  uint64_t skipped = 0;
};

/// Seals the regular files opts.paths name (a file, or a directory: the files below it) that
/// the verified baseline records with a sha256 their content still has, under a rule with
/// seal = true: opened read-only, FS_IOC_ENABLE_VERITY (SHA-256, 4096-byte blocks), then read
/// again through fs-verity and compared once more. Errc::Unsupported, at the first file, when
/// the filesystem or kernel has no fs-verity (EOPNOTSUPP, ENOTTY): said once, nothing sealed
/// after it.
Result<SealResult> run_seal(const RunOptions& opts, Sink& sink);

}  // namespace fim
