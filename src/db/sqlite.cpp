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

Result<Stmt> Stmt::prepare(sqlite3* db, std::string_view sql, Errc code, std::string what) {
  auto st = db::prepare(db, sql, code);
  if (!st) return st.error();
  return Stmt(db, std::move(*st), code, std::move(what));
}

Error Stmt::error() const { return sqlite_error(db_, code_, what_); }

Result<bool> Stmt::step() {
  const int rc = sqlite3_step(st_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return error();
}

Status Stmt::exec() {
  sqlite3_reset(st_.get());
  for (;;) {
    auto row = step();
    if (!row) return row.error();
    if (!*row) return {};
  }
}

Result<Txn> Txn::begin(sqlite3* db, const char* how, Errc code) {
  FIM_TRY(db::exec(db, how, code));
  return Txn(db, code);
}

Status Txn::commit() {
  sqlite3* db = std::exchange(db_, nullptr);
  if (auto st = db::exec(db, "COMMIT", code_); !st) {
    (void)db::exec(db, "ROLLBACK", code_);  // a failed COMMIT may leave the transaction open
    return st;
  }
  return {};
}

Txn::~Txn() {
  if (db_) (void)db::exec(db_, "ROLLBACK", code_);
}

}  // namespace fim::db
