// SPDX-License-Identifier: GPL-2.0-or-later
// The summary's groups (docs/design.md, Reports: summaries): every change a sink is given is
// counted by severity, by rule, and with --packages by verdict and by the apt run that
// explains it. GroupingSink counts in front of the format's own sink, so the plain table and
// JSON's `groups` always agree with the changes listed.
#include <algorithm>

#include "fim/report.h"
#include "spool.h"

namespace fim {

void ChangeCounts::add(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::Added: ++added; break;
    case ChangeKind::Removed: ++removed; break;
    case ChangeKind::Changed: ++changed; break;
  }
}

void ChangeGroups::add(ChangeKind kind, const Rule* rule, const ChangeNotes* notes) {
  const std::string where = rule ? rule->where.text() : std::string();
  RuleGroup& g = rules[where];
  if (rule && g.counts.total() == 0) {
    g.where = where;
    g.pattern = rule->pattern;
    g.severity = rule->severity;
  }
  g.counts.add(kind);
  if (rule) severity[rule->severity].add(kind);
  const PackageNote* note = notes && notes->package ? &*notes->package : nullptr;
  if (note) verdicts[note->verdict].add(kind);
  if (note && !note->upgrade.empty()) {
    RunGroup& run = runs[note->upgrade];
    run.counts.add(kind);
    PackageGroup& p = run.packages[note->package + ":" + note->arch];
    p.name = note->package;
    p.arch = note->arch;
    p.to = note->version;
    p.from = note->from_version;
    if (note->explained()) {
      ++p.verified;
      p.evidence.insert(note->evidence);
    } else {
      ++p.other;
    }
  }
  if (note && note->explained()) {
    explained.add(kind);
    if (!note->strong) ++explained_weak;
    return;
  }
  unexplained.add(kind);
  // A change no rule selects (a row only the baseline has, under a changed policy) has no
  // severity: the policy change says so on its own.
  if (rule && (!unexplained_severity || rule->severity > *unexplained_severity)) unexplained_severity = rule->severity;
}

std::vector<const ChangeGroups::RuleGroup*> ChangeGroups::rules_in_order() const {
  std::vector<const RuleGroup*> out;
  for (const auto& [where, g] : rules) out.push_back(&g);
  std::stable_sort(out.begin(), out.end(), [](const RuleGroup* a, const RuleGroup* b) {
    if (a->where.empty() != b->where.empty()) return b->where.empty();  // no rule: last
    if (a->severity != b->severity) return a->severity > b->severity;
    return a->counts.total() > b->counts.total();
  });
  return out;
}

std::vector<std::pair<std::string, const ChangeCounts*>> ChangeGroups::verdicts_in_order() const {
  static const char* const kOrder[] = {"mismatch", "unverifiable", "unpackaged", "removed", "conffile", "verified"};
  const auto rank = [](const std::string& v) {
    for (size_t i = 0; i < std::size(kOrder); ++i)
      if (v == kOrder[i]) return i;
    return size_t{2};  // a verdict this list does not know: with the unexplained ones
  };
  std::vector<std::pair<std::string, const ChangeCounts*>> out;
  for (const auto& [v, c] : verdicts) out.emplace_back(v, &c);
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  return out;
}

namespace {

/// Counts the changes it passes on; finish() hands the format's sink the summary with them.
class GroupingSink final : public Sink {
 public:
  explicit GroupingSink(std::unique_ptr<Sink> inner) : inner_(std::move(inner)) {}
  void change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule) override {
    groups_.add(kind, rule, nullptr);
    inner_->change(kind, o, n, changed, rule);
  }
  void noted_change(ChangeKind kind, const Record* o, const Record* n, AttrMask changed, const Rule* rule,
                    const ChangeNotes& notes) override {
    groups_.add(kind, rule, &notes);
    inner_->noted_change(kind, o, n, changed, rule, notes);
  }
  void entry_status(const Record& r, bool subtree, const Rule* rule) override { inner_->entry_status(r, subtree, rule); }
  void alternative(const Record& r, unsigned n, const Rule* rule) override { inner_->alternative(r, n, rule); }
  void alert(std::string_view code, std::string_view message) override { inner_->alert(code, message); }
  Status finish(const Summary& s) override {
    Summary with = s;
    with.groups = groups_;
    return inner_->finish(with);
  }

 private:
  std::unique_ptr<Sink> inner_;
  ChangeGroups groups_;
};

}  // namespace

std::unique_ptr<Sink> report::with_groups(std::unique_ptr<Sink> inner) {
  return std::make_unique<GroupingSink>(std::move(inner));
}

}  // namespace fim
