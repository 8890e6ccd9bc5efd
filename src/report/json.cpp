// SPDX-License-Identifier: GPL-2.0-or-later
// JSON records of the fimctl.v1 schema (docs/design.md, Record schema). Every record is one object
// {"schema":"fimctl.v1","type":...}; the set of types and their fields is append-only.
// Strings are valid JSON for any bytes: invalid UTF-8 becomes \u00XX escapes and the exact
// bytes travel in a sibling "<key>_b64" field.
#include <cstring>

#include "fim/base/sys.h"
#include "fim/report.h"

namespace fim::json {
namespace {

void key(std::string& o, std::string_view k) {
  if (o.size() > 1) o += ',';
  append_json_string(o, k);
  o += ':';
}

void add_str(std::string& o, std::string_view k, std::string_view v) {
  key(o, k);
  append_json_string(o, v);
}

void add_num(std::string& o, std::string_view k, uint64_t v) {
  key(o, k);
  o += std::to_string(v);
}

std::string begin(std::string_view type) {
  std::string o = "{";
  add_str(o, "schema", kReportSchema);
  add_str(o, "type", type);
  return o;
}

}  // namespace

void add_bytes(std::string& o, std::string_view k, std::string_view value) {
  key(o, k);
  if (!append_json_string(o, value)) {
    std::string k64(k);
    k64 += "_b64";
    add_str(o, k64, base64_encode(value));
  }
}

void add_attr(std::string& o, std::string_view k, Attr a, const AttrValue& v) {
  if (attr_info(a).kind == AttrKind::Int) {
    key(o, k);
    o += std::to_string(v.num);
  } else {
    add_bytes(o, k, render_attr(a, v));
  }
}

std::string record_attrs(const Record& r) {
  std::string o = "{";
  for (size_t i = 0; i < kAttrCount; ++i) {
    const Attr a = static_cast<Attr>(i);
    if (r.has(a)) add_attr(o, attr_info(a).key, a, r.get(a));
  }
  return o + "}";
}

void add_labels(std::string& o, const Rule* rule) {
  if (!rule) return;
  add_str(o, "severity", severity_name(rule->severity));
  key(o, "tags");
  o += '[';
  for (size_t i = 0; i < rule->tags.size(); ++i) {
    if (i) o += ',';
    append_json_string(o, rule->tags[i]);
  }
  o += ']';
  add_bytes(o, "rule", rule->where.text());
}

std::string change_record(ChangeKind kind, const Record* old_rec, const Record* new_rec, AttrMask changed,
                          const Rule* rule, const PackageNote* note) {
  const Record& any = new_rec ? *new_rec : *old_rec;
  std::string o = begin("change");
  add_str(o, "kind", change_kind_name(kind));
  add_bytes(o, "path", any.path);
  add_str(o, "file_type", file_type_name(any.type()));
  add_labels(o, rule);
  if (kind == ChangeKind::Changed) {
    key(o, "changes");
    o += '[';
    bool first = true;
    for (size_t i = 0; i < kAttrCount; ++i) {
      const Attr a = static_cast<Attr>(i);
      if (!(changed & attr_bit(a))) continue;
      if (!first) o += ',';
      first = false;
      std::string c = "{";
      add_str(c, "attr", attr_info(a).key);
      if (old_rec->has(a)) add_attr(c, "old", a, old_rec->get(a));
      if (new_rec->has(a)) add_attr(c, "new", a, new_rec->get(a));
      o += c + "}";
    }
    o += ']';
    if (old_rec->type() != new_rec->type()) add_str(o, "old_file_type", file_type_name(old_rec->type()));
  } else {
    key(o, kind == ChangeKind::Added ? "new" : "old");
    o += record_attrs(any);
  }
  if (note) {
    key(o, "package");
    std::string p = "{";
    add_str(p, "verdict", note->verdict);
    add_str(p, "evidence", note->evidence);
    if (!note->package.empty()) {
      add_str(p, "name", note->package);
      add_str(p, "version", note->version);
      add_str(p, "arch", note->arch);
    }
    add_str(p, "detail", note->detail);
    if (!note->upgrade.empty()) add_str(p, "upgrade", note->upgrade);
    o += p + "}";
  }
  return o + "}";
}

std::string status_record(const Record& r, bool subtree, const Rule* rule) {
  std::string o = begin("entry_status");
  add_bytes(o, "path", r.path);
  add_str(o, "status", entry_status_name(r.status));
  add_labels(o, rule);
  if (subtree) add_str(o, "scope", "contents");
  if (r.sys_errno) {
    add_str(o, "errno", errno_name(r.sys_errno));
    add_str(o, "error", std::strerror(r.sys_errno));
  }
  return o + "}";
}

std::string alert_record(std::string_view code, std::string_view message) {
  std::string o = begin("alert");
  add_str(o, "code", code);
  add_str(o, "message", message);
  return o + "}";
}

std::string summary_record(const Summary& s) {
  std::string o = begin("summary");
  add_str(o, "command", s.command);
  add_num(o, "entries", s.entries);
  add_num(o, "added", s.added);
  add_num(o, "removed", s.removed);
  add_num(o, "changed", s.changed);
  add_num(o, "incomplete", s.incomplete);
  add_num(o, "skipped", s.skipped);
  add_num(o, "unverified", s.unverified);
  add_num(o, "bytes_hashed", s.bytes_hashed);
  key(o, "seconds");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s.seconds);
  o += buf;
  key(o, "policy_changed");
  o += s.policy_changed ? "true" : "false";
  if (!s.packages.empty()) {
    key(o, "packages");
    std::string p = "{";
    for (const auto& [verdict, n] : s.packages) add_num(p, verdict, n);
    o += p + "}";
  }
  key(o, "baseline");
  std::string b = "{";
  add_bytes(b, "path", s.baseline.path);
  key(b, "signed");
  b += s.baseline.is_signed ? "true" : "false";
  if (s.baseline.is_signed) add_str(b, "key_id", s.baseline.key_id);
  add_str(b, "created", format_time_ns(s.baseline.created_ns));
  add_num(b, "entries", s.baseline.entries);
  add_str(b, "content_sha256", s.baseline.content_sha256);
  o += b + "}";
  add_num(o, "exit_code", static_cast<uint64_t>(s.exit_code));
  return o + "}";
}

}  // namespace fim::json
