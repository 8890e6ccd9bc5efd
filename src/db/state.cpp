// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: what fimctl must remember between runs but must not sign (docs/design.md, Formats):
// the highest baseline sequence seen per baseline path (an older, validly signed baseline
// copied back is refused: docs/design.md, Threat model, T08), the last report, the watch
// daemon's coverage (dirty roots, gaps, liveness) and the apt hook's runs.
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
                   ") WITHOUT ROWID;"
                   // The watch daemon's coverage (docs/design.md, Real time): roots whose events
                   // may have been lost, until a rescan that began after the loss finishes.
                   "CREATE TABLE IF NOT EXISTS dirty("
                   "  baseline BLOB NOT NULL, root BLOB NOT NULL,"
                   "  first_ns INTEGER NOT NULL, marked_ns INTEGER NOT NULL, reason TEXT NOT NULL,"
                   "  PRIMARY KEY(baseline, root)"
                   ") WITHOUT ROWID;"
                   "CREATE TABLE IF NOT EXISTS gaps("
                   "  id INTEGER PRIMARY KEY, baseline BLOB NOT NULL, start_ns INTEGER NOT NULL,"
                   "  end_ns INTEGER NOT NULL, reason TEXT NOT NULL);"
                   "CREATE TABLE IF NOT EXISTS daemon("
                   "  baseline BLOB PRIMARY KEY, pid INTEGER NOT NULL, started_ns INTEGER NOT NULL,"
                   "  heartbeat_ns INTEGER NOT NULL, stopped_ns INTEGER NOT NULL"
                   ") WITHOUT ROWID;"
                   // The apt hook (share/apt): package versions before a dpkg run, and
                   // what each run changed ("name:arch old new" lines).
                   "CREATE TABLE IF NOT EXISTS apt_snapshot(pkg TEXT PRIMARY KEY, version TEXT NOT NULL) WITHOUT ROWID;"
                   "CREATE TABLE IF NOT EXISTS apt_runs("
                   "  id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, changes TEXT NOT NULL)",
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

/// A statement argument: a blob, or an integer.
struct StateStore::Arg {
  Arg(const std::string& b) : blob(b), is_int(false) {}
  Arg(int64_t i) : num(i), is_int(true) {}
  std::string_view blob;
  int64_t num = 0;
  bool is_int;
};

/// Binds `args` to ?1.. and steps once.
Status StateStore::exec(const char* sql, std::initializer_list<Arg> args) {
  auto st = db::prepare(impl_->db.get(), sql, Errc::Io);
  if (!st) return st.error();
  int i = 1;
  for (const Arg& a : args) {
    if (a.is_int) sqlite3_bind_int64(st->get(), i++, a.num);
    else bind_bytes(st->get(), i++, a.blob);
  }
  const int rc = sqlite3_step(st->get());
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot write state '" + escape_terminal(impl_->path) + "'");
  return {};
}

Status StateStore::mark_dirty(const Bytes& baseline, const Bytes& root, const std::string& reason, int64_t at_ns) {
  return exec("INSERT INTO dirty(baseline, root, first_ns, marked_ns, reason) VALUES(?1, ?2, ?3, ?3, ?4) "
              "ON CONFLICT(baseline, root) DO UPDATE SET marked_ns = max(marked_ns, ?3), reason = ?4",
              {baseline, root, at_ns, reason});
}

Status StateStore::clear_dirty(const Bytes& baseline, const Bytes& root, int64_t scan_started_ns) {
  return exec("DELETE FROM dirty WHERE baseline = ?1 AND root = ?2 AND marked_ns <= ?3", {baseline, root, scan_started_ns});
}

Result<std::vector<StateStore::Dirty>> StateStore::dirty(const Bytes& baseline) {
  auto st = db::prepare(impl_->db.get(), "SELECT root, first_ns, marked_ns, reason FROM dirty WHERE baseline = ? ORDER BY root", Errc::Io);
  if (!st) return st.error();
  bind_bytes(st->get(), 1, baseline);
  std::vector<Dirty> out;
  int rc;
  while ((rc = sqlite3_step(st->get())) == SQLITE_ROW)
    out.push_back({Bytes(db::column_blob(st->get(), 0)), sqlite3_column_int64(st->get(), 1), sqlite3_column_int64(st->get(), 2),
                   std::string(db::column_blob(st->get(), 3))});
  if (rc != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot read state '" + escape_terminal(impl_->path) + "'");
  return out;
}

Status StateStore::add_gap(const Bytes& baseline, const Gap& g) {
  FIM_TRY(exec("INSERT INTO gaps(baseline, start_ns, end_ns, reason) VALUES(?, ?, ?, ?)", {baseline, g.start_ns, g.end_ns, g.reason}));
  // Keep the last 1000 per baseline: a history for 'status', not an archive.
  return exec("DELETE FROM gaps WHERE baseline = ?1 AND id NOT IN (SELECT id FROM gaps WHERE baseline = ?1 ORDER BY id DESC LIMIT 1000)",
              {baseline});
}

Result<std::vector<StateStore::Gap>> StateStore::gaps(const Bytes& baseline, int limit) {
  auto st = db::prepare(impl_->db.get(),
                        "SELECT start_ns, end_ns, reason FROM (SELECT * FROM gaps WHERE baseline = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                        Errc::Io);
  if (!st) return st.error();
  bind_bytes(st->get(), 1, baseline);
  sqlite3_bind_int(st->get(), 2, limit);
  std::vector<Gap> out;
  int rc;
  while ((rc = sqlite3_step(st->get())) == SQLITE_ROW)
    out.push_back({sqlite3_column_int64(st->get(), 0), sqlite3_column_int64(st->get(), 1), std::string(db::column_blob(st->get(), 2))});
  if (rc != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot read state '" + escape_terminal(impl_->path) + "'");
  return out;
}

Status StateStore::daemon_beat(const Bytes& baseline, int64_t pid, int64_t started_ns, int64_t now, bool stopped) {
  return exec("INSERT OR REPLACE INTO daemon(baseline, pid, started_ns, heartbeat_ns, stopped_ns) VALUES(?, ?, ?, ?, ?)",
              {baseline, pid, started_ns, now, stopped ? now : int64_t{0}});
}

Result<std::optional<StateStore::Daemon>> StateStore::daemon(const Bytes& baseline) {
  auto st = db::prepare(impl_->db.get(), "SELECT pid, started_ns, heartbeat_ns, stopped_ns FROM daemon WHERE baseline = ?", Errc::Io);
  if (!st) return st.error();
  bind_bytes(st->get(), 1, baseline);
  const int rc = sqlite3_step(st->get());
  if (rc == SQLITE_DONE) return std::optional<Daemon>();
  if (rc != SQLITE_ROW)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot read state '" + escape_terminal(impl_->path) + "'");
  return std::optional<Daemon>(Daemon{sqlite3_column_int64(st->get(), 0), sqlite3_column_int64(st->get(), 1),
                                      sqlite3_column_int64(st->get(), 2), sqlite3_column_int64(st->get(), 3)});
}

Status StateStore::set_apt_snapshot(const std::map<std::string, std::string>& versions) {
  FIM_TRY(db::exec(impl_->db.get(), "BEGIN IMMEDIATE; DELETE FROM apt_snapshot", Errc::Io));
  for (const auto& [pkg, version] : versions) {
    if (auto st = exec("INSERT INTO apt_snapshot(pkg, version) VALUES(?, ?)", {pkg, version}); !st) {
      (void)db::exec(impl_->db.get(), "ROLLBACK", Errc::Io);
      return st;
    }
  }
  return db::exec(impl_->db.get(), "COMMIT", Errc::Io);
}

Result<std::map<std::string, std::string>> StateStore::apt_snapshot() {
  auto st = db::prepare(impl_->db.get(), "SELECT pkg, version FROM apt_snapshot", Errc::Io);
  if (!st) return st.error();
  std::map<std::string, std::string> out;
  int rc;
  while ((rc = sqlite3_step(st->get())) == SQLITE_ROW)
    out[std::string(db::column_blob(st->get(), 0))] = std::string(db::column_blob(st->get(), 1));
  if (rc != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot read state '" + escape_terminal(impl_->path) + "'");
  return out;
}

Status StateStore::add_apt_run(int64_t at_ns, const std::string& changes) {
  return exec("INSERT INTO apt_runs(at_ns, changes) VALUES(?, ?)", {at_ns, changes});
}

Result<std::vector<StateStore::AptRun>> StateStore::apt_runs_since(int64_t since_ns) {
  auto st = db::prepare(impl_->db.get(), "SELECT id, at_ns, changes FROM apt_runs WHERE at_ns >= ? ORDER BY id", Errc::Io);
  if (!st) return st.error();
  sqlite3_bind_int64(st->get(), 1, since_ns);
  std::vector<AptRun> out;
  int rc;
  while ((rc = sqlite3_step(st->get())) == SQLITE_ROW)
    out.push_back({sqlite3_column_int64(st->get(), 0), sqlite3_column_int64(st->get(), 1),
                   std::string(db::column_blob(st->get(), 2))});
  if (rc != SQLITE_DONE)
    return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot read state '" + escape_terminal(impl_->path) + "'");
  return out;
}

}  // namespace fim
