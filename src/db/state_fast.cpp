// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: what check --fast needs to know of earlier runs (docs/design.md, Evidence): the
// last check's clock (realtime, realtime minus boottime, boot id) to tell a clock step, when a
// run last hashed every entry, and when fast runs hashed single entries since. Never in the
// signed baseline: a host that signs off-host could not re-sign it every run. state.db is not
// signed, so a row lost or removed only makes entries due sooner; a row an intruder adds is
// the same intruder who can write the block device, which the rolling re-hash bounds.
#include "state_impl.h"

namespace fim {

Status create_fast_check_tables(sqlite3* db) {
  return db::exec(db,
                  "CREATE TABLE IF NOT EXISTS check_clock("
                  "  baseline BLOB PRIMARY KEY, baseline_id TEXT NOT NULL,"
                  "  realtime_ns INTEGER NOT NULL, offset_ns INTEGER NOT NULL, boot_id TEXT NOT NULL,"
                  "  full_ns INTEGER NOT NULL,"    // every entry hashed then (0: not known)
                  "  stat_void TEXT NOT NULL"      // why stat evidence is withdrawn ('' : it is not)
                  ") WITHOUT ROWID;"
                  "CREATE TABLE IF NOT EXISTS hashed("
                  "  baseline BLOB NOT NULL, path BLOB NOT NULL, at_ns INTEGER NOT NULL,"
                  "  PRIMARY KEY(baseline, path)"
                  ") WITHOUT ROWID",
                  Errc::Io);
}

Result<std::optional<StateStore::CheckClock>> StateStore::check_clock(const Bytes& baseline) {
  auto st = impl_->stmt("SELECT baseline_id, realtime_ns, offset_ns, boot_id, full_ns, stat_void "
                        "FROM check_clock WHERE baseline = ?", false);
  if (!st) return st.error();
  auto row = st->bind(baseline).step();
  if (!row) return row.error();
  if (!*row) return std::optional<CheckClock>();
  sqlite3_stmt* s = st->get();
  CheckClock c;
  c.baseline_id = std::string(db::column_blob(s, 0));
  c.realtime_ns = sqlite3_column_int64(s, 1);
  c.offset_ns = sqlite3_column_int64(s, 2);
  c.boot_id = std::string(db::column_blob(s, 3));
  c.full_ns = sqlite3_column_int64(s, 4);
  c.stat_void = std::string(db::column_blob(s, 5));
  return std::optional<CheckClock>(std::move(c));
}

Status StateStore::set_check_clock(const Bytes& baseline, const CheckClock& c, const std::vector<Bytes>& hashed,
                                   int64_t hashed_ns) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  FIM_TRY(impl_->exec("INSERT OR REPLACE INTO check_clock(baseline, baseline_id, realtime_ns, offset_ns, boot_id, "
                      "full_ns, stat_void) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      baseline, db::Text{c.baseline_id}, c.realtime_ns, c.offset_ns, db::Text{c.boot_id}, c.full_ns,
                      db::Text{c.stat_void}));
  // Rows older than a run that hashed everything say nothing more than full_ns does.
  FIM_TRY(impl_->exec("DELETE FROM hashed WHERE baseline = ?1 AND at_ns <= ?2", baseline, c.full_ns));
  auto ins = impl_->stmt("INSERT OR REPLACE INTO hashed(baseline, path, at_ns) VALUES(?1, ?2, ?3)");
  if (!ins) return ins.error();
  for (const Bytes& p : hashed) FIM_TRY(ins->bind(baseline, p, hashed_ns).exec());
  return txn->commit();
}

Status StateStore::for_each_hashed(const Bytes& baseline, const std::function<void(const Bytes&, int64_t)>& each) {
  auto st = impl_->stmt("SELECT path, at_ns FROM hashed WHERE baseline = ?", false);
  if (!st) return st.error();
  return st->bind(baseline).for_each_row(
      [&](sqlite3_stmt* s) { each(Bytes(db::column_blob(s, 0)), sqlite3_column_int64(s, 1)); });
}

}  // namespace fim
