// SPDX-License-Identifier: GPL-2.0-or-later
// The checks a [[rule]] regex passes before glibc compiles it. Private to rules/.
#pragma once

#include <string_view>

#include "fim/base/bytes.h"
#include "fim/base/result.h"

namespace fim::rules {

/// Refuses what would make glibc's regcomp or regexec blow up (back-references, long
/// patterns, repetitions whose expansion grows too far), a ')' that would close fimctl's own
/// anchoring group, and a pattern with no fixed beginning; returns that beginning (the
/// literal prefix, which says where the walk starts).
Result<Bytes> check_regex(std::string_view rx);
/// The size and back-reference checks of check_regex alone (content_mask: no fixed beginning).
Status check_regex_size(std::string_view rx);

}  // namespace fim::rules
