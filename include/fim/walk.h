// SPDX-License-Identifier: GPL-2.0-or-later
// walk::Walker: the producer of Targets for init and check.
//
// Order: entries are emitted in bytewise order of their full paths (the order of the
// baseline's primary key), so check is a streaming merge of two sorted sequences and needs
// no index of either in memory. A directory's own entry comes at its name, its contents at
// name + "/": "a", "a.b", "a/x" (because '.' < '/'), which is exactly memcmp order.
#pragma once

#include <functional>
#include <vector>

#include "fim/attr.h"
#include "fim/base/result.h"
#include "fim/rules.h"

namespace fim {

struct WalkOptions {
  const Selector* selector = nullptr;  ///< decides which entries are emitted; null: all below the roots
  bool roots_must_exist = false;  ///< a missing root is fatal (command-line PATHs) or absent (policy)
  bool roots_only = false;  ///< the roots' own entries, not what is below them (watch: a directory's times)
  /// --sysroot: the roots are paths inside this directory, opened with RESOLVE_IN_ROOT (a
  /// symlink on the way cannot leave it); entries keep the paths as seen inside. -1: "/".
  int root_fd = -1;
  /// Called before the walk waits for directory fds held by emitted items to be released
  /// (their consumer must be handed what it holds, or the wait never ends); may be empty.
  std::function<void()> flush;
  /// Counting only (init's pre-walk): an entry's type comes from its directory's listing
  /// (d_type) and it is not stat'ed; `target.st` holds only st_mode's type bits (lstat's
  /// full result where the filesystem gives no type). Selection is the same: rules decide
  /// by path, type and filesystem, all known from the listing.
  bool types_only = false;
};

struct WalkItem {
  enum class Kind : uint8_t {
    Entry,              ///< an entry to inspect; `target` is valid
    StatFailed,         ///< lstat failed with `err`: the entry exists but cannot be inspected
    SubtreeIncomplete,  ///< the directory at target.path could not be listed (`err`)
    SubtreeSkipped,     ///< the contents of target.path are on a filesystem type `rule` excludes
  };
  Kind kind = Kind::Entry;
  int err = 0;
  int rule = -1;  ///< the policy rule that decided the entry (index into Policy::rules)
  Target target;
};

/// Walks `roots` (absolute, normalised; see normalize_roots) depth-first, iteratively, holding
/// one directory fd per level and opening each entry relative to its parent; never follows a
/// symlink below a root. Emits only the entries the selector's policy selects (with the
/// deciding rule), lists only directories below which something can be selected, and crosses
/// into another mount only when the rule that selected the directory says cross_fs. An
/// entry's filesystem type (for rules with `fstype`) is that of the directory listing it. Returns an error only for fatal problems (a root that must exist and
/// does not, a root that cannot be read); per-entry problems become items. `emit` returns
/// false to stop early.
Status walk(const std::vector<Bytes>& roots, const WalkOptions& opts,
            const std::function<bool(WalkItem&&)>& emit);

}  // namespace fim
