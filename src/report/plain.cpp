// SPDX-License-Identifier: GPL-2.0-or-later
// The report for people: summary first, then one block per entry. Every byte that came from
// the filesystem goes through escape_terminal(): a file name cannot move the cursor, recolour
// the terminal or fake a line of the report (CVE-2025-54389).
#include <cerrno>
#include <cstring>
#include <algorithm>
#include <map>

#include "fim/base/sys.h"
#include "fim/db.h"
#include "fim/progress.h"
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

/// check --fast's header line: what the entries' verdicts rest on, the weakest (and most)
/// first: "72,113 by stat, 4,002 watched, 3,900 hashed (120 rolling), 470 verity".
std::string evidence_line(const Summary& s) {
  const auto n = [&](EntryEvidence e) { return s.evidence[static_cast<size_t>(e)]; };
  std::string out = group_thousands(n(EntryEvidence::Stat)) + " by stat, " + group_thousands(n(EntryEvidence::Watched)) + " watched, " +
                    group_thousands(n(EntryEvidence::Hashed)) + " hashed";
  if (s.rolling) out += " (" + group_thousands(s.rolling) + " rolling)";
  return out + ", " + group_thousands(n(EntryEvidence::Verity)) + " verity";
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
  PlainSink(FILE* out, bool color, bool verbose, const Bytes& spill_dir)
      : out_(out), color_(color), verbose_(verbose), details_(spill_dir), spill_dir_(spill_dir) {}

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
      if (note->explained()) {
        // Counted in the summary's groups; listed one by one only with --verbose.
        if (!verbose_) return;
        Upgrade& u = upgrades_.try_emplace(note->upgrade, spill_dir_).first->second;
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
    if (s.command != "init") print_summary(s);
    if (details_.count() > 0) {
      std::fputc('\n', out_);
      FIM_TRY(details_.copy_to(out_, nullptr));
    }
    for (const auto& [run, r] : s.groups.runs) {
      if (r.counts.total() == 0) continue;
      std::fprintf(out_, "\n%s: %s change%s of %zu package%s:\n", escape_terminal(run).c_str(), group_thousands(r.counts.total()).c_str(),
                   r.counts.total() == 1 ? "" : "s", r.packages.size(), r.packages.size() == 1 ? "" : "s");
      for (const auto& [key, p] : r.packages) std::fprintf(out_, "  %s\n", package_line(p, r).c_str());
      if (auto u = upgrades_.find(run); u != upgrades_.end()) FIM_TRY(u->second.lines.copy_to(out_, nullptr));
    }
    if (std::fflush(out_) != 0) return make_error(Errc::Io, "cannot write the report", errno);
    return {};
  }

 private:
  static unsigned long long ull(uint64_t v) { return v; }

  /// The summary table (docs/design.md, Reports: summaries): its first line says what needs
  /// reading ("summary: 3 unexplained changes (critical), 4,626 verified by apt"; the scheduled
  /// check's mail takes its subject from it), then the counts by severity and rule, by package
  /// verdict and by apt run, the highest severity first.
  void print_summary(const Summary& s) {
    const ChangeGroups& g = s.groups;
    const bool packages = !g.verdicts.empty();
    std::string line;
    if (g.unexplained.total()) {
      line = group_thousands(g.unexplained.total()) + (packages ? " unexplained change" : " change") +
             (g.unexplained.total() == 1 ? "" : "s");
      if (g.unexplained_severity) line += " (" + std::string(severity_name(*g.unexplained_severity)) + ")";
    }
    if (g.explained.total()) {
      line += (line.empty() ? "" : ", ") + group_thousands(g.explained.total()) + " verified by apt";
      if (g.explained_weak) line += " (" + group_thousands(g.explained_weak) + " only by dpkg's records)";
    }
    if (s.incomplete) line += (line.empty() ? "" : ", ") + group_thousands(s.incomplete) + " incomplete";
    std::fprintf(out_, "\nsummary: %s\n", line.empty() ? "no changes" : line.c_str());
    if (g.unexplained.total() + g.explained.total() == 0) return;
    // Counts first, labels last: the columns never depend on a label's length.
    std::vector<std::pair<std::string, const ChangeCounts*>> rows;  // a null count: a heading
    rows.emplace_back("by severity and rule", nullptr);
    const auto rules = g.rules_in_order();
    for (const auto& [sev, c] : g.severity) {
      rows.emplace_back(std::string(severity_name(sev)), &c);
      for (const ChangeGroups::RuleGroup* r : rules)
        if (!r->where.empty() && r->severity == sev)
          rows.emplace_back("  " + escape_terminal(r->pattern) + " (" + escape_terminal(short_where(r->where)) + ")", &r->counts);
    }
    if (auto none = g.rules.find(""); none != g.rules.end())
      rows.emplace_back(s.command == "accept" ? "no rule (accept does not label its entries)"
                                              : "no rule (rows the policy no longer selects)",
                        &none->second.counts);
    if (packages) {
      rows.emplace_back("by package verdict", nullptr);
      for (const auto& [verdict, c] : g.verdicts_in_order()) rows.emplace_back(verdict, c);
    }
    if (!g.runs.empty()) {
      rows.emplace_back("by apt run", nullptr);
      for (const auto& [run, r] : g.runs) rows.emplace_back(escape_terminal(run), &r.counts);
    }
    int width = 7;  // "removed"
    for (const auto& [label, c] : rows)
      if (c) width = std::max({width, static_cast<int>(group_thousands(c->added).size()), static_cast<int>(group_thousands(c->removed).size()),
                               static_cast<int>(group_thousands(c->changed).size())});
    for (const auto& [label, c] : rows) {
      if (c)
        std::fprintf(out_, "  %*s %*s %*s  %s\n", width, group_thousands(c->added).c_str(), width, group_thousands(c->removed).c_str(), width,
                     group_thousands(c->changed).c_str(), label.c_str());
      else
        std::fprintf(out_, "  %*s %*s %*s  %s\n", width, "added", width, "removed", width, "changed", label.c_str());
    }
  }

  /// "/etc/fimctl/conf.d/ssh.toml:12:1" -> "ssh.toml:12": where a rule is, for the table.
  static std::string short_where(const std::string& where) {
    const size_t slash = where.rfind('/', where.find(':'));
    std::string out = slash == std::string::npos ? where : where.substr(slash + 1);
    if (const size_t c = out.rfind(':'); c != std::string::npos && out.find(':') != c) out.erase(c);
    return out;
  }

  /// "openssl 3.0.19 -> 3.0.22: 14 files, all verified (deb-sha256)": one package of an apt run.
  static std::string package_line(const ChangeGroups::PackageGroup& p, const ChangeGroups::RunGroup& run) {
    size_t same_name = 0;
    for (const auto& [key, q] : run.packages) same_name += q.name == p.name;
    std::string out = escape_terminal(p.name) + (same_name > 1 ? ":" + escape_terminal(p.arch) : "") + " " +
                      (p.from.empty() ? "(new)" : escape_terminal(p.from)) + " -> " + escape_terminal(p.to) + ": ";
    std::string evidence;
    for (const auto& e : p.evidence) evidence += (evidence.empty() ? "" : ", ") + e;
    const uint64_t n = p.verified + p.other;
    out += group_thousands(n) + (n == 1 ? " file" : " files");
    if (p.other == 0) return out + ", all verified (" + evidence + ")";
    if (p.verified == 0) return out + ", none verified (listed above)";
    return out + ", " + group_thousands(p.verified) + " verified (" + evidence + "), " + group_thousands(p.other) + " not (listed above)";
  }
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
    report::Spool lines;
  };
  FILE* out_;
  bool color_;
  bool verbose_;  // every change an apt run explains, under its run
  report::Spool details_;
  Bytes spill_dir_;
  std::map<std::string, Upgrade> upgrades_;  // --verbose: apt run -> the changes it explains
  std::vector<std::string> alerts_;
};

}  // namespace

std::unique_ptr<Sink> report::make_plain_sink(FILE* out, bool color, bool verbose, const Bytes& spill_dir) {
  return std::make_unique<PlainSink>(out, color, verbose, spill_dir);
}

}  // namespace fim
