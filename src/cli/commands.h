// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <initializer_list>
#include <string>

#include "fim/base/result.h"
#include "fim/container.h"
#include "fim/container_identity.h"
#include "fim/json.h"
#include "fim/pipeline.h"
#include "fim/report.h"
#include "fim/rules.h"
#include "options.h"

namespace fim::cli {

/// The exit code of a fatal error (docs/design.md, Exit codes): always >= 16.
int exit_code_for_error(const Error& e);
/// Prints "fimctl: error: ..." on stderr and returns exit_code_for_error(e). Permission denied
/// (EACCES, EPERM) to a user who is not root is said as needs_root(e.describe()).
int report_error(const Error& e);
/// The command being run ("check", "key generate"), named by needs_root().
void set_command(const std::string& command);
/// "fimctl: error: COMMAND: needs root (WHY)" on stderr; returns 20 (Errc::Io).
int needs_root(const std::string& why);

/// A sink for the commands that rewrite or seal a baseline without a report: alerts (unsigned,
/// state) on standard error, nothing else (output.cpp).
class AlertSink final : public Sink {
 public:
  void change(ChangeKind, const Record*, const Record*, AttrMask, const Rule*) override {}
  void entry_status(const Record&, bool, const Rule*) override {}
  void alert(std::string_view code, std::string_view message) override;
  Status finish(const Summary&) override { return {}; }
};

int cmd_init(const Options& o);
int cmd_check(const Options& o);
int cmd_update(const Options& o);
int cmd_accept(const Options& o);
int cmd_log(const Options& o);
/// show PATH [--at SEQ] (cmd_show.cpp): a kept version's masked text.
int cmd_show(const Options& o);
int cmd_version(const Options& o);
int cmd_config(const Options& o);
int cmd_explain(const Options& o);
int cmd_key(const Options& o);
int cmd_migrate(const Options& o);
int cmd_adopt(const Options& o);
int cmd_watch(const Options& o);
int cmd_status(const Options& o);
int cmd_containers(const Options& o);
int cmd_apt_hook(const Options& o);
int cmd_seal(const Options& o);
int cmd_window(const Options& o);
/// fimctl log: a journal entry's window (cmd_window.cpp), as ndjson fields and as lines.
void window_fields(json::Writer& j, const Acceptance& a);
std::string window_lines(const Acceptance& a);
int cmd_export_image(const Options& o);
int cmd_import_image(const Options& o);
/// init --image REF (cmd_image.cpp).
int run_init_image_cli(const Options& o, const RunOptions& ro);

/// What the pipeline runs with: the policy, --db, --keys, --sysroot, --jobs, ... of `o`.
Result<RunOptions> run_options(const Options& o);

/// The formats a command prints in: a set of rows of kFormats (fim/report.h).
class Formats {
 public:
  constexpr Formats(std::initializer_list<Format> formats) {
    for (const Format f : formats) bits_ |= bit(f);
  }
  constexpr bool has(Format f) const { return (bits_ & bit(f)) != 0; }
  /// "plain, json or ndjson": for a usage error.
  std::string names() const;

 private:
  static constexpr unsigned bit(Format f) { return 1u << static_cast<unsigned>(f); }
  unsigned bits_ = 0;
};

/// Errc::Usage naming the formats `command` has, unless it has `format`.
Status check_format(Format format, const Formats& formats, const std::string& command);

/// Why `containers` and --containers need root (needs_root()).
extern const char* const kContainersNeedRoot;

/// The members of a container record: who it is (container_identity_fields: runtime, id, name,
/// image, image_digest, pid, pod, baseline key), then processes, namespaces, root and overlay layers.
void container_fields(json::Writer& w, const Container& c, const ContainerIdentity& id, const ImageBaselineKey& key);

/// "90", "90s", "250ms", "5m", "6h", "1d" in seconds; `what` names the option in errors.
Result<double> parse_duration(std::string_view text, const char* what);

/// The policy `-c` names, or /etc/fimctl/fimctl.toml (the built-in default when that does
/// not exist and no -c was given).
Result<Policy> load_cli_policy(const Options& o);

}  // namespace fim::cli
