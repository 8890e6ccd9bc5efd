// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>

#include "fim/base/result.h"
#include "fim/container.h"
#include "fim/rules.h"
#include "options.h"

namespace fim::cli {

/// The exit code of a fatal error (docs/design.md, Exit codes): always >= 16.
int exit_code_for_error(const Error& e);
/// Prints "fimctl: error: ..." on stderr and returns exit_code_for_error(e).
int report_error(const Error& e);

int cmd_init(const Options& o);
int cmd_check(const Options& o);
int cmd_update(const Options& o);
int cmd_accept(const Options& o);
int cmd_log(const Options& o);
int cmd_version(const Options& o);
int cmd_config(const Options& o);
int cmd_explain(const Options& o);
int cmd_key(const Options& o);
int cmd_watch(const Options& o);
int cmd_status(const Options& o);
int cmd_containers(const Options& o);
int cmd_apt_hook(const Options& o);

/// A container as an ndjson record (type "container").
std::string container_json(const Container& c);

/// "90", "90s", "250ms", "5m", "6h", "1d" in seconds; `what` names the option in errors.
Result<double> parse_duration(std::string_view text, const char* what);

/// The policy `-c` names, or /etc/fimctl/fimctl.toml (the built-in default when that does
/// not exist and no -c was given).
Result<Policy> load_cli_policy(const Options& o);

}  // namespace fim::cli
