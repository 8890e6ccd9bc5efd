// SPDX-License-Identifier: GPL-2.0-or-later
// The package manager's word on changes, for check --packages and accept --package-verified.
#include "fim/base/sys.h"
#include "fim/merge.h"

namespace fim::detail {

Result<Packages> open_packages(const RunOptions& opts, StateStore* state, int64_t since_ns) {
  Packages p;
  auto v = pkg::Verifier::open(opts.package_sources);
  if (!v) return v.error();
  p.verifier = std::move(*v);
  std::map<std::string, std::string> replaced;
  if (state) {
    // The apt hook's records: each run's "name:arch old new" lines. A later run wins.
    auto runs = state->apt_runs_since(since_ns);
    if (runs) {
      for (const auto& r : *runs) {
        const std::string label = "apt run " + std::to_string(r.id) + " at " + format_time_ns(r.at_ns);
        size_t pos = 0;
        while (pos < r.changes.size()) {
          size_t end = r.changes.find('\n', pos);
          if (end == std::string::npos) end = r.changes.size();
          const std::string line = r.changes.substr(pos, end - pos);
          pos = end + 1;
          const size_t sp = line.find(' ');
          if (sp == std::string::npos) continue;
          const std::string pkg = line.substr(0, sp);
          p.run_of[pkg] = label;
          // "name:arch old new": the first old version since the baseline is what it replaced.
          const size_t sp2 = line.find(' ', sp + 1);
          if (sp2 != std::string::npos) replaced.emplace(pkg, line.substr(sp + 1, sp2 - sp - 1));
        }
      }
    }
  }
  p.verifier->set_replaced(replaced);
  return p;
}

PackageNote Packages::explain(const Record* old_rec, const Record* new_rec) {
  const pkg::Note n = verifier->explain(old_rec, new_rec);
  PackageNote out;
  out.verdict = std::string(pkg::verdict_name(n.verdict));
  out.evidence = std::string(pkg::evidence_name(n.evidence));
  out.package = n.package;
  out.version = n.version;
  out.arch = n.arch;
  out.detail = n.detail;
  if (!n.package.empty())
    if (auto it = run_of.find(n.package + ":" + n.arch); it != run_of.end()) out.upgrade = it->second;
  return out;
}

}  // namespace fim::detail

namespace fim::detail {

Status keep_package_verified(const RunOptions& opts, const BaselineMeta& meta, StateStore* state,
                             std::map<Bytes, std::optional<Record>>* chosen, std::map<Bytes, std::string>* vouched,
                             Sink& sink) {
  auto pk = open_packages(opts, state, meta.created_ns);
  if (!pk) return pk.error();
  // The old states come from the baseline itself, read in full and verified like any other use.
  auto base = BaselineReader::open(opts.db_path);
  if (!base) return base.error();
  std::map<Bytes, Record> old;
  FIM_TRY(read_verified(**base, [&](const Record& r) -> Status {
    if (chosen->count(r.path)) old[r.path] = r;
    return {};
  }));
  if ((*base)->meta().content_sha256 != meta.content_sha256)
    return make_error(Errc::Trust, "the baseline changed while it was being read for accept");
  std::map<std::string, uint64_t> left;  // verdict (and evidence) -> changes not accepted
  std::string example;
  for (auto it = chosen->begin(); it != chosen->end();) {
    auto o = old.find(it->first);
    const Record* was = o == old.end() ? nullptr : &o->second;
    const Record* now = it->second ? &*it->second : nullptr;
    const PackageNote n = pk->explain(was, now);
    const bool strong = pkg::strong_evidence(n.evidence);
    if (n.verdict == "verified" && (strong || opts.weak_evidence)) {
      (*vouched)[it->first] = n.package + " " + n.version + " " + n.arch + ", " + n.evidence;
      ++it;
      continue;
    }
    ++left[n.verdict == "verified" ? "verified only by " + n.evidence + " (add --weak to accept those)" : n.verdict];
    if (example.empty()) example = quote(it->first) + ": " + n.verdict + ", " + escape_terminal(n.detail);
    it = chosen->erase(it);
  }
  std::string counts;
  for (const auto& [why, count] : left) counts += (counts.empty() ? "" : ", ") + std::to_string(count) + " " + why;
  if (chosen->empty())
    return make_error(Errc::Usage, "none of the chosen changes is vouched for by its package (" + counts +
                                       "; e.g. " + example + "): nothing was accepted");
  if (!left.empty())
    sink.alert("not_accepted", "not vouched for by a package, so still reported: " + counts + "; e.g. " + example);
  return {};
}

}  // namespace fim::detail
