// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl seal PATH...: fs-verity on baselined files (fim/seal.h). One line per file; the exit
// code is the worst outcome's (fimctl(8), seal).
#include <algorithm>
#include <cstdio>

#include "commands.h"
#include "fim/seal.h"

namespace fim::cli {

int cmd_seal(const Options& o) {
  auto ro = run_options(o);
  if (!ro) return report_error(ro.error());
  AlertSink sink;
  auto res = run_seal(*ro, sink);
  if (!res) return report_error(res.error());
  // 0 all sealed; 4 content not the baseline's; 16 refused (policy, not in the baseline);
  // 20 the kernel refused (a writer, permission): the highest wins.
  int rc = 0, sealed = 0;
  for (const SealOutcome& f : res->files) {
    using K = SealOutcome::Kind;
    const char* what = "sealed";
    int code = 0;
    switch (f.kind) {
      case K::Sealed: what = "sealed", ++sealed; break;
      case K::AlreadySealed: what = "already sealed"; break;
      case K::Refused: what = "refused", code = 16; break;
      case K::Changed: what = "CHANGED, not sealed", code = 4; break;
      case K::Failed: what = "failed", code = 20; break;
    }
    if (f.kind == K::Changed && f.why.rfind("written while", 0) == 0) what = "CHANGED";
    std::printf("%s %s: %s\n", what, quote(f.path).c_str(), escape_terminal(f.why).c_str());
    rc = std::max(rc, code);
  }
  if (res->skipped)
    std::printf("skipped %llu files below the PATHs: their rule does not say seal = true\n",
                static_cast<unsigned long long>(res->skipped));
  if (sealed)
    std::fprintf(stderr,
                 "fimctl: %d sealed; the baseline does not record their fs-verity digest yet: run 'fimctl update', "
                 "or 'fimctl check' then 'fimctl accept --reason sealed PATH...' to take only these (until then check "
                 "reports their verity and flags as changed; afterwards check --fast measures them, not reads them)\n",
                 sealed);
  return rc;
}

}  // namespace fim::cli
