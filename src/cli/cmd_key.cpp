// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl key generate: the host's Ed25519 signing key; key sign and migrate, which rewrite a
// baseline without scanning (src/db/sign.cpp).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>

#include "commands.h"
#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/pipeline.h"

namespace fim::cli {

namespace {

/// The roots a baseline records, as key sign and adopt print them (what the signature vouches for).
std::string roots_line(const BaselineMeta& m) {
  std::string out;
  for (const Bytes& r : m.roots) out += (out.empty() ? "" : ", ") + quote(r);
  return out.empty() ? "(none)" : out;
}

/// fimctl key rotate --reason: a new key pair, the baseline re-signed with it (the old key vouches).
int key_rotate(const Options& o) {
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  AlertSink sink;
  auto r = run_key_rotate(*ro, sink);
  if (!r) return report_error(r.error());
  std::printf("key rotated: %s -> %s; the old pair is kept as %s and %s\n"
              "%s re-signed with key %s: sequence %llu, baseline id %s, roots %s\n",
              r->old_key_id.c_str(), r->new_key_id.c_str(), quote(r->kept_key).c_str(), quote(r->kept_pub).c_str(),
              quote(ro->db_path).c_str(), r->new_key_id.c_str(), static_cast<unsigned long long>(r->meta.sequence),
              r->meta.baseline_id.c_str(), roots_line(r->meta).c_str());
  return 0;
}

/// fimctl key sign BASELINE: sign it with --keys DIR/signing.key (off the host).
int key_sign(const Options& o) {
  if (o.paths.size() != 1)
    return report_error(make_error(Errc::Usage, "key sign takes one baseline file (see 'fimctl key sign --help')"));
  auto dir = absolute_path(o.keys);
  if (!dir) return report_error(dir.error());
  auto key = SigningKey::load(join_path(*dir, "signing.key"));
  if (!key) return report_error(key.error());
  auto path = absolute_path(o.paths[0]);
  if (!path) return report_error(path.error());
  std::string was;
  if (auto r = BaselineReader::open(*path); r && (*r)->meta().is_signed) was = (*r)->meta().key_id;
  auto meta = sign_baseline(*path, *key);
  if (!meta) return report_error(meta.error());
  std::printf("signed %s with key %s%s: sequence %llu, %llu entries, content sha256 %s\n"
              "  baseline id %s, host %s, roots %s\n",
              escape_terminal(*path).c_str(), key->key_id().c_str(),
              was.empty() ? "" : (" (replacing the signature of key " + escape_terminal(was) + ")").c_str(),
              static_cast<unsigned long long>(meta->sequence), static_cast<unsigned long long>(meta->entry_count),
              meta->content_sha256.c_str(), meta->baseline_id.empty() ? "(none)" : meta->baseline_id.c_str(),
              escape_terminal(meta->host_id).c_str(), roots_line(*meta).c_str());
  return 0;
}

}  // namespace

/// fimctl adopt FILE --reason: FILE verified and made the pinned baseline at --db.
int cmd_adopt(const Options& o) {
  if (o.paths.size() != 1)
    return report_error(make_error(Errc::Usage, "adopt takes one baseline file (see 'fimctl adopt --help')"));
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  auto file = absolute_path(o.paths[0]);
  if (!file) return report_error(file.error());
  AlertSink sink;
  auto meta = run_adopt(*ro, *file, sink);
  if (!meta) return report_error(meta.error());
  std::printf("adopted %s as %s: sequence %llu, %llu entries, baseline id %s, %s\n  roots %s\n",
              quote(*file).c_str(), quote(ro->db_path).c_str(), static_cast<unsigned long long>(meta->sequence),
              static_cast<unsigned long long>(meta->entry_count), meta->baseline_id.c_str(),
              meta->is_signed ? ("signed, key " + meta->key_id).c_str() : "UNSIGNED", roots_line(*meta).c_str());
  return 0;
}

/// fimctl migrate: the --db baseline, written by an older fimctl, in this one's schema.
int cmd_migrate(const Options& o) {
  auto db = absolute_path(o.db);
  if (!db) return report_error(db.error());
  auto dir = absolute_path(o.keys);
  if (!dir) return report_error(dir.error());
  std::optional<SigningKey> sign;
  std::optional<VerifyKey> verify;
  if (const Bytes p = join_path(*dir, "signing.key"); ::access(p.c_str(), F_OK) == 0) {
    auto k = SigningKey::load(p);
    if (!k) return report_error(k.error());
    sign.emplace(std::move(*k));
  }
  if (const Bytes p = join_path(*dir, "signing.pub"); ::access(p.c_str(), F_OK) == 0) {
    auto k = VerifyKey::load(p);
    if (!k) return report_error(k.error());
    verify.emplace(std::move(*k));
  }
  auto m = migrate_baseline(*db, {sign ? &*sign : nullptr, verify ? &*verify : nullptr, o.allow_unsigned});
  if (!m) return report_error(m.error());
  if (m->from == kSchemaVersion) {
    std::printf("%s is already in schema %d: nothing to do\n", quote(*db).c_str(), kSchemaVersion);
    return 0;
  }
  // This host wrote it: its identity is pinned as any baseline written here.
  Bytes dir_of_db, name;
  split_path(*db, &dir_of_db, &name);
  auto state = StateStore::open(dir_of_db);
  if (!state) return report_error(state.error());
  if (auto st = (*state)->pin_identity(*db, identity_as_installed(*db, m->meta)); !st) return report_error(st.error());
  std::printf("migrated %s from schema %d to %d: sequence %llu, %llu entries, content sha256 %s, %s\n",
              quote(*db).c_str(), m->from, kSchemaVersion, static_cast<unsigned long long>(m->meta.sequence),
              static_cast<unsigned long long>(m->meta.entry_count), m->meta.content_sha256.c_str(),
              m->meta.is_signed ? ("signed with key " + m->meta.key_id).c_str() : "unsigned");
  return 0;
}

int cmd_key(const Options& o) {
  if (o.action == "sign") return key_sign(o);
  if (o.action == "rotate") return key_rotate(o);
  auto dir = absolute_path(o.keys);
  if (!dir) return report_error(dir.error());
  // Parents as /etc has them (0755), the key directory itself private.
  Bytes parent, name;
  split_path(*dir, &parent, &name);
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST)
    return report_error(make_error(Errc::Io, "cannot create " + quote(parent), errno));
  if (::mkdir(dir->c_str(), 0700) != 0 && errno != EEXIST)
    return report_error(make_error(Errc::Io, "cannot create " + quote(*dir), errno));
  if (auto st = check_trusted_path(*dir, "key directory"); !st) return report_error(st.error());
  auto id = SigningKey::generate(*dir);
  if (!id) return report_error(id.error());
  std::printf("key %s written: %s/signing.key (keep it private; 0600), %s/signing.pub\n"
              "new baselines are signed with it; baselines signed before cannot be verified with it\n",
              id->c_str(), escape_terminal(*dir).c_str(), escape_terminal(*dir).c_str());
  return 0;
}

}  // namespace fim::cli
