// SPDX-License-Identifier: GPL-2.0-or-later
// report::Sink: where changes and entry statuses go. Every format holds its records until
// finish(): the plain report prints its summary first, and nothing at all is printed when the
// run fails (a baseline that fails verification must not leave half a report behind).
#pragma once

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fim/attr.h"
#include "fim/base/result.h"
#include "fim/diff.h"
#include "fim/rules.h"

namespace fim {

inline constexpr const char* kReportSchema = "fimctl.v1";

/// What a report says about the baseline it used.
struct BaselineFacts {
  Bytes path;
  bool is_signed = false;
  std::string key_id;  ///< the signer's key id when signed
  int64_t created_ns = 0;
  uint64_t entries = 0;
  std::string content_sha256;
};

/// What the package manager says about one change (check --packages; fim/pkg.h decides it).
struct PackageNote {
  std::string verdict;   ///< verified, mismatch, conffile, unverifiable, unpackaged, removed
  std::string evidence;  ///< deb-sha256, dpkg-md5, dpkg-list, none
  std::string package, version, arch, detail;
  std::string upgrade;   ///< the recorded apt run since the baseline that changed the package
};

struct Summary {
  std::string command;        ///< "init" or "check"
  uint64_t entries = 0;       ///< entries inspected
  uint64_t added = 0, removed = 0, changed = 0;
  uint64_t incomplete = 0;    ///< entries with a failure status (exit bit 8)
  uint64_t skipped = 0;       ///< too_large / skipped_fs: policy choices, no exit bit
  uint64_t unverified = 0;    ///< baseline entries below a directory that could not be read
  uint64_t bytes_hashed = 0;
  double seconds = 0;
  bool policy_changed = false;
  std::map<std::string, uint64_t> packages;  ///< check --packages: verdict -> changes
  BaselineFacts baseline;
  int exit_code = 0;
};

/// AIDE-compatible bits: 1 added, 2 removed, 4 changed, 8 incomplete (docs/design.md, Exit codes).
int exit_code_for(const Summary& s);

class Sink {
 public:
  virtual ~Sink() = default;
  /// `rule` is the policy rule that selects the entry (its severity and tags label the
  /// record), or null when none does (an entry only the baseline has, under a changed policy).
  virtual void change(ChangeKind kind, const Record* old_rec, const Record* new_rec, AttrMask changed,
                      const Rule* rule) = 0;
  /// change() with what the package manager says about it (check --packages). Sinks that
  /// cannot show it report the change alone.
  virtual void package_change(ChangeKind kind, const Record* old_rec, const Record* new_rec, AttrMask changed,
                              const Rule* rule, const PackageNote& note) {
    (void)note;
    change(kind, old_rec, new_rec, changed, rule);
  }
  /// An entry that could not be fully inspected (status != ok), or with `subtree` a directory
  /// whose contents could not be listed (or, skipped_fs, were not walked).
  virtual void entry_status(const Record& r, bool subtree, const Rule* rule) = 0;
  /// A warning about the whole run ("unsigned", "policy_changed"); code is a stable token.
  virtual void alert(std::string_view code, std::string_view message) = 0;
  /// Writes everything held, summary included.
  virtual Status finish(const Summary& s) = 0;
};

std::unique_ptr<Sink> make_plain_sink(FILE* out, bool color);
std::unique_ptr<Sink> make_json_sink(FILE* out, bool ndjson);

// JSON building blocks, shared by the sinks (and the watch daemon's sinks later).
namespace json {
/// Appends "key":"value" (and "key_b64":"..." when value is not UTF-8) to a JSON object body.
void add_bytes(std::string& o, std::string_view key, std::string_view value);
/// Appends the value of attribute `a` as a JSON value (number or string) under `key`.
void add_attr(std::string& o, std::string_view key, Attr a, const AttrValue& v);
/// {"type":"file","mode":"0644",...}: every collected attribute of a record.
std::string record_attrs(const Record& r);
std::string change_record(ChangeKind kind, const Record* old_rec, const Record* new_rec, AttrMask changed,
                          const Rule* rule, const PackageNote* note = nullptr);
std::string status_record(const Record& r, bool subtree, const Rule* rule);
/// Appends "severity", "tags" and "rule" (where the rule is defined) when `rule` is set.
void add_labels(std::string& o, const Rule* rule);
std::string alert_record(std::string_view code, std::string_view message);
std::string summary_record(const Summary& s);
}  // namespace json

}  // namespace fim
