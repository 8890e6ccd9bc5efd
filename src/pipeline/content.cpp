// SPDX-License-Identifier: GPL-2.0-or-later
// content = "diff" (content.h; docs/design.md, Content store). A file's content is kept only
// when everything says it may be: the rule asks, the file is a small UTF-8 text, world-readable
// (or the rule says content_private), on no deny list, and what was read now hashes to what the
// baseline records (a file swapped for a link to /etc/shadow after it was hashed is not kept:
// the link is not followed, and other bytes do not match). Secrets are masked before anything
// is written or diffed.
#include "content.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "fim/base/digest.h"
#include "fim/base/sys.h"

namespace fim::detail {
namespace {

/// Versions of the last kKeptSequences baselines stay for `show --at` (and are pruned after).
constexpr size_t kKeptSequences = 20;

std::string sha_hex(const Record& r) { return r.has(Attr::Sha256) ? hex_encode(r.get(Attr::Sha256).bytes) : ""; }

/// Why the record alone rules content out (empty: it does not).
std::string record_excludes(const Policy& policy, const Rule& rule, const Record& rec) {
  if (!rule.content_diff) return "the rule keeps no content";
  if (rec.status != EntryStatus::Ok || rec.type() != FileType::File || !rec.has(Attr::Sha256))
    return "not a regular file hashed whole";
  if (content_denied(rec.path, policy.content_deny)) return "on the content deny list";
  if (rec.has(Attr::Size) && static_cast<uint64_t>(rec.get(Attr::Size).num) > rule.content_max_bytes)
    return "larger than content_max_size";
  if (!rule.content_private && rec.has(Attr::Mode) && !(rec.get(Attr::Mode).num & S_IROTH))
    return "not world-readable (a rule with content_private = true keeps it)";
  return "";
}

}  // namespace

KeptText read_kept_text(int root_fd, const Policy& policy, const Rule& rule, const Record& rec) {
  KeptText k;
  k.why = record_excludes(policy, rule, rec);
  if (!k.why.empty()) return k;
  // O_NOFOLLOW: a link put in the file's place is not followed; O_NONBLOCK: a FIFO put there
  // does not hang the run (and fails the regular-file check below).
  UniqueFd fd(open_in_root(root_fd, rec.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) {
    k.why = errno == ELOOP ? "a symbolic link now (not followed)" : "cannot be read now (" + errno_name(errno) + ")";
    return k;
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    k.why = "not a regular file now";
    return k;
  }
  if (!rule.content_private && !(st.st_mode & S_IROTH)) {
    k.why = "not world-readable (a rule with content_private = true keeps it)";
    return k;
  }
  if (static_cast<uint64_t>(st.st_size) > rule.content_max_bytes) {
    k.why = "larger than content_max_size";
    return k;
  }
  auto data = read_to_end(fd.get(), rule.content_max_bytes, quote(rec.path));
  if (!data) {
    k.why = "larger than content_max_size";
    return k;
  }
  if (sha256_of(*data) != rec.get(Attr::Sha256).bytes) {
    k.why = "changed since it was hashed";
    return k;
  }
  if (data->find('\0') != std::string::npos || !is_valid_utf8(*data)) {
    k.why = "not UTF-8 text";
    return k;
  }
  k.text = mask_content(rule.masks.get(), *data);
  return k;
}

std::unique_ptr<ContentKeeper> ContentKeeper::make(const RunOptions& opts, const Policy& effective, Sink& sink) {
  const bool wanted = std::any_of(effective.rules.begin(), effective.rules.end(),
                                  [](const Rule& r) { return !r.exclude && r.content_diff; });
  if (!wanted) return nullptr;
  auto store = ContentStore::open(content_store_dir(opts.db_path), true);
  if (!store) {
    sink.alert("content_store", "no file content is kept (content = \"diff\"): " + store.error().describe());
    return nullptr;
  }
  std::unique_ptr<ContentKeeper> k(new ContentKeeper(opts, effective, sink, std::move(*store)));
  (void)k->store_->for_each([&](const std::string&, uint64_t size, int64_t) { k->store_bytes_ += size; });
  return k;
}

ContentKeeper::ContentKeeper(const RunOptions& opts, const Policy&, Sink& sink, std::unique_ptr<ContentStore> store)
    : opts_(opts), sink_(sink), store_(std::move(store)) {}

std::unique_ptr<ContentKeeper> ContentKeeper::accepting(const RunOptions& opts, const BaselineMeta& meta,
                                                        const std::map<Bytes, std::optional<Record>>& now, Sink& sink) {
  const Policy effective = effective_policy(opts.policy, meta);
  const Selector sel(effective);
  auto keeper = make(opts, effective, sink);
  if (!keeper) return keeper;
  keeper->carry_from(meta.sequence);
  for (const auto& [path, rec] : now) {
    if (!rec) keeper->forget(path);
    else keeper->consider(*rec, rule_at(effective, sel.winner(sel.scope_of(path), rec->type(), {})));
  }
  return keeper;
}

void ContentKeeper::consider(const Record& r, const Rule* rule) {
  if (!rule || !rule->content_diff || r.type() != FileType::File) return;
  StateStore::ContentVersion v{r.path, "", record_excludes(opts_.policy, *rule, r)};
  const std::string sha = sha_hex(r);
  if (v.why.empty() && store_->has(sha)) {
    v.sha256 = sha;  // kept already: an unchanged file costs nothing twice
  } else if (v.why.empty()) {
    KeptText t = read_kept_text(opts_.sysroot_fd, opts_.policy, *rule, r);
    const uint64_t max = opts_.policy.content_store_max;
    if (!t.text) {
      v.why = t.why;
    } else if (max != 0 && store_bytes_ + t.text->size() + 64 > max) {
      v.why = "the content store is full";
      if (!full_)
        sink_.alert("content_store_full", "the content store " + quote(store_->dir()) + " reached content_store_max (" +
                                              std::to_string(max) + " bytes): the content of further files is not kept");
      full_ = true;
    } else if (auto st = store_->put(sha, *t.text); !st) {
      v.why = "not written: " + st.error().describe();
      sink_.alert("content_store", "cannot keep the content of " + quote(r.path) + ": " + st.error().describe());
    } else {
      store_bytes_ += t.text->size();
      v.sha256 = sha;
    }
  }
  versions_.push_back(std::move(v));
}

void ContentKeeper::committed(StateStore* state, uint64_t seq) {
  if (!state) return;
  if (carry_from_) {
    std::set<Bytes> replaced(forgotten_.begin(), forgotten_.end());
    for (const auto& v : versions_) replaced.insert(v.path);
    (void)state->for_each_content_version(opts_.db_path, *carry_from_, [&](StateStore::ContentVersion v) {
      if (!replaced.count(v.path)) versions_.push_back(std::move(v));
    });
  }
  if (auto st = state->set_content_versions(opts_.db_path, seq, versions_, kKeptSequences); !st) {
    sink_.alert("content_store", "cannot record the kept versions in state.db (show --at cannot find them): " +
                                     st.error().describe());
    return;  // without the index, nothing is known to be unreferenced: prune nothing
  }
  // Pruning: what neither this baseline nor a kept sequence references goes, then the oldest
  // of what only kept sequences reference while the store is over its size.
  std::set<std::string> current, indexed;
  for (const auto& v : versions_)
    if (!v.sha256.empty()) current.insert(v.sha256);
  if (!state->for_each_content_sha(opts_.db_path, [&](const std::string& s) { indexed.insert(s); })) return;
  std::multimap<int64_t, std::pair<std::string, uint64_t>> by_age;
  uint64_t total = 0;
  (void)store_->for_each([&](const std::string& name, uint64_t size, int64_t mtime) {
    if (!current.count(name) && !indexed.count(name)) {
      (void)store_->remove(name);
      return;
    }
    total += size;
    if (!current.count(name)) by_age.emplace(mtime, std::make_pair(name, size));
  });
  const uint64_t max = opts_.policy.content_store_max;
  for (auto it = by_age.begin(); max != 0 && total > max && it != by_age.end(); ++it)
    if (store_->remove(it->second.first)) total -= it->second.second;
}

std::unique_ptr<ContentStore> store_for_diffs(const RunOptions& opts, Sink& sink) {
  const bool wanted = std::any_of(opts.policy.rules.begin(), opts.policy.rules.end(),
                                  [](const Rule& r) { return !r.exclude && r.content_diff; });
  if (!wanted) return nullptr;
  auto store = ContentStore::open(content_store_dir(opts.db_path), false);
  if (store) return std::move(*store);
  if (store.error().code != Errc::Database)  // none at all: each diff says so
    sink.alert("content_store", "no diffs: " + store.error().describe());
  return nullptr;
}

void diff_notes(const RunOptions& opts, const ContentStore* store, const Policy& policy, const Record& old_rec,
                const Record& new_rec, const Rule* rule, ChangeNotes* notes) {
  if (!rule || !rule->content_diff || old_rec.type() != FileType::File || new_rec.type() != FileType::File) return;
  const std::string old_sha = sha_hex(old_rec), new_sha = sha_hex(new_rec);
  if (old_sha.empty() || new_sha.empty() || old_sha == new_sha) return;
  notes->diff_unavailable = record_excludes(policy, *rule, old_rec);
  if (!notes->diff_unavailable.empty()) {
    notes->diff_unavailable = "the old version is not kept: " + notes->diff_unavailable;
    return;
  }
  notes->diff_unavailable = "not in the content store";
  std::optional<std::string> old_text;
  if (store) {
    auto got = store->get(old_sha);
    if (!got) {
      notes->diff_unavailable = "the kept version cannot be read: " + got.error().describe();
      return;
    }
    old_text = std::move(*got);
  }
  if (!old_text) return;
  // One version per content: it may have been kept under another path's rule, so this rule's
  // masks apply again (masking what is masked already changes nothing).
  *old_text = mask_content(rule->masks.get(), *old_text);
  KeptText now = read_kept_text(opts.sysroot_fd, policy, *rule, new_rec);
  if (!now.text) {
    notes->diff_unavailable = "the new version is not kept: " + now.why;
    return;
  }
  if (!is_valid_utf8(new_rec.path)) {
    notes->diff_unavailable = "the path is not UTF-8";
    return;
  }
  TextDiff d = unified_diff(*old_text, *now.text, "a" + new_rec.path, "b" + new_rec.path);
  if (!d.unavailable.empty()) {
    notes->diff_unavailable = d.unavailable;
    return;
  }
  if (d.text.empty()) {  // the bytes differ only where masks hide them
    notes->diff_unavailable = "only masked text changed";
    return;
  }
  notes->diff_unavailable.clear();
  notes->diff = std::move(d.text);
  notes->diff_lines_omitted = d.lines_omitted;
}

}  // namespace fim::detail

namespace fim {

Result<ShownContent> run_show(const RunOptions& opts, const Bytes& path, std::optional<uint64_t> at, Sink& sink) {
  auto trusted = detail::open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  std::optional<Record> row;
  FIM_TRY(detail::read_verified(*trusted->base, [&](const Record& r) -> Status {
    if (r.path == path) row = r;
    return {};
  }));
  const BaselineMeta& meta = trusted->base->meta();
  ShownContent out;
  out.sequence = at ? *at : meta.sequence;
  const std::string seq_text = "sequence " + std::to_string(out.sequence);
  StateStore* state = trusted->state ? trusted->state->get() : nullptr;
  std::string why;  // why no content was kept, when the index says
  if (state) {
    if (auto v = state->content_version(opts.db_path, out.sequence, path); v && *v) why = (*v)->why, out.sha256 = (*v)->sha256;
  }
  if (!at || *at == meta.sequence) {
    if (!row) return make_error(Errc::Usage, quote(path) + " is not recorded in the baseline " + quote(opts.db_path) + " (" + seq_text + ")");
    if (row->type() != FileType::File || !row->has(Attr::Sha256))
      return make_error(Errc::Database, quote(path) + " is recorded as a " + std::string(file_type_name(row->type())) +
                                            " without a content digest: no content is kept for it");
    // The signed row names the version, not state.db; but when this baseline's index says it
    // was not kept (private, denied), another path's identical bytes are not shown for it.
    if (!why.empty()) return make_error(Errc::Database, "no content kept for " + quote(path) + " at " + seq_text + ": " + why);
    out.sha256 = hex_encode(row->get(Attr::Sha256).bytes);
  } else {
    if (!state) return make_error(Errc::Io, "state.db cannot be used: " + trusted->state.error().describe());
    auto known = state->content_sequence(opts.db_path, *at);
    if (!known) return known.error();
    if (!*known)
      return make_error(Errc::Usage, "no versions are known for " + seq_text + " of " + quote(opts.db_path) +
                                         " (kept: the last baselines written on this host, current sequence " +
                                         std::to_string(meta.sequence) + ")");
    if (out.sha256.empty() && why.empty())
      return make_error(Errc::Usage, quote(path) + " has no kept content at " + seq_text +
                                         " (not recorded then, or its rule kept no content)");
  }
  if (out.sha256.empty())
    return make_error(Errc::Database, "no content kept for " + quote(path) + " at " + seq_text + ": " + why);
  auto store = ContentStore::open(content_store_dir(opts.db_path), false);
  if (!store) return store.error();
  auto text = (*store)->get(out.sha256);
  if (!text) return text.error();
  if (!*text)
    return make_error(Errc::Database, "no content kept for " + quote(path) + " at " + seq_text +
                                          (why.empty() ? std::string(" (its rule keeps none, or it was pruned)") : ": " + why));
  out.text = std::move(**text);
  return out;
}

}  // namespace fim
