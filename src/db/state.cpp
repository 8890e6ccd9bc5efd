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

}  // namespace fim
