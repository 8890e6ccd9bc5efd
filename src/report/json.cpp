// SPDX-License-Identifier: GPL-2.0-or-later
// JSON records of the fimctl.v1 schema (docs/design.md, Record schema). Every record is one
// object {"schema":"fimctl.v1","type":...}; the set of types and their fields is append-only.
// Strings are valid JSON for any bytes: invalid UTF-8 becomes \u00XX escapes and the exact
// bytes travel in a sibling "<key>_b64" field (json::Writer::bytes).
#include <cstring>

#include "fim/base/sys.h"
#include "fim/report.h"

namespace fim::json {
namespace {

/// The value of attribute `a` under `key`: a number for integer attributes, else its text.
void attr_value(Writer& w, std::string_view key, Attr a, const AttrValue& v) {
  if (attr_info(a).kind == AttrKind::Int) w.num(key, v.num);
  else w.bytes(key, render_attr(a, v));
}

/// "key":{"type":"file","mode":"0644",...}: every collected attribute of a record.
void record_attrs(Writer& w, std::string_view key, const Record& r) {
  w.object(key);
  for (size_t i = 0; i < kAttrCount; ++i) {
    const Attr a = static_cast<Attr>(i);
    if (r.has(a)) attr_value(w, attr_info(a).key, a, r.get(a));
  }
  w.close();
}

/// "severity", "tags" and "rule" (where the rule is defined) when `rule` is set.
void add_labels(Writer& w, const Rule* rule) {
  if (!rule) return;
  w.str("severity", severity_name(rule->severity));
  w.array("tags");
  for (const auto& t : rule->tags) w.str(t);
  w.close();
  w.bytes("rule", rule->where.text());
}

void package_note(Writer& w, const PackageNote& note) {
  w.object("package");
  w.str("verdict", note.verdict);
  w.str("evidence", note.evidence);
  if (!note.package.empty()) {
    w.str("name", note.package);
    w.str("version", note.version);
    w.str("arch", note.arch);
  }
  w.str("detail", note.detail);
  if (!note.upgrade.empty()) w.str("upgrade", note.upgrade);
  if (!note.from_version.empty()) w.str("from_version", note.from_version);
  w.close();
}

}  // namespace

void change_record(Writer& w, ChangeKind kind, const Record* old_rec, const Record* new_rec, AttrMask changed,
                   const Rule* rule, const ChangeNotes* notes) {
  const Record& any = new_rec ? *new_rec : *old_rec;
  w.schema("change");
  w.str("kind", change_kind_name(kind));
  w.bytes("path", any.path);
  w.str("file_type", file_type_name(any.type()));
  add_labels(w, rule);
  if (kind == ChangeKind::Changed) {
    w.array("changes");
    for (size_t i = 0; i < kAttrCount; ++i) {
      const Attr a = static_cast<Attr>(i);
      if (!(changed & attr_bit(a))) continue;
      w.object();
      w.str("attr", attr_info(a).key);
      if (old_rec->has(a)) attr_value(w, "old", a, old_rec->get(a));
      if (new_rec->has(a)) attr_value(w, "new", a, new_rec->get(a));
      w.close();
    }
    w.close();
    if (old_rec->type() != new_rec->type()) w.str("old_file_type", file_type_name(old_rec->type()));
  } else {
    record_attrs(w, kind == ChangeKind::Added ? "new" : "old", any);
  }
  if (notes && notes->package) package_note(w, *notes->package);
  if (new_rec) w.str("evidence", evidence_name(new_rec->evidence));
  if (notes && !notes->window.empty()) {
    w.object("window");
    w.str("id", notes->window);
    w.str("why", notes->window_why);
    w.close();
  }
  if (notes && notes->has_diff_fields()) {  // content = "diff" (docs/design.md, Content store)
    if (notes->diff.empty()) {
      w.raw("diff", "null");
      w.str("diff_unavailable", notes->diff_unavailable);
    } else {
      w.bytes("diff", notes->diff);
      w.num("diff_lines_omitted", notes->diff_lines_omitted);
    }
  }
}

void transient_record(Writer& w, const Bytes& path, const Rule* rule) {
  w.schema("change");
  w.str("kind", "transient");
  w.bytes("path", path);
  add_labels(w, rule);
}

void status_record(Writer& w, const Record& r, bool subtree, const Rule* rule) {
  w.schema("entry_status");
  w.bytes("path", r.path);
  w.str("status", entry_status_name(r.status));
  add_labels(w, rule);
  if (subtree) w.str("scope", "contents");
  if (r.sys_errno) {
    w.str("errno", errno_name(r.sys_errno));
    w.str("error", std::strerror(r.sys_errno));
  }
  if (!subtree) w.str("evidence", evidence_name(r.evidence));
}

void alternative_record(Writer& w, const Record& r, unsigned n, const Rule* rule) {
  w.schema("alternative");
  w.bytes("path", r.path);
  w.num("alternative", n);
  add_labels(w, rule);
  w.str("evidence", evidence_name(r.evidence));
}

void roots_field(Writer& w, const std::vector<Bytes>& roots) {
  w.array("roots");
  for (const auto& r : roots) w.str(r);
  w.close();
}

void alert_record(Writer& w, std::string_view code, std::string_view message) {
  w.schema("alert");
  w.str("code", code);
  w.str("message", message);
}

namespace {

/// "added":N,"removed":N,"changed":N
void counts_fields(Writer& w, const ChangeCounts& c) {
  w.num("added", c.added);
  w.num("removed", c.removed);
  w.num("changed", c.changed);
}

/// The summary's "groups" (docs/design.md, Reports: summaries): each list in the plain
/// table's order, highest severity first.
void groups_field(Writer& w, const ChangeGroups& g) {
  w.object("groups");
  w.array("severity");
  for (const auto& [sev, c] : g.severity) {
    w.object().str("severity", severity_name(sev));
    counts_fields(w, c);
    w.close();
  }
  w.close();
  w.array("rules");
  for (const ChangeGroups::RuleGroup* r : g.rules_in_order()) {
    w.object();
    if (!r->where.empty()) w.bytes("rule", r->where).bytes("pattern", r->pattern).str("severity", severity_name(r->severity));
    counts_fields(w, r->counts);
    w.close();
  }
  w.close();
  if (!g.verdicts.empty()) {
    w.array("verdicts");
    for (const auto& [verdict, c] : g.verdicts_in_order()) {
      w.object().str("verdict", verdict);
      counts_fields(w, *c);
      w.close();
    }
    w.close();
  }
  if (!g.runs.empty()) {
    w.array("apt_runs");
    for (const auto& [run, r] : g.runs) {
      w.object().str("run", run);
      counts_fields(w, r.counts);
      w.array("packages");
      for (const auto& [key, p] : r.packages) {
        w.object().bytes("name", p.name).bytes("arch", p.arch).bytes("from", p.from).bytes("to", p.to);
        w.num("verified", p.verified).num("other", p.other).array("evidence");
        for (const auto& e : p.evidence) w.str(e);
        w.close().close();
      }
      w.close().close();
    }
    w.close();
  }
  w.object("explained");
  counts_fields(w, g.explained);
  w.num("weak", g.explained_weak);
  w.close().object("unexplained");
  counts_fields(w, g.unexplained);
  if (g.unexplained_severity) w.str("severity", severity_name(*g.unexplained_severity));
  w.close().close();
}

}  // namespace

void summary_record(Writer& w, const Summary& s) {
  w.schema("summary");
  w.str("command", s.command);
  w.num("entries", s.entries);
  w.num("added", s.added);
  w.num("removed", s.removed);
  w.num("changed", s.changed);
  w.num("incomplete", s.incomplete);
  w.num("skipped", s.skipped);
  w.num("unverified", s.unverified);
  if (s.alternatives) w.num("alternatives", s.alternatives);
  w.num("bytes_hashed", s.bytes_hashed);
  w.fixed("seconds", s.seconds, 3);
  w.boolean("policy_changed", s.policy_changed);
  if (!s.report_id.empty()) w.str("report_id", s.report_id);
  if (!s.ticket.empty()) w.bytes("ticket", s.ticket);  // any bytes: ticket_b64 when not UTF-8
  if (!s.windows.empty()) {
    w.object("windows");  // window id -> the changes it tags
    for (const auto& [id, n] : s.windows) w.num(id, n);
    w.close();
  }
  if (!s.packages.empty()) {
    w.object("packages");
    for (const auto& [verdict, n] : s.packages) w.num(verdict, n);
    w.close();
  }
  if (s.command != "init") groups_field(w, s.groups);
  if (!s.mode.empty()) {
    w.str("mode", s.mode);
    w.object("evidence");
    for (int i = 0; i < kEvidenceCount; ++i) w.num(evidence_name(static_cast<EntryEvidence>(i)), s.evidence[static_cast<size_t>(i)]);
    w.num("rolling", s.rolling);
    w.close();
    if (!s.stat_withdrawn.empty()) w.str("stat_withdrawn", s.stat_withdrawn);
  }
  w.object("baseline");
  w.bytes("path", s.baseline.path);
  w.boolean("signed", s.baseline.is_signed);
  if (s.baseline.is_signed) w.str("key_id", s.baseline.key_id);
  w.str("created", format_time_ns(s.baseline.created_ns));
  w.num("entries", s.baseline.entries);
  w.str("content_sha256", s.baseline.content_sha256);
  if (!s.baseline.baseline_id.empty()) w.str("id", s.baseline.baseline_id);
  roots_field(w, s.baseline.roots);
  w.close();
  w.num("exit_code", static_cast<uint64_t>(s.exit_code));
}

void stamp(Writer& w) {
  static const std::string id = machine_id();  // fixed for the life of the process
  w.str("time", format_time_ns(now_ns()));
  w.object("host").str("name", host_name()).str("id", id).close();
}

}  // namespace fim::json
