// SPDX-License-Identifier: GPL-2.0-or-later
// report::Sink: where changes and entry statuses go. Every format holds its records until
// finish(): the plain report prints its summary first, and nothing at all is printed when the
// run fails (a baseline that fails verification must not leave half a report behind).
#pragma once

#include <cstdio>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fim/attr.h"
#include "fim/base/result.h"
#include "fim/diff.h"
#include "fim/json.h"
#include "fim/rules.h"

namespace fim {

/// What a report says about the baseline it used.
struct BaselineFacts {
  Bytes path;
  bool is_signed = false;
  std::string key_id;  ///< the signer's key id when signed
  int64_t created_ns = 0;
  uint64_t entries = 0;
  std::string content_sha256;
  std::string baseline_id;   ///< empty: written before baseline ids
  std::vector<Bytes> roots;  ///< what it records: a swapped baseline shows here
};

/// What the package manager says about one change (check --packages; fim/pkg.h decides it).
struct PackageNote {
  std::string verdict;   ///< verified, mismatch, conffile, unverifiable, unpackaged, removed
  std::string evidence;  ///< deb-sha256, derived, dpkg-md5, written-by-dpkg, dpkg-list, none
  std::string package, version, arch, detail;
  std::string upgrade;   ///< the recorded apt run since the baseline that changed the package
  std::string from_version;  ///< the version that run replaced ("" when it installed it new)
  /// The evidence is a chain that ends outside this host (pkg::strong_evidence); otherwise it
  /// is dpkg's own records, which root can rewrite, and reports say so.
  bool strong = false;
  /// Vouched for by a recorded apt run: verified against a package that run changed. Plain
  /// reports list these one line per package (docs/design.md, Reports: summaries).
  bool explained() const { return verdict == "verified" && !upgrade.empty(); }
};

/// What a report says about one change beyond its attributes: each member is shown by the
/// formats that can show it, and a change without notes is Sink::change's.
struct ChangeNotes {
  std::optional<PackageNote> package;  ///< check --packages: the package manager's word
  /// The maintenance window that tags it (fimctl window; docs/design.md, Reconciliation):
  /// its id, and why it tags it ("ctime inside", "written by ansible-playbook"). Empty: none.
  std::string window, window_why;
  /// content = "diff" (docs/design.md, Content store): the unified diff of a changed text
  /// file's masked content, bounded (diff_lines_omitted: lines beyond it), or why there is
  /// none (diff_unavailable, and `diff` empty). Both empty: its rule keeps no content.
  std::string diff;
  uint64_t diff_lines_omitted = 0;
  std::string diff_unavailable;
  bool has_diff_fields() const { return !diff.empty() || !diff_unavailable.empty(); }
};

/// Added, removed and changed: the counts of one group of a report.
struct ChangeCounts {
  uint64_t added = 0, removed = 0, changed = 0;
  uint64_t total() const { return added + removed + changed; }
  void add(ChangeKind kind);
};

/// A report's changes grouped for its summary (docs/design.md, Reports: summaries): by the
/// severity and the rule that selects them, and with --packages by package verdict and by
/// the recorded apt run that explains them. Counted from what the sink is given
/// (make_sink's sinks count every change; src/report/groups.cpp).
struct ChangeGroups {
  struct RuleGroup {
    std::string where;  ///< SourcePos::text() of the rule; "" for no rule
    Bytes pattern;
    Severity severity = Severity::Medium;
    ChangeCounts counts;
  };
  /// One package an apt run changed, as far as the report's changes go.
  struct PackageGroup {
    std::string name, arch, from, to;
    uint64_t verified = 0;            ///< its files' changes that the package vouches for
    uint64_t other = 0;               ///< its other changes (listed in full)
    std::set<std::string> evidence;   ///< what the verified ones rest on
  };
  struct RunGroup {
    ChangeCounts counts;                         ///< every change of the run's packages
    std::map<std::string, PackageGroup> packages;  ///< "name:arch" ->
  };
  std::map<Severity, ChangeCounts, std::greater<>> severity;  ///< highest first
  std::map<std::string, RuleGroup> rules;                     ///< by SourcePos::text()
  std::map<std::string, ChangeCounts> verdicts;               ///< --packages: verdict ->
  std::map<std::string, RunGroup> runs;                       ///< apt run label ->
  ChangeCounts explained;    ///< PackageNote::explained()
  uint64_t explained_weak = 0;  ///< of those, how many rest on dpkg's own records only
  ChangeCounts unexplained;  ///< every other change
  std::optional<Severity> unexplained_severity;  ///< the highest of those with a rule

  void add(ChangeKind kind, const Rule* rule, const ChangeNotes* notes);
  /// The rules, highest severity first, then most changes first.
  std::vector<const RuleGroup*> rules_in_order() const;
  /// The verdicts, the most alarming first: mismatch, unverifiable, unpackaged, ..., verified.
  std::vector<std::pair<std::string, const ChangeCounts*>> verdicts_in_order() const;
};

struct Summary {
  std::string command;        ///< "init" or "check"
  uint64_t entries = 0;       ///< entries inspected
  uint64_t added = 0, removed = 0, changed = 0;
  uint64_t incomplete = 0;    ///< entries with a failure status (exit bit 8)
  uint64_t skipped = 0;       ///< too_large / skipped_fs: policy choices, no exit bit
  uint64_t unverified = 0;    ///< baseline entries below a directory that could not be read
  uint64_t alternatives = 0;  ///< entries found as an alternative of their row (not changes)
  uint64_t bytes_hashed = 0;
  double seconds = 0;
  bool policy_changed = false;
  /// state.db could not be written (a full disk, ...): what `accept` and rollback protection
  /// rely on was not recorded; an alert says what, and exit bit 8 says the run is incomplete.
  bool state_unwritten = false;
  std::map<std::string, uint64_t> packages;  ///< check --packages: verdict -> changes
  std::map<std::string, uint64_t> windows;   ///< maintenance window id -> changes it tags
  ChangeGroups groups;  ///< set by make_sink's sinks from the changes they were given
  /// check: "full" or "fast" (docs/design.md, Evidence); empty for other commands.
  std::string mode;
  /// check: entries on disk by the evidence their verdict rests on (Evidence order), and how
  /// many of the hashed ones the rolling re-hash chose.
  std::array<uint64_t, kEvidenceCount> evidence{};
  uint64_t rolling = 0;
  /// check --fast: why stat evidence was not used this run (a clock step, ...); empty: it was.
  std::string stat_withdrawn;
  /// check and update: the report's id (docs/design.md, Baseline: acceptance), 64 hex digits;
  /// 'accept --report ID' and 'update --report ID' name it. Empty for other commands.
  std::string report_id;
  /// accept/update --ticket: the change ticket the acceptance was made under; empty: none.
  std::string ticket;
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
  /// change() with what else the report knows of it (a package's word, a window's tag).
  /// Sinks that cannot show notes report the change alone.
  virtual void noted_change(ChangeKind kind, const Record* old_rec, const Record* new_rec, AttrMask changed,
                            const Rule* rule, const ChangeNotes& notes) {
    (void)notes;
    change(kind, old_rec, new_rec, changed, rule);
  }
  /// An entry that could not be fully inspected (status != ok), or with `subtree` a directory
  /// whose contents could not be listed (or, skipped_fs, were not walked).
  virtual void entry_status(const Record& r, bool subtree, const Rule* rule) = 0;
  /// An entry that differs from its baseline row but is alternative `n` (2, 3, ...) of it, a
  /// state 'accept --also' kept as good (docs/design.md, Acceptance): not a change. Sinks
  /// that cannot show it say nothing.
  virtual void alternative(const Record& r, unsigned n, const Rule* rule) {
    (void)r, (void)n, (void)rule;
  }
  /// A warning about the whole run ("unsigned", "policy_changed"); code is a stable token.
  virtual void alert(std::string_view code, std::string_view message) = 0;
  /// Writes everything held, summary included.
  virtual Status finish(const Summary& s) = 0;
};

/// The output formats (docs/design.md, Formats). A format is one row of kFormats; each
/// command says which it supports (src/cli/main.cpp), and a report is written by make_sink.
enum class Format { Plain, Json, Ndjson, Ecs };
struct FormatInfo {
  Format format;
  const char* name;  ///< as --format takes it
  const char* help;  ///< for --help
};
inline constexpr FormatInfo kFormats[] = {
    {Format::Plain, "plain", "for people"},
    {Format::Json, "json", "one document"},
    {Format::Ndjson, "ndjson", "one record per line"},
    {Format::Ecs, "ecs", "one Elastic Common Schema 9.4 document per line"},
};
const char* format_name(Format f);
/// The format --format names, or none.
std::optional<Format> parse_format(std::string_view name);

/// A report in `format`: plain (coloured when `color`), one JSON document, or one JSON record
/// per line. `extra` (a json::Writer::fields()) is added to every JSON record: watch
/// --containers names the container in each.
/// `spill_dir`: where records beyond the in-memory bound are spooled (the baseline's
/// directory; empty: the temporary directory only). `verbose` (-v): the plain report lists every
/// change a recorded apt run explains, not one line per package. Every sink it makes counts
/// the summary's groups (Summary::groups) from the changes it is given.
std::unique_ptr<Sink> make_sink(Format format, FILE* out, bool color, const json::Writer* extra = nullptr,
                                const Bytes& spill_dir = {}, bool verbose = false);

/// --format ecs: the ECS 9.4 document of one fimctl.v1 record (an ndjson line), or "" for a
/// line that is not one. The one translation every ECS output goes through (src/report/ecs.cpp).
std::string ecs_document(std::string_view ndjson_record);
/// The report as make_sink(Ndjson) writes it, each record translated by ecs_document.
std::unique_ptr<Sink> make_ecs_sink(FILE* out, const json::Writer* extra, const Bytes& spill_dir);

// The JSON records of the report schema. Each opens its record in `w` and leaves it open, so
// that a caller can add fields of its own (the watch daemon's trigger, who and time) before
// w.take() closes it.
namespace json {
void change_record(Writer& w, ChangeKind kind, const Record* old_rec, const Record* new_rec, AttrMask changed,
                   const Rule* rule, const ChangeNotes* notes = nullptr);
void status_record(Writer& w, const Record& r, bool subtree, const Rule* rule);
/// {"type":"alternative","path":..,"alternative":N,...}: Sink::alternative.
void alternative_record(Writer& w, const Record& r, unsigned n, const Rule* rule);
/// A change of kind "transient" (watch): an entry added and removed again before it could be
/// compared, labelled by the rule that would have selected it (the trigger says by whom).
void transient_record(Writer& w, const Bytes& path, const Rule* rule);
void alert_record(Writer& w, std::string_view code, std::string_view message);
/// "roots":["/root1","/root2"]: a baseline's roots (summary, watch gaps and rescans).
void roots_field(Writer& w, const std::vector<Bytes>& roots);
void summary_record(Writer& w, const Summary& s);
/// "time" (now, RFC 3339 UTC with nanoseconds) and "host" {"name": hostname, "id":
/// /etc/machine-id}: members of every record of check/update/accept/init (before the sink's
/// extra fields) and of the watch daemon, so records of many hosts can be merged. The one
/// place they are built.
void stamp(Writer& w);
}  // namespace json

}  // namespace fim
