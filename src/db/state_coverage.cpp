// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: the watch daemon's continuous coverage (docs/design.md, Real time: coverage).
// Per root, when its unbroken coverage began and which daemon (pid) holds it; and the paths
// events named since then. Written by the daemon (batched, once a tick), read by
// watched_roots() only together with a live daemon's answer: rows a dead daemon left vouch
// for nothing, and a new daemon ends them at its start.
#include "fim/coverage_rows.h"
#include "state_impl.h"

namespace fim {

Status create_coverage_tables(sqlite3* db) {
  // New tables only (CREATE ... IF NOT EXISTS): an older state.db gains them as it is opened.
  return db::exec(db,
                  "CREATE TABLE IF NOT EXISTS coverage("
                  "  baseline BLOB NOT NULL, root BLOB NOT NULL, since_ns INTEGER NOT NULL, pid INTEGER NOT NULL,"
                  "  PRIMARY KEY(baseline, root)"
                  ") WITHOUT ROWID;"
                  "CREATE TABLE IF NOT EXISTS evented("
                  "  baseline BLOB NOT NULL, root BLOB NOT NULL, path BLOB NOT NULL,"
                  "  PRIMARY KEY(baseline, root, path)"
                  ") WITHOUT ROWID;",
                  Errc::Io);
}

Status CoverageRows::start(const Bytes& baseline, const Bytes& root, int64_t since_ns, int64_t pid) {
  auto txn = s_.impl_->begin();
  if (!txn) return txn.error();
  FIM_TRY(s_.impl_->exec("DELETE FROM evented WHERE baseline = ? AND root = ?", baseline, root));
  FIM_TRY(s_.impl_->exec("INSERT OR REPLACE INTO coverage(baseline, root, since_ns, pid) VALUES(?, ?, ?, ?)", baseline,
                      root, since_ns, pid));
  return txn->commit();
}

Status CoverageRows::end(const Bytes& baseline, const Bytes& root) {
  auto txn = s_.impl_->begin();
  if (!txn) return txn.error();
  // The coverage row first: a reader in between sees no coverage, never coverage without
  // its evented paths (both go in this one transaction anyway).
  if (root.empty()) {
    FIM_TRY(s_.impl_->exec("DELETE FROM coverage WHERE baseline = ?", baseline));
    FIM_TRY(s_.impl_->exec("DELETE FROM evented WHERE baseline = ?", baseline));
  } else {
    FIM_TRY(s_.impl_->exec("DELETE FROM coverage WHERE baseline = ? AND root = ?", baseline, root));
    FIM_TRY(s_.impl_->exec("DELETE FROM evented WHERE baseline = ? AND root = ?", baseline, root));
  }
  return txn->commit();
}

Result<std::map<Bytes, uint64_t>> CoverageRows::add_evented(const Bytes& baseline,
                                                            const std::map<Bytes, std::set<Bytes>>& paths) {
  std::map<Bytes, uint64_t> added;
  if (paths.empty()) return added;
  auto txn = s_.impl_->begin();
  if (!txn) return txn.error();
  auto ins = s_.impl_->stmt("INSERT OR IGNORE INTO evented(baseline, root, path) VALUES(?, ?, ?)");
  if (!ins) return ins.error();
  for (const auto& [root, set] : paths) {
    uint64_t& n = added[root];
    for (const auto& p : set) {
      FIM_TRY(ins->bind(baseline, root, p).exec());
      n += static_cast<uint64_t>(sqlite3_changes(s_.impl_->db.get()));
    }
  }
  FIM_TRY(txn->commit());
  return added;
}

Result<std::optional<CoverageRows::Covered>> CoverageRows::get(const Bytes& baseline, const Bytes& root,
                                                               std::vector<Bytes>* evented) {
  // One read transaction: a coverage restarted in between (its evented paths cleared) is
  // never paired with the old row.
  auto txn = db::Txn::begin(s_.impl_->db.get(), "BEGIN", Errc::Io);
  if (!txn) return txn.error();
  auto st = s_.impl_->stmt("SELECT since_ns, pid FROM coverage WHERE baseline = ? AND root = ?", false);
  if (!st) return st.error();
  auto row = st->bind(baseline, root).step();
  if (!row) return row.error();
  if (!*row) return std::optional<Covered>();
  Covered c{sqlite3_column_int64(st->get(), 0), sqlite3_column_int64(st->get(), 1)};
  evented->clear();
  auto ev = s_.impl_->stmt("SELECT path FROM evented WHERE baseline = ? AND root = ? ORDER BY path", false);
  if (!ev) return ev.error();
  FIM_TRY(ev->bind(baseline, root).for_each_row([&](sqlite3_stmt* s) { evented->emplace_back(db::column_blob(s, 0)); }));
  FIM_TRY(txn->commit());
  return std::optional<Covered>(c);
}

}  // namespace fim
