// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: the writes the watch daemon saw during a maintenance window that names a writer
// (fim/window.h), classified by writer, and the span it watched the window. state.db is not
// signed: as strong as the host, like written-by-dpkg; the window itself is signed.
#include "state_impl.h"

namespace fim {

Status create_window_tables(sqlite3* db) {
  return db::exec(db,
                  "CREATE TABLE IF NOT EXISTS window_watch("
                  "  baseline_id TEXT NOT NULL, window TEXT NOT NULL,"
                  "  watched_from_ns INTEGER NOT NULL, watched_to_ns INTEGER NOT NULL, lossy INTEGER NOT NULL,"
                  "  PRIMARY KEY(baseline_id, window)) WITHOUT ROWID;"
                  "CREATE TABLE IF NOT EXISTS window_writes("
                  "  baseline_id TEXT NOT NULL, window TEXT NOT NULL, path BLOB NOT NULL,"
                  "  at_ns INTEGER NOT NULL, by_writer INTEGER NOT NULL, who TEXT NOT NULL,"
                  "  PRIMARY KEY(baseline_id, window, path)) WITHOUT ROWID;",
                  Errc::Io);
}

Status StateStore::add_window_writes(const std::string& baseline_id, const std::string& window, int64_t from_ns,
                                     int64_t to_ns, bool lossy, const std::vector<WindowWrite>& writes) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  // The span only grows from where the daemon began; lossy never clears.
  FIM_TRY(impl_->exec("INSERT INTO window_watch(baseline_id, window, watched_from_ns, watched_to_ns, lossy) "
                      "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(baseline_id, window) DO UPDATE SET "
                      "watched_to_ns = max(watched_to_ns, excluded.watched_to_ns), lossy = max(lossy, excluded.lossy)",
                      db::Text{baseline_id}, db::Text{window}, from_ns, to_ns, static_cast<int64_t>(lossy)));
  auto up = impl_->stmt("INSERT INTO window_writes(baseline_id, window, path, at_ns, by_writer, who) VALUES(?,?,?,?,?,?) "
                        "ON CONFLICT(baseline_id, window, path) DO UPDATE SET at_ns = excluded.at_ns, "
                        "by_writer = min(by_writer, excluded.by_writer), who = excluded.who");
  if (!up) return up.error();
  for (const auto& w : writes)
    FIM_TRY(up->bind(db::Text{baseline_id}, db::Text{window}, w.path, w.at_ns, static_cast<int64_t>(w.by_writer),
                     db::Text{w.who})
                .exec());
  return txn->commit();
}

Result<std::vector<StateStore::WindowWrite>> StateStore::window_writes(const std::string& baseline_id) {
  auto st = impl_->stmt("SELECT w.window, w.path, w.at_ns, w.by_writer, w.who, s.watched_from_ns, s.watched_to_ns, "
                        "s.lossy FROM window_writes w JOIN window_watch s ON s.baseline_id = w.baseline_id AND "
                        "s.window = w.window WHERE w.baseline_id = ? ORDER BY w.window, w.path",
                        false);
  if (!st) return st.error();
  std::vector<WindowWrite> out;
  FIM_TRY(st->bind(db::Text{baseline_id}).for_each_row([&](sqlite3_stmt* s) {
    WindowWrite w;
    w.window = std::string(db::column_blob(s, 0));
    w.path = Bytes(db::column_blob(s, 1));
    w.at_ns = sqlite3_column_int64(s, 2);
    w.by_writer = sqlite3_column_int64(s, 3) != 0;
    w.who = std::string(db::column_blob(s, 4));
    w.watched_from_ns = sqlite3_column_int64(s, 5);
    w.watched_to_ns = sqlite3_column_int64(s, 6);
    w.lossy = sqlite3_column_int64(s, 7) != 0;
    out.push_back(std::move(w));
  }));
  return out;
}

}  // namespace fim
