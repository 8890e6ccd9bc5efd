// SPDX-License-Identifier: GPL-2.0-or-later
// The streaming merge shared by check, update and watch (see merge.h).
#include "fim/merge.h"

#include <algorithm>
#include <cerrno>
#include <memory>

#include "fim/base/digest.h"
#include "fim/base/sys.h"

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

/// Whether the verified row bears out the evidence an entry that was not hashed rests on (the
/// plan chose it from an unverified reading of the same baseline).
bool evidence_holds(const Record& old_rec, const Record& rec) {
  if (old_rec.status != EntryStatus::Ok || rec.status != EntryStatus::Ok || old_rec.type() != rec.type()) return false;
  const auto same = [&](Attr a) {
    return old_rec.has(a) == rec.has(a) && (!old_rec.has(a) || old_rec.get(a) == rec.get(a));
  };
  if (rec.evidence == EntryEvidence::Verity) return old_rec.has(Attr::Verity) && same(Attr::Verity);
  for (Attr a : {Attr::Size, Attr::Mtime, Attr::Ctime, Attr::Inode})
    if (!old_rec.has(a) || !same(a)) return false;
  return same(Attr::Dev) && same(Attr::Btime) && same(Attr::Handle);
}

/// The attributes an entry that was not hashed did not read, from its verified row.
Record with_recorded(const Record& old_rec, const Record& rec) {
  Record out = rec;
  const AttrMask take = rec.evidence == EntryEvidence::Verity
                            ? old_rec.have & (attr_bit(Attr::Sha256) | attr_bit(Attr::Xxh128))
                            : old_rec.have & ~rec.have;
  for (size_t i = 0; i < kAttrCount; ++i)
    if (take & (AttrMask{1} << i)) out.v[i] = old_rec.v[i];
  out.have |= take;
  return out;
}

/// Collects e's entry in full now, on the merge's thread: a difference found without
/// hashing is confirmed by hashing before it is reported (docs/design.md, Evidence).
void collect_in_full(ScanEntry& e, const Rule* rule, std::unique_ptr<Collector>& c, Summary* s) {
  if (!c) c = std::make_unique<Collector>();
  Target t;
  t.dir = e.dir;
  t.name = e.name;
  t.path = e.rec.path;
  Record out;
  if (!t.dir || lstat_at(t.dir->get(), t.name.c_str(), &t.st, &t.btime_ns) != 0) {
    const int err = t.dir ? errno : EBADF;
    out.path = e.rec.path;
    out.set_num(Attr::Type, static_cast<int64_t>(e.rec.type()));
    out.status = err == ENOENT ? EntryStatus::Vanished : EntryStatus::Unreadable;
    out.sys_errno = err;
  } else {
    const uint64_t before = c->bytes_hashed();
    c->collect(t, collect_options_for(rule), &out);
    s->bytes_hashed += c->bytes_hashed() - before;
  }
  e.rec = std::move(out);
}

/// check --fast: an entry that was not hashed, settled against its verified row (`old_rec`,
/// null when the baseline has none): the attributes not read are the row's when the evidence
/// holds and nothing differs; otherwise the entry is read in full.
void settle(const Record* old_rec, ScanEntry& e, const Rule* rule, std::unique_ptr<Collector>& c, Summary* s) {
  if (old_rec && evidence_holds(*old_rec, e.rec)) {
    Record filled = with_recorded(*old_rec, e.rec);
    if (compare(*old_rec, filled, rule && rule->attrs.growing) == 0) {
      e.rec = std::move(filled);
      return;
    }
  }
  collect_in_full(e, rule, c, s);
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
  if (m.alternatives && comparable && rec.status == EntryStatus::Ok) {
    if (auto a = m.alternatives->find(rec.path); a != m.alternatives->end()) {
      if (const unsigned n = alternative_of(a->second, rec, growing)) {
        ++m.summary->alternatives;
        m.sink.alternative(rec, n, rule);
        if (m.on_alternative) m.on_alternative(old_rec, rec, n);
        return {};
      }
    }
  }
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
    const Bytes path = e.rec.path;
    while (have_old && old_rec.path < path) {  // in the baseline, not on disk (any more)
      FIM_TRY(missing(old_rec));
      FIM_TRY(advance());
    }
    const Rule* rule = rule_at(m.policy, e.rule);
    const bool matched = have_old && old_rec.path == path;
    if (!e.subtree_incomplete && e.rec.evidence != EntryEvidence::Hashed)
      settle(matched ? &old_rec : nullptr, e, rule, prefix_reader, &s);
    note_status(e, m.policy, &s, m.sink);
    if (e.subtree_incomplete) {
      unreadable_dirs.push_back(path);
      return {};
    }
    if (m.on_entry) FIM_TRY(m.on_entry(e.rec));
    if (m.on_entry_rule) FIM_TRY(m.on_entry_rule(e.rec, rule));
    ++s.entries;
    ++s.evidence[static_cast<size_t>(e.rec.evidence)];
    if (e.rec.rolling && e.rec.evidence == EntryEvidence::Hashed) ++s.rolling;
    if (m.tick) m.tick(s.entries);
    if (matched) {
      const uint64_t changed_before = s.changed;
      FIM_TRY(compare_entry(old_rec, e, rule, m, prefix_reader));
      if (m.hashed_unchanged && s.changed == changed_before && e.rec.evidence == EntryEvidence::Hashed &&
          e.rec.status == EntryStatus::Ok && e.rec.type() == FileType::File)
        m.hashed_unchanged(path);
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
