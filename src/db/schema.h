// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>

#include "fim/attr.h"
#include "sqlite.h"

namespace fim::db {

/// What a schema version holds. Attribute ids are append-only, so a version's attribute
/// columns are the first `attrs` rows of FIM_ATTRIBUTES. Adding an attribute is its row there,
/// its collector and a row in kSchemaVersions (schema.cpp) with the new count: a baseline of
/// the version before is then migrated ('fimctl migrate') instead of recorded again.
struct SchemaVersion {
  int version;
  size_t attrs;  ///< attribute columns: the first `attrs` of FIM_ATTRIBUTES
  bool journal;  ///< the acceptance journal table, covered by the content digest
  bool alternatives = false;  ///< the alternatives table (accept --also), covered when not empty
};
/// The row of `version`; null for a version this build does not know.
const SchemaVersion* schema_version(int version);
/// The oldest version this build can migrate.
inline constexpr int kOldestSchemaVersion = 1;

/// "path, status, errno, have, type, mode, ..." in column order; used by writer and reader.
std::string entry_columns(const SchemaVersion& v);
inline constexpr int kFirstAttrColumn = 4;
/// "INSERT INTO table(<entry_columns of this build's schema><extra>) VALUES(?,...)": one
/// parameter per column, `extra` (", n") included; bind_record() binds the entry's.
std::string insert_record_sql(std::string_view table, std::string_view extra = {}, size_t extra_count = 0);

/// Binds every column of `r` to `st` (parameters 1..4 + kAttrCount).
void bind_record(sqlite3_stmt* st, const Record& r);
/// Reads a row selected with entry_columns(v) into `r`. False when a value is malformed.
bool read_record(sqlite3_stmt* st, const SchemaVersion& v, Record* r);
/// Whether a baseline of `v` is read as it is, without 'fimctl migrate': it has every
/// attribute column and the journal, and lacks only tables that would be empty in it.
bool readable_as_is(const SchemaVersion& v);

/// Domain separation prefix of the content digest.
inline constexpr std::string_view kContentDigestPrefix = "fimctl-baseline-content-v1\n";

}  // namespace fim::db
