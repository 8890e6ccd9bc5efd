// SPDX-License-Identifier: GPL-2.0-or-later
// Rewriting a baseline without scanning: its rows are verified against its manifest, then
// copied into a new file with the same manifest (sequence, host, policy, time, journal) and
// installed like any new baseline (temp file, fsync, rename, under the lock).
//  - sign_baseline, signing after the fact (docs/design.md, Baseline: "signing off the host"):
//    the host writes it with --unsigned and keeps only signing.pub; the baseline is signed
//    where the private key lives and copied back.
//  - migrate_baseline: a baseline an older fimctl wrote, in the current schema. Its content
//    digest covers the same rows (the canonical row encodes only what was collected), so the
//    verdicts of a check are the same before and after.
#include "fim/db.h"

namespace fim {
namespace {

/// Copies every row of `reader` to `writer`, then verifies what was read: nothing edited is
/// rewritten.
Status copy_verified(BaselineReader& reader, BaselineWriter& writer) {
  Record rec;
  for (;;) {
    auto more = reader.next(&rec);
    if (!more) return more.error();
    if (!*more) break;
    FIM_TRY(writer.add(rec));
  }
  return reader.verify();
}

/// Whether the manifest of `m` may be trusted enough to rewrite it (as check trusts it).
Status trust_old(const Bytes& path, const BaselineMeta& m, const MigrateKeys& keys) {
  if (!m.is_signed) {
    if (keys.allow_unsigned) return {};
    return make_error(Errc::Trust, "baseline " + quote(path) + " is not signed; pass --unsigned to migrate an "
                                   "unsigned baseline");
  }
  if (!keys.verify)
    return make_error(Errc::Trust, "baseline " + quote(path) + " is signed (key " + escape_terminal(m.key_id) +
                                       ") but there is no public key to verify it");
  if (keys.verify->key_id() != m.key_id || !keys.verify->verify(manifest_text(m), m.signature))
    return make_error(Errc::Trust, "baseline " + quote(path) + " failed verification: its signature does not "
                                   "match its manifest or the configured key; it is not migrated");
  if (!keys.sign)
    return make_error(Errc::Usage, "refusing to replace the signed baseline " + quote(path) +
                                       " with an unsigned one: no signing key");
  return {};
}

}  // namespace

Result<BaselineMeta> sign_baseline(const Bytes& path, const SigningKey& key) {
  auto lock = BaselineLock::acquire(path);
  if (!lock) return lock.error();
  auto reader = BaselineReader::open(path);
  if (!reader) return reader.error();
  auto writer = BaselineWriter::create(path, &key);
  if (!writer) return writer.error();
  FIM_TRY(copy_verified(**reader, **writer));
  BaselineMeta meta = (*reader)->meta();
  const std::string before = meta.content_sha256;
  FIM_TRY((*writer)->commit(&meta));
  if (meta.content_sha256 != before)
    return make_error(Errc::Bug, "signing changed the content digest of " + quote(path));
  return meta;
}

Result<Migrated> migrate_baseline(const Bytes& path, const MigrateKeys& keys) {
  auto lock = BaselineLock::acquire(path);
  if (!lock) return lock.error();
  auto reader = BaselineReader::open_older(path);
  if (!reader) return reader.error();
  Migrated out{(*reader)->meta().schema_version, (*reader)->meta()};
  if (out.from == kSchemaVersion) return out;
  FIM_TRY(trust_old(path, out.meta, keys));
  auto writer = BaselineWriter::create(path, keys.sign);
  if (!writer) return writer.error();
  FIM_TRY(copy_verified(**reader, **writer));
  out.meta.key_id.clear();
  out.meta.signature.clear();
  out.meta.is_signed = false;
  if (out.meta.baseline_id.empty()) out.meta.baseline_id = new_baseline_id();  // written before ids
  FIM_TRY((*writer)->commit(&out.meta));
  return out;
}

}  // namespace fim
