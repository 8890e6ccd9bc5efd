// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>

#include "fim/attr.h"
#include "sqlite.h"

namespace fim::db {

/// "path, status, errno, have, type, mode, ..." in column order; used by writer and reader.
const std::string& entry_columns();
inline constexpr int kFirstAttrColumn = 4;

/// Binds every column of `r` to `st` (parameters 1..4 + kAttrCount).
void bind_record(sqlite3_stmt* st, const Record& r);
/// Reads a row selected with entry_columns() into `r`. False when a value is malformed.
bool read_record(sqlite3_stmt* st, Record* r);

/// Domain separation prefix of the content digest.
inline constexpr std::string_view kContentDigestPrefix = "fimctl-baseline-content-v1\n";

}  // namespace fim::db
