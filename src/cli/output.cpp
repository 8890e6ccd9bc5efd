// SPDX-License-Identifier: GPL-2.0-or-later
// Errors and progress on stderr: the only code that turns an Error into a message and an
// exit code (docs/design.md, Conventions 3).
#include <cstdio>

#include "commands.h"
#include "fim/base/bytes.h"

namespace fim::cli {

int exit_code_for_error(const Error& e) {
  switch (e.code) {
    case Errc::Usage: return 16;
    case Errc::Database: return 17;
    case Errc::Trust: return 18;
    case Errc::Locked: return 19;
    case Errc::Io: return 20;
    case Errc::Unsupported: return 21;
    case Errc::Bug: return 22;
    case Errc::Cancelled: return 22;  // cancellation is handled where it is asked for
  }
  return 22;
}

int report_error(const Error& e) {
  // One "fimctl: error:" line per problem (a policy can have several, one per line).
  const std::string msg = e.describe();
  size_t start = 0;
  for (;;) {
    const size_t nl = msg.find('\n', start);
    const std::string line = msg.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    std::fprintf(stderr, "fimctl: error: %s\n", escape_terminal(line).c_str());
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return exit_code_for_error(e);
}

}  // namespace fim::cli
