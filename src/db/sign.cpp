// SPDX-License-Identifier: GPL-2.0-or-later
// Signing a baseline after the fact (docs/design.md, Baseline: "signing off the host"): the host
// writes it with --unsigned and keeps only signing.pub; the baseline is signed where the
// private key lives and copied back. The rows are verified against the manifest first, then
// copied into a new file with the same manifest (sequence, host, policy, time, journal) and
// the signature, installed like any new baseline.
#include "fim/db.h"

namespace fim {

Result<BaselineMeta> sign_baseline(const Bytes& path, const SigningKey& key) {
  auto lock = BaselineLock::acquire(path);
  if (!lock) return lock.error();
  auto reader = BaselineReader::open(path);
  if (!reader) return reader.error();
  auto writer = BaselineWriter::create(path, &key);
  if (!writer) return writer.error();
  Record rec;
  for (;;) {
    auto more = (*reader)->next(&rec);
    if (!more) return more.error();
    if (!*more) break;
    FIM_TRY((*writer)->add(rec));
  }
  FIM_TRY((*reader)->verify());  // nothing edited is signed
  BaselineMeta meta = (*reader)->meta();
  const std::string before = meta.content_sha256;
  FIM_TRY((*writer)->commit(&meta));
  if (meta.content_sha256 != before)
    return make_error(Errc::Bug, "signing changed the content digest of '" + escape_terminal(path) + "'");
  return meta;
}

}  // namespace fim
