// SPDX-License-Identifier: GPL-2.0-or-later
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include <dirent.h>

#include "fim/report.h"
#include "report/spool.h"
#include "testutil.h"

using namespace fim;

namespace {

Record rec(const Bytes& path, int64_t mode) {
  Record r;
  r.path = path;
  r.set_num(Attr::Type, static_cast<int64_t>(FileType::File));
  r.set_num(Attr::Mode, mode);
  r.set_num(Attr::Uid, 1000);
  return r;
}

std::string run_sink(Format format, const Summary& s, const std::function<void(Sink&)>& feed,
                     const json::Writer* extra = nullptr) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* mem = open_memstream(&buf, &len);
  auto sink = make_sink(format, mem, false, extra);
  feed(*sink);
  REQUIRE(sink->finish(s).has_value());
  std::fclose(mem);
  std::string out(buf, len);
  std::free(buf);
  return out;
}

template <class F>
std::string record(F&& build) {
  json::Writer w;
  build(w);
  return w.take();
}

}  // namespace

TEST_CASE("exit code bits") {
  struct {
    uint64_t added, removed, changed, incomplete;
    bool policy;
    int want;
  } cases[] = {
      {0, 0, 0, 0, false, 0}, {1, 0, 0, 0, false, 1}, {0, 3, 0, 0, false, 2}, {0, 0, 1, 0, false, 4},
      {0, 0, 0, 1, false, 8}, {0, 0, 0, 0, true, 8},  {1, 1, 1, 1, false, 15},
  };
  for (const auto& c : cases) {
    Summary s;
    s.added = c.added, s.removed = c.removed, s.changed = c.changed, s.incomplete = c.incomplete;
    s.policy_changed = c.policy;
    s.skipped = 5;  // policy choices never set a bit
    CHECK(exit_code_for(s) == c.want);
  }
}

TEST_CASE("JSON records: numbers stay numbers, bytes stay exact") {
  const Record a = rec("/x/\xff\x01", 0644), b = rec("/x/\xff\x01", 0600);
  const std::string c = record([&](json::Writer& w) { json::change_record(w, ChangeKind::Changed, &a, &b, attr_bit(Attr::Mode), nullptr); });
  CHECK(c.find("\"schema\":\"fimctl.v1\",\"type\":\"change\",\"kind\":\"changed\"") != std::string::npos);
  CHECK(c.find("\"path\":\"/x/\\u00ff\\u0001\",\"path_b64\":\"L3gv/wE=\"") != std::string::npos);
  CHECK(c.find("{\"attr\":\"mode\",\"old\":\"0644\",\"new\":\"0600\"}") != std::string::npos);
  const std::string added = record([&](json::Writer& w) { json::change_record(w, ChangeKind::Added, nullptr, &a, 0, nullptr); });
  CHECK(added.find("\"uid\":1000") != std::string::npos);
  CHECK(added.find("\"new\":{\"type\":\"file\"") != std::string::npos);
  Record bad = rec("/ok", 0644);
  bad.status = EntryStatus::Unreadable;
  bad.sys_errno = EACCES;
  const std::string st = record([&](json::Writer& w) { json::status_record(w, bad, false, nullptr); });
  CHECK(st.find("\"status\":\"unreadable\",\"errno\":\"EACCES\"") != std::string::npos);
  CHECK(st.find("path_b64") == std::string::npos);
}

TEST_CASE("plain report: summary first, escaped names, nothing raw") {
  Summary s;
  s.command = "check";
  s.changed = 1;
  s.entries = 2;
  s.baseline.path = "/db";
  const Record a = rec("/x/\x1b[31mOK\n", 0644), b = rec("/x/\x1b[31mOK\n", 0600);
  const std::string out = run_sink(Format::Plain, s, [&](Sink& sink) {
    sink.change(ChangeKind::Changed, &a, &b, attr_bit(Attr::Mode), nullptr);
    sink.alert("unsigned", "not signed");
  });
  CHECK(out.rfind("fimctl check: 0 added, 0 removed, 1 changed, 0 incomplete", 0) == 0);
  CHECK(out.find("(UNSIGNED)") != std::string::npos);
  CHECK(out.find("warning: not signed") != std::string::npos);
  CHECK(out.find("changed: /x/\\x1b[31mOK\\n\n  mode: 0644 -> 0600\n") != std::string::npos);
  for (const char ch : out) CHECK((ch == '\n' || static_cast<unsigned char>(ch) >= 0x20));
}

TEST_CASE("JSON document and ndjson hold every record and end with the summary") {
  Summary s;
  s.command = "check";
  s.added = 2;
  const Record a = rec("/a", 0644), b = rec("/b", 0644);
  const auto feed = [&](Sink& sink) {
    sink.change(ChangeKind::Added, nullptr, &a, 0, nullptr);
    sink.change(ChangeKind::Added, nullptr, &b, 0, nullptr);
  };
  const std::string nd = run_sink(Format::Ndjson, s, feed);
  CHECK(std::count(nd.begin(), nd.end(), '\n') == 3);
  CHECK(nd.find("{\"schema\":\"fimctl.v1\",\"type\":\"summary\"") != std::string::npos);
  const std::string doc = run_sink(Format::Json, s, feed);
  CHECK(doc.rfind("{\"schema\":\"fimctl.v1\",\"type\":\"report\",\"summary\":{", 0) == 0);
  CHECK(doc.find("},\n{") != std::string::npos);
  CHECK(doc.substr(doc.size() - 4) == "\n]}\n");
  // Both read back as JSON: the document with its two records, each ndjson line alone.
  auto parsed = json::parse(doc);
  REQUIRE(parsed.has_value());
  CHECK(parsed->str("type") == "report");
  REQUIRE(parsed->get("records") != nullptr);
  CHECK(parsed->get("records")->items.size() == 2);
  CHECK(parsed->get("summary")->i64("added") == 2);
  size_t start = 0, lines = 0;
  for (size_t end; (end = nd.find('\n', start)) != std::string::npos; start = end + 1, ++lines) {
    auto rec = json::parse(std::string_view(nd).substr(start, end - start));
    REQUIRE(rec.has_value());
    CHECK(rec->str("schema") == kReportSchema);
  }
  CHECK(lines == 3);
}

TEST_CASE("make_sink: extra fields end every JSON record, the summary's too") {
  Summary s;
  s.command = "check";
  const Record a = rec("/a", 0644);
  json::Writer extra = json::Writer::fields();
  extra.object("container").num("pid", 7).close();
  extra.str("source", "watch");
  const std::string nd = run_sink(Format::Ndjson, s, [&](Sink& sink) { sink.change(ChangeKind::Added, nullptr, &a, 0, nullptr); },
                                  &extra);
  CHECK(std::count(nd.begin(), nd.end(), '\n') == 2);
  size_t lines = 0;
  for (size_t pos = 0; (pos = nd.find(",\"container\":{\"pid\":7},\"source\":\"watch\"}\n", pos)) != std::string::npos; ++pos)
    ++lines;
  CHECK(lines == 2);
}

TEST_CASE("every JSON record carries time and host, the summary's too (issue 20)") {
  Summary s;
  s.command = "check";
  const Record a = rec("/a", 0644);
  for (const Format f : {Format::Ndjson, Format::Json}) {
    const std::string out = run_sink(f, s, [&](Sink& sink) {
      sink.change(ChangeKind::Added, nullptr, &a, 0, nullptr);
      sink.alert("unsigned", "x");
    });
    size_t times = 0, hosts = 0;
    for (size_t pos = 0; (pos = out.find("\"time\":\"", pos)) != std::string::npos; ++pos) ++times;
    for (size_t pos = 0; (pos = out.find("\"host\":{\"name\":\"", pos)) != std::string::npos; ++pos) ++hosts;
    CHECK(times == 3);  // the change, the alert, the summary
    CHECK(hosts == 3);
  }
}

TEST_CASE("format registry: every row parses back to itself, nothing else parses") {
  for (const auto& row : kFormats) {
    REQUIRE(parse_format(row.name).has_value());
    CHECK(*parse_format(row.name) == row.format);
    CHECK(std::string(format_name(row.format)) == row.name);
  }
  CHECK(!parse_format("xml").has_value());
  CHECK(!parse_format("JSON").has_value());
  CHECK(!parse_format("").has_value());
}

namespace {

std::string spooled(report::Spool& sp, const char* sep) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* mem = open_memstream(&buf, &len);
  const Status st = sp.copy_to(mem, sep);
  std::fclose(mem);
  std::string out(buf, len);
  std::free(buf);
  REQUIRE(st.has_value());
  return out;
}

size_t visible_files(const std::string& dir) {
  size_t n = 0;
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

}  // namespace

TEST_CASE("spool: lines come back in order, from memory and past the bound from beside the baseline") {
  test::TempDir dir;
  std::string want, joined;
  for (const size_t bound : {size_t{1} << 20, size_t{100}}) {
    CAPTURE(bound);
    report::Spool sp(dir.path(), bound);
    want.clear();
    joined.clear();
    for (int i = 0; i < 50; ++i) {
      const std::string line = "{\"n\":" + std::to_string(i) + "}";
      sp.line(line);
      want += line + "\n";
      joined += (i ? ",\n" : "") + line;
    }
    CHECK(sp.count() == 50);
    CHECK(spooled(sp, nullptr) == want);
    CHECK(spooled(sp, ",\n") == joined);
    CHECK(visible_files(dir.path()) == 0);  // O_TMPFILE: nothing left for anyone to read or swap
  }
  // No usable directory beside the baseline: the temporary directory still takes it.
  report::Spool sp(dir / "missing", 10);
  for (int i = 0; i < 5; ++i) sp.line("line " + std::to_string(i));
  CHECK(spooled(sp, nullptr) == "line 0\nline 1\nline 2\nline 3\nline 4\n");
}

TEST_CASE("groups: by severity (highest first), rule, verdict and run; explained only when verified by a recorded run") {
  Rule high, crit;
  high.pattern = "/usr";
  high.severity = Severity::High;
  high.where = SourcePos{"/etc/fimctl/fimctl.toml", 3, 1};
  crit.pattern = "/etc/cron.d";
  crit.severity = Severity::Critical;
  crit.where = SourcePos{"/etc/fimctl/fimctl.toml", 9, 1};
  const auto note = [](const char* verdict, const char* run, const char* evidence) {
    ChangeNotes n;
    n.package = PackageNote{verdict, evidence, "openssl", "3.0.22", "amd64", "", run, "3.0.19", false};
    n.package->strong = std::string_view(evidence) == "deb-sha256";
    return n;
  };
  ChangeGroups g;
  const ChangeNotes deb = note("verified", "apt run 1", "deb-sha256");
  const ChangeNotes md5 = note("verified", "apt run 1", "dpkg-md5");
  const ChangeNotes no_run = note("verified", "", "deb-sha256");
  const ChangeNotes bad = note("mismatch", "apt run 1", "deb-sha256");
  for (int i = 0; i < 3; ++i) g.add(ChangeKind::Changed, &high, &deb);
  g.add(ChangeKind::Changed, &high, &md5);
  g.add(ChangeKind::Changed, &high, &no_run);
  g.add(ChangeKind::Changed, &high, &bad);
  g.add(ChangeKind::Added, &crit, nullptr);
  g.add(ChangeKind::Removed, nullptr, nullptr);
  CHECK(g.explained.changed == 4);
  CHECK(g.explained_weak == 1);
  CHECK(g.unexplained.total() == 4);  // no run, mismatch, no notes, no rule
  REQUIRE(g.unexplained_severity);
  CHECK(*g.unexplained_severity == Severity::Critical);
  REQUIRE(g.severity.size() == 2);
  CHECK(g.severity.begin()->first == Severity::Critical);
  const auto rules = g.rules_in_order();
  REQUIRE(rules.size() == 3);
  CHECK(rules[0]->pattern == "/etc/cron.d");
  CHECK(rules[1]->counts.changed == 6);
  CHECK(rules[2]->where.empty());  // no rule: last
  const auto verdicts = g.verdicts_in_order();
  REQUIRE(verdicts.size() == 2);
  CHECK(verdicts[0].first == "mismatch");
  const auto& pkg = g.runs.at("apt run 1").packages.at("openssl:amd64");
  CHECK(pkg.verified == 4);
  CHECK(pkg.other == 1);
  CHECK(pkg.from == "3.0.19");
  CHECK(pkg.evidence == std::set<std::string>{"deb-sha256", "dpkg-md5"});
}

TEST_CASE("plain report: the summary line and table come from what the sink was given") {
  Summary s;
  s.command = "check";
  Rule r;
  r.pattern = "/etc";
  r.severity = Severity::High;
  r.where = SourcePos{"p.toml", 2, 1};
  Record a = rec("/etc/a", 0644), b = rec("/etc/b", 0644);
  const std::string out = run_sink(Format::Plain, s, [&](Sink& sink) {
    sink.change(ChangeKind::Added, nullptr, &a, 0, &r);
    sink.change(ChangeKind::Removed, &b, nullptr, 0, &r);
  });
  CHECK(out.find("\nsummary: 2 changes (high)\n") != std::string::npos);
  CHECK(out.find("\n        1       1       0  high\n") != std::string::npos);
  CHECK(out.find("\n        1       1       0    /etc (p.toml:2)\n") != std::string::npos);
  const std::string none = run_sink(Format::Plain, s, [](Sink&) {});
  CHECK(none.find("\nsummary: no changes\n") != std::string::npos);
  CHECK(none.find("by severity") == std::string::npos);
}
