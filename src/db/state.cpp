// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: what fimctl must remember between runs but must not sign (docs/design.md,
// Baseline): per baseline path, the highest sequence seen (an older, validly signed baseline
// copied back is refused), the last report (what 'accept' may accept) and the last 20 with
// their ids (what 'accept --report ID' may accept), the watch daemon's
// coverage (dirty roots, gaps, liveness; covered-since per root in state_coverage.cpp); and
// the apt hook's package snapshots and runs.
#include <fcntl.h>
#include <sys/stat.h>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "sqlite.h"
#include "state_impl.h"

namespace fim {


StateStore::StateStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateStore::~StateStore() = default;

Result<std::unique_ptr<StateStore>> StateStore::open(const Bytes& dir) {
  auto impl = std::make_unique<Impl>();
  impl->path = join_path(dir, "state.db");
  // The directory and every file SQLite may open here, before it opens them: SQLite follows
  // a -journal symlink and replays a hot journal it finds (docs/design.md, Threat model).
  FIM_TRY(check_baseline_dir(dir));
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) FIM_TRY(check_side_file(impl->path + suffix));
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(impl->path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK)
    return make_error(Errc::Io, "cannot open state " + quote(impl->path) + ": " +
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
                   // The baseline's identity (docs/design.md, Baseline: identity).
                   "CREATE TABLE IF NOT EXISTS identity("
                   "  baseline BLOB PRIMARY KEY, id TEXT NOT NULL, roots_sha256 TEXT NOT NULL,"
                   "  key_id TEXT NOT NULL, seq INTEGER NOT NULL,"
                   "  xattr INTEGER NOT NULL DEFAULT 0"  // the file had trusted.fimctl.identity
                   ") WITHOUT ROWID;"
                   "CREATE TABLE IF NOT EXISTS identity_next("
                   "  baseline BLOB PRIMARY KEY, id TEXT NOT NULL, roots_sha256 TEXT NOT NULL,"
                   "  key_id TEXT NOT NULL, seq INTEGER NOT NULL"
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
                   // The last kKeptReports reports of each baseline, for 'accept --report ID'
                   // (docs/design.md, Baseline: acceptance). id is '' until the report commits.
                   "CREATE TABLE IF NOT EXISTS reports("
                   "  seq INTEGER PRIMARY KEY, baseline BLOB NOT NULL, id TEXT NOT NULL, at_ns INTEGER NOT NULL);"
                   "CREATE TABLE IF NOT EXISTS report_entries("
                   "  report INTEGER NOT NULL, path BLOB NOT NULL,"
                   "  kind TEXT NOT NULL, old_row TEXT NOT NULL, new_row TEXT NOT NULL, rule TEXT NOT NULL,"
                   "  PRIMARY KEY(report, path)"
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
                   "  id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, changes TEXT NOT NULL);"
                   // The apt hook's signed records of .debs (fim/pkg.h HookRecord).
                   "CREATE TABLE IF NOT EXISTS hook_records("
                   "  id INTEGER PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, arch TEXT NOT NULL,"
                   "  at_ns INTEGER NOT NULL, body BLOB NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL,"
                   "  UNIQUE(name, version, arch));"
                   "CREATE TABLE IF NOT EXISTS hook_pending(body BLOB PRIMARY KEY) WITHOUT ROWID",
                   Errc::Io));
  FIM_TRY(create_apt_session_tables(raw));
  FIM_TRY(create_fast_check_tables(raw));
  FIM_TRY(create_coverage_tables(raw));
  FIM_TRY(create_window_tables(raw));
  FIM_TRY(create_content_tables(raw));
  return std::unique_ptr<StateStore>(new StateStore(std::move(impl)));
}

Result<uint64_t> StateStore::last_sequence(const Bytes& baseline) {
  auto st = impl_->stmt("SELECT seq FROM sequence WHERE baseline = ?", false);
  if (!st) return st.error();
  auto row = st->bind(baseline).step();
  if (!row) return row.error();
  return *row ? static_cast<uint64_t>(sqlite3_column_int64(st->get(), 0)) : uint64_t{0};
}

Status StateStore::note_sequence(const Bytes& baseline, uint64_t sequence, const std::string& content_sha256) {
  return impl_->exec("INSERT INTO sequence(baseline, seq, content_sha256) VALUES(?1, ?2, ?3) "
                     "ON CONFLICT(baseline) DO UPDATE SET seq = ?2, content_sha256 = ?3 WHERE ?2 > seq",
                     baseline, sequence, db::Text{content_sha256});
}

namespace {

Result<std::optional<BaselineIdentity>> read_identity(db::Stmt& st, const Bytes& baseline) {
  auto row = st.bind(baseline).step();
  if (!row) return row.error();
  if (!*row) return std::optional<BaselineIdentity>();
  sqlite3_stmt* s = st.get();
  const auto text = [&](int col) { return std::string(db::column_blob(s, col)); };
  BaselineIdentity id{text(0), text(1), text(2), static_cast<uint64_t>(sqlite3_column_int64(s, 3)),
                      sqlite3_column_int64(s, 4) != 0, std::string()};
  return std::optional<BaselineIdentity>(std::move(id));
}

}  // namespace

Result<std::optional<BaselineIdentity>> StateStore::identity_next(const Bytes& baseline) {
  auto st = impl_->stmt("SELECT id, roots_sha256, key_id, seq, 0 FROM identity_next WHERE baseline = ?", false);
  if (!st) return st.error();
  return read_identity(*st, baseline);
}

Status StateStore::pin_next(const Bytes& baseline, const BaselineIdentity& id) {
  return impl_->exec("INSERT OR REPLACE INTO identity_next(baseline, id, roots_sha256, key_id, seq) VALUES(?, ?, ?, ?, ?)",
                     baseline, db::Text{id.id}, db::Text{id.roots_sha256}, db::Text{id.key_id}, id.sequence);
}

Result<std::optional<BaselineIdentity>> StateStore::identity(const Bytes& baseline) {
  auto st = impl_->stmt("SELECT id, roots_sha256, key_id, seq, xattr FROM identity WHERE baseline = ?", false);
  if (!st) return st.error();
  return read_identity(*st, baseline);
}

Status StateStore::pin_identity(const Bytes& baseline, const BaselineIdentity& id) {
  // Pinned first, the announcement dropped after: a kill between the two leaves both naming
  // the new baseline, never neither (then the installed file would be refused).
  FIM_TRY(impl_->exec("INSERT OR REPLACE INTO identity(baseline, id, roots_sha256, key_id, seq, xattr) "
                      "VALUES(?, ?, ?, ?, ?, ?)",
                      baseline, db::Text{id.id}, db::Text{id.roots_sha256}, db::Text{id.key_id}, id.sequence,
                      static_cast<int64_t>(id.xattr)));
  return impl_->exec("DELETE FROM identity_next WHERE baseline = ?", baseline);
}

StateStore::ReportTxn::ReportTxn(StateStore* store, Bytes baseline, int64_t kept, std::unique_ptr<db::Txn> txn)
    : store_(store), baseline_(std::move(baseline)), kept_(kept), txn_(std::move(txn)) {}
StateStore::ReportTxn::ReportTxn(ReportTxn&&) noexcept = default;
StateStore::ReportTxn::~ReportTxn() = default;  // txn_ rolls back unless committed

Result<StateStore::ReportTxn> StateStore::begin_report(const Bytes& baseline) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  FIM_TRY(impl_->exec("DELETE FROM report WHERE baseline = ?", baseline));
  FIM_TRY(impl_->exec("INSERT INTO reports(baseline, id, at_ns) VALUES(?, '', ?)", baseline, now_ns()));
  const int64_t kept = sqlite3_last_insert_rowid(impl_->db.get());
  return ReportTxn(this, baseline, kept, std::make_unique<db::Txn>(std::move(*txn)));
}

Status StateStore::ReportTxn::add(const Reported& r) {
  if (!txn_) return make_error(Errc::Bug, "report written after it was committed");
  FIM_TRY(store_->impl_->exec(
      "INSERT OR REPLACE INTO report(baseline, path, kind, old_row, new_row, rule) VALUES(?,?,?,?,?,?)", baseline_,
      r.path, db::Text{r.kind}, db::Text{r.old_row}, db::Text{r.new_row}, db::Text{r.rule}));
  return store_->impl_->exec(
      "INSERT OR REPLACE INTO report_entries(report, path, kind, old_row, new_row, rule) VALUES(?,?,?,?,?,?)", kept_,
      r.path, db::Text{r.kind}, db::Text{r.old_row}, db::Text{r.new_row}, db::Text{r.rule});
}

Status StateStore::ReportTxn::commit(const std::string& content_sha256, const std::string& id) {
  if (!txn_) return make_error(Errc::Bug, "report committed twice");
  const std::unique_ptr<db::Txn> txn = std::move(txn_);  // rolls back on every early return
  FIM_TRY(store_->report_of(baseline_, content_sha256));
  FIM_TRY(store_->impl_->exec("UPDATE reports SET id = ? WHERE seq = ?", db::Text{id}, kept_));
  // Older reports beyond the kept ones go in the same transaction: never more than kKeptReports.
  static const std::string kOld = "(SELECT seq FROM reports WHERE baseline = ?1 ORDER BY seq DESC LIMIT -1 OFFSET ?2)";
  FIM_TRY(store_->impl_->exec("DELETE FROM report_entries WHERE report IN " + kOld, baseline_, kKeptReports));
  FIM_TRY(store_->impl_->exec("DELETE FROM reports WHERE seq IN " + kOld, baseline_, kKeptReports));
  return txn->commit();
}

Status StateStore::clear_report(const Bytes& baseline, const std::string& content_sha256) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  FIM_TRY(impl_->exec("DELETE FROM report WHERE baseline = ?", baseline));
  FIM_TRY(report_of(baseline, content_sha256));
  return txn->commit();
}

Status StateStore::report_of(const Bytes& baseline, const std::string& content_sha256) {
  return impl_->exec("INSERT OR REPLACE INTO report_of(baseline, content_sha256) VALUES(?, ?)", baseline,
                     db::Text{content_sha256});
}

namespace {

/// The rows of `sql` (path, kind, old_row, new_row, rule), its ?1.. bound to `args`.
template <class... A>
Status read_reported(db::Stmt& st, std::vector<StateStore::Reported>* out, const A&... args) {
  return st.bind(args...).for_each_row([&](sqlite3_stmt* s) {
    out->push_back({Bytes(db::column_blob(s, 0)), std::string(db::column_blob(s, 1)), std::string(db::column_blob(s, 2)),
                    std::string(db::column_blob(s, 3)), std::string(db::column_blob(s, 4))});
  });
}

bool is_lower_hex(std::string_view s) { return s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

}  // namespace

Result<std::vector<StateStore::Reported>> StateStore::load_report(const Bytes& baseline, std::string* content_sha256) {
  content_sha256->clear();
  auto of = impl_->stmt("SELECT content_sha256 FROM report_of WHERE baseline = ?", false);
  if (!of) return of.error();
  auto row = of->bind(baseline).step();
  if (!row) return row.error();
  if (*row) *content_sha256 = std::string(db::column_blob(of->get(), 0));
  std::vector<Reported> out;
  auto st = impl_->stmt("SELECT path, kind, old_row, new_row, rule FROM report WHERE baseline = ? ORDER BY path", false);
  if (!st) return st.error();
  FIM_TRY(read_reported(*st, &out, baseline));
  return out;
}

Result<StateStore::KeptReport> StateStore::find_report(const Bytes& baseline, std::string_view prefix) {
  std::string p(prefix);
  for (char& c : p) c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  if (p.size() < kReportIdMinPrefix || p.size() > 64 || !is_lower_hex(p))
    return make_error(Errc::Usage, "--report " + quote(prefix) + ": a report id is hex digits, at least " +
                                       std::to_string(kReportIdMinPrefix) + " of them (as a report prints it)");
  auto st = impl_->stmt("SELECT seq, id, at_ns FROM reports WHERE baseline = ?1 AND id <> '' AND "
                        "substr(id, 1, length(?2)) = ?2 ORDER BY seq DESC", false);
  if (!st) return st.error();
  std::vector<std::pair<int64_t, KeptReport>> found;
  FIM_TRY(st->bind(baseline, db::Text{p}).for_each_row([&](sqlite3_stmt* s) {
    found.push_back({sqlite3_column_int64(s, 0), KeptReport{std::string(db::column_blob(s, 1)), sqlite3_column_int64(s, 2), {}}});
  }));
  if (found.empty())
    return make_error(Errc::Usage, "no report " + p + " among the last " + std::to_string(kKeptReports) +
                                       " reports of " + quote(baseline) + " that state.db keeps: run 'fimctl check' "
                                       "and use the id it prints");
  for (const auto& f : found)  // the same id twice is the same differences: the latest is used
    if (f.second.id != found.front().second.id)
      return make_error(Errc::Usage, "--report " + p + " is ambiguous: it begins " + found.front().second.id + " and " +
                                         f.second.id + "; give more digits");
  auto entries = impl_->stmt("SELECT path, kind, old_row, new_row, rule FROM report_entries WHERE report = ? ORDER BY path",
                             false);
  if (!entries) return entries.error();
  KeptReport out = std::move(found.front().second);
  FIM_TRY(read_reported(*entries, &out.entries, found.front().first));
  // state.db is not signed: the id the operator reviewed is what vouches for the entries.
  if (report_id_of(out.entries) != out.id)
    return make_error(Errc::Trust, "state.db's copy of report " + out.id.substr(0, kReportIdShown) + " is not that report any more "
                                       "(its entries do not hash to its id: edited since it was stored in " +
                                       quote(impl_->path) + "); nothing was accepted: run 'fimctl check' and review "
                                       "its report");
  return out;
}

Result<std::optional<StateStore::KeptReport>> StateStore::latest_report(const Bytes& baseline) {
  auto st = impl_->stmt("SELECT id FROM reports WHERE baseline = ? AND id <> '' ORDER BY seq DESC LIMIT 1", false);
  if (!st) return st.error();
  auto row = st->bind(baseline).step();
  if (!row) return row.error();
  if (!*row) return std::optional<KeptReport>();
  const std::string id(db::column_blob(st->get(), 0));
  auto kept = find_report(baseline, id);
  if (!kept) return kept.error();
  return std::optional<KeptReport>(std::move(*kept));
}

Status StateStore::accepted(const Bytes& baseline, const std::vector<Bytes>& paths, const std::string& old_content_sha256,
                            const std::string& new_content_sha256) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  auto del = impl_->stmt("DELETE FROM report WHERE baseline = ? AND path = ?");
  if (!del) return del.error();
  for (const auto& p : paths) FIM_TRY(del->bind(baseline, p).exec());
  // A last report made against another baseline stays tied to it: accept --report may act on
  // an older report, and that must not make a stale last report look current.
  FIM_TRY(impl_->exec("UPDATE report_of SET content_sha256 = ?3 WHERE baseline = ?1 AND content_sha256 = ?2", baseline,
                      db::Text{old_content_sha256}, db::Text{new_content_sha256}));
  return txn->commit();
}

Status StateStore::mark_dirty(const Bytes& baseline, const Bytes& root, const std::string& reason, int64_t at_ns) {
  return impl_->exec("INSERT INTO dirty(baseline, root, first_ns, marked_ns, reason) VALUES(?1, ?2, ?3, ?3, ?4) "
                     "ON CONFLICT(baseline, root) DO UPDATE SET marked_ns = max(marked_ns, ?3), reason = ?4",
                     baseline, root, at_ns, reason);
}

Status StateStore::clear_dirty(const Bytes& baseline, const Bytes& root, int64_t scan_started_ns) {
  return impl_->exec("DELETE FROM dirty WHERE baseline = ?1 AND root = ?2 AND marked_ns <= ?3", baseline, root,
                     scan_started_ns);
}

Result<std::vector<StateStore::Dirty>> StateStore::dirty(const Bytes& baseline) {
  auto st = impl_->stmt("SELECT root, first_ns, marked_ns, reason FROM dirty WHERE baseline = ? ORDER BY root", false);
  if (!st) return st.error();
  std::vector<Dirty> out;
  FIM_TRY(st->bind(baseline).for_each_row([&](sqlite3_stmt* s) {
    out.push_back({Bytes(db::column_blob(s, 0)), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
                   std::string(db::column_blob(s, 3))});
  }));
  return out;
}

Status StateStore::add_gap(const Bytes& baseline, const Gap& g) {
  FIM_TRY(impl_->exec("INSERT INTO gaps(baseline, start_ns, end_ns, reason) VALUES(?, ?, ?, ?)", baseline, g.start_ns,
                      g.end_ns, g.reason));
  // Keep the last 1000 per baseline: a history for 'status', not an archive.
  return impl_->exec("DELETE FROM gaps WHERE baseline = ?1 AND id NOT IN "
                     "(SELECT id FROM gaps WHERE baseline = ?1 ORDER BY id DESC LIMIT 1000)",
                     baseline);
}

Result<std::vector<StateStore::Gap>> StateStore::gaps(const Bytes& baseline, int limit) {
  auto st = impl_->stmt("SELECT start_ns, end_ns, reason FROM "
                        "(SELECT * FROM gaps WHERE baseline = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                        false);
  if (!st) return st.error();
  std::vector<Gap> out;
  FIM_TRY(st->bind(baseline, limit).for_each_row([&](sqlite3_stmt* s) {
    out.push_back({sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), std::string(db::column_blob(s, 2))});
  }));
  return out;
}

Status StateStore::daemon_beat(const Bytes& baseline, int64_t pid, int64_t started_ns, int64_t now, bool stopped) {
  return impl_->exec("INSERT OR REPLACE INTO daemon(baseline, pid, started_ns, heartbeat_ns, stopped_ns) "
                     "VALUES(?, ?, ?, ?, ?)",
                     baseline, pid, started_ns, now, stopped ? now : int64_t{0});
}

Result<std::optional<StateStore::Daemon>> StateStore::daemon(const Bytes& baseline) {
  auto st = impl_->stmt("SELECT pid, started_ns, heartbeat_ns, stopped_ns FROM daemon WHERE baseline = ?", false);
  if (!st) return st.error();
  auto row = st->bind(baseline).step();
  if (!row) return row.error();
  if (!*row) return std::optional<Daemon>();
  sqlite3_stmt* s = st->get();
  return std::optional<Daemon>(Daemon{sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                                      sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3)});
}

Status StateStore::set_apt_snapshot(const std::map<std::string, std::string>& versions) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  FIM_TRY(impl_->exec("DELETE FROM apt_snapshot"));
  auto ins = impl_->stmt("INSERT INTO apt_snapshot(pkg, version) VALUES(?, ?)");
  if (!ins) return ins.error();
  for (const auto& [pkg, version] : versions) FIM_TRY(ins->bind(pkg, version).exec());
  return txn->commit();
}

Result<std::map<std::string, std::string>> StateStore::apt_snapshot() {
  auto st = impl_->stmt("SELECT pkg, version FROM apt_snapshot", false);
  if (!st) return st.error();
  std::map<std::string, std::string> out;
  FIM_TRY(st->for_each_row([&](sqlite3_stmt* s) {
    out[std::string(db::column_blob(s, 0))] = std::string(db::column_blob(s, 1));
  }));
  return out;
}

Status StateStore::add_apt_run(int64_t at_ns, const std::string& changes) {
  return impl_->exec("INSERT INTO apt_runs(at_ns, changes) VALUES(?, ?)", at_ns, changes);
}

Result<std::vector<StateStore::AptRun>> StateStore::apt_runs_since(int64_t since_ns) {
  auto st = impl_->stmt("SELECT id, at_ns, changes FROM apt_runs WHERE at_ns >= ? ORDER BY id", false);
  if (!st) return st.error();
  std::vector<AptRun> out;
  FIM_TRY(st->bind(since_ns).for_each_row([&](sqlite3_stmt* s) {
    out.push_back({sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), std::string(db::column_blob(s, 2))});
  }));
  return out;
}

namespace {

/// Inserts (replacing the same versions) and keeps the bounds: the newest records first, the
/// oldest beyond either bound go. Inside the caller's transaction.
template <class Impl>
Status insert_hook_rows(Impl& impl, const std::vector<StateStore::HookRow>& rows) {
  auto ins = impl.stmt("INSERT OR REPLACE INTO hook_records(name, version, arch, at_ns, body, key_id, signature) "
                       "VALUES(?, ?, ?, ?, ?, ?, ?)");
  if (!ins) return ins.error();
  for (const auto& r : rows)
    FIM_TRY(ins->bind(db::Text{r.name}, db::Text{r.version}, db::Text{r.arch}, r.at_ns, r.body, db::Text{r.key_id},
                      db::Text{r.signature})
                .exec());
  return impl.exec("DELETE FROM hook_records WHERE id IN (SELECT id FROM ("
                   "  SELECT id, ROW_NUMBER() OVER w AS n, SUM(length(body)) OVER w AS total FROM hook_records"
                   "  WINDOW w AS (ORDER BY at_ns DESC, id DESC)) WHERE n > ? OR total > ?)",
                   static_cast<int64_t>(kHookRecordsMax), static_cast<int64_t>(kHookRecordsMaxBytes));
}

}  // namespace

Status StateStore::add_hook_records(const std::vector<HookRow>& rows) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  FIM_TRY(insert_hook_rows(*impl_, rows));
  return txn->commit();
}

Status StateStore::add_hook_pending(const std::vector<std::string>& bodies) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  for (const auto& b : bodies) FIM_TRY(impl_->exec("INSERT OR REPLACE INTO hook_pending(body) VALUES(?)", b));
  return txn->commit();
}

Result<std::vector<std::string>> StateStore::hook_pending() {
  auto st = impl_->stmt("SELECT body FROM hook_pending", false);
  if (!st) return st.error();
  std::vector<std::string> out;
  FIM_TRY(st->for_each_row([&](sqlite3_stmt* s) { out.emplace_back(db::column_blob(s, 0)); }));
  return out;
}

Status StateStore::finish_hook_pending(const std::string& body, const HookRow* row) {
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  FIM_TRY(impl_->exec("DELETE FROM hook_pending WHERE body = ?", body));
  if (row) FIM_TRY(insert_hook_rows(*impl_, {*row}));
  return txn->commit();
}

Result<std::vector<StateStore::HookRow>> StateStore::hook_records() {
  auto st = impl_->stmt("SELECT name, version, arch, at_ns, body, key_id, signature FROM hook_records ORDER BY id", false);
  if (!st) return st.error();
  std::vector<HookRow> out;
  FIM_TRY(st->for_each_row([&](sqlite3_stmt* s) {
    out.push_back({std::string(db::column_blob(s, 0)), std::string(db::column_blob(s, 1)),
                   std::string(db::column_blob(s, 2)), sqlite3_column_int64(s, 3), std::string(db::column_blob(s, 4)),
                   std::string(db::column_blob(s, 5)), std::string(db::column_blob(s, 6))});
  }));
  return out;
}

Result<uint64_t> StateStore::prune_hook_records(const std::set<std::string>& keep) {
  auto rows = hook_records();
  if (!rows) return rows.error();
  auto txn = impl_->begin();
  if (!txn) return txn.error();
  auto del = impl_->stmt("DELETE FROM hook_records WHERE name = ? AND version = ? AND arch = ?");
  if (!del) return del.error();
  uint64_t dropped = 0;
  for (const auto& r : *rows) {
    if (keep.count(r.name + " " + r.version + " " + r.arch)) continue;
    FIM_TRY(del->bind(db::Text{r.name}, db::Text{r.version}, db::Text{r.arch}).exec());
    ++dropped;
  }
  FIM_TRY(txn->commit());
  return dropped;
}

}  // namespace fim
