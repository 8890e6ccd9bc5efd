// SPDX-License-Identifier: GPL-2.0-or-later
// Errors and progress on stderr: the only code that turns an Error into a message and an
// exit code (STYLE.md convention 3).
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
  }
  return 22;
}

int report_error(const Error& e) {
  std::fprintf(stderr, "fimctl: error: %s\n", escape_terminal(e.describe()).c_str());
  return exit_code_for_error(e);
}

}  // namespace fim::cli
