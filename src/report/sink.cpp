// SPDX-License-Identifier: GPL-2.0-or-later
// Exit codes, the format registry's lookups, make_sink and the JSON sinks. Records are spooled
// in memory up to a bound, then to an unlinked file beside the baseline: a check that finds a
// million changes runs in bounded memory, and a full /tmp cannot swallow the report.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "fim/report.h"
#include "spool.h"

namespace fim {

int exit_code_for(const Summary& s) {
  int code = 0;
  if (s.added) code |= 1;
  if (s.removed) code |= 2;
  if (s.changed) code |= 4;
  if (s.incomplete || s.policy_changed || s.state_unwritten) code |= 8;
  return code;
}

namespace report {

Spool::Spool(Bytes spill_dir, size_t memory_bound) : spill_dir_(std::move(spill_dir)), memory_bound_(memory_bound) {}
Spool::~Spool() {
  if (file_) std::fclose(file_);
}

void Spool::spill() {
  // Beside the baseline first: that filesystem holds the baseline, so it is the one the
  // operator keeps room on; an O_TMPFILE is never visible and vanishes with the process.
  int fd = spill_dir_.empty() ? -1 : ::open(spill_dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  file_ = fd >= 0 ? ::fdopen(fd, "w+") : nullptr;
  if (fd >= 0 && !file_) ::close(fd);
  if (!file_) file_ = std::tmpfile();
  if (!file_ || std::fwrite(mem_.data(), 1, mem_.size(), file_) != mem_.size()) {
    failed_ = true;
    errno_ = errno;
    return;
  }
  std::string().swap(mem_);
}

void Spool::line(const std::string& s) {
  ++count_;
  if (failed_) return;
  if (!file_ && mem_.size() + s.size() + 1 <= memory_bound_) {
    mem_ += s;
    mem_ += '\n';
    return;
  }
  if (!file_) spill();
  if (failed_) return;
  if (std::fwrite(s.data(), 1, s.size(), file_) != s.size() || std::fputc('\n', file_) == EOF) {
    failed_ = true;
    errno_ = errno;
  }
}

Status Spool::copy_to(FILE* out, const char* separator) {
  if (failed_ || (file_ && std::fflush(file_) != 0))
    return make_error(Errc::Io, "cannot hold the report: memory bound reached and no room to spool it beside the baseline "
                                "or in the temporary directory", failed_ ? errno_ : errno);
  const auto emit = [&](const char* p, size_t n, bool& first) {
    if (!first && separator) std::fputs(separator, out);
    first = false;
    // The spool holds one record per line; with a separator the newline is the caller's.
    std::fwrite(p, 1, separator ? n - 1 : n, out);
  };
  bool first = true;
  if (!file_) {
    for (size_t at = 0; at < mem_.size();) {
      const size_t nl = mem_.find('\n', at);
      emit(mem_.data() + at, nl - at + 1, first);
      at = nl + 1;
    }
    return {};
  }
  std::rewind(file_);
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&buf, &cap, file_)) > 0) emit(buf, static_cast<size_t>(n), first);
  std::free(buf);
  return {};
}

}  // namespace report

namespace {

class JsonSink final : public Sink {
 public:
  JsonSink(FILE* out, bool ndjson, const json::Writer* extra, const Bytes& spill_dir)
      : out_(out), ndjson_(ndjson), extra_(extra ? *extra : json::Writer()), spool_(spill_dir) {}

  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    json::Writer w;
    json::change_record(w, kind, o, n, changed, rule);
    spool_.line(finish_record(w));
  }
  void noted_change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule,
                    const ChangeNotes& notes) override {
    json::Writer w;
    json::change_record(w, kind, o, n, changed, rule, &notes);
    spool_.line(finish_record(w));
  }
  void entry_status(const Record& r, bool subtree, const Rule* rule) override {
    json::Writer w;
    json::status_record(w, r, subtree, rule);
    spool_.line(finish_record(w));
  }
  void alternative(const Record& r, unsigned n, const Rule* rule) override {
    json::Writer w;
    json::alternative_record(w, r, n, rule);
    spool_.line(finish_record(w));
  }
  void alert(std::string_view code, std::string_view message) override {
    json::Writer w;
    json::alert_record(w, code, message);
    spool_.line(finish_record(w));
  }

  Status finish(const Summary& s) override {
    json::Writer w;
    json::summary_record(w, s);
    const std::string summary = finish_record(w);
    if (ndjson_) {
      FIM_TRY(spool_.copy_to(out_, nullptr));
      std::fputs(summary.c_str(), out_);
      std::fputc('\n', out_);
    } else {
      // {"schema":..,"type":"report","summary":{..},"records":[ one record per line ]}
      json::Writer doc;
      doc.schema("report").raw("summary", summary).array("records");
      std::fputs(doc.flush().c_str(), out_);
      std::fputc('\n', out_);
      FIM_TRY(spool_.copy_to(out_, ",\n"));
      std::fputc('\n', out_);
      std::fputs(doc.take().c_str(), out_);
      std::fputc('\n', out_);
    }
    if (std::fflush(out_) != 0) return make_error(Errc::Io, "cannot write the report", errno);
    return {};
  }

 private:
  std::string finish_record(json::Writer& w) {
    json::stamp(w);
    w.members(extra_);
    return w.take();
  }

  FILE* out_;
  bool ndjson_;
  json::Writer extra_;
  report::Spool spool_;
};

}  // namespace

std::unique_ptr<Sink> report::make_json_sink(FILE* out, bool ndjson, const json::Writer* extra, const Bytes& spill_dir) {
  return std::make_unique<JsonSink>(out, ndjson, extra, spill_dir);
}

const char* format_name(Format f) {
  for (const auto& row : kFormats)
    if (row.format == f) return row.name;
  return "?";
}

std::optional<Format> parse_format(std::string_view name) {
  for (const auto& row : kFormats)
    if (name == row.name) return row.format;
  return std::nullopt;
}

std::unique_ptr<Sink> make_sink(Format format, FILE* out, bool color, const json::Writer* extra, const Bytes& spill_dir,
                                bool verbose) {
  std::unique_ptr<Sink> sink;
  switch (format) {
    case Format::Plain: sink = report::make_plain_sink(out, color, verbose, spill_dir); break;
    case Format::Json: sink = report::make_json_sink(out, false, extra, spill_dir); break;
    case Format::Ndjson: sink = report::make_json_sink(out, true, extra, spill_dir); break;
    case Format::Ecs: sink = make_ecs_sink(out, extra, spill_dir); break;
  }
  if (!sink) sink = report::make_plain_sink(out, color, verbose, spill_dir);
  return report::with_groups(std::move(sink));
}

}  // namespace fim
