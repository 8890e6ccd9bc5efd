// SPDX-License-Identifier: GPL-2.0-or-later
// The baseline: one SQLite file, frozen once written (docs/design.md, Baseline).
//
// Format: rollback-journal mode (never WAL), application_id kBaselineAppId, user_version the
// schema version, entries keyed by path BLOB in memcmp order (the walk order). `meta` holds
// the manifest: a SHA-256 over the canonical encoding of every entry row in key order, the
// entry count, the roots, the policy digest, the journal's length and head, host, time and
// version. Readers verify that digest while they stream the rows and fail closed on a
// mismatch. The manifest is signed with Ed25519 (SigningKey); an unsigned baseline is used
// only with --unsigned.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fim/attr.h"
#include "fim/base/digest.h"
#include "fim/base/fd.h"
#include "fim/base/result.h"
#include "fim/keys.h"  // SigningKey, VerifyKey: every baseline reader and writer takes one

namespace fim {
namespace db {
class Txn;  // src/db/sqlite.h
}

inline constexpr int32_t kBaselineAppId = 0x46494d63;  // "FIMc"
/// The schema this build writes; src/db/schema.cpp lists every version it can migrate.
inline constexpr int kSchemaVersion = 4;

/// One acceptance, as recorded in the baseline's hash-chained journal: `text` is canonical
/// "key=value" lines (journal_text()), `hash` = SHA-256(previous hash || text), hex; the
/// first entry chains from 32 zero bytes. The count and the last hash are covered by the
/// content digest, so the journal is signed with the rest.
struct JournalEntry {
  uint64_t seq = 0;
  std::string text;
  std::string hash;
};

struct Acceptance {
  Acceptance() = default;
  /// One entry: when (0: the successor's time), who, what, why, and the entry's row digests.
  Acceptance(int64_t at, std::string who_, std::string action_, std::string reason_, Bytes path_, std::string kind_,
             std::string old_row_, std::string new_row_, std::string report_, std::string ticket_)
      : at_ns(at), who(std::move(who_)), action(std::move(action_)), reason(std::move(reason_)), path(std::move(path_)),
        kind(std::move(kind_)), old_row(std::move(old_row_)), new_row(std::move(new_row_)), report(std::move(report_)),
        ticket(std::move(ticket_)) {}
  int64_t at_ns = 0;
  std::string who;
  std::string action;  ///< "accept", "update", "adopt" or "window"
  std::string reason;
  Bytes path;
  std::string kind;     ///< added / removed / changed
  std::string old_row;  ///< SHA-256 of canonical_row() before, hex ("-" when added)
  std::string new_row;  ///< after ("-" when removed)
  /// accept/update: the id of the report the operator reviewed (empty: none named; an entry
  /// written before report ids). Compared with an off-host copy of the reports it tells
  /// what was signed in from which report.
  std::string report;
  /// accept/update --ticket: the change ticket the acceptance belongs to (any text; empty:
  /// none named). Hex in the journal's text like the other free text, so hash-chained.
  std::string ticket;
  /// fimctl window (docs/design.md, Reconciliation): the window an entry of action "window"
  /// opens or closes (kind "open", "close"), or the one an 'accept --window' took it under.
  std::string window;
  /// kind "open": when the window expires (at_ns + its duration), the paths it covers (empty:
  /// the baseline's roots) and the writer it names ("process:COMM", "unit:UNIT", "user:UID";
  /// empty: any writer). Free text in hex, like the rest.
  int64_t window_until_ns = 0;
  std::vector<Bytes> window_paths;
  std::string window_writer;
  /// kind "open": the clock when it opened, "BOOT-ID OFFSET-NS" (realtime minus boottime), so
  /// a later check can tell a clock step since (fim/window.h).
  std::string window_clock;
};
std::string journal_text(const Acceptance& a);
/// Whether entries are numbered 1.. and each hash chains to the one before.
bool journal_chain_ok(const std::vector<JournalEntry>& j);
/// Parses journal_text(); false on anything else.
bool parse_journal_text(std::string_view text, Acceptance* out);

/// What an alternative (accept --also) leaves out of the state it keeps: when and where the
/// content was written. The same version written again (a rollback, a host of the rollout
/// that runs it) has new times and a new inode; its content, type, mode, owner, size, link
/// target and attributes are what make it that version.
inline constexpr AttrMask kNotInAlternative = attr_bit(Attr::Inode) | attr_bit(Attr::Dev) | attr_bit(Attr::Ctime) |
                                              attr_bit(Attr::Btime) | attr_bit(Attr::Handle) | attr_bit(Attr::Mtime);
/// At most this many alternatives per entry: 'accept --drop-alternatives' makes room.
inline constexpr size_t kMaxAlternatives = 8;

struct BaselineMeta {
  int schema_version = kSchemaVersion;  ///< what the file was written in (older: open_older())
  int64_t created_ns = 0;
  std::string fimctl_version;
  std::string host_id;
  std::string policy_digest;
  std::string policy_source;
  std::string roots_source;  ///< "cli" (init PATH...) or "policy"
  std::vector<Bytes> roots;
  uint64_t entry_count = 0;
  std::string content_sha256;  ///< hex
  bool is_signed = false;
  uint64_t sequence = 1;       ///< grows with every baseline written for this path (rollback check)
  std::string key_id;          ///< signer's key id (16 hex digits), when signed
  std::string signature;       ///< Ed25519 over manifest_text(), hex, when signed
  /// Random at init, kept by every successor (docs/design.md, Baseline: identity); empty in a
  /// baseline written before ids existed. Signed (manifest_text), but not part of the content
  /// digest, which stays a function of the rows, roots, policy and journal alone.
  std::string baseline_id;
  std::vector<JournalEntry> journal;  ///< every acceptance since the first baseline, chained
  /// accept --also (docs/design.md, Acceptance: alternatives): path -> the other good states of
  /// its entry, alternative 2, 3, ... in order (the entry's row is the first). Each is a row
  /// without kNotInAlternative. Covered by the content digest when not empty.
  std::map<Bytes, std::vector<Record>> alternatives;
  /// A per-image baseline (docs/design.md, Containers): "image" when built from the image's
  /// own layers (init --image), "container" when recorded from a running container of it
  /// (init --containers); empty for a host's. Signed (manifest_text) when set.
  std::string source;
  std::string image_digest;        ///< "sha256:<hex>": the manifest the baseline was built from
  std::string image_index_digest;  ///< the OCI index it was chosen from, when there was one
  std::string image_ref;           ///< the reference init --image was given (shown, not trusted)
  void set_image_origin(std::string src, std::string digest, std::string index_digest, std::string ref) {
    source = std::move(src), image_digest = std::move(digest), image_index_digest = std::move(index_digest);
    image_ref = std::move(ref);
  }

  /// Appends an acceptance to the journal, chained to the last entry.
  void append_journal(const Acceptance& a);
  /// The last entry's hash, or 64 zeros for an empty journal.
  std::string journal_head() const;
};

/// What ties a baseline to its use on this host (docs/design.md, Baseline: identity): pinned
/// per baseline path in state.db, and (id, key, sequence) in the baseline file's
/// trusted.fimctl.identity extended attribute, which only CAP_SYS_ADMIN can set.
struct BaselineIdentity {
  std::string id;            ///< BaselineMeta::baseline_id
  std::string roots_sha256;  ///< roots_digest() (state.db only)
  std::string key_id;        ///< empty: unsigned
  uint64_t sequence = 0;
  /// state.db only: the file carried the attribute when this was pinned, so a file at the path
  /// without it was put there by something other than fimctl. Not part of the identity.
  bool xattr = false;
  /// The attribute only: path_tag() of the path fimctl wrote the file at (empty: an attribute
  /// from before it was recorded). Not part of the identity.
  std::string at;
  bool operator==(const BaselineIdentity& o) const {
    return id == o.id && roots_sha256 == o.roots_sha256 && key_id == o.key_id && sequence == o.sequence;
  }
};
BaselineIdentity identity_of(const BaselineMeta& m);
/// SHA-256 (hex) over the roots, each length-prefixed.
std::string roots_digest(const std::vector<Bytes>& roots);
/// 32 hex digits from the system's CSPRNG.
std::string new_baseline_id();
inline constexpr const char* kIdentityXattr = "trusted.fimctl.identity";
/// 32 hex digits of SHA-256 over `path`: which path an attribute was written for, so a file
/// fimctl wrote elsewhere (a sibling baseline renamed over this one) is not taken for it.
std::string path_tag(const Bytes& path);
/// "v2 id=ID key=KEY|- seq=N at=TAG" (v1, without at=, is still read: at is then empty).
std::string identity_xattr_text(const BaselineIdentity& i);
std::optional<BaselineIdentity> parse_identity_xattr(std::string_view text);
/// The attribute of `path`: there (*out set), absent, unreadable as such (not root: trusted.*
/// is invisible; or a filesystem without extended attributes, *err says which), or malformed.
enum class IdentityXattr { Present, Absent, Unavailable, Malformed };
IdentityXattr read_identity_xattr(const Bytes& path, BaselineIdentity* out, int* err);
/// Sets it on `fd`, naming `path` (the file's final path); 0 or the errno (ENOTSUP, EPERM: not root).
int write_identity_xattr(int fd, const BaselineIdentity& i, const Bytes& path);
/// identity_of(m) as pinned for the file at `path`: with xattr set when the file carries the
/// attribute naming it.
BaselineIdentity identity_as_installed(const Bytes& path, const BaselineMeta& m);

/// The text the signature covers: the content digest (which covers every row, the roots and
/// the policy digest), the sequence, host, policy, time, version and key id.
std::string manifest_text(const BaselineMeta& m);


/// Writes a new baseline next to `path` and replaces `path` atomically on commit: temp file
/// in the same directory, fsync, rename, fsync of the directory. Call under BaselineLock:
/// create() removes temp files a killed writer left beside `path`. Destroying an uncommitted
/// writer removes the temp file, so a failed init leaves the previous baseline in force.
class BaselineWriter {
 public:
  /// With `key`, commit() signs the manifest (the key must outlive the writer).
  static Result<std::unique_ptr<BaselineWriter>> create(const Bytes& path, const SigningKey* key = nullptr);
  ~BaselineWriter();
  BaselineWriter(const BaselineWriter&) = delete;
  BaselineWriter& operator=(const BaselineWriter&) = delete;

  /// Records must come in strictly increasing path order (the walk order).
  Status add(const Record& r);
  /// Fills meta->entry_count and meta->content_sha256, writes the manifest, and installs the file.
  Status commit(BaselineMeta* meta);
  /// After commit(): 0 when the trusted.fimctl.identity attribute was set, else why not
  /// (EPERM: not root; ENOTSUP: the filesystem has none).
  int identity_xattr_errno() const;

 private:
  struct Impl;
  explicit BaselineWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The error for a baseline that is not at `path`: "run 'fimctl init'" only where nothing
/// says one was ever recorded there; when the state.db beside it pinned a sequence for it, it
/// was removed or hidden, and recording the host as it is now is not the answer.
Error missing_baseline_error(const Bytes& path);

/// Opens a baseline for reading, refusing anything that is not exactly a fimctl baseline of
/// the current schema: a missing file, a foreign or corrupt database, a newer or older schema
/// (Errc::Database; an older one's message names 'fimctl migrate'), or a -wal/-journal file
/// beside it that SQLite would replay (Errc::Trust). Opened read-only with immutable=1,
/// defensive, trusted_schema off.
class BaselineReader {
 public:
  static Result<std::unique_ptr<BaselineReader>> open(const Bytes& path);
  /// The same, but a baseline of an older schema this build can migrate is read too (its
  /// meta().schema_version says which): for migrate_baseline(), never for a comparison.
  static Result<std::unique_ptr<BaselineReader>> open_older(const Bytes& path);
  /// A second reader of a baseline another reader verifies: its rows are hints (check --fast
  /// chooses with them what to read, src/pipeline/fast.cpp), never digested; verify() fails.
  static Result<std::unique_ptr<BaselineReader>> open_hints(const Bytes& path);
  ~BaselineReader();
  BaselineReader(const BaselineReader&) = delete;
  BaselineReader& operator=(const BaselineReader&) = delete;

  const BaselineMeta& meta() const;
  const Bytes& path() const;
  /// The next entry in path order; false at the end.
  Result<bool> next(Record* out);
  /// After the last next(): fails with Errc::Trust unless the rows read match the manifest.
  Status verify() const;
  /// Once verify() has passed: positions a cursor on the entries at `path` and below it, in
  /// path order, for range_next() (the watch daemon's lookups). Errc::Trust when the file at
  /// path() is no longer the one verified (replaced by an update, or edited in place): the
  /// caller re-opens and verifies again.
  Status seek(const Bytes& path);
  /// The next entry of the range seek() chose; false at its end.
  Result<bool> range_next(Record* out);
  /// The rows at and below `roots` (empty: all) and the sizes of the regular files among them
  /// that have a content digest: a progress line's totals (docs/design.md, Record schema: the
  /// progress line). Not verified: only shown, never trusted.
  struct Totals {
    uint64_t entries = 0, bytes = 0;
  };
  Result<Totals> totals(const std::vector<Bytes>& roots) const;
  /// Once verified: the paths recorded with inode number `ino` (hard links of one file, and
  /// namesakes on other filesystems).
  Result<std::vector<Bytes>> paths_with_inode(uint64_t ino);

 private:
  static Result<std::unique_ptr<BaselineReader>> open_impl(const Bytes& path, bool older);
  struct Impl;
  explicit BaselineReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The baseline's own directory (docs/design.md, Threat model, trusted paths): owned by root or
/// the effective user and writable by nobody else, a sticky bit or not; its ancestors follow
/// check_trusted_path. Errc::Trust naming the offending component.
Status check_baseline_dir(const Bytes& dir);
/// A file fimctl keeps beside the baseline (state.db, its -journal/-wal/-shm, the lock): when it
/// exists it must be a regular file, not a link, with one name, owned by root or the effective
/// user. Errc::Trust naming it; a file that does not exist passes.
Status check_side_file(const Bytes& path);
/// The same for an already opened side file's fstat (no race between check and open).
Status check_side_file_stat(const Bytes& path, const struct stat& st);

/// Exclusive writer lock: flock on "<baseline>.lock". Errc::Locked names the holder's pid.
class BaselineLock {
 public:
  static Result<BaselineLock> acquire(const Bytes& baseline_path);

 private:
  explicit BaselineLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

/// Signs the baseline at `path` with `key` (off the host: see docs/design.md, Baseline):
/// verifies its rows against its manifest, then installs the same rows and manifest (sequence,
/// host, policy, time, journal) with the signature, atomically and under the lock. Replaces an
/// earlier signature.
Result<BaselineMeta> sign_baseline(const Bytes& path, const SigningKey& key);

/// What migrate_baseline() trusts and signs with (the host's --keys directory).
struct MigrateKeys {
  const SigningKey* sign = nullptr;   ///< required when the old baseline is signed
  const VerifyKey* verify = nullptr;  ///< verifies the old baseline's signature
  bool allow_unsigned = false;        ///< --unsigned: an unsigned old baseline may be migrated
};
struct Migrated {
  int from = kSchemaVersion;  ///< the schema it was written in (kSchemaVersion: nothing to do)
  BaselineMeta meta;          ///< the manifest now installed
};
/// Rewrites the baseline at `path`, written in an older schema, in the current one ('fimctl
/// migrate'). Trusted first as check trusts it (a signed one verifies with `keys.verify`, an
/// unsigned one needs allow_unsigned), its rows verified against its manifest, then installed
/// with the same manifest (sequence, host, policy, time, journal) in the current schema,
/// signed with `keys.sign`, atomically and under the lock. A current baseline is left alone.
Result<Migrated> migrate_baseline(const Bytes& path, const MigrateKeys& keys);

/// The SQL statements of schema `version` (empty for one this build does not know),
/// generated from the attribute table.
std::vector<std::string> baseline_schema(int version = kSchemaVersion);
/// The canonical encoding of one row, as covered by the content digest.
Bytes canonical_row(const Record& r);
/// What the content digest covers after the rows: the roots (in order), where they came
/// from, and the policy digest, so none of them can be edited without failing verification.
Bytes canonical_manifest_tail(const BaselineMeta& m);

}  // namespace fim
