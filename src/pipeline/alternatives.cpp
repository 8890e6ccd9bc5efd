// SPDX-License-Identifier: GPL-2.0-or-later
// Alternatives (docs/design.md, Acceptance: alternatives): the other good states of an entry
// that 'accept --also' keeps, how an entry is matched against them, and what a successor
// baseline (accept, update) carries of them, each change to them journalled.
#include "fim/merge.h"

namespace fim::detail {

Record as_alternative(const Record& r) {
  Record alt = r;
  for (size_t i = 0; i < kAttrCount; ++i)
    if (kNotInAlternative & (AttrMask{1} << i)) alt.v[i] = {};
  alt.have &= ~kNotInAlternative;
  return alt;
}

unsigned alternative_of(const std::vector<Record>& alts, const Record& rec, bool growing) {
  // Every attribute the entry holds now (but those an alternative never keeps) must be in the
  // alternative too: one kept under a weaker rule (no sha256) vouches for no content.
  const AttrMask need = rec.have & ~kNotInAlternative;
  for (size_t i = 0; i < alts.size(); ++i) {
    const Record& a = alts[i];
    if (a.status == EntryStatus::Ok && a.type() == rec.type() && (need & ~a.have) == 0 && compare(a, rec, growing) == 0)
      return static_cast<unsigned>(i + 2);
  }
  return 0;
}

SuccessorAlternatives::SuccessorAlternatives(const BaselineMeta& from, Journal note)
    : alts_(from.alternatives), note_(std::move(note)) {}

void SuccessorAlternatives::present(const Bytes& path) {
  if (alts_.count(path)) present_.insert(path);
}

void SuccessorAlternatives::swapped(const Record& row, const Record& now, unsigned n) {
  auto it = alts_.find(row.path);
  if (it == alts_.end() || n < 2 || n - 2 >= it->second.size()) return;
  // A row that was not fully read is no good state: the alternative just becomes the row.
  if (row.status != EntryStatus::Ok) return;
  it->second[n - 2] = as_alternative(row);
  note_("alternative " + std::to_string(n) + " in use", row.path, row_digest(row), row_digest(now));
}

void SuccessorAlternatives::ended(const Bytes& path, const std::string& why) {
  auto it = alts_.find(path);
  if (it == alts_.end()) return;
  for (const Record& a : it->second) note_(why, path, row_digest(a), "-");
  alts_.erase(it);
}

Status SuccessorAlternatives::also(const Record& old) {
  if (old.status != EntryStatus::Ok)
    return make_error(Errc::Usage, "--also: the previous state of " + quote(old.path) + " was not fully read (" +
                                       std::string(entry_status_name(old.status)) + "): nothing was accepted");
  const Record alt = as_alternative(old);
  std::vector<Record>& of = alts_[old.path];
  if (alternative_of(of, alt, false)) return {};
  if (of.size() >= kMaxAlternatives)
    return make_error(Errc::Usage, quote(old.path) + " has " + std::to_string(kMaxAlternatives) + " alternatives "
                                   "already: drop them first ('fimctl accept --drop-alternatives PATH'); nothing was "
                                   "accepted");
  of.push_back(alt);
  note_("kept", old.path, "-", row_digest(alt));
  return {};
}

std::map<Bytes, std::vector<Record>> SuccessorAlternatives::take(bool only_present) {
  if (only_present) std::erase_if(alts_, [&](const auto& a) { return !present_.count(a.first); });
  return std::move(alts_);
}

}  // namespace fim::detail
