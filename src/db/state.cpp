// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: what fimctl must remember between runs but must not sign (DESIGN.md, Files).
// Today: the highest baseline sequence seen per baseline path, so an older, validly signed
// baseline copied back over the current one is refused (notes/reliability.md T08).
#include <fcntl.h>
#include <sys/stat.h>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "sqlite.h"

namespace fim {

struct StateStore::Impl {
  db::DbPtr db;
  Bytes path;
};

StateStore::StateStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateStore::~StateStore() = default;

Result<std::unique_ptr<StateStore>> StateStore::open(const Bytes& dir) {
  auto impl = std::make_unique<Impl>();
  impl->path = join_path(dir, "state.db");
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(impl->path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK)
    return make_error(Errc::Io, "cannot open state '" + escape_terminal(impl->path) + "': " +
                                    (raw ? sqlite3_errmsg(raw) : "out of memory"));
  ::chmod(impl->path.c_str(), 0600);
  sqlite3_busy_timeout(raw, 5000);
  FIM_TRY(db::exec(raw,
                   "PRAGMA trusted_schema=OFF;"
                   "CREATE TABLE IF NOT EXISTS sequence("
                   "  baseline BLOB PRIMARY KEY,"   // absolute path of the baseline file
                   "  seq INTEGER NOT NULL,"        // highest sequence written or verified
                   "  content_sha256 TEXT NOT NULL" // the baseline that had it
                   ") WITHOUT ROWID;"
                   "CREATE TABLE IF NOT EXISTS report_of("
                   "  baseline BLOB PRIMARY KEY,"
                   "  content_sha256 TEXT NOT NULL" // the baseline the last report compared with
                   ") WITHOUT ROWID;"
                   "CREATE TABLE IF NOT EXISTS report("
                   "  baseline BLOB NOT NULL, path BLOB NOT NULL,"
                   "  kind TEXT NOT NULL, old_row TEXT NOT NULL, new_row TEXT NOT NULL, rule TEXT NOT NULL,"
                   "  PRIMARY KEY(baseline, path)"
                   ") WITHOUT ROWID",
                   Errc::Io));
  return std::unique_ptr<StateStore>(new StateStore(std::move(impl)));
}

Result<uint64_t> StateStore::last_sequence(const Bytes& baseline) {
  auto st = db::prepare(impl_->db.get(), "SELECT seq FROM sequence WHERE baseline = ?", Errc::Io);
  if (!st) return st.error();
  sqlite3_bind_blob(st->get(), 1, baseline.data(), static_cast<int>(baseline.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(st->get());
  if (rc == SQLITE_ROW) return static_cast<uint64_t>(sqlite3_column_int64(st->get(), 0));
  if (rc == SQLITE_DONE) return uint64_t{0};
  return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot read state '" + escape_terminal(impl_->path) + "'");
}

Status StateStore::note_sequence(const Bytes& baseline, uint64_t sequence, const std::string& content_sha256) {
  auto st = db::prepare(impl_->db.get(),
                        "INSERT INTO sequence(baseline, seq, content_sha256) VALUES(?1, ?2, ?3) "
                        "ON CONFLICT(baseline) DO UPDATE SET seq = ?2, content_sha256 = ?3 WHERE ?2 > seq",
                        Errc::Io);
  if (!st) return st.error();
  sqlite3_bind_blob(st->get(), 1, baseline.data(), static_cast<int>(baseline.size()), SQLITE_STATIC);
  sqlite3_bind_int64(st->get(), 2, static_cast<sqlite3_int64>(sequence));
  sqlite3_bind_text(st->get(), 3, content_sha256.c_str(), -1, SQLITE_STATIC);
  if (sqlite3_step(st->get()) != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot write state '" + escape_terminal(impl_->path) + "'");
  return {};
}

namespace {

void bind_bytes(sqlite3_stmt* st, int col, std::string_view b) {
  sqlite3_bind_blob(st, col, b.empty() ? "" : b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
}

}  // namespace

Status StateStore::begin_report(const Bytes& baseline) {
  FIM_TRY(db::exec(impl_->db.get(), "BEGIN IMMEDIATE", Errc::Io));
  auto st = db::prepare(impl_->db.get(), "DELETE FROM report WHERE baseline = ?", Errc::Io);
  if (!st) return st.error();
  bind_bytes(st->get(), 1, baseline);
  if (sqlite3_step(st->get()) != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot write state '" + escape_terminal(impl_->path) + "'");
  return {};
}

Status StateStore::add_reported(const Bytes& baseline, const Reported& r) {
  auto st = db::prepare(impl_->db.get(),
                        "INSERT OR REPLACE INTO report(baseline, path, kind, old_row, new_row, rule) VALUES(?,?,?,?,?,?)",
                        Errc::Io);
  if (!st) return st.error();
  bind_bytes(st->get(), 1, baseline);
  bind_bytes(st->get(), 2, r.path);
  sqlite3_bind_text(st->get(), 3, r.kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st->get(), 4, r.old_row.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st->get(), 5, r.new_row.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st->get(), 6, r.rule.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st->get()) != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot write state '" + escape_terminal(impl_->path) + "'");
  return {};
}

Status StateStore::end_report(const Bytes& baseline, const std::string& content_sha256, bool keep) {
  if (!keep) return db::exec(impl_->db.get(), "ROLLBACK", Errc::Io);
  auto st = db::prepare(impl_->db.get(), "INSERT OR REPLACE INTO report_of(baseline, content_sha256) VALUES(?, ?)", Errc::Io);
  if (!st) return st.error();
  bind_bytes(st->get(), 1, baseline);
  sqlite3_bind_text(st->get(), 2, content_sha256.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st->get()) != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot write state '" + escape_terminal(impl_->path) + "'");
  return db::exec(impl_->db.get(), "COMMIT", Errc::Io);
}

Result<std::vector<StateStore::Reported>> StateStore::load_report(const Bytes& baseline, std::string* content_sha256) {
  content_sha256->clear();
  {
    auto st = db::prepare(impl_->db.get(), "SELECT content_sha256 FROM report_of WHERE baseline = ?", Errc::Io);
    if (!st) return st.error();
    bind_bytes(st->get(), 1, baseline);
    if (sqlite3_step(st->get()) == SQLITE_ROW) *content_sha256 = std::string(db::column_blob(st->get(), 0));
  }
  std::vector<Reported> out;
  auto st = db::prepare(impl_->db.get(),
                        "SELECT path, kind, old_row, new_row, rule FROM report WHERE baseline = ? ORDER BY path", Errc::Io);
  if (!st) return st.error();
  bind_bytes(st->get(), 1, baseline);
  int rc;
  while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) {
    Reported r;
    r.path = Bytes(db::column_blob(st->get(), 0));
    r.kind = std::string(db::column_blob(st->get(), 1));
    r.old_row = std::string(db::column_blob(st->get(), 2));
    r.new_row = std::string(db::column_blob(st->get(), 3));
    r.rule = std::string(db::column_blob(st->get(), 4));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot read state '" + escape_terminal(impl_->path) + "'");
  return out;
}

Status StateStore::accepted(const Bytes& baseline, const std::vector<Bytes>& paths, const std::string& new_content_sha256) {
  FIM_TRY(db::exec(impl_->db.get(), "BEGIN IMMEDIATE", Errc::Io));
  auto del = db::prepare(impl_->db.get(), "DELETE FROM report WHERE baseline = ? AND path = ?", Errc::Io);
  if (!del) return del.error();
  for (const auto& p : paths) {
    bind_bytes(del->get(), 1, baseline);
    bind_bytes(del->get(), 2, p);
    if (sqlite3_step(del->get()) != SQLITE_DONE)
      return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot write state '" + escape_terminal(impl_->path) + "'");
    sqlite3_reset(del->get());
  }
  return end_report(baseline, new_content_sha256, true);
}

}  // namespace fim
