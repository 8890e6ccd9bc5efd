// SPDX-License-Identifier: GPL-2.0-or-later
// The report for people: summary first, then one block per entry. Every byte that came from
// the filesystem goes through escape_terminal(): a file name cannot move the cursor, recolour
// the terminal or fake a line of the report (CVE-2025-54389).
#include <cerrno>
#include <cstring>
#include <map>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/report.h"
#include "spool.h"

namespace fim {
namespace {

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

/// 72113 -> "72,113".
std::string grouped(uint64_t n) {
  std::string d = std::to_string(n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

/// check --fast's header line: what the entries' verdicts rest on, the weakest (and most)
/// first: "72,113 by stat, 4,002 watched, 3,900 hashed (120 rolling), 470 verity".
std::string evidence_line(const Summary& s) {
  const auto n = [&](EntryEvidence e) { return s.evidence[static_cast<size_t>(e)]; };
  std::string out = grouped(n(EntryEvidence::Stat)) + " by stat, " + grouped(n(EntryEvidence::Watched)) + " watched, " +
                    grouped(n(EntryEvidence::Hashed)) + " hashed";
  if (s.rolling) out += " (" + grouped(s.rolling) + " rolling)";
  return out + ", " + grouped(n(EntryEvidence::Verity)) + " verity";
}

/// content = "diff" (docs/design.md, Content store): the diff indented under its entry, each
/// line through escape_terminal, then how many lines were left out; or why there is none.
std::string diff_lines(const ChangeNotes& notes) {
  if (!notes.diff_unavailable.empty()) return "\n  diff: none (" + escape_terminal(notes.diff_unavailable) + ")";
  std::string out;
  size_t start = 0;
  while (start < notes.diff.size()) {
    size_t nl = notes.diff.find('\n', start);
    if (nl == std::string::npos) nl = notes.diff.size();
    out += "\n    " + escape_terminal(std::string_view(notes.diff).substr(start, nl - start));
    start = nl + 1;
  }
  if (notes.diff_lines_omitted)
    out += "\n    ... " + std::to_string(notes.diff_lines_omitted) + " more line" + (notes.diff_lines_omitted == 1 ? "" : "s");
  return out;
}

class PlainSink final : public Sink {
 public:
  PlainSink(FILE* out, bool color, const Bytes& spill_dir) : out_(out), color_(color), details_(spill_dir), spill_dir_(spill_dir) {}

  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    details_.line(render(kind, o, n, changed, rule));
  }

  /// Changes an apt run explains, verified against their packages, are listed under that run,
  /// one line each; every other change keeps its full block, with what its package says and
  /// the window that tags it.
  void noted_change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule,
                    const ChangeNotes& notes) override {
    const Record& any = n ? *n : *o;
    std::string line;
    if (const auto& note = notes.package) {
      const std::string owner = note->package.empty() ? std::string()
                                                      : escape_terminal(note->package + " " + note->version + " (" + note->arch + ")");
      if (note->verdict == "verified" && !note->upgrade.empty()) {
        Upgrade& u = upgrades_.try_emplace(note->upgrade, spill_dir_).first->second;
        ++u.count;
        u.lines.line("  " + std::string(change_kind_name(kind)) + ": " + escape_terminal(any.path) + "  " + owner + ", " +
                     note->evidence);
        return;
      }
      line = render(kind, o, n, changed, rule);
      const bool bad = note->verdict == "mismatch";
      line += "\n  package: " + paint(bad ? "1;31" : "0", note->verdict) + (owner.empty() ? "" : " " + owner) + " [" +
              note->evidence + "]: " + escape_terminal(note->detail);
      if (!note->upgrade.empty()) line += " (changed by " + escape_terminal(note->upgrade) + ")";
    } else {
      line = render(kind, o, n, changed, rule);
    }
    if (!notes.window.empty())
      line += "\n  window: " + escape_terminal(notes.window) + " (" + escape_terminal(notes.window_why) + ")";
    line += diff_lines(notes);
    details_.line(line);
  }

  void entry_status(const Record& r, bool subtree, const Rule* rule) override {
    std::string line = paint("35", entry_status_is_failure(r.status) ? "incomplete:" : "skipped:");
    line += ' ' + escape_terminal(r.path) + ": " + std::string(entry_status_name(r.status));
    if (subtree) line += r.status == EntryStatus::SkippedFs ? " (contents not walked)" : " (contents not read)";
    line += labels(rule);
    if (r.sys_errno) line += " (" + errno_name(r.sys_errno) + ": " + std::strerror(r.sys_errno) + ")";
    details_.line(line);
  }

  void alternative(const Record& r, unsigned n, const Rule* rule) override {
    details_.line(paint("32", "ok (alternative " + std::to_string(n) + "):") + ' ' + escape_terminal(r.path) + labels(rule));
  }

  void alert(std::string_view code, std::string_view message) override {
    (void)code;
    alerts_.push_back("warning: " + std::string(message));
  }

  Status finish(const Summary& s) override {
    char head[512];
    if (s.command == "init") {
      std::snprintf(head, sizeof head, "fimctl init: %llu entries recorded, %llu incomplete, %llu skipped (%s hashed, %.2f s)\n",
                    ull(s.entries), ull(s.incomplete), ull(s.skipped), human_bytes(s.bytes_hashed).c_str(), s.seconds);
    } else {
      std::snprintf(head, sizeof head,
                    "fimctl %s: %llu added, %llu removed, %llu changed, %llu incomplete (%llu entries, %s hashed, %.2f s)\n",
                    s.command.c_str(), ull(s.added), ull(s.removed), ull(s.changed), ull(s.incomplete), ull(s.entries),
                    human_bytes(s.bytes_hashed).c_str(), s.seconds);
    }
    std::fputs(head, out_);
    std::fprintf(out_, "baseline: %s%s, created %s, %llu entries, content sha256 %s\n",
                 escape_terminal(s.baseline.path).c_str(),
                 s.baseline.is_signed ? (" (signed, key " + escape_terminal(s.baseline.key_id) + ")").c_str() : " (UNSIGNED)",
                 format_time_ns(s.baseline.created_ns).c_str(), ull(s.baseline.entries),
                 s.baseline.content_sha256.c_str());
    std::string roots;
    for (const Bytes& r : s.baseline.roots) roots += (roots.empty() ? "" : ", ") + quote(r);
    std::fprintf(out_, "baseline id %s, roots %s\n",
                 s.baseline.baseline_id.empty() ? "(none)" : s.baseline.baseline_id.c_str(),
                 roots.empty() ? "(none)" : roots.c_str());
    // The short form of the id: what 'accept --report' and 'update --report' take.
    if (!s.report_id.empty()) std::fprintf(out_, "report: %s\n", s.report_id.substr(0, kReportIdShown).c_str());
    if (!s.ticket.empty()) std::fprintf(out_, "ticket: %s\n", escape_terminal(s.ticket).c_str());
    if (s.mode == "fast") std::fprintf(out_, "evidence: %s\n", evidence_line(s).c_str());
    if (s.alternatives)
      std::fprintf(out_, "alternatives: %llu (entries found in a state 'accept --also' kept as good: not changes)\n",
                   ull(s.alternatives));
    if (s.unverified)
      std::fprintf(out_, "unverified: %llu baseline entries below directories that could not be read\n",
                   ull(s.unverified));
    for (const auto& [id, n] : s.windows)
      std::fprintf(out_, "window %s: tags %llu of these changes ('fimctl accept --window %s' takes them)\n",
                   escape_terminal(id).c_str(), ull(n), escape_terminal(id).c_str());
    if (!s.packages.empty()) {
      std::string p;
      for (const auto& [verdict, n] : s.packages) p += (p.empty() ? "" : ", ") + std::to_string(n) + " " + verdict;
      std::fprintf(out_, "packages: %s\n", p.c_str());
    }
    for (const auto& a : alerts_) std::fprintf(out_, "%s\n", escape_terminal(a).c_str());
    if (details_.count() > 0) {
      std::fputc('\n', out_);
      FIM_TRY(details_.copy_to(out_, nullptr));
    }
    for (auto& [run, u] : upgrades_) {
      std::fprintf(out_, "\n%s: %llu changes, each verified against its package:\n", escape_terminal(run).c_str(),
                   ull(u.count));
      FIM_TRY(u.lines.copy_to(out_, nullptr));
    }
    if (std::fflush(out_) != 0) return make_error(Errc::Io, "cannot write the report", errno);
    return {};
  }

 private:
  static unsigned long long ull(uint64_t v) { return v; }
  /// " [high: ssh,mitre:T1098.004]": the severity and tags of the rule that selects it.
  static std::string labels(const Rule* rule) {
    if (!rule) return {};
    std::string s = " [" + std::string(severity_name(rule->severity));
    for (size_t i = 0; i < rule->tags.size(); ++i) s += (i ? "," : ": ") + escape_terminal(rule->tags[i]);
    return s + "]";
  }
  /// "(none)": not collected (or not applicable to the type); "(empty)": collected, empty
  /// (no xattrs, no ACL, no capabilities).
  static std::string value(const Record& r, Attr a) {
    if (!r.has(a)) return "(none)";
    const std::string v = render_attr(a, r.get(a));
    return v.empty() ? "(empty)" : escape_terminal(v);
  }
  std::string paint(const char* sgr, const std::string& s) const {
    return color_ ? "\x1b[" + std::string(sgr) + "m" + s + "\x1b[0m" : s;
  }

  std::string render(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) const {
    const Record& any = n ? *n : *o;
    std::string line = paint(kind == ChangeKind::Added ? "32" : kind == ChangeKind::Removed ? "31" : "33",
                             std::string(change_kind_name(kind)) + ":");
    line += ' ' + escape_terminal(any.path);
    if (kind != ChangeKind::Changed) line += " (" + std::string(file_type_name(any.type())) + ")";
    line += labels(rule);
    if (kind == ChangeKind::Changed) {
      for (size_t i = 0; i < kAttrCount; ++i) {
        const Attr a = static_cast<Attr>(i);
        if (!(changed & attr_bit(a))) continue;
        line += "\n  " + std::string(attr_info(a).key) + ": ";
        line += value(*o, a) + " -> " + value(*n, a);
      }
    }
    return line;
  }

  struct Upgrade {
    explicit Upgrade(const Bytes& spill_dir) : lines(spill_dir) {}
    uint64_t count = 0;
    report::Spool lines;
  };
  FILE* out_;
  bool color_;
  report::Spool details_;
  Bytes spill_dir_;
  std::map<std::string, Upgrade> upgrades_;  // apt run -> the verified changes it explains
  std::vector<std::string> alerts_;
};

}  // namespace

std::unique_ptr<Sink> report::make_plain_sink(FILE* out, bool color, const Bytes& spill_dir) {
  return std::make_unique<PlainSink>(out, color, spill_dir);
}

}  // namespace fim
