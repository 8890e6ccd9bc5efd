// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl adopt and fimctl key rotate: the two ways an operator tells this host to use another
// baseline identity or another key than the one pinned (docs/design.md, Baseline: identity).
// Both verify what they take, write a journalled successor and pin it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "fim/base/sys.h"
#include "fim/pipeline.h"
#include "fim/merge.h"

namespace fim {
namespace {

/// A successor of `meta` carrying the rows of `rows` (the reader `meta` came from, read here
/// once: what is verified is what is written, with no second open that could find another
/// file), sequence above everything seen for the path, with `entry` at the end of its
/// journal; written with `key`, installed and pinned. Nothing is installed unless every row
/// verified.
Result<BaselineMeta> write_successor(const RunOptions& opts, BaselineReader& rows, const BaselineMeta& meta,
                                     StateStore& state, const std::optional<SigningKey>& key, Acceptance entry,
                                     Sink& sink) {
  auto last = state.last_sequence(opts.db_path);
  if (!last) return last.error();
  uint64_t after = std::max(meta.sequence, *last);
  if (auto pinned = state.identity(opts.db_path); pinned && *pinned) after = std::max(after, (*pinned)->sequence);
  auto writer = BaselineWriter::create(opts.db_path, key ? &*key : nullptr);
  if (!writer) return writer.error();
  FIM_TRY(detail::read_verified(rows, [&](const Record& r) { return (*writer)->add(r); }));
  BaselineMeta next = meta;
  next.sequence = after + 1;
  next.is_signed = false;
  next.key_id.clear();
  next.signature.clear();
  if (next.baseline_id.empty()) next.baseline_id = new_baseline_id();
  entry.at_ns = now_ns();
  next.created_ns = entry.at_ns;
  next.append_journal(entry);
  FIM_TRY(detail::commit_pinned(opts, state, **writer, &next, key, sink));
  return next;
}

}  // namespace

Result<BaselineMeta> run_adopt(const RunOptions& opts, const Bytes& file, Sink& sink) {
  if (opts.reason.empty())
    return make_error(Errc::Usage, "adopt needs --reason: why this baseline is the one to use goes into the journal");
  auto lock = BaselineLock::acquire(opts.db_path);
  if (!lock) return lock.error();
  // The file is verified as check would verify it, but against nothing pinned: that is the
  // point. Its signature and every row must hold; one made on another host (a golden image
  // from a template) becomes this host's, and the journal says where it came from.
  RunOptions as_file = opts;
  as_file.db_path = file;
  if (::access(file.c_str(), F_OK) == 0) FIM_TRY(check_trusted_path(file, "baseline"));
  auto reader = BaselineReader::open(file);
  if (!reader) return reader.error();
  BaselineMeta meta = (*reader)->meta();
  FIM_TRY(detail::check_signature(as_file, meta, sink));
  std::string reason = opts.reason;
  if (meta.host_id != machine_id()) {
    reason += " (made on host " + meta.host_id + ")";
    meta.host_id = machine_id();
  }
  auto state = detail::open_state(opts.db_path);
  if (!state) return state.error();
  auto key = detail::signing_key(opts);
  if (!key) return key.error();
  if (meta.is_signed && !*key)
    return make_error(Errc::Usage, "adopting the signed baseline " + quote(file) + " writes a successor, which needs "
                                   "this host's signing key (none at " + quote(join_path(opts.keys_dir, "signing.key")) +
                                   "): run adopt with --keys naming a directory that holds it (a medium "
                                   "attached for the purpose)");
  auto pinned = (**state).identity(opts.db_path);
  if (!pinned) return pinned.error();
  Acceptance entry{0, detail::current_user(), "adopt", reason, file, "adopted",
                   *pinned ? (**pinned).id : std::string("-"), meta.baseline_id.empty() ? "-" : meta.baseline_id, "", ""};
  return write_successor(opts, **reader, meta, **state, *key, std::move(entry), sink);
}

Result<KeyRotation> run_key_rotate(const RunOptions& opts, Sink& sink) {
  if (opts.reason.empty())
    return make_error(Errc::Usage, "key rotate needs --reason: why the key changes goes into the journal");
  const Bytes key_path = join_path(opts.keys_dir, "signing.key"), pub_path = join_path(opts.keys_dir, "signing.pub");
  auto old_key = SigningKey::load(key_path);  // the old key must be here: it is what vouches
  if (!old_key) return old_key.error();
  auto lock = BaselineLock::acquire(opts.db_path);
  if (!lock) return lock.error();
  auto trusted = detail::open_trusted(opts, sink);  // verified with the old public key, as pinned
  if (!trusted) return trusted.error();
  const BaselineMeta meta = trusted->base->meta();
  if (!trusted->state) return trusted->state.error();
  KeyRotation out;
  out.old_key_id = old_key->key_id();
  // The old pair is kept beside the new one, never overwritten.
  out.kept_key = key_path + ".old-" + out.old_key_id;
  out.kept_pub = pub_path + ".old-" + out.old_key_id;
  if (::link(key_path.c_str(), out.kept_key.c_str()) != 0 || ::link(pub_path.c_str(), out.kept_pub.c_str()) != 0)
    return make_error(Errc::Io, "cannot keep the old key pair as " + quote(out.kept_key), errno);
  ::unlink(key_path.c_str());
  ::unlink(pub_path.c_str());
  const auto restore = [&] {
    ::unlink(key_path.c_str());
    ::unlink(pub_path.c_str());
    (void)::link(out.kept_key.c_str(), key_path.c_str());
    (void)::link(out.kept_pub.c_str(), pub_path.c_str());
  };
  auto id = SigningKey::generate(opts.keys_dir);
  if (!id) {
    restore();
    return id.error();
  }
  out.new_key_id = *id;
  auto new_key = SigningKey::load(key_path);
  if (!new_key) {
    restore();
    return new_key.error();
  }
  Acceptance entry{0, detail::current_user(), "key rotate", opts.reason, opts.db_path, "key", out.old_key_id,
                   out.new_key_id, "", ""};
  auto next = write_successor(opts, *trusted->base, meta, **trusted->state,
                              std::optional<SigningKey>(std::move(*new_key)), std::move(entry), sink);
  if (!next) {
    restore();
    return next.error();
  }
  out.meta = std::move(*next);
  return out;
}

}  // namespace fim
