// SPDX-License-Identifier: GPL-2.0-or-later
// Exit codes, the format registry's lookups, make_sink and the JSON sinks. Records are spooled to an unlinked temporary file, not kept
// in memory: a check that finds a million changes still runs in bounded memory.
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
  if (s.incomplete || s.policy_changed) code |= 8;
  return code;
}

namespace report {

Spool::Spool() : file_(std::tmpfile()) {}
Spool::~Spool() {
  if (file_) std::fclose(file_);
}

void Spool::line(const std::string& s) {
  if (!file_) return;
  if (std::fwrite(s.data(), 1, s.size(), file_) != s.size() || std::fputc('\n', file_) == EOF) failed_ = true;
  ++count_;
}

Status Spool::copy_to(FILE* out, const char* separator) {
  if (!file_) return make_error(Errc::Io, "cannot create a temporary file for the report", errno);
  if (failed_ || std::fflush(file_) != 0) return make_error(Errc::Io, "cannot write the report spool", errno);
  std::rewind(file_);
  char* buf = nullptr;
  size_t cap = 0;
  bool first = true;
  ssize_t n;
  while ((n = getline(&buf, &cap, file_)) > 0) {
    if (!first && separator) std::fputs(separator, out);
    first = false;
    // The spool holds one record per line; with a separator the newline is the caller's.
    std::fwrite(buf, 1, static_cast<size_t>(separator ? n - 1 : n), out);
  }
  std::free(buf);
  return {};
}

}  // namespace report

namespace {

class JsonSink final : public Sink {
 public:
  JsonSink(FILE* out, bool ndjson, const json::Writer* extra)
      : out_(out), ndjson_(ndjson), extra_(extra ? *extra : json::Writer()) {}

  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    json::Writer w;
    json::change_record(w, kind, o, n, changed, rule);
    spool_.line(finish_record(w));
  }
  void package_change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule,
                      const PackageNote& note) override {
    json::Writer w;
    json::change_record(w, kind, o, n, changed, rule, &note);
    spool_.line(finish_record(w));
  }
  void entry_status(const Record& r, bool subtree, const Rule* rule) override {
    json::Writer w;
    json::status_record(w, r, subtree, rule);
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
    w.members(extra_);
    return w.take();
  }

  FILE* out_;
  bool ndjson_;
  json::Writer extra_;
  report::Spool spool_;
};

}  // namespace

std::unique_ptr<Sink> report::make_json_sink(FILE* out, bool ndjson, const json::Writer* extra) {
  return std::make_unique<JsonSink>(out, ndjson, extra);
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

std::unique_ptr<Sink> make_sink(Format format, FILE* out, bool color, const json::Writer* extra) {
  switch (format) {
    case Format::Plain: return report::make_plain_sink(out, color);
    case Format::Json: return report::make_json_sink(out, false, extra);
    case Format::Ndjson: return report::make_json_sink(out, true, extra);
  }
  return report::make_plain_sink(out, color);
}

}  // namespace fim
