// SPDX-License-Identifier: GPL-2.0-or-later
// Reading a baseline as untrusted input (sqlite.org security.html §1.2; docs/design.md,
// Formats): refuse side files SQLite would replay, open immutable and read-only, defensive, no
// triggers or views, exact schema and identity checks, and a content digest recomputed over
// exactly the rows returned. Verified before any result is trusted (the caller holds its
// report until verify() passes).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "schema.h"

namespace fim {
namespace {

std::string uri_for(const Bytes& path) {
  std::string uri = "file:";
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (isalnum(c) || c == '/' || c == '.' || c == '-' || c == '_' || c == '~') {
      uri += ch;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      uri += buf;
    }
  }
  return uri + "?mode=ro&immutable=1";
}

/// "type name tbl_name sql" of every schema object, by name.
Result<std::vector<std::string>> schema_of(sqlite3* db, Errc code, std::string what) {
  auto st = db::Stmt::prepare(db, "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || ifnull(sql, '') "
                                  "FROM sqlite_schema ORDER BY name", code, std::move(what));
  if (!st) return st.error();
  std::vector<std::string> out;
  FIM_TRY(st->for_each_row([&](sqlite3_stmt* s) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  }));
  return out;
}

/// The schema SQLite reports for a freshly created baseline of `version` (so comparison is exact).
Result<std::vector<std::string>> expected_schema(int version) {
  sqlite3* raw = nullptr;
  sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE, nullptr);
  db::DbPtr mem(raw);
  for (const auto& stmt : baseline_schema(version)) FIM_TRY(db::exec(mem.get(), stmt.c_str(), Errc::Bug));
  return schema_of(mem.get(), Errc::Bug, "cannot list a schema");
}

}  // namespace

struct BaselineReader::Impl {
  Bytes path;
  db::DbPtr db;
  db::StmtPtr cursor;
  BaselineMeta meta;
  const db::SchemaVersion* version = nullptr;
  Sha256Stream content;
  uint64_t rows = 0;
  Bytes last_path;
  Bytes digest;  // set when the cursor is exhausted
  bool verified = false;
  struct stat identity {};  // of the file when it was opened
  db::StmtPtr range;
  bool range_open = false;
  bool hints = false;  // open_hints(): rows are read, never digested, never verified

  Error not_ours(const std::string& why) const {
    return make_error(Errc::Database, quote(path) + " is not a fimctl baseline (" + why + ")");
  }
  Error corrupt() const { return db::sqlite_error(db.get(), Errc::Database, "baseline " + quote(path) + " is corrupt"); }
  /// A statement whose errors say the baseline is corrupt.
  Result<db::Stmt> stmt(std::string_view sql) const {
    return db::Stmt::prepare(db.get(), sql, Errc::Database, "baseline " + quote(path) + " is corrupt");
  }
  Status check_file();
  Status open_db();
  Status check_version(bool older);
  Status read_manifest();
  Status read_alternatives();
};

BaselineReader::BaselineReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BaselineReader::~BaselineReader() = default;
const BaselineMeta& BaselineReader::meta() const { return impl_->meta; }
const Bytes& BaselineReader::path() const { return impl_->path; }

Error missing_baseline_error(const Bytes& path) {
  Bytes dir, name;
  split_path(path, &dir, &name);
  struct stat st;
  // state.db alone proves nothing (the apt hook makes one before any init): the sequence it
  // pinned for this path does.
  bool recorded = false;
  if (::lstat((dir + "/state.db").c_str(), &st) == 0)
    if (auto state = StateStore::open(dir)) {
      auto seq = (*state)->last_sequence(path);
      recorded = seq && *seq > 0;
    }
  if (recorded)
    return make_error(Errc::Database, "no baseline at " + quote(path) + ", but the state.db beside it says one was recorded: " +
                                          "it was removed or hidden (a mount?); restore it from a copy, or check the host " +
                                          "by other means before 'fimctl init --force' records it as it is now");
  return make_error(Errc::Database, "no baseline at " + quote(path) + ": run 'fimctl init'");
}

/// A regular, readable file with no side file SQLite would replay.
Status BaselineReader::Impl::check_file() {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return missing_baseline_error(path);
    return make_error(Errc::Database, "cannot read baseline " + quote(path), errno);
  }
  if (!S_ISREG(st.st_mode)) return make_error(Errc::Database, "baseline " + quote(path) + " is not a regular file");
  identity = st;
  if (::access(path.c_str(), R_OK) != 0) return make_error(Errc::Database, "cannot read baseline " + quote(path), errno);
  for (const char* suffix : {"-journal", "-wal"}) {
    const Bytes side = path + suffix;
    if (::lstat(side.c_str(), &st) == 0)
      return make_error(Errc::Trust, "refusing baseline " + quote(path) + ": " + quote(side) +
                                         " exists beside it and SQLite would replay it; "
                                         "a baseline never has one (remove it after investigating)");
  }
  return {};
}

/// Read-only, immutable, defensive: no triggers, views or untrusted schema.
Status BaselineReader::Impl::open_db() {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(uri_for(path).c_str(), &raw,
                                 SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  db.reset(raw);
  if (rc != SQLITE_OK) return db::sqlite_error(raw, Errc::Database, "cannot open baseline " + quote(path));
  sqlite3_db_config(raw, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_ENABLE_VIEW, 0, nullptr);
  if (sqlite3_exec(raw, "PRAGMA cell_size_check=ON; PRAGMA mmap_size=0; PRAGMA query_only=ON;", nullptr, nullptr,
                   nullptr) != SQLITE_OK)
    return not_ours(sqlite3_errmsg(raw));
  return {};
}

/// application_id, user_version and the exact schema SQL of that version. An older version
/// is refused (exit 17, naming the command that migrates it) unless `older`.
Status BaselineReader::Impl::check_version(bool older) {
  const auto pragma_int = [&](const char* sql, int64_t* out) -> Status {
    auto st = db::Stmt::prepare(db.get(), sql, Errc::Database, "");
    if (!st) return not_ours(sqlite3_errmsg(db.get()));
    auto row = st->step();
    if (!row || !*row) return not_ours(sqlite3_errmsg(db.get()));
    *out = sqlite3_column_int64(st->get(), 0);
    return {};
  };
  int64_t app_id = 0, v = 0;
  FIM_TRY(pragma_int("PRAGMA application_id", &app_id));
  if (app_id != kBaselineAppId) return not_ours("wrong application id");
  FIM_TRY(pragma_int("PRAGMA user_version", &v));
  if (v > kSchemaVersion)
    return make_error(Errc::Database, "baseline " + quote(path) + " was written by a newer fimctl (schema " +
                                          std::to_string(v) + "; this fimctl reads up to " +
                                          std::to_string(kSchemaVersion) + ")");
  if (v < 1) return not_ours("no schema version");
  version = db::schema_version(static_cast<int>(v));
  if (v < kSchemaVersion && !older && !(version && db::readable_as_is(*version)))
    return make_error(Errc::Database,
                      "baseline " + quote(path) + " was written by an older fimctl (schema " + std::to_string(v) +
                          "; this one reads " + std::to_string(kSchemaVersion) + ")" +
                          (version ? ": migrate it with fimctl --db " + quote(path) + " migrate"
                                   : ": it is too old to migrate; record a new one with 'fimctl init'"));
  if (!version) return not_ours("schema " + std::to_string(v) + " is too old to migrate");
  meta.schema_version = version->version;
  auto expected = expected_schema(version->version);
  if (!expected) return expected.error();
  auto actual = schema_of(db.get(), Errc::Database, "");
  if (!actual) return not_ours(sqlite3_errmsg(db.get()));
  if (*actual != *expected) return not_ours("unexpected schema");
  return {};
}

/// The manifest (meta), the roots and the journal, before any entry.
Status BaselineReader::Impl::read_manifest() {
  std::map<std::string, std::string> kv;
  auto st = stmt("SELECT key, value FROM meta");
  if (!st) return st.error();
  FIM_TRY(st->for_each_row([&](sqlite3_stmt* s) {
    kv[std::string(db::column_blob(s, 0))] = std::string(db::column_blob(s, 1));
  }));
  for (const char* key : {"format", "created_at", "entry_count", "content_sha256", "signed", "policy_digest", "roots_source"}) {
    if (!kv.count(key)) return not_ours("manifest lacks " + quote(key));
  }
  if (kv["format"] != "fimctl-baseline") return not_ours("wrong format tag");
  BaselineMeta& m = meta;
  char* end = nullptr;
  m.created_ns = std::strtoll(kv["created_at"].c_str(), &end, 10);
  m.entry_count = std::strtoull(kv["entry_count"].c_str(), &end, 10);
  m.content_sha256 = kv["content_sha256"];
  m.is_signed = kv["signed"] == "1";
  m.policy_digest = kv["policy_digest"];
  m.policy_source = kv["policy_source"];
  m.roots_source = kv["roots_source"];
  m.fimctl_version = kv["fimctl_version"];
  m.host_id = kv["host_id"];
  m.sequence = std::strtoull(kv["sequence"].c_str(), &end, 10);
  m.key_id = kv["key_id"];
  m.signature = kv["signature"];
  m.baseline_id = kv["baseline_id"];
  if (!m.baseline_id.empty() && (m.baseline_id.size() != 32 || m.baseline_id.find_first_not_of("0123456789abcdef") != std::string::npos))
    return not_ours("malformed baseline id");
  m.source = kv["source"];
  m.image_digest = kv["image_digest"];
  m.image_index_digest = kv["image_index_digest"];
  m.image_ref = kv["image_ref"];
  if (m.source != "" && m.source != "image" && m.source != "container") return not_ours("unknown baseline source");
  for (const std::string* d : {&m.image_digest, &m.image_index_digest})
    if (!d->empty() && (d->size() != 71 || d->rfind("sha256:", 0) != 0 ||
                        d->find_first_not_of("0123456789abcdef", 7) != std::string::npos))
      return not_ours("malformed image digest");
  auto roots = stmt("SELECT path FROM roots ORDER BY path");
  if (!roots) return roots.error();
  FIM_TRY(roots->for_each_row([&](sqlite3_stmt* s) { m.roots.emplace_back(db::column_blob(s, 0)); }));
  if (!version->journal) return {};
  auto journal = stmt("SELECT seq, entry, hash FROM journal ORDER BY seq");
  if (!journal) return journal.error();
  FIM_TRY(journal->for_each_row([&](sqlite3_stmt* s) {
    m.journal.push_back({static_cast<uint64_t>(sqlite3_column_int64(s, 0)), std::string(db::column_blob(s, 1)),
                         std::string(db::column_blob(s, 2))});
  }));
  if (!journal_chain_ok(m.journal))
    return make_error(Errc::Trust, "baseline " + quote(path) + " failed verification: its acceptance journal is "
                                   "broken (an entry was edited, removed or reordered)");
  return read_alternatives();
}

/// accept --also's states, numbered 2, 3, ... per path with no gap, each a well-formed row of
/// its path (their bytes are then verified with the content digest, as the rows are).
Status BaselineReader::Impl::read_alternatives() {
  if (!version->alternatives) return {};
  auto alts = stmt(("SELECT " + db::entry_columns(*version) + ", n FROM alternatives ORDER BY path, n").c_str());
  if (!alts) return alts.error();
  bool ok = true;
  FIM_TRY(alts->for_each_row([&](sqlite3_stmt* s) {
    Record r;
    if (!ok || !db::read_record(s, *version, &r)) {
      ok = false;
      return;
    }
    std::vector<Record>& of = meta.alternatives[r.path];
    ok = sqlite3_column_int64(s, db::kFirstAttrColumn + static_cast<int>(version->attrs)) ==
             static_cast<sqlite3_int64>(of.size() + 2) &&
         of.size() < kMaxAlternatives && !(r.have & kNotInAlternative) && r.status == EntryStatus::Ok;
    of.push_back(std::move(r));
  }));
  if (!ok) return not_ours("malformed alternatives");
  return {};
}

Result<std::unique_ptr<BaselineReader>> BaselineReader::open(const Bytes& path) { return open_impl(path, false); }
Result<std::unique_ptr<BaselineReader>> BaselineReader::open_older(const Bytes& path) { return open_impl(path, true); }
Result<std::unique_ptr<BaselineReader>> BaselineReader::open_hints(const Bytes& path) {
  auto r = open_impl(path, false);
  if (r) (*r)->impl_->hints = true;
  return r;
}

Result<std::unique_ptr<BaselineReader>> BaselineReader::open_impl(const Bytes& path, bool older) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  FIM_TRY(impl->check_file());
  FIM_TRY(impl->open_db());
  FIM_TRY(impl->check_version(older));
  FIM_TRY(impl->read_manifest());
  auto cursor = db::prepare(impl->db.get(), "SELECT " + db::entry_columns(*impl->version) + " FROM entries ORDER BY path");
  if (!cursor) return cursor.error();
  impl->cursor = std::move(cursor.value());
  impl->content.update(db::kContentDigestPrefix);
  return std::unique_ptr<BaselineReader>(new BaselineReader(std::move(impl)));
}

Result<bool> BaselineReader::next(Record* out) {
  if (!impl_->cursor) return false;
  const int rc = sqlite3_step(impl_->cursor.get());
  if (rc == SQLITE_DONE) {
    impl_->content.update(canonical_manifest_tail(impl_->meta));
    impl_->digest = impl_->content.finish();
    impl_->cursor.reset();
    return false;
  }
  if (rc != SQLITE_ROW)
    return db::sqlite_error(impl_->db.get(), Errc::Database, "baseline " + quote(impl_->path) + " is corrupt");
  if (!db::read_record(impl_->cursor.get(), *impl_->version, out))
    return make_error(Errc::Database, "baseline " + quote(impl_->path) + " is corrupt: malformed entry");
  if (impl_->rows > 0 && !(impl_->last_path < out->path))
    return make_error(Errc::Database, "baseline " + quote(impl_->path) + " is corrupt: entries out of order");
  if (!impl_->hints) impl_->content.update(canonical_row(*out));
  impl_->last_path = out->path;
  ++impl_->rows;
  return true;
}

Status BaselineReader::verify() const {
  if (impl_->cursor || impl_->hints) return make_error(Errc::Bug, "baseline verified before it was read to the end");
  if (impl_->rows != impl_->meta.entry_count || hex_encode(impl_->digest) != impl_->meta.content_sha256)
    return make_error(Errc::Trust, "baseline " + quote(impl_->path) +
                                       " failed verification: its entries do not match its manifest "
                                       "(edited, truncated or corrupted); no result of this run can be trusted");
  impl_->verified = true;
  return {};
}

Status BaselineReader::seek(const Bytes& path) {
  if (!impl_->verified) return make_error(Errc::Bug, "baseline range read before it was verified");
  struct stat now;
  const struct stat& was = impl_->identity;
  if (::stat(impl_->path.c_str(), &now) != 0 || now.st_dev != was.st_dev || now.st_ino != was.st_ino ||
      now.st_size != was.st_size || now.st_mtim.tv_sec != was.st_mtim.tv_sec ||
      now.st_mtim.tv_nsec != was.st_mtim.tv_nsec || now.st_ctim.tv_sec != was.st_ctim.tv_sec ||
      now.st_ctim.tv_nsec != was.st_ctim.tv_nsec)
    return make_error(Errc::Trust, "baseline " + quote(impl_->path) + " is not the file verified any more (replaced or edited)");
  if (!impl_->range) {
    // BLOBs compare with memcmp: everything below P sorts in [P + "/", P + "0").
    auto st = db::prepare(impl_->db.get(), "SELECT " + db::entry_columns(*impl_->version) +
                                               " FROM entries WHERE path = ?1 OR (path >= ?2 AND path < ?3) ORDER BY path");
    if (!st) return st.error();
    impl_->range = std::move(st.value());
  }
  sqlite3_stmt* st = impl_->range.get();
  sqlite3_reset(st);
  const Bytes lo = path == "/" ? Bytes("/") : path + "/";
  const Bytes hi = path == "/" ? Bytes("0") : path + "0";
  sqlite3_bind_blob(st, 1, path.data(), static_cast<int>(path.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 2, lo.data(), static_cast<int>(lo.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 3, hi.data(), static_cast<int>(hi.size()), SQLITE_TRANSIENT);
  impl_->range_open = true;
  return {};
}

Result<bool> BaselineReader::range_next(Record* out) {
  if (!impl_->range_open) return false;
  sqlite3_stmt* st = impl_->range.get();
  const int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    impl_->range_open = false;
    sqlite3_reset(st);
    return false;
  }
  if (rc != SQLITE_ROW) return db::sqlite_error(impl_->db.get(), Errc::Database, "baseline " + quote(impl_->path) + " is corrupt");
  if (!db::read_record(st, *impl_->version, out)) return make_error(Errc::Database, "baseline " + quote(impl_->path) + " is corrupt: malformed entry");
  return true;
}

Result<BaselineReader::Totals> BaselineReader::totals(const std::vector<Bytes>& roots) const {
  // One aggregate per root over the primary key's range (as seek(): [P + "/", P + "0")).
  const std::string sql = "SELECT count(*), total(CASE WHEN type = " + std::to_string(static_cast<int>(FileType::File)) +
                          " AND sha256 IS NOT NULL THEN size ELSE 0 END) FROM entries";
  Totals t;
  const auto add = [&](sqlite3_stmt* s) {
    t.entries += static_cast<uint64_t>(sqlite3_column_int64(s, 0));
    const double b = sqlite3_column_double(s, 1);
    t.bytes += b > 0 ? static_cast<uint64_t>(b) : 0;
  };
  if (roots.empty()) {
    auto st = impl_->stmt(sql);
    if (!st) return st.error();
    FIM_TRY(st->for_each_row(add));
    return t;
  }
  auto st = impl_->stmt(sql + " WHERE path = ?1 OR (path >= ?2 AND path < ?3)");
  if (!st) return st.error();
  for (const Bytes& p : roots) {
    const Bytes lo = p == "/" ? Bytes("/") : p + "/";
    const Bytes hi = p == "/" ? Bytes("0") : p + "0";
    FIM_TRY(st->bind(std::string_view(p), std::string_view(lo), std::string_view(hi)).for_each_row(add));
  }
  return t;
}

Result<std::vector<Bytes>> BaselineReader::paths_with_inode(uint64_t ino) {
  if (!impl_->verified) return make_error(Errc::Bug, "baseline read before it was verified");
  auto st = impl_->stmt("SELECT path FROM entries WHERE inode = ? ORDER BY path");
  if (!st) return st.error();
  std::vector<Bytes> out;
  FIM_TRY(st->bind(ino).for_each_row([&](sqlite3_stmt* s) { out.emplace_back(db::column_blob(s, 0)); }));
  return out;
}

}  // namespace fim
