// SPDX-License-Identifier: GPL-2.0-or-later
#include "sqlite.h"

namespace fim::db {

Error sqlite_error(sqlite3* db, Errc code, const std::string& what) {
  std::string msg = what;
  if (db) {
    msg += ": ";
    msg += sqlite3_errmsg(db);
  }
  return make_error(code, std::move(msg));
}

Status exec(sqlite3* db, const char* sql, Errc code) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return make_error(code, std::string("SQLite: ") + msg);
  }
  return {};
}

Result<StmtPtr> prepare(sqlite3* db, std::string_view sql, Errc code) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &st, nullptr) != SQLITE_OK)
    return sqlite_error(db, code, "cannot prepare a baseline query");
  return StmtPtr(st);
}

}  // namespace fim::db
