// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's records (see sink.h).
#include "sink.h"

#include <unistd.h>

#include <cerrno>

namespace fim::watchd {

json::Writer trigger_fields(const Trigger* t) {
  json::Writer f = json::Writer::fields();
  f.str("source", "watch");
  if (!t) return f;
  if (!t->container.empty()) f.raw("container", t->container);
  if (!t->rescan.empty()) {
    f.str("rescan", t->rescan);
    return f;
  }
  f.array("events");
  for (const auto& name : fan_mask_names(t->mask)) f.str(name);
  f.close();
  if (t->open_for_write) f.boolean("open_for_write", true);
  if (t->pid > 0) f.num("pid", t->pid);
  if (!t->comm.empty()) f.str("comm", t->comm);
  if (t->first_ns) f.str("event_time", format_time_ns(t->first_ns));
  if (!t->via.empty()) f.bytes("via", t->via);
  return f;
}

std::string_view falco_priority(const Rule* rule) {
  if (!rule) return "Warning";
  switch (rule->severity) {
    case Severity::Info: return "Informational";
    case Severity::Low: return "Notice";
    case Severity::Medium: return "Warning";
    case Severity::High: return "Error";
    case Severity::Critical: return "Critical";
  }
  return "Warning";
}

std::string falco_payload(std::string_view rule, std::string_view priority, std::string_view output,
                          const json::Writer& fields, const std::vector<std::string>& tags, const std::string& host) {
  json::Writer w;
  w.object();
  w.str("output", output).str("priority", priority).str("rule", rule).str("time", format_time_ns(now_ns()));
  w.str("source", "fimctl").str("hostname", host);
  w.array("tags").str("fimctl").str("filesystem");
  for (const auto& t : tags) w.str(t);
  w.close();
  w.object("output_fields").members(fields);
  return w.take();
}

std::string changed_keys(AttrMask changed) {
  std::string attrs;
  for (size_t i = 0; i < kAttrCount; ++i)
    if (changed & attr_bit(static_cast<Attr>(i))) attrs += (attrs.empty() ? "" : ",") + std::string(attr_info(static_cast<Attr>(i)).key);
  return attrs;
}

namespace {

/// "localhost/app:1" -> ("localhost/app", "1"); "repo@sha256:..." -> ("repo", ""); the ':' of
/// a registry's port is not a tag's.
std::pair<std::string, std::string> image_repository_tag(const std::string& image) {
  std::string ref = image.substr(0, image.find('@'));
  const size_t colon = ref.rfind(':');
  if (colon == std::string::npos || ref.find('/', colon) != std::string::npos) return {ref, ""};
  return {ref.substr(0, colon), ref.substr(colon + 1)};
}

void flat_value(json::Writer& f, const std::string& key, const json::Value& v) {
  switch (v.kind) {
    case json::Value::Kind::String: f.str(key, v.string); break;
    case json::Value::Kind::Number:
      if (v.integral) f.num(key, v.integer);
      else f.fixed(key, v.number, 6);
      break;
    case json::Value::Kind::Bool: f.boolean(key, v.boolean); break;
    case json::Value::Kind::Object:
      for (const auto& m : v.members) flat_value(f, key + "." + m.key, m.value);
      break;
    default: break;  // arrays and nulls: fimctl's records put none here
  }
}

}  // namespace

void falco_flatten(json::Writer& f, const std::string& key, const json::Value& v) {
  if (key == "who" && v.kind == json::Value::Kind::Object) {  // the BPF sensors' writer, as Falco names it
    if (const auto* p = v.get("tgid") ? v.get("tgid") : v.get("pid")) f.num("proc.pid", p->integer);
    if (const auto* p = v.get("ppid")) f.num("proc.ppid", p->integer);
    if (const auto* p = v.get("comm")) f.str("proc.name", p->string);
    if (v.get("exe")) f.str("proc.exepath", v.bytes("exe"));
    if (const auto* p = v.get("uid")) f.num("user.uid", p->integer);
    if (const auto* p = v.get("loginuid")) f.num("user.loginuid", p->integer);
    return;
  }
  if (key == "container" && v.kind == json::Value::Kind::Object) {
    f.str("container.id", v.str("id")).str("container.name", v.str("name"));
    const auto [repo, tag] = image_repository_tag(v.str("image"));
    f.str("container.image.repository", repo);
    if (!tag.empty()) f.str("container.image.tag", tag);
    if (!v.str("image_digest").empty()) f.str("container.image.digest", v.str("image_digest"));
    if (const json::Value* pod = v.get("pod")) {
      f.str("k8s.ns.name", pod->str("namespace")).str("k8s.pod.name", pod->str("name"));
      f.str("fimctl.container.pod_container", pod->str("container"));
    }
    for (const char* k : {"runtime", "pid", "baseline_key", "baseline_key_kind", "baseline_source"})
      if (const json::Value* m = v.get(k)) flat_value(f, std::string("fimctl.container.") + k, *m);
    return;
  }
  flat_value(f, "fimctl." + key, v);
}

void falco_flatten(json::Writer& f, const std::string& key, std::string_view object_json) {
  if (auto v = json::parse(object_json)) falco_flatten(f, key, *v);
}

void StreamSink::change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) {
  by_severity_[rule ? static_cast<size_t>(rule->severity) + 1 : 0].fetch_add(1, std::memory_order_relaxed);
  json::Writer j;
  ChangeNotes notes;
  if (window_)
    if (auto t = window_(kind, o, n)) notes.window = t->first, notes.window_why = t->second;
  json::change_record(j, kind, o, n, changed, rule, &notes);
  j.members(trigger_fields(trigger_));
  // Not for a container's paths: the sensors know host paths, and a container's /etc is not the host's.
  const bool host = !trigger_ || trigger_->container.empty();
  const auto [who, who_human] = who_ && host ? who_(o, n, trigger_ ? trigger_->pid : 0) : std::pair<std::string, std::string>();
  if (!who.empty()) j.raw("who", who);
  const Record& any = n ? *n : *o;
  std::string human = std::string(change_kind_name(kind)) + ": " + escape_terminal(any.path);
  if (rule) human += " [" + std::string(severity_name(rule->severity)) + "]";
  if (kind == ChangeKind::Changed) human += " (" + changed_keys(changed) + ")";
  if (trigger_ && trigger_->pid > 0)
    human += " after pid " + std::to_string(trigger_->pid) + (trigger_->comm.empty() ? "" : " (" + escape_terminal(trigger_->comm) + ")");
  if (trigger_ && !trigger_->via.empty()) human += " through " + escape_terminal(trigger_->via);
  if (trigger_ && !trigger_->container_label.empty()) human += " in " + trigger_->container_label;
  if (trigger_ && trigger_->open_for_write) human += " (held open for writing)";
  if (trigger_ && !trigger_->rescan.empty()) human += " (rescan: " + trigger_->rescan + ")";
  if (!who_human.empty()) human += " " + who_human;
  if (!notes.window.empty()) human += " (window " + escape_terminal(notes.window) + ": " + escape_terminal(notes.window_why) + ")";
  const int prio = rule && rule->severity >= Severity::High ? LOG_ERR : LOG_WARNING;
  if (falco_) {
    json::Writer f = json::Writer::fields();
    f.str("fd.name", any.path).str("fimctl.kind", change_kind_name(kind)).str("fimctl.file_type", file_type_name(any.type()));
    if (kind == ChangeKind::Changed) f.str("fimctl.changes", changed_keys(changed));
    if (o && o->has(Attr::Sha256)) f.str("fimctl.old.sha256", render_attr(Attr::Sha256, o->get(Attr::Sha256)));
    if (n && n->has(Attr::Sha256)) f.str("fimctl.new.sha256", render_attr(Attr::Sha256, n->get(Attr::Sha256)));
    if (rule) f.str("fimctl.rule", rule->where.text());
    if (trigger_ && trigger_->pid > 0) f.num("proc.pid", trigger_->pid);
    if (trigger_ && !trigger_->comm.empty()) f.str("proc.name", trigger_->comm);
    if (trigger_ && !trigger_->rescan.empty()) f.str("fimctl.rescan", trigger_->rescan);
    if (trigger_ && trigger_->open_for_write) f.boolean("fimctl.open_for_write", true);
    if (trigger_ && !trigger_->container.empty()) falco_flatten(f, "container", trigger_->container);
    if (!who.empty()) falco_flatten(f, "who", who);
    falco_->post(falco_payload("fimctl: file " + std::string(change_kind_name(kind)), falco_priority(rule), human, f,
                               rule ? rule->tags : std::vector<std::string>{}, host_));
  }
  emit("change", j, human, prio);
}

void StreamSink::transient(const Bytes& path, const Rule* rule) {
  json::Writer j;
  json::transient_record(j, path, rule);
  j.members(trigger_fields(trigger_));
  std::string human = "transient: " + escape_terminal(path);
  if (rule) human += " [" + std::string(severity_name(rule->severity)) + "]";
  human += " (added and removed again";
  if (trigger_ && trigger_->pid > 0)
    human += " by pid " + std::to_string(trigger_->pid) + (trigger_->comm.empty() ? "" : " (" + escape_terminal(trigger_->comm) + ")");
  human += ")";
  emit("transient", j, human, rule && rule->severity >= Severity::High ? LOG_ERR : LOG_WARNING);
}

void StreamSink::entry_status(const Record& r, bool subtree, const Rule* rule) {
  json::Writer j;
  json::status_record(j, r, subtree, rule);
  j.members(trigger_fields(trigger_));
  emit("entry_status", j, std::string(entry_status_is_failure(r.status) ? "incomplete: " : "skipped: ") + escape_terminal(r.path) + ": " +
              std::string(entry_status_name(r.status)) +
              (trigger_ && !trigger_->container_label.empty() ? " in " + trigger_->container_label : ""),
       LOG_WARNING);
}

void StreamSink::alternative(const Record& r, unsigned n, const Rule* rule) {
  json::Writer j;
  json::alternative_record(j, r, n, rule);
  j.members(trigger_fields(trigger_));
  emit("alternative", j, "ok (alternative " + std::to_string(n) + "): " + escape_terminal(r.path), LOG_INFO);
}

void StreamSink::alert(std::string_view code, std::string_view message) {
  if (falco_) {
    json::Writer f = json::Writer::fields();
    f.str("fimctl.alert", code);
    falco_->post(falco_payload("fimctl: " + std::string(code), "Warning", message, f, {}, host_));
  }
  json::Writer j;
  json::alert_record(j, code, message);
  emit("alert", j, "warning: " + std::string(message), LOG_WARNING);
}

void StreamSink::alert_with(std::string_view code, std::string_view message, const json::Writer& fields, int prio) {
  if (falco_) {
    json::Writer f = json::Writer::fields();
    f.str("fimctl.alert", code);
    if (auto v = json::parse("{" + json::Writer(fields).take() + "}"))
      for (const auto& m : v->members) falco_flatten(f, m.key, m.value);
    falco_->post(falco_payload("fimctl: " + std::string(code), prio <= LOG_ERR ? "Error" : "Warning", message, f, {}, host_));
  }
  json::Writer j;
  json::alert_record(j, code, message);
  j.members(fields);
  emit("alert", j, "alert: " + std::string(message), prio);
}

void StreamSink::event(std::string_view type, const json::Writer& fields, const std::string& human, int prio) {
  if (falco_ && (type == "gap" || type == "degraded"))
    falco_->post(falco_payload("fimctl: coverage " + std::string(type), "Warning", human, fields, {}, host_));
  json::Writer j;
  j.schema(type).members(fields);
  emit(type, j, std::string(type) + ": " + human, prio);
}

void StreamSink::emit(std::string_view type, json::Writer& w, const std::string& human, int prio) {
  json::stamp(w);  // time and host, as check's records
  const std::string j = w.take();
  std::lock_guard<std::mutex> lk(mu_);
  std::string line = ecs_ ? ecs_document(j) : ndjson_ ? j : format_time_ns(now_ns()) + " " + human;
  // journald: the line stdout would carry (so `journalctl -o cat | jq` still reads ndjson), or
  // the JSON syslog(3) would. Either way one entry; on failure the line and syslog as before.
  bool journaled = false;
  if (journal_stdout_ || journal_syslog_)
    journaled = journal_.send(journal_encode(journal_fields(type, prio, journal_stdout_ ? line : j)));
  if (syslog_ && !journaled) ::syslog(prio, "%s", j.c_str());
  if (journal_stdout_ && journaled) return;
  // One record, one write(2) where the kernel allows it: a reader tailing the file (a log
  // shipper, a test) never meets half a record that stdio's buffer split.
  line += '\n';
  std::fflush(out_);
  const int fd = ::fileno(out_);
  if (fd < 0) {  // a stream without a descriptor (open_memstream: the unit tests)
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
    return;
  }
  for (std::string_view rest = line; !rest.empty();) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a full disk or a closed pipe: the record is lost, as with fprintf
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace fim::watchd
