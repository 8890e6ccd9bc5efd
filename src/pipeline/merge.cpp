// SPDX-License-Identifier: GPL-2.0-or-later
// The streaming merge shared by check, update and watch (see merge.h).
#include "fim/merge.h"

#include <algorithm>
#include <memory>

#include "fim/base/digest.h"

namespace fim::detail {

std::string row_digest(const Record& r) { return hex_encode(sha256_of(canonical_row(r))); }

const Rule* rule_at(const Policy& p, int idx) {
  return idx >= 0 ? &p.rules[static_cast<size_t>(idx)] : nullptr;
}

void note_status(const ScanEntry& e, const Policy& p, Summary* s, Sink& sink) {
  if (e.rec.status == EntryStatus::Ok) return;
  if (entry_status_is_failure(e.rec.status))
    ++s->incomplete;
  else
    ++s->skipped;
  // Labels come from the rule that records the entry; an exclusion (skipped_fs) has none.
  const Rule* rule = rule_at(p, e.rule);
  sink.entry_status(e.rec, e.subtree_incomplete, rule && !rule->exclude ? rule : nullptr);
}

namespace {

/// Whether a growing log that grew still starts with the bytes the baseline recorded: its
/// digest covers the recorded size only, so the first that many bytes are hashed again. A log
/// wiped and rewritten longer, or edited in place, fails this (MITRE T1070.002).
bool prefix_intact(const Record& old_rec, const ScanEntry& e, std::unique_ptr<Collector>& c) {
  const Attr size = Attr::Size, sha = Attr::Sha256;
  if (!e.dir || !old_rec.has(size) || !old_rec.has(sha) || !e.rec.has(size) ||
      e.rec.get(size).num <= old_rec.get(size).num)
    return false;
  if (!c) c = std::make_unique<Collector>();
  Bytes digest;
  return c->prefix_sha256(e.dir->get(), e.name, e.rec, static_cast<uint64_t>(old_rec.get(size).num), &digest) &&
         digest == old_rec.get(sha).bytes;
}

/// An entry on disk and its baseline row: reported when they differ.
Status compare_entry(const Record& old_rec, const ScanEntry& e, const Rule* rule, Merge& m,
                     std::unique_ptr<Collector>& prefix_reader) {
  const Record& rec = e.rec;
  // An entry that could not even be lstat'ed has nothing to compare; its status says so.
  const bool comparable = !(rec.status != EntryStatus::Ok && rec.type() == FileType::Unknown);
  const bool growing = rule && rule->attrs.growing;
  AttrMask changed = comparable ? compare(old_rec, rec, growing) : 0;
  if (growing && (changed & attr_bit(Attr::Sha256)) && prefix_intact(old_rec, e, prefix_reader))
    changed &= ~attr_bit(Attr::Sha256);
  if (!changed) return {};
  ++m.summary->changed;
  return m.report(ChangeKind::Changed, &old_rec, &rec, changed, rule);
}

}  // namespace

Status merge_compare(const ScanOptions& so, Merge& m) {
  Summary& s = *m.summary;
  // The baseline side of the merge: the next selected row, if any.
  Record old_rec;
  bool have_old = false;
  const auto advance = [&]() -> Status {
    for (;;) {
      auto more = m.next_old(&old_rec);
      if (!more) return more.error();
      have_old = *more;
      if (!have_old || m.selected(old_rec.path)) return {};
    }
  };
  std::unique_ptr<Collector> prefix_reader;  // made for the first growing log that grew
  std::vector<Bytes> unreadable_dirs;  // contents not listed: their baseline entries are unverified
  const auto missing = [&](const Record& r) -> Status {
    const bool unknown = std::any_of(unreadable_dirs.begin(), unreadable_dirs.end(),
                                     [&](const Bytes& d) { return r.path != d && path_within(r.path, d); });
    if (unknown) {
      ++s.unverified;
    } else {
      ++s.removed;
      const int w = m.sel.winner(m.sel.scope_of(r.path), r.type(), {});
      return m.report(ChangeKind::Removed, &r, nullptr, 0,
                      w >= 0 && !m.policy.rules[static_cast<size_t>(w)].exclude ? rule_at(m.policy, w) : nullptr);
    }
    return Status{};
  };
  FIM_TRY(advance());

  const Status st = scan(so, [&](ScanEntry& e) -> Status {
    const Bytes& path = e.rec.path;
    while (have_old && old_rec.path < path) {  // in the baseline, not on disk (any more)
      FIM_TRY(missing(old_rec));
      FIM_TRY(advance());
    }
    note_status(e, m.policy, &s, m.sink);
    const Rule* rule = rule_at(m.policy, e.rule);
    if (e.subtree_incomplete) {
      unreadable_dirs.push_back(path);
      return {};
    }
    if (m.on_entry) FIM_TRY(m.on_entry(e.rec));
    ++s.entries;
    if (m.tick) m.tick(s.entries);
    if (have_old && old_rec.path == path) {
      FIM_TRY(compare_entry(old_rec, e, rule, m, prefix_reader));
      return advance();
    }
    ++s.added;
    return m.report(ChangeKind::Added, nullptr, &e.rec, 0, rule);
  }, &s.bytes_hashed);
  if (!st) return st.error();
  while (have_old) {
    FIM_TRY(missing(old_rec));
    FIM_TRY(advance());
  }
  return {};
}

}  // namespace fim::detail
