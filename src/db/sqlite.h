// SPDX-License-Identifier: GPL-2.0-or-later
// RAII over SQLite: no bare sqlite3_finalize/close or BEGIN/COMMIT pairs in logic code.
// Only src/db/*.cpp include this header; the rest of fimctl never sees a SQLite type.
#pragma once

#include <sqlite3.h>

#include <concepts>
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

/// A value bound as TEXT (strings and bytes bind as BLOBs; columns that always held TEXT
/// keep it).
struct Text {
  std::string_view s;
};

/// A prepared statement and what its failures say: bind(...) sets ?1.. in order, exec()
/// runs it to the end, step() yields one row, for_each_row() every row. Each call starts
/// from a reset statement, so one Stmt runs many times.
class Stmt {
 public:
  /// `what` begins every error ("cannot write state '...'"); `code` is its Errc.
  static Result<Stmt> prepare(sqlite3* db, std::string_view sql, Errc code, std::string what);

  template <class... A>
  Stmt& bind(const A&... args) {
    sqlite3_reset(st_.get());
    sqlite3_clear_bindings(st_.get());
    int i = 0;
    (bind_one(++i, args), ...);
    bound_ = true;
    return *this;
  }
  /// Steps until SQLite says done (rows of an INSERT ... RETURNING or a PRAGMA are ignored).
  Status exec();
  /// One step: true with a row to read through get(), false when done.
  Result<bool> step();
  /// Calls fn(sqlite3_stmt*) for every row; stops at the first error.
  template <class Fn>
  Status for_each_row(Fn&& fn) {
    if (!bound_) sqlite3_reset(st_.get());
    bound_ = false;
    for (;;) {
      auto row = step();
      if (!row) return row.error();
      if (!*row) return {};
      fn(st_.get());
    }
  }
  sqlite3_stmt* get() const { return st_.get(); }
  Error error() const;

 private:
  Stmt(sqlite3* db, StmtPtr st, Errc code, std::string what)
      : db_(db), st_(std::move(st)), code_(code), what_(std::move(what)) {}
  void bind_one(int i, std::string_view b) {
    // An empty value is an empty BLOB, not NULL.
    sqlite3_bind_blob(st_.get(), i, b.empty() ? "" : b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
  }
  void bind_one(int i, const std::string& b) { bind_one(i, std::string_view(b)); }
  void bind_one(int i, Text t) {
    sqlite3_bind_text(st_.get(), i, t.s.data(), static_cast<int>(t.s.size()), SQLITE_TRANSIENT);
  }
  void bind_one(int i, std::integral auto n) { sqlite3_bind_int64(st_.get(), i, static_cast<sqlite3_int64>(n)); }

  sqlite3* db_;
  StmtPtr st_;
  Errc code_;
  std::string what_;
  bool bound_ = false;  // reset by bind(): for_each_row() must not reset (and unbind) again
};

/// A transaction: begun by begin(), kept by commit(), rolled back when destroyed without
/// one (an error return anywhere between leaves the database as it was and usable).
class Txn {
 public:
  /// `how`: "BEGIN" or "BEGIN IMMEDIATE" (take the write lock now, not at the first write).
  static Result<Txn> begin(sqlite3* db, const char* how, Errc code);
  Txn(Txn&& o) noexcept : db_(std::exchange(o.db_, nullptr)), code_(o.code_) {}
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  ~Txn();
  Status commit();

 private:
  Txn(sqlite3* db, Errc code) : db_(db), code_(code) {}
  sqlite3* db_;  // null once committed or rolled back
  Errc code_;
};

}  // namespace fim::db
