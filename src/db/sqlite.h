// SPDX-License-Identifier: GPL-2.0-or-later
// RAII over SQLite (docs/design.md, Conventions 1): no bare sqlite3_finalize/close in logic code.
// Only src/db/*.cpp include this header; the rest of fimctl never sees a SQLite type.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>

#include "fim/base/fd.h"
#include "fim/base/result.h"

namespace fim::db {

using DbPtr = std::unique_ptr<sqlite3, CDeleter<sqlite3_close_v2>>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, CDeleter<sqlite3_finalize>>;

/// An error naming the database file and SQLite's message.
Error sqlite_error(sqlite3* db, Errc code, const std::string& what);

Status exec(sqlite3* db, const char* sql, Errc code = Errc::Database);
Result<StmtPtr> prepare(sqlite3* db, std::string_view sql, Errc code = Errc::Database);

inline std::string_view column_blob(sqlite3_stmt* st, int col) {
  const void* p = sqlite3_column_blob(st, col);
  const int n = sqlite3_column_bytes(st, col);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string_view{};
}

}  // namespace fim::db
