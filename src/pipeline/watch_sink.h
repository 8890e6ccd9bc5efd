// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's records (private to the pipeline module): what triggered a compare, the
// sink that writes each record as it happens (ndjson or a line for people, syslog, Falco
// payloads), and the small JSON helpers its records are built with.
#pragma once

#include <syslog.h>

#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fim/base/sys.h"
#include "fim/report.h"
#include "fim/watch.h"

namespace fim::watchd {

/// What made the worker look at a path: the events (mask, last writer) or a rescan reason.
struct Trigger {
  uint64_t mask = 0;
  int32_t pid = 0;
  std::string comm;
  int64_t first_ns = 0;
  std::string rescan;  ///< non-empty for a rescan: start, overflow, scheduled, ...
  bool inode_event = false;  ///< named by the file's own handle (link count, ...): its other names too
};

/// Appends ,"k":"v" (JSON-escaped) or ,"k":N to a record's fields: every field of the
/// daemon's records starts with its comma, so they append to any record.
void add_str(std::string& o, std::string_view k, std::string_view v);
void add_num(std::string& o, std::string_view k, uint64_t v);
/// ["/root1","/root2"]
std::string roots_json(const std::vector<Bytes>& roots);
/// ,"source":"watch" and what triggered the compare: the events, pid and command, or the
/// rescan's reason.
std::string trigger_fields(const Trigger* t);
/// Falco's priority names (falcosidekick filters and routes on them) for fimctl's severities.
std::string_view falco_priority(const Rule* rule);
std::string this_host();
/// The JSON Falco writes with json_output (what falcosidekick's POST / accepts): output,
/// priority, rule, time, source, tags, hostname and output_fields (`fields`: ",k":v pairs).
std::string falco_payload(std::string_view rule, std::string_view priority, std::string_view output,
                          const std::string& fields, const std::vector<std::string>& tags, const std::string& host);

/// Records as they happen: one line each, flushed, from either thread.
class StreamSink final : public Sink {
 public:
  StreamSink(FILE* out, bool ndjson, bool use_syslog) : out_(out), ndjson_(ndjson), syslog_(use_syslog) {
    if (syslog_) ::openlog("fimctl", LOG_PID | LOG_NDELAY, LOG_DAEMON);
  }
  ~StreamSink() override {
    if (syslog_) ::closelog();
  }

  /// The trigger attached to the changes reported next (worker thread).
  void set_trigger(const Trigger* t) { trigger_ = t; }
  /// Where Falco-compatible payloads go (set before the worker starts).
  void set_falco(HttpPoster* p) { falco_ = p; }
  /// Who made a change: the BPF sensors' "who" object and a phrase for people ("by uid 0,
  /// pid 42 (sh)"), or empty; asked for every change record (set before the worker starts).
  using WhoFn = std::function<std::pair<std::string, std::string>(const Record* o, const Record* n, int32_t pid)>;
  void set_who(WhoFn f) { who_ = std::move(f); }

  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    std::string j = json::change_record(kind, o, n, changed, rule);
    j.pop_back();
    j += trigger_json();
    const auto [who, who_human] = who_ ? who_(o, n, trigger_ ? trigger_->pid : 0) : std::pair<std::string, std::string>();
    if (!who.empty()) j += ",\"who\":" + who;
    const Record& any = n ? *n : *o;
    std::string human = std::string(change_kind_name(kind)) + ": " + escape_terminal(any.path);
    if (rule) human += " [" + std::string(severity_name(rule->severity)) + "]";
    if (kind == ChangeKind::Changed) {
      std::string attrs;
      for (size_t i = 0; i < kAttrCount; ++i)
        if (changed & attr_bit(static_cast<Attr>(i))) attrs += (attrs.empty() ? "" : ",") + std::string(attr_info(static_cast<Attr>(i)).key);
      human += " (" + attrs + ")";
    }
    if (trigger_ && trigger_->pid > 0)
      human += " after pid " + std::to_string(trigger_->pid) + (trigger_->comm.empty() ? "" : " (" + escape_terminal(trigger_->comm) + ")");
    if (trigger_ && !trigger_->rescan.empty()) human += " (rescan: " + trigger_->rescan + ")";
    if (!who_human.empty()) human += " " + who_human;
    const int prio = rule && rule->severity >= Severity::High ? LOG_ERR : LOG_WARNING;
    if (falco_) {
      std::string f;
      add_str(f, "fd.name", any.path);
      add_str(f, "fimctl.kind", change_kind_name(kind));
      add_str(f, "fimctl.file_type", file_type_name(any.type()));
      if (kind == ChangeKind::Changed) {
        std::string attrs;
        for (size_t i = 0; i < kAttrCount; ++i)
          if (changed & attr_bit(static_cast<Attr>(i))) attrs += (attrs.empty() ? "" : ",") + std::string(attr_info(static_cast<Attr>(i)).key);
        add_str(f, "fimctl.changes", attrs);
      }
      if (o && o->has(Attr::Sha256)) add_str(f, "fimctl.old.sha256", render_attr(Attr::Sha256, o->get(Attr::Sha256)));
      if (n && n->has(Attr::Sha256)) add_str(f, "fimctl.new.sha256", render_attr(Attr::Sha256, n->get(Attr::Sha256)));
      if (rule) add_str(f, "fimctl.rule", rule->where.text());
      if (trigger_ && trigger_->pid > 0) add_num(f, "proc.pid", static_cast<uint64_t>(trigger_->pid));
      if (trigger_ && !trigger_->comm.empty()) add_str(f, "proc.name", trigger_->comm);
      if (trigger_ && !trigger_->rescan.empty()) add_str(f, "fimctl.rescan", trigger_->rescan);
      if (!who.empty()) f += ",\"fimctl.who\":" + who;
      falco_->post(falco_payload("fimctl: file " + std::string(change_kind_name(kind)), falco_priority(rule), human, f,
                                 rule ? rule->tags : std::vector<std::string>{}, host_));
    }
    emit(std::move(j), human, prio);
  }

  void entry_status(const Record& r, bool subtree, const Rule* rule) override {
    std::string j = json::status_record(r, subtree, rule);
    j.pop_back();
    j += trigger_json();
    emit(std::move(j), std::string(entry_status_is_failure(r.status) ? "incomplete: " : "skipped: ") +
                           escape_terminal(r.path) + ": " + std::string(entry_status_name(r.status)),
         LOG_WARNING);
  }

  void alert(std::string_view code, std::string_view message) override {
    if (falco_) {
      std::string f;
      add_str(f, "fimctl.alert", code);
      falco_->post(falco_payload("fimctl: " + std::string(code), "Warning", message, f, {}, host_));
    }
    std::string j = json::alert_record(code, message);
    j.pop_back();
    emit(std::move(j), "warning: " + std::string(message), LOG_WARNING);
  }

  Status finish(const Summary&) override { return {}; }

  /// An alert with fields of its own (the BPF sensors' detections: `fields` holds ",k":v
  /// pairs such as path and who), to Falco too.
  void alert_with(std::string_view code, std::string_view message, const std::string& fields, int prio = LOG_WARNING) {
    if (falco_) {
      std::string f;
      add_str(f, "fimctl.alert", code);
      falco_->post(falco_payload("fimctl: " + std::string(code), prio <= LOG_ERR ? "Error" : "Warning", message, f + fields,
                                 {}, host_));
    }
    std::string j = json::alert_record(code, message);
    j.pop_back();
    j += fields;
    emit(std::move(j), "alert: " + std::string(message), prio);
  }

  /// A record of the daemon's own: {"schema":..,"type":TYPE,"time":..<fields>}.
  void event(std::string_view type, const std::string& fields, const std::string& human, int prio = LOG_NOTICE) {
    if (falco_ && (type == "gap" || type == "degraded"))
      falco_->post(falco_payload("fimctl: coverage " + std::string(type), "Warning", human, fields, {}, host_));
    std::string j = "{\"schema\":\"";
    j += kReportSchema;
    j += "\",\"type\":\"";
    j += type;
    j += "\"" + fields;
    emit(std::move(j), std::string(type) + ": " + human, prio);
  }

 private:
  std::string trigger_json() const { return trigger_fields(trigger_); }

  void emit(std::string j, const std::string& human, int prio) {
    add_str(j, "time", format_time_ns(now_ns()));
    j += "}";
    std::lock_guard<std::mutex> lk(mu_);
    if (ndjson_) std::fprintf(out_, "%s\n", j.c_str());
    else std::fprintf(out_, "%s %s\n", format_time_ns(now_ns()).c_str(), human.c_str());
    std::fflush(out_);
    if (syslog_) ::syslog(prio, "%s", j.c_str());
  }

  std::mutex mu_;
  FILE* out_;
  bool ndjson_, syslog_;
  const Trigger* trigger_ = nullptr;
  HttpPoster* falco_ = nullptr;
  WhoFn who_;
  std::string host_ = this_host();
};

}  // namespace fim::watchd
