// SPDX-License-Identifier: GPL-2.0-or-later
// init over an existing baseline (replace.h).
#include "replace.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fim/base/sys.h"
#include "fim/merge.h"

namespace fim::detail {

Result<uint64_t> init_sequence(const RunOptions& opts, StateStore& state) {
  auto last_seq = state.last_sequence(opts.db_path);
  if (!last_seq) return last_seq.error();
  uint64_t sequence = *last_seq;
  if (auto old = BaselineReader::open(opts.db_path)) sequence = std::max(sequence, (*old)->meta().sequence);
  return sequence;
}

Result<std::vector<Acceptance>> init_replacing(const RunOptions& opts, StateStore& state,
                                               const std::optional<SigningKey>& key, Sink& sink) {
  std::vector<Acceptance> journal;
  struct stat st;
  if (::lstat(opts.db_path.c_str(), &st) != 0) return journal;
  auto old = BaselineReader::open(opts.db_path);
  const std::string what = old ? " (" + std::to_string((*old)->meta().entry_count) + " entries, sequence " +
                                     std::to_string((*old)->meta().sequence) + ")"
                               : "";
  if (!opts.force)
    return make_error(Errc::Usage, "a baseline already exists at " + quote(opts.db_path) + what +
                                       ": 'fimctl check' compares with it, 'fimctl update' re-baselines it (signed "
                                       "and journalled); 'fimctl init --force' replaces it, keeping it as " +
                                       quote(opts.db_path + ".prev"));
  auto pinned = state.identity(opts.db_path);
  if (!pinned) return pinned.error();
  const std::string key_id = key ? key->key_id() : "";
  if (*pinned && !(*pinned)->key_id.empty() && (*pinned)->key_id != key_id) {
    const std::string msg = "this host pinned key " + escape_terminal((*pinned)->key_id) + " for " +
                            quote(opts.db_path) + "; init --force " +
                            (key ? "with key " + key_id : std::string("without a key")) + " would replace it";
    sink.alert("key_changed", msg);
    return make_error(Errc::Trust, "key_changed: " + msg + ": change keys with 'fimctl key rotate --reason TEXT' first");
  }
  journal.push_back(Acceptance{0, detail::current_user(), "init --force",
                               opts.reason.empty() ? "replaced by init --force" : opts.reason, opts.db_path, "replaced",
                               old ? (*old)->meta().content_sha256 : "-", "-", "", ""});
  return journal;
}

Status link_previous(const Bytes& db_path) {
  const Bytes tmp = db_path + ".prev.tmp";
  ::unlink(tmp.c_str());
  if (::link(db_path.c_str(), tmp.c_str()) != 0)
    return make_error(Errc::Io, "cannot keep the replaced baseline as " + quote(db_path + ".prev"), errno);
  track_temp_file(tmp);  // removed by a Ctrl-C (src/cli/main.cpp)
  return {};
}

Status keep_previous(const Bytes& db_path, bool installed) {
  const Bytes tmp = db_path + ".prev.tmp", prev = db_path + ".prev";
  untrack_temp_file(tmp);
  if (!installed) {
    ::unlink(tmp.c_str());
    return {};
  }
  if (::rename(tmp.c_str(), prev.c_str()) != 0)
    return make_error(Errc::Io, "the new baseline is installed, but the replaced one could not be kept as " +
                                    quote(prev), errno);
  return {};
}

}  // namespace fim::detail
