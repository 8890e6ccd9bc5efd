// SPDX-License-Identifier: GPL-2.0-or-later
// The baseline schema, generated from FIM_ATTRIBUTES and kSchemaVersions: every version this
// build can migrate is the same generator with fewer attributes or no journal.
//
//   meta     the manifest: key/value pairs, the signature among them (docs/design.md,
//            Formats, lists every key)
//   roots    the roots the baseline covers; check without PATHs walks exactly these
//   journal  acceptances (who, when, why, which path, old and new row digests), hash-chained
//   entries  one row per path: status and errno (why an entry could not be fully read), the
//            mask of attributes collected ("have"), then one column per attribute (NULL when
//            not collected). WITHOUT ROWID on path: the table is stored in walk order.
//   alternatives  other good states of an entry (accept --also): the entries' columns, then
//            n, the alternative's number (2, 3, ...: the entry's own row is the first)
#include "schema.h"

#include <cstring>

#include "fim/db.h"

namespace fim {
namespace db {
namespace {

// Append a row for every change of the schema (an attribute appended to FIM_ATTRIBUTES, a new
// table); the last row is kSchemaVersion. BaselineReader::open_older() reads every row's
// baselines, and migrate_baseline() rewrites them in the last one.
constexpr SchemaVersion kSchemaVersions[] = {
    {1, 20, false},  // the first baseline
    {2, 20, true},   // the acceptance journal (fimctl accept, update)
    {3, 23, true},   // btime, handle, verity: the identity check --fast compares, fs-verity digests
    {4, 23, true, true},  // alternatives: states of an entry accepted beside its row (accept --also)
};
static_assert(std::size(kSchemaVersions) == kSchemaVersion - kOldestSchemaVersion + 1);
static_assert(kSchemaVersions[std::size(kSchemaVersions) - 1].version == kSchemaVersion);
static_assert(kSchemaVersions[std::size(kSchemaVersions) - 1].attrs == kAttrCount,
              "an attribute was added to FIM_ATTRIBUTES: add a schema version with it");

}  // namespace

bool readable_as_is(const SchemaVersion& v) { return v.attrs == kAttrCount && v.journal; }

const SchemaVersion* schema_version(int version) {
  for (const auto& v : kSchemaVersions)
    if (v.version == version) return &v;
  return nullptr;
}

}  // namespace db

std::vector<std::string> baseline_schema(int version) {
  const db::SchemaVersion* v = db::schema_version(version);
  if (!v) return {};
  const auto columns = [&](const char* path_column) {
    std::string s = std::string(path_column) + ",\n  status INTEGER NOT NULL,\n  errno INTEGER NOT NULL,\n"
                    "  have INTEGER NOT NULL";
    for (size_t i = 0; i < v->attrs; ++i) {
      const Attr a = static_cast<Attr>(i);
      s += ",\n  ";
      s += attr_info(a).key;
      s += attr_is_integer(a) ? " INTEGER" : " BLOB";
    }
    return s;
  };
  const std::string entries = "CREATE TABLE entries(\n  " + columns("path BLOB PRIMARY KEY NOT NULL") + "\n) WITHOUT ROWID";
  std::vector<std::string> out = {
      "CREATE TABLE meta(\n  key TEXT PRIMARY KEY NOT NULL,\n  value BLOB NOT NULL\n) WITHOUT ROWID",
      "CREATE TABLE roots(\n  path BLOB PRIMARY KEY NOT NULL\n) WITHOUT ROWID",
      entries,
  };
  if (v->journal)
    out.emplace_back("CREATE TABLE journal(\n  seq INTEGER PRIMARY KEY NOT NULL,\n  entry BLOB NOT NULL,\n"
                     "  hash TEXT NOT NULL\n)");
  if (v->alternatives)
    out.push_back("CREATE TABLE alternatives(\n  " + columns("path BLOB NOT NULL") +
                  ",\n  n INTEGER NOT NULL,\n  PRIMARY KEY(path, n)\n) WITHOUT ROWID");
  return out;
}

Bytes canonical_row(const Record& r) {
  // path length + bytes, status u8, errno i32, have u64, then for each collected attribute in
  // table order: id u8 and either i64 or length + bytes. All little-endian.
  Bytes out;
  out.reserve(64 + r.path.size());
  const auto put = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  const auto put_u32 = [&](uint32_t v) { v = htole32(v); put(&v, 4); };
  const auto put_u64 = [&](uint64_t v) { v = htole64(v); put(&v, 8); };
  put_u32(static_cast<uint32_t>(r.path.size()));
  out += r.path;
  out += static_cast<char>(r.status);
  put_u32(static_cast<uint32_t>(r.sys_errno));
  put_u64(r.have);
  for (size_t i = 0; i < kAttrCount; ++i) {
    const Attr a = static_cast<Attr>(i);
    if (!r.has(a)) continue;
    out += static_cast<char>(i);
    if (attr_is_integer(a)) {
      put_u64(static_cast<uint64_t>(r.get(a).num));
    } else {
      put_u32(static_cast<uint32_t>(r.get(a).bytes.size()));
      out += r.get(a).bytes;
    }
  }
  return out;
}

Bytes canonical_manifest_tail(const BaselineMeta& m) {
  Bytes out = "\nmanifest\n";
  const auto put = [&](std::string_view v) {
    const uint32_t n = htole32(static_cast<uint32_t>(v.size()));
    out.append(reinterpret_cast<const char*>(&n), 4);
    out.append(v);
  };
  put(std::to_string(m.roots.size()));
  for (const auto& r : m.roots) put(r);
  put(m.roots_source);
  put(m.policy_digest);
  if (const db::SchemaVersion* v = db::schema_version(m.schema_version); !v || v->journal) {
    put(std::to_string(m.journal.size()));
    put(m.journal_head());
  }
  // Only when there are any: a baseline without alternatives has the digest it had before
  // they existed. Length-prefixed like the rest, in path and number order.
  if (!m.alternatives.empty()) {
    put("alternatives");
    put(std::to_string(m.alternatives.size()));
    for (const auto& [path, alts] : m.alternatives) {
      put(path);
      put(std::to_string(alts.size()));
      for (const Record& r : alts) put(canonical_row(r));
    }
  }
  return out;
}

namespace db {

std::string entry_columns(const SchemaVersion& v) {
  std::string s = "path, status, errno, have";
  for (size_t i = 0; i < v.attrs; ++i) {
    s += ", ";
    s += attr_info(static_cast<Attr>(i)).key;
  }
  return s;
}

std::string insert_record_sql(std::string_view table, std::string_view extra, size_t extra_count) {
  std::string sql = "INSERT INTO " + std::string(table) + "(" + entry_columns(*schema_version(kSchemaVersion)) +
                    std::string(extra) + ") VALUES(?";
  for (size_t i = 1; i < 4 + kAttrCount + extra_count; ++i) sql += ",?";
  return sql + ")";
}

void bind_record(sqlite3_stmt* st, const Record& r) {
  sqlite3_bind_blob(st, 1, r.path.data(), static_cast<int>(r.path.size()), SQLITE_STATIC);
  sqlite3_bind_int(st, 2, static_cast<int>(r.status));
  sqlite3_bind_int(st, 3, r.sys_errno);
  sqlite3_bind_int64(st, 4, static_cast<sqlite3_int64>(r.have));
  for (size_t i = 0; i < kAttrCount; ++i) {
    const Attr a = static_cast<Attr>(i);
    const int col = kFirstAttrColumn + 1 + static_cast<int>(i);
    if (!r.has(a)) {
      sqlite3_bind_null(st, col);
    } else if (attr_is_integer(a)) {
      sqlite3_bind_int64(st, col, r.get(a).num);
    } else {
      const Bytes& b = r.get(a).bytes;
      // zeroblob-safe: an empty value is an empty BLOB, not NULL (NULL means "not collected")
      sqlite3_bind_blob(st, col, b.empty() ? "" : b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
    }
  }
}

bool read_record(sqlite3_stmt* st, const SchemaVersion& v, Record* r) {
  *r = Record{};
  if (sqlite3_column_type(st, 0) != SQLITE_BLOB && sqlite3_column_type(st, 0) != SQLITE_TEXT) return false;
  r->path.assign(column_blob(st, 0));
  const int status = sqlite3_column_int(st, 1);
  if (status < 0 || status >= kEntryStatusCount) return false;
  r->status = static_cast<EntryStatus>(status);
  r->sys_errno = sqlite3_column_int(st, 2);
  const auto have = static_cast<AttrMask>(sqlite3_column_int64(st, 3));
  if (have & ~((AttrMask{1} << v.attrs) - 1)) return false;  // an attribute without a column
  for (size_t i = 0; i < v.attrs; ++i) {
    const Attr a = static_cast<Attr>(i);
    const int col = kFirstAttrColumn + static_cast<int>(i);
    const int type = sqlite3_column_type(st, col);
    const bool present = have & attr_bit(a);
    if (present != (type != SQLITE_NULL)) return false;
    if (!present) continue;
    if (attr_is_integer(a)) {
      if (type != SQLITE_INTEGER) return false;
      r->set_num(a, sqlite3_column_int64(st, col));
    } else {
      if (type != SQLITE_BLOB) return false;
      r->set_bytes(a, Bytes(column_blob(st, col)));
    }
  }
  return r->has(Attr::Type);
}

}  // namespace db
}  // namespace fim
