// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: apt sessions (the apt hook's pre .. post) and the writes the watch daemon saw
// during them, classified by writer: the evidence behind written-by-dpkg (docs/design.md,
// Packages). state.db is not signed: this is weak evidence by design, as strong as the host.
#include "state_impl.h"

namespace fim {

namespace {

/// Sessions kept at most (the pre hook drops older ones), writes per session at most (the
/// daemon stops classifying a session past it and marks it lossy).
constexpr int kKeptSessions = 100;

}  // namespace

Status create_apt_session_tables(sqlite3* db) {
  return db::exec(db,
                  "CREATE TABLE IF NOT EXISTS apt_sessions("
                  "  id INTEGER PRIMARY KEY, apt_pid INTEGER NOT NULL, apt_start INTEGER NOT NULL,"
                  "  began_ns INTEGER NOT NULL, ended_ns INTEGER NOT NULL DEFAULT 0,"
                  "  run_id INTEGER NOT NULL DEFAULT 0,"
                  "  watched_from_ns INTEGER NOT NULL DEFAULT 0, watched_to_ns INTEGER NOT NULL DEFAULT 0,"
                  "  lossy INTEGER NOT NULL DEFAULT 0);"
                  "CREATE TABLE IF NOT EXISTS dpkg_writes("
                  "  session INTEGER NOT NULL, path BLOB NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL,"
                  "  at_ns INTEGER NOT NULL, by_dpkg INTEGER NOT NULL, who TEXT NOT NULL,"
                  "  PRIMARY KEY(session, path)"
                  ") WITHOUT ROWID;",
                  Errc::Io);
}

Result<int64_t> StateStore::begin_apt_session(int64_t apt_pid, uint64_t apt_start, int64_t now) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  // A session still open had no post hook (apt killed): its end is unknown, so it vouches
  // for nothing.
  FIM_TRY(impl_->exec("UPDATE apt_sessions SET ended_ns = -1 WHERE ended_ns = 0"));
  FIM_TRY(impl_->exec("INSERT INTO apt_sessions(apt_pid, apt_start, began_ns) VALUES(?, ?, ?)", apt_pid,
                      static_cast<int64_t>(apt_start), now));
  const int64_t id = sqlite3_last_insert_rowid(impl_->db.get());
  static const std::string kOld = "(SELECT id FROM apt_sessions ORDER BY id DESC LIMIT -1 OFFSET ?1)";
  FIM_TRY(impl_->exec("DELETE FROM dpkg_writes WHERE session IN " + kOld, kKeptSessions));
  FIM_TRY(impl_->exec("DELETE FROM apt_sessions WHERE id IN " + kOld, kKeptSessions));
  FIM_TRY(txn->commit());
  return id;
}

Status StateStore::end_apt_session(int64_t apt_pid, uint64_t apt_start, int64_t now) {
  return impl_->exec("UPDATE apt_sessions SET ended_ns = ?3, run_id = coalesce("
                     "(SELECT max(id) FROM apt_runs WHERE at_ns >= apt_sessions.began_ns), 0) "
                     "WHERE ended_ns = 0 AND apt_pid = ?1 AND apt_start = ?2",
                     apt_pid, static_cast<int64_t>(apt_start), now);
}

namespace {

constexpr const char* kSessionCols =
    "id, apt_pid, apt_start, began_ns, ended_ns, run_id, watched_from_ns, watched_to_ns, lossy";

StateStore::AptSession session_at(sqlite3_stmt* s, int first) {
  StateStore::AptSession a;
  a.id = sqlite3_column_int64(s, first);
  a.apt_pid = sqlite3_column_int64(s, first + 1);
  a.apt_start = static_cast<uint64_t>(sqlite3_column_int64(s, first + 2));
  a.began_ns = sqlite3_column_int64(s, first + 3);
  a.ended_ns = sqlite3_column_int64(s, first + 4);
  a.run_id = sqlite3_column_int64(s, first + 5);
  a.watched_from_ns = sqlite3_column_int64(s, first + 6);
  a.watched_to_ns = sqlite3_column_int64(s, first + 7);
  a.lossy = sqlite3_column_int64(s, first + 8) != 0;
  return a;
}

}  // namespace

Result<std::optional<StateStore::AptSession>> StateStore::apt_session(int64_t id) {
  auto st = impl_->stmt(std::string("SELECT ") + kSessionCols + " FROM apt_sessions WHERE id = ?", false);
  if (!st) return st.error();
  auto row = st->bind(id).step();
  if (!row) return row.error();
  if (!*row) return std::optional<AptSession>();
  return std::optional<AptSession>(session_at(st->get(), 0));
}

Result<std::optional<StateStore::AptSession>> StateStore::open_apt_session() {
  auto st = impl_->stmt(std::string("SELECT ") + kSessionCols + " FROM apt_sessions WHERE ended_ns = 0 "
                        "ORDER BY id DESC LIMIT 1", false);
  if (!st) return st.error();
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<AptSession>();
  return std::optional<AptSession>(session_at(st->get(), 0));
}

Status StateStore::watch_apt_session(int64_t id, int64_t from_ns, int64_t to_ns) {
  return impl_->exec("UPDATE apt_sessions SET watched_from_ns = CASE WHEN ?2 <> 0 THEN ?2 ELSE watched_from_ns END, "
                     "watched_to_ns = ?3 WHERE id = ?1",
                     id, from_ns, to_ns);
}

Status StateStore::mark_apt_session_lossy(int64_t id) {
  return impl_->exec("UPDATE apt_sessions SET lossy = 1 WHERE id = ?", id);
}

Status StateStore::add_dpkg_writes(const std::vector<DpkgWrite>& writes) {
  if (writes.empty()) return {};
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  // by_dpkg only ever goes down: one write by anything else and the path is not dpkg's.
  auto up = impl_->stmt("INSERT INTO dpkg_writes(session, path, dev, ino, at_ns, by_dpkg, who) VALUES(?,?,?,?,?,?,?) "
                        "ON CONFLICT(session, path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, "
                        "at_ns = excluded.at_ns, by_dpkg = min(by_dpkg, excluded.by_dpkg), who = excluded.who");
  if (!up) return up.error();
  for (const auto& w : writes)
    FIM_TRY(up->bind(w.session, w.path, static_cast<int64_t>(w.dev), static_cast<int64_t>(w.ino), w.at_ns,
                     static_cast<int64_t>(w.by_dpkg), db::Text{w.who})
                .exec());
  return txn->commit();
}

Result<std::vector<std::pair<StateStore::DpkgWrite, StateStore::AptSession>>> StateStore::dpkg_writes_since(
    int64_t since_ns) {
  auto st = impl_->stmt(std::string("SELECT w.path, w.dev, w.ino, w.at_ns, w.who, ") +
                            "s.id, s.apt_pid, s.apt_start, s.began_ns, s.ended_ns, s.run_id, s.watched_from_ns, "
                            "s.watched_to_ns, s.lossy FROM dpkg_writes w JOIN apt_sessions s ON s.id = w.session "
                            "WHERE w.by_dpkg = 1 AND s.began_ns >= ? AND s.ended_ns > 0 AND s.lossy = 0 AND "
                            "s.watched_from_ns > 0 AND s.watched_to_ns >= s.ended_ns ORDER BY s.id",
                        false);
  if (!st) return st.error();
  std::vector<std::pair<DpkgWrite, AptSession>> out;
  FIM_TRY(st->bind(since_ns).for_each_row([&](sqlite3_stmt* s) {
    DpkgWrite w;
    w.path = Bytes(db::column_blob(s, 0));
    w.dev = static_cast<uint64_t>(sqlite3_column_int64(s, 1));
    w.ino = static_cast<uint64_t>(sqlite3_column_int64(s, 2));
    w.at_ns = sqlite3_column_int64(s, 3);
    w.who = std::string(db::column_blob(s, 4));
    w.by_dpkg = true;
    AptSession a = session_at(s, 5);
    w.session = a.id;
    out.emplace_back(std::move(w), a);
  }));
  return out;
}

Status StateStore::prune_apt_sessions(int64_t before_ns) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  static const std::string kOld = "(SELECT id FROM apt_sessions WHERE ended_ns <> 0 AND "
                                  "max(ended_ns, began_ns) < ?1)";
  FIM_TRY(impl_->exec("DELETE FROM dpkg_writes WHERE session IN " + kOld, before_ns));
  FIM_TRY(impl_->exec("DELETE FROM apt_sessions WHERE id IN " + kOld, before_ns));
  return txn->commit();
}

}  // namespace fim
