// SPDX-License-Identifier: GPL-2.0-or-later
// The policy: which roots, which attributes, how far to descend. The TOML loader (its own
// issue) fills the same struct; init and check only ever see a Policy.
#pragma once

#include <string>
#include <vector>

#include "fim/attr.h"
#include "fim/base/bytes.h"

namespace fim {

struct Policy {
  std::vector<Bytes> roots;     ///< absolute, normalised; missing ones are recorded as absent
  AttrMask attrs = 0;           ///< attributes collected for every entry
  bool cross_fs = false;        ///< descend into other mounts below a root
  uint64_t max_hash_bytes = 0;  ///< files larger than this get metadata only; 0 = no limit
  std::string source;           ///< where it came from, for reports ("built-in default")
};

/// Attributes recorded when nothing narrows them: everything but `dev` (device numbers of
/// tmpfs and some other filesystems change at every mount) and `xxh128` (not a security
/// digest; only on request).
AttrMask default_attrs();

/// The built-in default policy (DESIGN.md, Roots and the default policy): system binaries and
/// libraries, cron, ssh, accounts, sudo, the dynamic linker, PAM, systemd units, modules.
Policy default_policy();

/// Canonical text of everything but the roots (they are stored in the baseline by
/// themselves), and its SHA-256 in hex: what `check` compares to detect a policy change.
std::string policy_canonical(const Policy& p);
std::string policy_digest(const Policy& p);

/// Sorts roots, removes duplicates and roots that lie below another root.
std::vector<Bytes> normalize_roots(std::vector<Bytes> roots);

}  // namespace fim
