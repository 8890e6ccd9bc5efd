// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: the index of kept content versions (docs/design.md, Content store): per baseline
// and sequence, which version of each file was kept, so `show --at SEQ` finds it and pruning
// knows what is still referenced. The store's files are named by the file's SHA-256, so the
// current baseline's rows find their versions without it.
#include "state_impl.h"

namespace fim {

Status create_content_tables(sqlite3* db) {
  return db::exec(db,
                  "CREATE TABLE IF NOT EXISTS content_seqs("
                  "  baseline BLOB NOT NULL, seq INTEGER NOT NULL, at_ns INTEGER NOT NULL,"
                  "  PRIMARY KEY(baseline, seq)"
                  ") WITHOUT ROWID;"
                  "CREATE TABLE IF NOT EXISTS content_versions("
                  "  baseline BLOB NOT NULL, seq INTEGER NOT NULL, path BLOB NOT NULL,"
                  "  sha256 TEXT NOT NULL, why TEXT NOT NULL,"
                  "  PRIMARY KEY(baseline, seq, path)"
                  ") WITHOUT ROWID",
                  Errc::Io);
}

Status StateStore::set_content_versions(const Bytes& baseline, uint64_t seq, const std::vector<ContentVersion>& v,
                                        size_t keep) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  const auto s = static_cast<int64_t>(seq);
  FIM_TRY(impl_->exec("DELETE FROM content_versions WHERE baseline = ?1 AND seq = ?2", baseline, s));
  FIM_TRY(impl_->exec("INSERT OR REPLACE INTO content_seqs(baseline, seq, at_ns) VALUES(?1, ?2, ?3)", baseline, s,
                      now_ns()));
  auto ins = impl_->stmt("INSERT OR REPLACE INTO content_versions(baseline, seq, path, sha256, why) "
                         "VALUES(?1, ?2, ?3, ?4, ?5)");
  if (!ins) return ins.error();
  for (const ContentVersion& c : v)
    FIM_TRY(ins->bind(baseline, s, c.path, db::Text{c.sha256}, db::Text{c.why}).exec());
  // The oldest sequences beyond `keep` go, with their rows.
  const auto k = static_cast<int64_t>(keep);
  FIM_TRY(impl_->exec("DELETE FROM content_versions WHERE baseline = ?1 AND seq NOT IN "
                      "(SELECT seq FROM content_seqs WHERE baseline = ?1 ORDER BY seq DESC LIMIT ?2)",
                      baseline, k));
  FIM_TRY(impl_->exec("DELETE FROM content_seqs WHERE baseline = ?1 AND seq NOT IN "
                      "(SELECT seq FROM content_seqs WHERE baseline = ?1 ORDER BY seq DESC LIMIT ?2)",
                      baseline, k));
  return txn->commit();
}

Result<bool> StateStore::content_sequence(const Bytes& baseline, uint64_t seq) {
  auto st = impl_->stmt("SELECT 1 FROM content_seqs WHERE baseline = ? AND seq = ?", false);
  if (!st) return st.error();
  auto row = st->bind(baseline, static_cast<int64_t>(seq)).step();
  if (!row) return row.error();
  return *row;
}

Result<std::optional<StateStore::ContentVersion>> StateStore::content_version(const Bytes& baseline, uint64_t seq,
                                                                              const Bytes& path) {
  auto st = impl_->stmt("SELECT sha256, why FROM content_versions WHERE baseline = ? AND seq = ? AND path = ?", false);
  if (!st) return st.error();
  auto row = st->bind(baseline, static_cast<int64_t>(seq), path).step();
  if (!row) return row.error();
  if (!*row) return std::optional<ContentVersion>();
  ContentVersion c{path, std::string(db::column_blob(st->get(), 0)), std::string(db::column_blob(st->get(), 1))};
  return std::optional<ContentVersion>(std::move(c));
}

Status StateStore::for_each_content_version(const Bytes& baseline, uint64_t seq,
                                            const std::function<void(ContentVersion)>& each) {
  auto st = impl_->stmt("SELECT path, sha256, why FROM content_versions WHERE baseline = ? AND seq = ?", false);
  if (!st) return st.error();
  return st->bind(baseline, static_cast<int64_t>(seq)).for_each_row([&](sqlite3_stmt* s) {
    each(ContentVersion{Bytes(db::column_blob(s, 0)), std::string(db::column_blob(s, 1)), std::string(db::column_blob(s, 2))});
  });
}

Status StateStore::for_each_content_sha(const Bytes& baseline, const std::function<void(const std::string&)>& each) {
  auto st = impl_->stmt("SELECT DISTINCT sha256 FROM content_versions WHERE baseline = ? AND sha256 != ''", false);
  if (!st) return st.error();
  return st->bind(baseline).for_each_row([&](sqlite3_stmt* s) { each(std::string(db::column_blob(s, 0))); });
}

}  // namespace fim
