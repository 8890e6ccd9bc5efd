// SPDX-License-Identifier: GPL-2.0-or-later
// content = "diff" (docs/design.md, Content store): what a baseline writer keeps of the text
// files its rules name, and the diff a `changed` record of one carries. Private to pipeline/.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fim/content_store.h"
#include "fim/db.h"
#include "fim/state.h"
#include "fim/merge.h"
#include "fim/pipeline.h"
#include "fim/report.h"

namespace fim::detail {

/// The masked text of the file `rec` records, read now (O_NOFOLLOW, below `root_fd` as the
/// walk reads), or why there is none: the rule keeps no content, not a regular file, too large,
/// on the deny list, not world-readable (unless content_private), not the bytes `rec` hashed
/// (it changed, or was swapped, since), not UTF-8 text.
struct KeptText {
  std::optional<std::string> text;
  std::string why;
};
KeptText read_kept_text(int root_fd, const Policy& policy, const Rule& rule, const Record& rec);

/// Keeps the content of the entries a new baseline records (init, update, accept) and
/// remembers what it kept, for `show --at` and pruning.
class ContentKeeper {
 public:
  /// Null when no rule of `effective` keeps content. A store that cannot be opened is an alert
  /// (content_store) and nothing is kept: the baseline is written all the same.
  static std::unique_ptr<ContentKeeper> make(const RunOptions& opts, const Policy& effective, Sink& sink);
  /// accept: the keeper of the successor of `meta` that takes `now` (path -> accepted state,
  /// none: removed), each considered under its rule; the other rows carry their versions over.
  static std::unique_ptr<ContentKeeper> accepting(const RunOptions& opts, const BaselineMeta& meta,
                                                  const std::map<Bytes, std::optional<Record>>& now, Sink& sink);
  /// An entry of the new baseline and the rule that selected it (null: none).
  void consider(const Record& r, const Rule* rule);
  /// accept: the successor holds the rows of sequence `seq` but for what was considered or
  /// forgotten; their index rows carry over.
  void carry_from(uint64_t seq) { carry_from_ = seq; }
  /// accept: `path` is not in the successor.
  void forget(const Bytes& path) { forgotten_.push_back(path); }
  /// After the baseline with sequence `seq` is installed: its versions go into state.db's
  /// index, and what neither it nor the index keeps is pruned.
  void committed(StateStore* state, uint64_t seq);

 private:
  ContentKeeper(const RunOptions& opts, const Policy& p, Sink& sink, std::unique_ptr<ContentStore> store);
  const RunOptions& opts_;
  Sink& sink_;
  std::unique_ptr<ContentStore> store_;
  uint64_t store_bytes_ = 0;
  bool full_ = false;
  std::vector<StateStore::ContentVersion> versions_;
  std::optional<uint64_t> carry_from_;
  std::vector<Bytes> forgotten_;
};

/// The diff a `changed` entry's record carries (notes->diff, diff_lines_omitted,
/// diff_unavailable), when its rule keeps content and its sha256 changed.
void diff_notes(const RunOptions& opts, const ContentStore* store, const Policy& policy, const Record& old_rec,
                const Record& new_rec, const Rule* rule, ChangeNotes* notes);

/// The store beside the baseline for reading diffs: null when there is none (every diff then
/// says why) or no rule keeps content.
std::unique_ptr<ContentStore> store_for_diffs(const RunOptions& opts, Sink& sink);

}  // namespace fim::detail
