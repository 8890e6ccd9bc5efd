// SPDX-License-Identifier: GPL-2.0-or-later
// A baseline bound to its use on this host (docs/design.md, Baseline: identity): the checks
// open_trusted() makes against the identity pinned in state.db and in the file's
// trusted.fimctl.identity attribute, and the pin every baseline written here gets.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fim/base/sys.h"
#include "fim/merge.h"

namespace fim::detail {
namespace {

std::string describe(const BaselineIdentity& i) {
  return "id " + (i.id.empty() ? std::string("(none: written before baseline ids)") : escape_terminal(i.id)) +
         ", key " + (i.key_id.empty() ? std::string("(unsigned)") : escape_terminal(i.key_id)) + ", sequence " +
         std::to_string(i.sequence);
}

std::string roots_text(const std::vector<Bytes>& roots) {
  std::string out;
  for (const Bytes& r : roots) out += (out.empty() ? "" : ", ") + quote(r);
  return out.empty() ? "none" : out;
}

Error refuse_error(const std::string& why, const Bytes& db_path) {
  return make_error(Errc::Trust, why + ". If it is the baseline to use (a restored backup, a golden image, a "
                                       "copy signed off the host): fimctl adopt " + quote(db_path) + " --reason TEXT");
}

/// refuse_error() that is also the alert `code`: on the sink (watch streams it) and at the
/// head of the error line ("fimctl: error: state_reset: ..."), since a refused run has no report.
Error refuse_alert(Sink& sink, const char* code, const std::string& why, const Bytes& db_path) {
  sink.alert(code, why);
  return refuse_error(std::string(code) + ": " + why, db_path);
}

/// The pin and the file agree: same baseline, same roots, same key (or a first signature).
Status against_pin(const RunOptions& opts, const BaselineMeta& meta, const BaselineIdentity& mine,
                   const BaselineIdentity& pinned, Trusted& t, Sink& sink) {
  const std::string base = "baseline " + quote(opts.db_path);
  if (pinned.id != mine.id)
    return refuse_error(base + " is not the baseline this host uses there: it is " + describe(mine) + " (roots " +
                      roots_text(meta.roots) + "), the one pinned in state.db is " + describe(pinned) +
                      "; a different validly signed baseline was put in its place",
                  opts.db_path);
  if (pinned.roots_sha256 != mine.roots_sha256)
    return refuse_error(base + " records other roots (" + roots_text(meta.roots) + ") than the baseline pinned for it "
                      "here; only this host's own 'fimctl update' changes them",
                  opts.db_path);
  if (pinned.key_id != mine.key_id) {
    if (pinned.key_id.empty() && meta.is_signed) {  // signed after the fact (key sign) with the configured key
      t.repin = true;
      return {};
    }
    const std::string msg = base + " is signed by key " + (mine.key_id.empty() ? "(none)" : escape_terminal(mine.key_id)) +
                            " but this host pinned key " + escape_terminal(pinned.key_id) + " for it";
    sink.alert("key_changed", msg);
    return make_error(Errc::Trust, "key_changed: " + msg + ": a new key pair was put in place. A real change of keys goes through "
                                         "'fimctl key rotate --reason TEXT', which the old key vouches for");
  }
  return {};
}

/// The file's trusted.fimctl.identity attribute, when there, names this very file: same id and
/// sequence, same key (or none yet: signed since, by key sign, with the key just verified).
Status against_xattr(const RunOptions& opts, const BaselineMeta& meta, const BaselineIdentity& mine, IdentityXattr xr,
                     const BaselineIdentity& x) {
  const std::string base = "baseline " + quote(opts.db_path);
  if (xr == IdentityXattr::Malformed)
    return refuse_error(base + " carries a malformed " + kIdentityXattr + " attribute", opts.db_path);
  const bool signed_since = x.key_id.empty() && meta.is_signed;
  if (xr == IdentityXattr::Present &&
      !(x.id == mine.id && x.sequence == mine.sequence && (x.key_id == mine.key_id || signed_since)))
    return refuse_error(base + " is not the file fimctl wrote there: its " + kIdentityXattr + " attribute says " +
                            describe(x) + ", its manifest says " + describe(mine) + " (roots " +
                            roots_text(meta.roots) + ")",
                        opts.db_path);
  // Written by fimctl, but for another path: a sibling baseline (or one of another directory)
  // renamed or linked into place.
  if (xr == IdentityXattr::Present && !x.at.empty() && x.at != path_tag(opts.db_path))
    return refuse_error(base + " is a baseline fimctl wrote at another path (" + describe(x) + ", roots " +
                            roots_text(meta.roots) + "): it was moved or linked into place",
                        opts.db_path);
  return {};
}

/// state.db cannot be used (unreadable, not a database, cannot be created): nothing pins the
/// baseline, so only the attribute can say this is the file fimctl wrote at this path. Without
/// it, anything signed with the key (a sibling renamed in, a symlink to an old copy) would be
/// compared with as if it were the baseline: refused, unless the baseline's directory is on a
/// read-only filesystem (read-only media), where nobody put anything since it was mounted.
/// Elsewhere the run is never clean (alert 'state', bit 8): an older copy fimctl wrote at this
/// path, renamed aside before an update and renamed back, is not caught without state.db.
Status without_state(const RunOptions& opts, const BaselineMeta& meta, const BaselineIdentity& mine, IdentityXattr xr,
                     const BaselineIdentity& x, Trusted& t, Sink& sink) {
  FIM_TRY(against_xattr(opts, meta, mine, xr, x));
  if (xr == IdentityXattr::Present && x.at == path_tag(opts.db_path)) return {};
  Bytes dir, name;
  split_path(opts.db_path, &dir, &name);
  struct statvfs vfs{};
  if (::statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
    t.read_only_media = true;
    return {};
  }
  const std::string base = "baseline " + quote(opts.db_path);
  const std::string msg = "state.db cannot be used, and nothing else vouches that " + base + " (" + describe(mine) +
                          ", roots " + roots_text(meta.roots) + ") is the one fimctl wrote there: " +
                          (xr == IdentityXattr::Absent ? "the file has no " + std::string(kIdentityXattr) + " attribute"
                           : xr == IdentityXattr::Present
                               ? "its " + std::string(kIdentityXattr) + " attribute predates path binding"
                               : "its " + std::string(kIdentityXattr) + " attribute cannot be read (not root, or no "
                                 "extended attributes here)") +
                          ". Repair or move state.db aside, then check again (or adopt a baseline you trust)";
  return refuse_alert(sink, "state_reset", msg, opts.db_path);
}

}  // namespace

Status check_identity(const RunOptions& opts, const BaselineMeta& meta, Trusted& t, Sink& sink) {
  const std::string base = "baseline " + quote(opts.db_path);
  const BaselineIdentity mine = identity_of(meta);
  BaselineIdentity x;
  int xerr = 0;
  const IdentityXattr xr = read_identity_xattr(opts.db_path, &x, &xerr);
  if (!t.state) return without_state(opts, meta, mine, xr, x, t, sink);
  auto pinned = (*t.state)->identity(opts.db_path);
  if (!pinned) return pinned.error();
  // Installed by this host, which was stopped before it could pin it (kill -9, power loss).
  auto next = (*t.state)->identity_next(opts.db_path);
  if (!next) return next.error();
  if (*next && **next == mine && xr != IdentityXattr::Absent) {
    FIM_TRY(against_xattr(opts, meta, mine, xr, x));
    t.repin = true;
    return {};
  }
  if (*pinned) {
    FIM_TRY(against_pin(opts, meta, mine, **pinned, t, sink));
    FIM_TRY(against_xattr(opts, meta, mine, xr, x));
    // The file carried the attribute when it was pinned: one without it is another file put
    // at the path (even the same bytes: a state.db rewritten to pin a decoy would pass else).
    if (xr == IdentityXattr::Absent && (**pinned).xattr)
      return refuse_error(base + " lacks its " + kIdentityXattr + " attribute, which the baseline pinned here "
                              "had: it was copied or moved into place, not written by fimctl (pinned: " +
                              describe(**pinned) + ")",
                          opts.db_path);
    // Signed since it was written (key sign, copied back over the file), or pinned where the
    // attribute could not be read: pinned again, with the attribute set where it can be.
    if (xr == IdentityXattr::Absent || (xr == IdentityXattr::Present && (x.key_id != mine.key_id || x.at.empty())))
      t.repin = true;
    return {};
  }
  if (auto st = against_xattr(opts, meta, mine, xr, x); !st) {
    sink.alert("state_reset", "state.db has no record of " + base + ", and the file is not the one fimctl wrote "
                              "there: state.db was deleted or recreated and another baseline put in place");
    return make_error(Errc::Trust, "state_reset: state.db has no record of the baseline, and " + st.error().message);
  }
  if (xr == IdentityXattr::Present) {
    const std::string msg = "state.db has no record of " + base + ", whose " + kIdentityXattr +
                            " attribute says fimctl wrote it here (" + describe(x) +
                            "): state.db was deleted or recreated, which would let an older baseline pass";
    return refuse_alert(sink, "state_reset", msg, opts.db_path);
  }
  // Written before baseline ids by an fimctl that verified exactly this sequence here: pinned
  // now, once (an upgrade). Anything else never used here is for the operator to adopt.
  if (mine.id.empty() && t.last_seq != 0 && t.last_seq == meta.sequence) {
    t.repin = true;
    return {};
  }
  // state.db was deleted or recreated beside an existing baseline, or a file was put there:
  // either way nothing vouches for it (a decoy or an old copy would pass otherwise).
  const std::string msg = base + " (" + describe(mine) + ", roots " + roots_text(meta.roots) + ") was never used on "
                          "this host: state.db pins no baseline there" +
                          (xr == IdentityXattr::Absent ? " and the file has no " + std::string(kIdentityXattr) +
                                                             " attribute (it was copied into place, or state.db was reset)"
                                                       : std::string());
  return refuse_alert(sink, "state_reset", msg, opts.db_path);
}

Status repin_verified(const RunOptions& opts, const BaselineMeta& meta, StateStore& state) {
  // The attribute first (a baseline from before ids, one signed since, one whose pin vouched
  // for it without it): root's to set; not root, state.db alone.
  UniqueFd fd(::open(opts.db_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.valid()) (void)write_identity_xattr(fd.get(), identity_of(meta), opts.db_path);
  return state.pin_identity(opts.db_path, identity_as_installed(opts.db_path, meta));
}

Status commit_pinned(const RunOptions& opts, StateStore& state, BaselineWriter& w, BaselineMeta* meta,
                     const std::optional<SigningKey>& key, Sink& sink) {
  FIM_TRY(state.pin_next(opts.db_path, BaselineIdentity{meta->baseline_id, roots_digest(meta->roots),
                                                        key ? key->key_id() : std::string(), meta->sequence, false, std::string()}));
  FIM_TRY(w.commit(meta));
  FIM_TRY(pin_written(opts, state, *meta, w, sink));
  prune_hook_records(opts, state, sink);  // the new baseline has taken what the runs before it did
  return {};
}

Status pin_written(const RunOptions& opts, StateStore& state, const BaselineMeta& meta, const BaselineWriter& w,
                   Sink& sink) {
  FIM_TRY(state.note_sequence(opts.db_path, meta.sequence, meta.content_sha256));
  FIM_TRY(state.pin_identity(opts.db_path, identity_as_installed(opts.db_path, meta)));
  if (const int e = w.identity_xattr_errno(); e && e != EPERM)
    sink.alert("identity_xattr", "cannot set " + std::string(kIdentityXattr) + " on " + quote(opts.db_path) + " (" +
                                     std::strerror(e) + "): a swapped or rolled-back baseline is caught through "
                                     "state.db alone, which whoever can write its directory can delete");
  return {};
}

}  // namespace fim::detail
