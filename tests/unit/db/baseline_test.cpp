// SPDX-License-Identifier: GPL-2.0-or-later
// The baseline as a file format: round trip, then every way a file can fail to be one.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include "fim/base/digest.h"
#include "fim/db.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

namespace {

Record sample(const Bytes& path, int n) {
  Record r;
  r.path = path;
  r.set_num(Attr::Type, static_cast<int64_t>(FileType::File));
  r.set_num(Attr::Mode, 0644);
  r.set_num(Attr::Size, n);
  r.set_num(Attr::Mtime, -5);  // pre-1970 timestamps are legal
  r.set_bytes(Attr::Sha256, Bytes(32, static_cast<char>(n)));
  r.set_bytes(Attr::Xattrs, "");  // empty, not absent
  r.set_bytes(Attr::Link, std::string("\0\xff\n", 3));
  return r;
}

BaselineMeta meta_for(std::vector<Bytes> roots) {
  BaselineMeta m;
  m.created_ns = 123;
  m.fimctl_version = "test";
  m.host_id = "host";
  m.policy_digest = "pd";
  m.policy_source = "test";
  m.roots_source = "cli";
  m.roots = std::move(roots);
  return m;
}

void write_baseline(const Bytes& path, const std::vector<Record>& records) {
  auto w = BaselineWriter::create(path);
  REQUIRE(w.has_value());
  for (const auto& r : records) REQUIRE((*w)->add(r).has_value());
  BaselineMeta m = meta_for({"/r"});
  REQUIRE((*w)->commit(&m).has_value());
}

void sql(const Bytes& path, const char* statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, statement, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

Errc open_error(const Bytes& path) {
  auto r = BaselineReader::open(path);
  REQUIRE_FALSE(r.has_value());
  return r.error().code;
}

/// Reads every row; returns the status of verify() (or of the failing read).
Status read_all(const Bytes& path) {
  auto r = BaselineReader::open(path);
  if (!r) return r.error();
  Record rec;
  for (;;) {
    auto more = (*r)->next(&rec);
    if (!more) return more.error();
    if (!*more) break;
  }
  return (*r)->verify();
}

}  // namespace

TEST_CASE("round trip: every value, the manifest, and verification") {
  TempDir d;
  const Bytes db = d / "b.db";
  const std::vector<Record> in = {sample("/r", 1), sample("/r/a", 2), sample("/r/\xff", 3)};
  write_baseline(db, in);
  auto r = BaselineReader::open(db);
  REQUIRE(r.has_value());
  CHECK((*r)->meta().entry_count == 3);
  CHECK((*r)->meta().roots == std::vector<Bytes>{"/r"});
  CHECK_FALSE((*r)->meta().is_signed);
  CHECK((*r)->meta().content_sha256.size() == 64);
  Record rec;
  for (const auto& want : in) {
    REQUIRE((*r)->next(&rec).value());
    CHECK(rec.path == want.path);
    CHECK(rec.have == want.have);
    CHECK(rec.v == want.v);
  }
  CHECK_FALSE((*r)->next(&rec).value());
  CHECK((*r)->verify().has_value());
}

TEST_CASE("rows must come in walk order") {
  TempDir d;
  auto w = BaselineWriter::create(d / "b.db");
  REQUIRE(w.has_value());
  REQUIRE((*w)->add(sample("/r/b", 1)).has_value());
  const Status st = (*w)->add(sample("/r/a", 1));
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().code == Errc::Bug);
}

TEST_CASE("an uncommitted writer leaves nothing behind and the old baseline in force") {
  TempDir d;
  const Bytes db = d / "b.db";
  write_baseline(db, {sample("/r", 1)});
  {
    auto w = BaselineWriter::create(db);
    REQUIRE(w.has_value());
    REQUIRE((*w)->add(sample("/r", 9)).has_value());
  }  // dropped without commit, as when init fails half way
  CHECK(read_all(db).has_value());
  auto r = BaselineReader::open(db);
  CHECK((*r)->meta().entry_count == 1);
}

TEST_CASE("not a baseline: missing, empty, garbage, foreign SQLite, newer schema") {
  TempDir d;
  CHECK(open_error(d / "missing.db") == Errc::Database);
  test::write_file(d / "empty.db", "");
  CHECK(open_error(d / "empty.db") == Errc::Database);
  test::write_file(d / "garbage.db", std::string(4096, 'x'));
  CHECK(open_error(d / "garbage.db") == Errc::Database);
  sql(d / "foreign.db", "CREATE TABLE t(x)");
  CHECK(open_error(d / "foreign.db") == Errc::Database);
  write_baseline(d / "newer.db", {sample("/r", 1)});
  sql(d / "newer.db", "PRAGMA user_version=99");
  auto r = BaselineReader::open(d / "newer.db");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Errc::Database);
  CHECK(r.error().message.find("newer fimctl") != std::string::npos);
  write_baseline(d / "extra.db", {sample("/r", 1)});
  sql(d / "extra.db", "CREATE TRIGGER t AFTER INSERT ON meta BEGIN SELECT 1; END");
  CHECK(open_error(d / "extra.db") == Errc::Database);
}

TEST_CASE("side files SQLite would replay are refused") {
  TempDir d;
  const Bytes db = d / "b.db";
  write_baseline(db, {sample("/r", 1)});
  for (const char* side : {"-journal", "-wal"}) {
    test::write_file(db + side, "x");
    CHECK(open_error(db) == Errc::Trust);
    ::unlink((db + side).c_str());
  }
  CHECK(read_all(db).has_value());
}

TEST_CASE("tampering with any entry fails verification") {
  const char* edits[] = {
      "UPDATE entries SET sha256 = zeroblob(32) WHERE path = CAST('/r/a' AS BLOB)",
      "UPDATE entries SET mode = 511 WHERE path = CAST('/r/a' AS BLOB)",
      "DELETE FROM entries WHERE path = CAST('/r/a' AS BLOB)",
      "INSERT INTO entries(path, status, errno, have, type) VALUES(CAST('/r/z' AS BLOB), 0, 0, 1, 1)",
      "UPDATE meta SET value = CAST('5' AS BLOB) WHERE key = 'entry_count'",
      "UPDATE roots SET path = CAST('/elsewhere' AS BLOB)",
      "INSERT INTO roots(path) VALUES(CAST('/more' AS BLOB))",
      "UPDATE meta SET value = CAST('x' AS BLOB) WHERE key = 'policy_digest'",
      "UPDATE meta SET value = CAST('policy' AS BLOB) WHERE key = 'roots_source'",
  };
  for (const char* edit : edits) {
    CAPTURE(edit);
    TempDir d;
    const Bytes db = d / "b.db";
    write_baseline(db, {sample("/r", 1), sample("/r/a", 2)});
    sql(db, edit);
    const Status st = read_all(db);
    REQUIRE_FALSE(st.has_value());
    CHECK(st.error().code == Errc::Trust);
  }
}

TEST_CASE("alternatives: read back as written, in the content digest only when there are any") {
  TempDir d;
  const std::vector<Record> rows = {sample("/r", 1), sample("/r/a", 2)};
  const auto as_kept = [](Record r) {  // as accept --also keeps a state: no mtime
    r.have &= ~kNotInAlternative;
    return r;
  };
  const Record alt = as_kept(sample("/r/a", 7));
  const auto write = [&](const Bytes& path, bool with_alternative) {
    auto w = BaselineWriter::create(path);
    REQUIRE(w.has_value());
    for (const auto& r : rows) REQUIRE((*w)->add(r).has_value());
    BaselineMeta m = meta_for({"/r"});
    if (with_alternative) m.alternatives["/r/a"] = {alt, as_kept(sample("/r/a", 8))};
    REQUIRE((*w)->commit(&m).has_value());
    return m.content_sha256;
  };
  const std::string with = write(d / "with.db", true), without = write(d / "without.db", false);
  CHECK(with != without);
  write_baseline(d / "plain.db", rows);  // the writer as every caller without alternatives uses it
  auto plain = BaselineReader::open(d / "plain.db");
  REQUIRE(plain.has_value());
  CHECK((*plain)->meta().content_sha256 == without);
  auto r = BaselineReader::open(d / "with.db");
  REQUIRE(r.has_value());
  const auto& alts = (*r)->meta().alternatives;
  REQUIRE(alts.size() == 1);
  REQUIRE(alts.at("/r/a").size() == 2);
  CHECK(canonical_row(alts.at("/r/a")[0]) == canonical_row(alt));
  r->reset();
  CHECK(read_all(d / "with.db").has_value());
  // Numbered 2, 3, ... without a gap, and never holding what an alternative leaves out.
  const char* malformed[] = {"DELETE FROM alternatives WHERE n = 2",
                             "UPDATE alternatives SET mtime = 5, have = have | 32 WHERE n = 2"};
  for (const char* edit : malformed) {
    CAPTURE(edit);
    const Bytes copy = d / "copy.db";
    write(copy, true);
    sql(copy, edit);
    CHECK(open_error(copy) == Errc::Database);
  }
}

TEST_CASE("malformed rows are corruption, not crashes") {
  TempDir d;
  const Bytes db = d / "b.db";
  write_baseline(db, {sample("/r", 1), sample("/r/a", 2)});
  sql(db, "UPDATE entries SET status = 99 WHERE path = CAST('/r/a' AS BLOB)");
  const Status st = read_all(db);
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().code == Errc::Database);
}

TEST_CASE("one writer at a time") {
  TempDir d;
  auto first = BaselineLock::acquire(d / "b.db");
  REQUIRE(first.has_value());
  auto second = BaselineLock::acquire(d / "b.db");
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code == Errc::Locked);
  CHECK(second.error().message.find("pid") != std::string::npos);
}

namespace {

/// Rewrites a fresh unsigned baseline (empty journal) as schema 1 had it: no journal table,
/// user_version 1, the content digest without the journal in its manifest tail.
void make_schema_1(const Bytes& path, const std::vector<Record>& records) {
  write_baseline(path, records);
  BaselineMeta m = meta_for({"/r"});
  m.schema_version = 1;
  std::string body = "fimctl-baseline-content-v1\n";  // the digest's domain prefix
  for (const auto& r : records) body += canonical_row(r);
  const std::string digest = hex_encode(sha256_of(body + canonical_manifest_tail(m)));
  // Schema 1 had the first 20 attributes (3 added btime, handle and verity): its table, rebuilt.
  std::string columns = "path, status, errno, have";
  for (size_t i = 0; i < 20; ++i) columns += std::string(", ") + std::string(attr_info(static_cast<Attr>(i)).key);
  const std::string edit = "DROP TABLE journal; DROP TABLE alternatives; PRAGMA user_version=1;"
                           "ALTER TABLE entries RENAME TO entries_now;" + baseline_schema(1)[2] + ";"
                           "INSERT INTO entries SELECT " + columns + " FROM entries_now; DROP TABLE entries_now;"
                           "UPDATE meta SET value = CAST('1' AS BLOB) WHERE key = 'schema_version';"
                           "UPDATE meta SET value = CAST('" + digest + "' AS BLOB) WHERE key = 'content_sha256';";
  sql(path, edit.c_str());
}

}  // namespace

TEST_CASE("schema versions: the old one's SQL, refusal naming migrate, migration keeping every row") {
  CHECK(baseline_schema(1).size() == 3);  // meta, roots, entries: no journal
  CHECK(baseline_schema(kSchemaVersion).size() == 5);  // + journal, alternatives
  CHECK(baseline_schema(kSchemaVersion + 1).empty());
  TempDir d;
  const Bytes db = d / "old.db";
  const std::vector<Record> rows = {sample("/r", 1), sample("/r/a", 2), sample("/r/b", 3)};
  make_schema_1(db, rows);
  auto r = BaselineReader::open(db);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Errc::Database);
  CHECK(r.error().message.find("older fimctl (schema 1; this one reads " + std::to_string(kSchemaVersion) + "): migrate it with fimctl --db '" + db +
                               "' migrate") != std::string::npos);
  auto old = BaselineReader::open_older(db);
  REQUIRE(old.has_value());
  CHECK((*old)->meta().schema_version == 1);
  old->reset();
  // Unsigned: only with allow_unsigned, as check would trust it.
  auto refused = migrate_baseline(db, {});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == Errc::Trust);
  auto m = migrate_baseline(db, {nullptr, nullptr, true});
  REQUIRE(m.has_value());
  CHECK(m->from == 1);
  CHECK(m->meta.sequence == 1);
  auto now = BaselineReader::open(db);
  REQUIRE(now.has_value());
  CHECK((*now)->meta().schema_version == kSchemaVersion);
  Record rec;
  std::vector<Bytes> got;
  for (;;) {
    auto more = (*now)->next(&rec);
    REQUIRE(more.has_value());
    if (!*more) break;
    CHECK(canonical_row(rec) == canonical_row(rows[got.size()]));
    got.push_back(rec.path);
  }
  CHECK(got.size() == rows.size());
  CHECK((*now)->verify().has_value());
  auto again = migrate_baseline(db, {nullptr, nullptr, true});
  REQUIRE(again.has_value());
  CHECK(again->from == kSchemaVersion);  // nothing to do
}
