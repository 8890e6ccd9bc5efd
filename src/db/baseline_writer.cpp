// SPDX-License-Identifier: GPL-2.0-or-later
// Writing a baseline: one transaction of prepared inserts into a temp file, then an atomic
// install (docs/design.md, Formats). The temp file is disposable until renamed, so it is
// written with journal_mode=OFF and synchronous=OFF and made durable by one fsync at the end.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>

#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "fim/db.h"
#include "schema.h"

namespace fim {
namespace {

/// The roots, the journal and the manifest's key/value rows.
Status write_manifest(sqlite3* db, const BaselineMeta& meta) {
  const auto stmt = [&](const char* sql, const char* what) {
    return db::Stmt::prepare(db, sql, Errc::Io, std::string("cannot write the ") + what);
  };
  auto roots = stmt("INSERT INTO roots(path) VALUES(?)", "roots");
  if (!roots) return roots.error();
  for (const auto& root : meta.roots) FIM_TRY(roots->bind(root).exec());
  auto journal = stmt("INSERT INTO journal(seq, entry, hash) VALUES(?, ?, ?)", "journal");
  if (!journal) return journal.error();
  for (const auto& e : meta.journal) FIM_TRY(journal->bind(e.seq, e.text, db::Text{e.hash}).exec());
  if (!meta.alternatives.empty()) {
    auto alt = stmt(db::insert_record_sql("alternatives", ", n", 1).c_str(), "alternatives");
    if (!alt) return alt.error();
    for (const auto& [path, alts] : meta.alternatives) {
      for (size_t i = 0; i < alts.size(); ++i) {
        if (alts[i].path != path) return make_error(Errc::Bug, "an alternative of " + quote(path) + " names another path");
        sqlite3_reset(alt->get());  // binding needs a reset statement (exec leaves it done)
        db::bind_record(alt->get(), alts[i]);
        sqlite3_bind_int64(alt->get(), 5 + static_cast<int>(kAttrCount), static_cast<sqlite3_int64>(i + 2));
        FIM_TRY(alt->exec());
      }
    }
  }
  auto put = stmt("INSERT INTO meta(key, value) VALUES(?, ?)", "manifest");
  if (!put) return put.error();
  const std::pair<const char*, std::string> rows[] = {
      {"format", "fimctl-baseline"},
      {"schema_version", std::to_string(meta.schema_version)},
      {"created_at", std::to_string(meta.created_ns)},
      {"fimctl_version", meta.fimctl_version},
      {"host_id", meta.host_id},
      {"policy_digest", meta.policy_digest},
      {"policy_source", meta.policy_source},
      {"roots_source", meta.roots_source},
      {"entry_count", std::to_string(meta.entry_count)},
      {"content_sha256", meta.content_sha256},
      {"signed", meta.is_signed ? "1" : "0"},
      {"sequence", std::to_string(meta.sequence)},
      {"key_id", meta.key_id},
      {"signature", meta.signature},
      {"baseline_id", meta.baseline_id},
      {"source", meta.source},
      {"image_digest", meta.image_digest},
      {"image_index_digest", meta.image_index_digest},
      {"image_ref", meta.image_ref},
  };
  for (const auto& [key, value] : rows) FIM_TRY(put->bind(db::Text{key}, value).exec());
  return {};
}

}  // namespace

struct BaselineWriter::Impl {
  Bytes final_path;
  Bytes temp_path;
  db::DbPtr db;
  std::optional<db::Txn> txn;  // every row in one transaction, committed by commit()
  db::StmtPtr insert;
  Sha256Stream content;
  uint64_t count = 0;
  Bytes last_path;
  bool committed = false;
  const SigningKey* sign = nullptr;  // signs the manifest on commit, when set
  int xattr_errno = 0;               // why trusted.fimctl.identity could not be set (0: it was)

  ~Impl() {
    insert.reset();
    txn.reset();
    db.reset();
    if (!committed && !temp_path.empty()) {
      ::unlink(temp_path.c_str());
      untrack_temp_file(temp_path);
    }
  }
};

BaselineWriter::BaselineWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BaselineWriter::~BaselineWriter() = default;

Result<std::unique_ptr<BaselineWriter>> BaselineWriter::create(const Bytes& path, const SigningKey* key) {
  auto impl = std::make_unique<Impl>();
  impl->final_path = path;
  impl->sign = key;
  Bytes dir, name;
  split_path(path, &dir, &name);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return make_error(Errc::Io, "cannot create the baseline directory " + quote(dir), errno);
  // Temp files a killed writer left behind (the caller holds the lock: no writer is live).
  if (UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dfd.valid()) {
    if (const std::unique_ptr<DIR, CDeleter<::closedir>> d(::fdopendir(dfd.get())); d) {
      dfd.release();
      const Bytes prefix = name + ".tmp.";
      while (const dirent* e = ::readdir(d.get())) {
        const std::string_view n(e->d_name);
        if (n.size() == prefix.size() + 6 && n.substr(0, prefix.size()) == prefix)
          ::unlinkat(::dirfd(d.get()), e->d_name, 0);
      }
    }
  }
  Bytes templ = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(templ.data(), O_CLOEXEC);
  if (fd < 0)
    return make_error(Errc::Io, "cannot create a temporary baseline beside " + quote(path), errno);
  ::close(fd);  // SQLite opens it by name; mkostemp made it 0600 and exclusively ours
  impl->temp_path = templ;
  track_temp_file(templ);  // a Ctrl-C from here on removes it (src/cli/main.cpp)

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(templ.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) return db::sqlite_error(raw, Errc::Io, "cannot create " + quote(templ));
  sqlite3* db = impl->db.get();
  FIM_TRY(db::exec(db,
                   "PRAGMA page_size=8192; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                   "PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-8192;",
                   Errc::Io));
  const std::string ids = "PRAGMA application_id=" + std::to_string(kBaselineAppId) +
                          "; PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";";
  FIM_TRY(db::exec(db, ids.c_str(), Errc::Io));
  auto txn = db::Txn::begin(db, "BEGIN", Errc::Io);
  if (!txn) return txn.error();
  impl->txn.emplace(std::move(*txn));
  for (const auto& stmt : baseline_schema()) FIM_TRY(db::exec(db, stmt.c_str(), Errc::Io));
  auto st = db::prepare(db, db::insert_record_sql("entries"), Errc::Io);
  if (!st) return st.error();
  impl->insert = std::move(st.value());
  impl->content.update(db::kContentDigestPrefix);
  return std::unique_ptr<BaselineWriter>(new BaselineWriter(std::move(impl)));
}

Status BaselineWriter::add(const Record& r) {
  if (impl_->count > 0 && !(impl_->last_path < r.path))
    return make_error(Errc::Bug, "baseline rows out of order at " + quote(r.path));
  sqlite3_stmt* st = impl_->insert.get();
  db::bind_record(st, r);
  const int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return db::sqlite_error(impl_->db.get(), Errc::Io, "cannot write the baseline");
  impl_->content.update(canonical_row(r));
  impl_->last_path = r.path;
  ++impl_->count;
  return {};
}

int BaselineWriter::identity_xattr_errno() const { return impl_->xattr_errno; }

Status BaselineWriter::commit(BaselineMeta* out) {
  sqlite3* db = impl_->db.get();
  BaselineMeta& meta = *out;
  meta.schema_version = kSchemaVersion;
  meta.entry_count = impl_->count;
  impl_->content.update(canonical_manifest_tail(meta));
  meta.content_sha256 = hex_encode(impl_->content.finish());
  if (impl_->sign) {  // the manifest names the content digest: sign it now that it is known
    meta.is_signed = true;
    meta.key_id = impl_->sign->key_id();
    auto sig = impl_->sign->sign(manifest_text(meta));
    if (!sig) return sig.error();
    meta.signature = *sig;
  }
  FIM_TRY(write_manifest(db, meta));
  FIM_TRY(impl_->txn->commit());
  impl_->txn.reset();
  impl_->insert.reset();
  if (sqlite3_close_v2(impl_->db.release()) != SQLITE_OK)
    return make_error(Errc::Io, "cannot close " + quote(impl_->temp_path));

  // Durable before visible: fsync the file, rename over the old baseline, fsync the directory.
  UniqueFd fd(::open(impl_->temp_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0)
    return make_error(Errc::Io, "cannot sync " + quote(impl_->temp_path), errno);
  // The identity's second copy, before the file is visible (docs/design.md, Baseline:
  // identity). Not root, or no extended attributes here: state.db alone pins it.
  impl_->xattr_errno = write_identity_xattr(fd.get(), identity_of(meta), impl_->final_path);
  // A signal's handler ends the process on whichever thread it runs: it must not unlink the
  // temp path once it is the baseline, nor say none was written when one was.
  untrack_temp_file(impl_->temp_path);
  if (::rename(impl_->temp_path.c_str(), impl_->final_path.c_str()) != 0)
    return make_error(Errc::Io, "cannot install " + quote(impl_->final_path), errno);
  note_baseline_installed();
  impl_->committed = true;
  Bytes dir, name;
  split_path(impl_->final_path, &dir, &name);
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid() || ::fsync(dfd.get()) != 0)
    return make_error(Errc::Io, "cannot sync directory " + quote(dir), errno);
  return {};
}

}  // namespace fim
