// SPDX-License-Identifier: GPL-2.0-or-later
// init over an existing baseline (init --force): the sequence it continues from, the journal
// entry of the replacement, and the replaced baseline kept as PATH.prev. run_init's (run.cpp).
#pragma once

#include <optional>
#include <vector>

#include "fim/db.h"
#include "fim/state.h"
#include "fim/pipeline.h"

namespace fim::detail {

/// The sequence a new baseline continues from: the one it replaces and what state.db has
/// seen, so no baseline written here can look newer than its successor.
Result<uint64_t> init_sequence(const RunOptions& opts, StateStore& state);
/// An existing baseline at the path: init refuses to replace it without --force (Usage);
/// with it, the journal entry of the replacement. Nothing there: no entry. The key pinned for
/// the path survives a forced init: another key (or none) is refused (docs/design.md,
/// Baseline: identity).
Result<std::vector<Acceptance>> init_replacing(const RunOptions& opts, StateStore& state,
                                               const std::optional<SigningKey>& key, Sink& sink);
/// init --force keeps the baseline it replaces as PATH.prev: hard-linked to PATH.prev.tmp
/// before the writer's atomic rename installs the new one (no moment without a baseline),
/// named PATH.prev once that succeeded (keep_previous), dropped when it did not.
Status link_previous(const Bytes& db_path);
Status keep_previous(const Bytes& db_path, bool installed);

}  // namespace fim::detail
