// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's records (private to the pipeline module): what triggered a compare, the
// sink that writes each record as it happens (ndjson or a line for people, syslog, Falco
// payloads), and the fields its records share.
#pragma once

#include <syslog.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fim/base/sys.h"
#include "fim/json.h"
#include "fim/report.h"
#include "fim/watch.h"
#include "journal.h"

namespace fim::watchd {

/// What made the worker look at a path: the events (mask, last writer) or a rescan reason.
struct Trigger {
  uint64_t mask = 0;
  int32_t pid = 0;
  std::string comm;
  int64_t first_ns = 0;
  std::string rescan;  ///< non-empty for a rescan: start, overflow, scheduled, ...
  /// The name outside every root the event came through (a hard link of a baseline file).
  Bytes via;
  /// Held open for writing or mapped shared-writable when compared (open_writers.h); pid and
  /// comm then name a holder unless an event named the writer.
  bool open_for_write = false;
  /// A directory that came to be below a root: its subtree is marked before it is compared.
  bool mark_tree = false;
  /// A compare inside a container (container_roots.h): the "container" object its records
  /// carry, and the same for people.
  std::string container, container_label;
};

/// "source":"watch" and what triggered the compare: the events, pid and command, or the
/// rescan's reason (fields for a record).
json::Writer trigger_fields(const Trigger* t);
/// Falco's priority names (falcosidekick filters and routes on them) for fimctl's severities.
std::string_view falco_priority(const Rule* rule);
/// The JSON Falco writes with json_output (what falcosidekick's POST / accepts): output,
/// priority, rule, time, source, tags, hostname and output_fields (`fields`).
std::string falco_payload(std::string_view rule, std::string_view priority, std::string_view output,
                          const json::Writer& fields, const std::vector<std::string>& tags, const std::string& host);
/// Falco's output_fields are flat, named as Falco names its own: a record's `who` (the BPF
/// sensors' writer) becomes proc.pid, proc.ppid, proc.name, proc.exepath, user.uid and
/// user.loginuid; its `container` container.id, container.name, container.image.repository,
/// .tag and .digest, k8s.ns.name and k8s.pod.name; anything else fimctl.KEY[.SUB...].
void falco_flatten(json::Writer& f, const std::string& key, const json::Value& v);
void falco_flatten(json::Writer& f, const std::string& key, std::string_view object_json);
/// "mode,sha256": the keys of the attributes in `changed`.
std::string changed_keys(AttrMask changed);

/// Records as they happen: one line each, flushed, from either thread.
class StreamSink final : public Sink {
 public:
  /// `use_syslog` (watch --syslog): every record to journald where it runs, else to
  /// syslog(3). When `out` is the journal stream systemd gave the service ($JOURNAL_STREAM),
  /// records go to journald as entries with fields instead of lines on it (once, with
  /// --syslog too). `journal`: the socket, for tests.
  StreamSink(FILE* out, Format format, bool use_syslog, Journal journal = Journal())
      : out_(out), ndjson_(format != Format::Plain), ecs_(format == Format::Ecs), syslog_(use_syslog),
        journal_(std::move(journal)) {
    const bool journald = journal_.available();
    journal_stdout_ = journald && out_ && is_journal_stream(::fileno(out_), std::getenv("JOURNAL_STREAM"));
    journal_syslog_ = journald && syslog_;
    if (syslog_) ::openlog("fimctl", LOG_PID | LOG_NDELAY, LOG_DAEMON);
  }
  ~StreamSink() override {
    if (syslog_) ::closelog();
  }

  /// Changes reported so far by their rule's severity: [0] no rule, then info .. critical.
  static constexpr size_t kSeverityLabels = 6;
  std::array<uint64_t, kSeverityLabels> changes_by_severity() const {
    std::array<uint64_t, kSeverityLabels> out{};
    for (size_t i = 0; i < out.size(); ++i) out[i] = by_severity_[i].load(std::memory_order_relaxed);
    return out;
  }
  /// The trigger attached to the changes reported next (worker thread).
  void set_trigger(const Trigger* t) { trigger_ = t; }
  /// Where Falco-compatible payloads go (set before the worker starts).
  void set_falco(HttpPoster* p) { falco_ = p; }
  /// Who made a change: the BPF sensors' "who" object and a phrase for people ("by uid 0,
  /// pid 42 (sh)"), or empty; asked for every change record (set before the worker starts).
  using WhoFn = std::function<std::pair<std::string, std::string>(const Record* o, const Record* n, int32_t pid)>;
  void set_who(WhoFn f) { who_ = std::move(f); }
  /// The maintenance window that tags a change (id, why), or none (set before the worker starts).
  using WindowFn = std::function<std::optional<std::pair<std::string, std::string>>(ChangeKind, const Record*, const Record*)>;
  void set_window(WindowFn f) { window_ = std::move(f); }

  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override;
  /// An entry added and removed again within one debounce (json::transient_record).
  void transient(const Bytes& path, const Rule* rule);
  void entry_status(const Record& r, bool subtree, const Rule* rule) override;
  void alternative(const Record& r, unsigned n, const Rule* rule) override;
  void alert(std::string_view code, std::string_view message) override;
  Status finish(const Summary&) override { return {}; }

  /// An alert with fields of its own (the BPF sensors' detections: path and who), to Falco too.
  void alert_with(std::string_view code, std::string_view message, const json::Writer& fields, int prio = LOG_WARNING);
  /// A record of the daemon's own: {"schema":..,"type":TYPE,<fields>,"time":..}.
  void event(std::string_view type, const json::Writer& fields, const std::string& human, int prio = LOG_NOTICE);

 private:
  /// Adds the time, closes the record and writes it (ndjson) or `human` (plain), and to
  /// journald (PRIORITY `prio`, the MESSAGE_ID of `type`) or syslog.
  void emit(std::string_view type, json::Writer& w, const std::string& human, int prio);

  std::mutex mu_;
  FILE* out_;
  bool ndjson_, ecs_, syslog_;
  std::array<std::atomic<uint64_t>, kSeverityLabels> by_severity_{};
  Journal journal_;
  bool journal_stdout_ = false, journal_syslog_ = false;
  const Trigger* trigger_ = nullptr;
  HttpPoster* falco_ = nullptr;
  WhoFn who_;
  WindowFn window_;
  std::string host_ = host_name();
};

}  // namespace fim::watchd
