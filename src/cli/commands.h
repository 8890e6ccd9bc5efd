// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>

#include "fim/base/result.h"
#include "options.h"

namespace fim::cli {

/// The exit code of a fatal error (DESIGN.md, Exit codes): always >= 16.
int exit_code_for_error(const Error& e);
/// Prints "fimctl: error: ..." on stderr and returns exit_code_for_error(e).
int report_error(const Error& e);

int cmd_init(const Options& o);
int cmd_check(const Options& o);
int cmd_version(const Options& o);

}  // namespace fim::cli
