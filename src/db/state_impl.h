// SPDX-License-Identifier: GPL-2.0-or-later
// StateStore's connection, shared by the files that implement its tables (state.cpp,
// state_apt.cpp).
#pragma once

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "sqlite.h"

namespace fim {

struct StateStore::Impl {
  db::DbPtr db;
  Bytes path;

  /// A statement whose errors say "cannot read state '...'" or "cannot write state '...'".
  Result<db::Stmt> stmt(std::string_view sql, bool write = true) const {
    return db::Stmt::prepare(db.get(), sql, Errc::Io,
                             std::string(write ? "cannot write" : "cannot read") + " state " + quote(path));
  }
  /// Prepares, binds `args` to ?1.. and runs `sql` to the end.
  template <class... A>
  Status exec(std::string_view sql, const A&... args) {
    auto st = stmt(sql);
    if (!st) return st.error();
    return st->bind(args...).exec();
  }
  Result<db::Txn> begin() const { return db::Txn::begin(db.get(), "BEGIN IMMEDIATE", Errc::Io); }
};

/// The apt sessions and the writes the watch daemon saw in them (state_apt.cpp).
Status create_apt_session_tables(sqlite3* db);
/// check --fast's clock and hashed-at rows (state_fast.cpp).
Status create_fast_check_tables(sqlite3* db);
/// The watch daemon's coverage per root and its evented paths (state_coverage.cpp).
Status create_coverage_tables(sqlite3* db);
Status create_window_tables(sqlite3* db);
/// The index of kept content versions (state_content.cpp).
Status create_content_tables(sqlite3* db);

}  // namespace fim
