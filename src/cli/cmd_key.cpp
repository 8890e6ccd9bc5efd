// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl key generate: the host's Ed25519 signing key.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "commands.h"
#include "fim/base/sys.h"
#include "fim/db.h"

namespace fim::cli {

int cmd_key(const Options& o) {
  auto dir = absolute_path(o.keys);
  if (!dir) return report_error(dir.error());
  // Parents as /etc has them (0755), the key directory itself private.
  Bytes parent, name;
  split_path(*dir, &parent, &name);
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST)
    return report_error(make_error(Errc::Io, "cannot create '" + escape_terminal(parent) + "'", errno));
  if (::mkdir(dir->c_str(), 0700) != 0 && errno != EEXIST)
    return report_error(make_error(Errc::Io, "cannot create '" + escape_terminal(*dir) + "'", errno));
  if (auto st = check_trusted_path(*dir, "key directory"); !st) return report_error(st.error());
  auto id = SigningKey::generate(*dir);
  if (!id) return report_error(id.error());
  std::printf("key %s written: %s/signing.key (keep it private; 0600), %s/signing.pub\n"
              "new baselines are signed with it; baselines signed before cannot be verified with it\n",
              id->c_str(), escape_terminal(*dir).c_str(), escape_terminal(*dir).c_str());
  return 0;
}

}  // namespace fim::cli
