// SPDX-License-Identifier: GPL-2.0-or-later
// diff::compare: which attributes differ between a baseline record and the current one.
// Pure functions over Records; the table in attr.h drives the loop.
#pragma once

#include <string_view>

#include "fim/attr.h"

namespace fim {

enum class ChangeKind : uint8_t { Added, Removed, Changed };
std::string_view change_kind_name(ChangeKind k);

/// The attributes that changed. Normally only attributes collected on both sides are
/// compared (an attribute the policy did not select, or that could not be read now, is not a
/// change). When the type changed, every attribute present on either side that differs is
/// listed, so a file replaced by a symlink shows its lost digest and its new target.
/// With `growing` (a log), a size that grew is not a change; one that shrank is.
AttrMask compare(const Record& old_rec, const Record& new_rec, bool growing = false);

}  // namespace fim
