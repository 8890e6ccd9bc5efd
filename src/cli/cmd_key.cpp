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

namespace fim::cli {

namespace {

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
  std::printf("signed %s with key %s%s: sequence %llu, %llu entries, content sha256 %s\n",
              escape_terminal(*path).c_str(), key->key_id().c_str(),
              was.empty() ? "" : (" (replacing the signature of key " + escape_terminal(was) + ")").c_str(),
              static_cast<unsigned long long>(meta->sequence), static_cast<unsigned long long>(meta->entry_count),
              meta->content_sha256.c_str());
  return 0;
}

}  // namespace

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
  std::printf("migrated %s from schema %d to %d: sequence %llu, %llu entries, content sha256 %s, %s\n",
              quote(*db).c_str(), m->from, kSchemaVersion, static_cast<unsigned long long>(m->meta.sequence),
              static_cast<unsigned long long>(m->meta.entry_count), m->meta.content_sha256.c_str(),
              m->meta.is_signed ? ("signed with key " + m->meta.key_id).c_str() : "unsigned");
  return 0;
}

int cmd_key(const Options& o) {
  if (o.action == "sign") return key_sign(o);
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
