// SPDX-License-Identifier: GPL-2.0-or-later
// Exit codes and the JSON sinks. Records are spooled to an unlinked temporary file, not kept
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
  JsonSink(FILE* out, bool ndjson) : out_(out), ndjson_(ndjson) {}

  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    spool_.line(json::change_record(kind, o, n, changed, rule));
  }
  void package_change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule,
                      const PackageNote& note) override {
    spool_.line(json::change_record(kind, o, n, changed, rule, &note));
  }
  void entry_status(const Record& r, bool subtree, const Rule* rule) override {
    spool_.line(json::status_record(r, subtree, rule));
  }
  void alert(std::string_view code, std::string_view message) override {
    spool_.line(json::alert_record(code, message));
  }

  Status finish(const Summary& s) override {
    const std::string summary = json::summary_record(s);
    if (ndjson_) {
      FIM_TRY(spool_.copy_to(out_, nullptr));
      std::fputs(summary.c_str(), out_);
      std::fputc('\n', out_);
    } else {
      std::fprintf(out_, "{\"schema\":\"%s\",\"type\":\"report\",\"summary\":%s,\"records\":[\n", kReportSchema,
                   summary.c_str());
      FIM_TRY(spool_.copy_to(out_, ",\n"));
      std::fputs("\n]}\n", out_);
    }
    if (std::fflush(out_) != 0) return make_error(Errc::Io, "cannot write the report", errno);
    return {};
  }

 private:
  FILE* out_;
  bool ndjson_;
  report::Spool spool_;
};

}  // namespace

std::unique_ptr<Sink> make_json_sink(FILE* out, bool ndjson) { return std::make_unique<JsonSink>(out, ndjson); }

}  // namespace fim
