// SPDX-License-Identifier: GPL-2.0-or-later
// The verdict on one change: the owner's record, by the strongest evidence available (see
// fim/pkg.h). Metadata a package does not record (capabilities, xattrs, ACLs, flags, SELinux
// labels) must be as the baseline had it, whatever the evidence: an upgrade does not explain
// a capability or immutable flag that appeared.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "internal.h"

namespace fim::pkg {

struct Verifier::Impl {
  std::unique_ptr<DpkgDb> db;
  AptArchive archive;
  Options opts;
  std::vector<Package> replaced;  // versions apt runs replaced or removed since the baseline
  std::unique_ptr<Deriver> deriver;  // .pyc files, ld.so.cache: made on first use
  Deriver::BaselineDigest baseline_digest;  // for tools unchanged since the signed baseline
  HookRecords hooks;              // the apt hook's records of .debs apt has since deleted
  std::multimap<Bytes, Verifier::DpkgWritten> written;  // by dpkg's descendants, as the daemon saw
  explicit Impl(const Options& o) : archive(o), opts(o) {}

  /// What the package's .deb holds: from the .deb (apt's cache, a mirror), else from the apt
  /// hook's record of exactly this version. *ev and *source say which. An unsigned record is
  /// no better than dpkg's MD5s (whoever can write state.db could have written it), so for a
  /// regular file it never stands in for them: it could not then outvote a MD5 mismatch.
  const std::map<Bytes, DebMember>* deb_members(const Package& p, std::string* why, Evidence* ev, std::string* source,
                                                bool regular_file) {
    load_archive();
    if (const auto* m = archive.members(p, why)) {
      *ev = Evidence::DebSha256;
      *source = "as in the signed .deb of " + p.name + " " + p.version;
      return m;
    }
    if (const auto* t = hooks.find(p); t && !t->is_signed && regular_file) {
      *why += "; only an unsigned hook record (no better than dpkg's MD5)";
    } else if (t) {
      *ev = t->is_signed ? Evidence::DebSha256 : Evidence::DpkgMd5;
      *source = HookRecords::label(*t);
      return &t->rec.members;
    }
    if (std::string r = hooks.refused(p); !r.empty()) *why += "; " + r;
    return nullptr;
  }

  void load_archive() {
    if (archive.loaded()) return;
    std::vector<Package> all = db->packages();
    all.insert(all.end(), replaced.begin(), replaced.end());
    archive.load_indexes(all);
  }

  bool changed_by_run(const Package& p) const {
    return std::any_of(replaced.begin(), replaced.end(),
                       [&](const Package& r) { return r.name == p.name && r.arch == p.arch; });
  }

  /// A gone path that the signed .deb of a replaced version held, and no installed package
  /// ships any more: removed by that apt run.
  bool removed_by_upgrade(const Bytes& path, Note* n) {
    if (replaced.empty() && hooks.empty()) return false;
    const Bytes want = db->canonical(path);
    for (const auto& p : replaced) {
      std::string why, source;
      Evidence ev = Evidence::None;
      const auto* members = deb_members(p, &why, &ev, &source, false);
      if (!members || ev != Evidence::DebSha256) continue;
      for (const auto& [listed, m] : *members) {
        if (m.type == '5' || db->canonical(listed) != want) continue;
        n->verdict = Verdict::Verified;
        n->evidence = Evidence::DebSha256;
        n->package = p.name;
        n->version = p.version;
        n->arch = p.arch;
        n->detail = "removed by an apt run: the signed .deb of " + p.name + " " + p.version +
                    " held it, no installed package ships it" +
                    (source.rfind("as recorded", 0) == 0 ? " (" + source + ")" : std::string());
        return true;
      }
    }
    // dpkg's file list of the replaced version, as the apt hook kept it before dpkg ran.
    if (const auto* t = hooks.removed(want, [&](const Bytes& p) { return db->canonical(p); })) {
      n->verdict = Verdict::Verified;
      n->evidence = Evidence::DpkgList;
      n->package = t->rec.name;
      n->version = t->rec.old_version;
      n->arch = t->rec.arch;
      n->detail = "removed by the apt run at " + format_time_ns(t->rec.at_ns) + ": dpkg's list of " + t->rec.name +
                  " " + t->rec.old_version + " held it, " + t->rec.version + " and no other installed package ship it" +
                  (t->is_signed ? " (signed hook record)" : " (unsigned hook record)");
      return true;
    }
    return false;
  }

  /// MD5 (hex) of the file at `path` if its content still has SHA-256 `sha`; empty otherwise.
  std::string md5_if_same(const Bytes& path, const Bytes& sha) {
    UniqueFd fd(open_in(opts, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    struct stat st;
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
    DigestStream md5("md5");
    Sha256Stream s;
    const Status read = read_chunks(fd.get(), "a packaged file", [&](std::string_view b) {
      md5.update(b);
      s.update(b);
      return Status{};
    });
    if (!read || s.finish() != sha) return {};
    return hex_encode(md5.finish());
  }
};

namespace {

constexpr Attr kUnpackagedAttrs[] = {Attr::Caps, Attr::Xattrs, Attr::AclAccess, Attr::AclDefault, Attr::Flags,
                                     Attr::Selinux};

std::string octal(uint64_t m) {
  char b[16];
  std::snprintf(b, sizeof b, "%04llo", static_cast<unsigned long long>(m));
  return b;
}

// chattr flags that matter here; the rest (extents, inline data, ...) are the filesystem's.
constexpr int64_t kGuardFlags = 0x00000010 /* FS_IMMUTABLE_FL */ | 0x00000020 /* FS_APPEND_FL */;

/// What only the baseline can vouch for: the attributes no package records are unchanged (a
/// new file: has none of them, but for the label its filesystem gives every new file).
std::string unpackaged_change(const Record* old, const Record& now) {
  for (Attr a : kUnpackagedAttrs) {
    if (!now.has(a)) continue;
    AttrValue v = now.get(a);
    if (a == Attr::Flags) v.num &= kGuardFlags;
    const bool was = old && old->has(a);
    if (was) {
      AttrValue w = old->get(a);
      if (a == Attr::Flags) w.num &= kGuardFlags;
      if (!(w == v)) return std::string(attr_info(a).key) + " changed, which no package records";
    } else if (a != Attr::Selinux && !(v.bytes.empty() && v.num == 0)) {
      return std::string(attr_info(a).key) + " set, which no package records";
    }
  }
  return {};
}

/// Mode and owner the baseline had (weak evidence vouches for content only).
std::string owner_mode_changed(const Record* old, const Record& now) {
  if (!old) {
    const uint64_t m = static_cast<uint64_t>(now.get(Attr::Mode).num);
    if (m & 06000) return "new and set-id (" + octal(m) + "): only a .deb could vouch for that";
    if (m & 02) return "new and world-writable (" + octal(m) + ")";
    return {};
  }
  for (Attr a : {Attr::Mode, Attr::Uid, Attr::Gid})
    if (now.has(a) && old->has(a) && old->get(a).num != now.get(a).num)
      return std::string(attr_info(a).key) + " changed, and dpkg's records do not say what it should be";
  return {};
}

/// A regular file no package ships that a descendant of a recorded apt run's dpkg wrote, as the
/// watch daemon saw it: the same inode, last changed within that run, no other writer seen.
/// Who wrote it, not what it holds (weak): and nothing a package does not record changed.
bool written_by_dpkg(const std::multimap<Bytes, Verifier::DpkgWritten>& written, const Record* old, const Record& now,
                     Note* n) {
  if (now.type() != FileType::File || !now.has(Attr::Inode) || !now.has(Attr::Ctime)) return false;
  const auto ctime = now.get(Attr::Ctime).num;
  const auto [lo, hi] = written.equal_range(now.path);
  for (auto it = lo; it != hi; ++it) {
    const Verifier::DpkgWritten& w = it->second;
    if (w.ino != static_cast<uint64_t>(now.get(Attr::Inode).num) ||
        (now.has(Attr::Dev) && w.dev != static_cast<uint64_t>(now.get(Attr::Dev).num)) || ctime < w.from_ns ||
        ctime > w.to_ns)
      continue;
    std::string why = unpackaged_change(old, now);
    if (why.empty()) why = owner_mode_changed(old, now);
    if (!why.empty()) {
      n->detail = "no installed package ships this path; written by dpkg's " + escape_terminal(w.who) + " during " + w.run + ", but " + why;
      return false;
    }
    n->verdict = Verdict::Verified;
    n->evidence = Evidence::WrittenByDpkg;
    n->detail = "no package ships it; written by " + escape_terminal(w.who) + ", a descendant of dpkg, during " + w.run +
                " (the watch daemon saw who wrote it, not what it holds)";
    return true;
  }
  return false;
}

}  // namespace

Verifier::Verifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Verifier::~Verifier() = default;

Result<std::unique_ptr<Verifier>> Verifier::open(const Options& opts) {
  auto impl = std::make_unique<Impl>(opts);
  auto db = DpkgDb::open(opts);
  if (!db) return db.error();
  impl->db = std::move(*db);
  return std::unique_ptr<Verifier>(new Verifier(std::move(impl)));
}

void Verifier::set_hook_records(std::vector<TrustedHookRecord> records, std::map<std::string, std::string> refused) {
  impl_->hooks.set(std::move(records), std::move(refused));
}
void Verifier::set_baseline_digest(std::function<std::optional<Bytes>(const Bytes& path)> lookup) {
  impl_->baseline_digest = std::move(lookup);
}

void Verifier::set_written_by_dpkg(std::multimap<Bytes, DpkgWritten> written) { impl_->written = std::move(written); }

void Verifier::set_replaced(const std::map<std::string, std::string>& replaced) {
  impl_->replaced.clear();
  for (const auto& [name_arch, version] : replaced) {
    const size_t colon = name_arch.rfind(':');
    if (colon == std::string::npos || version.empty() || version == "-") continue;
    Package p;
    p.name = name_arch.substr(0, colon);
    p.arch = name_arch.substr(colon + 1);
    p.version = version;
    impl_->replaced.push_back(std::move(p));
  }
}

Note Verifier::explain(const Record* old, const Record* now) {
  const Record& any = now ? *now : *old;
  Note best;
  const auto owners = impl_->db->owners(any.path);
  if (owners.empty()) {
    if (!now && impl_->removed_by_upgrade(any.path, &best)) return best;
    if (now && !impl_->deriver)
      impl_->deriver = std::make_unique<Deriver>(
          impl_->opts, *impl_->db,
          [this](const Package& p, std::string* why, Evidence* ev) {
            std::string source;
            return impl_->deb_members(p, why, ev, &source, true);
          },
          impl_->baseline_digest);
    if (now && impl_->deriver->explain(old, *now, &best)) return best;
    if (now && written_by_dpkg(impl_->written, old, *now, &best)) return best;
    best.verdict = now ? Verdict::Unpackaged : Verdict::Removed;
    if (best.detail.empty())  // else: why a record of dpkg writing it does not vouch for it
      best.detail = now ? "no installed package ships this path" : "no installed package ships this path any more";
    return best;
  }
  best.verdict = Verdict::Unverifiable;
  bool first = true;
  for (const auto& o : owners) {
    Note n;
    n.verdict = Verdict::Unverifiable;
    n.package = o.pkg->name;
    n.version = o.pkg->version;
    n.arch = o.pkg->arch;
    const auto pick = [&] {
      // Prefer verified, then the strongest evidence, then a mismatch over "unverifiable".
      const auto rank = [](const Note& x) {
        return (x.verdict == Verdict::Verified ? 100 : x.verdict == Verdict::Mismatch ? 50
                                                     : x.verdict == Verdict::Conffile ? 40 : 0) +
               static_cast<int>(x.evidence);
      };
      if (first || rank(n) > rank(best)) best = n;
      first = false;
    };
    if (!now) {
      n.verdict = Verdict::Mismatch;
      n.evidence = Evidence::DpkgList;
      n.detail = "gone, but " + o.pkg->name + " " + o.pkg->version + " ships it";
      pick();
      continue;
    }
    const FileType t = now->type();
    const bool conffile = o.pkg->conffiles.count(o.listed) > 0;
    if (std::string why = unpackaged_change(old, *now); !why.empty()) {
      n.verdict = Verdict::Mismatch;
      n.detail = why;
      pick();
      continue;
    }
    // The strongest evidence: the package's own .deb, through apt's signed chain. Not for a
    // directory of a package no recorded apt run changed: /usr/bin has hundreds of owners, and
    // reading all their .debs to vouch for a directory's times would cost minutes.
    std::string why_no_deb = "no recorded apt run changed " + o.pkg->name;
    const bool try_deb = t != FileType::Dir || impl_->changed_by_run(*o.pkg);
    Evidence deb_evidence = Evidence::None;
    std::string source;
    if (const auto* members = try_deb ? impl_->deb_members(*o.pkg, &why_no_deb, &deb_evidence, &source, t == FileType::File) : nullptr) {
      n.evidence = deb_evidence;
      auto m = members->find(o.listed);
      if (m == members->end()) {
        n.verdict = Verdict::Mismatch;
        n.detail = "the verified .deb of " + o.pkg->name + " " + o.pkg->version + " has no " + escape_terminal(o.listed);
        pick();
        continue;
      }
      const DebMember& d = m->second;
      const char want = t == FileType::File ? '0' : t == FileType::Symlink ? '2' : t == FileType::Dir ? '5' : '?';
      std::string bad, kept_by_baseline;
      if (d.type != want) {
        bad = "the package ships it as another type of file";
      } else if (t == FileType::File && (!now->has(Attr::Sha256) || now->get(Attr::Sha256).bytes != d.sha256)) {
        bad = now->has(Attr::Sha256) ? "content differs from the package's (sha256 " + hex_encode(d.sha256) + ")"
                                     : "no digest recorded to compare";
        if (now->has(Attr::Sha256) && conffile) {
          n.verdict = Verdict::Conffile;
          n.detail = "conffile edited locally (the package ships sha256 " + hex_encode(d.sha256) + ")";
          pick();
          continue;
        }
      } else if (t == FileType::Symlink && now->get(Attr::Link).bytes != d.link) {
        bad = "points to " + quote(now->get(Attr::Link).bytes) + ", the package's to " + quote(d.link);
      } else if (t != FileType::Symlink) {
        uint64_t uid = d.uid, gid = d.gid;
        uint32_t mode = d.mode;
        if (auto u = impl_->db->uid_of(d.uname)) uid = *u;
        if (auto g = impl_->db->gid_of(d.gname)) gid = *g;
        if (auto so = impl_->db->stat_override(impl_->db->canonical(any.path))) {
          uid = so->uid;
          gid = so->gid;
          mode = so->mode;
        }
        // A maintainer script may set what the package does not ship (openssh-client's
        // postinst makes ssh-agent set-gid): a value the baseline already accepted is not a
        // mismatch; a value neither the package nor the baseline has is.
        const auto accepted = [&](Attr a, uint64_t shipped) {
          if (!now->has(a) || static_cast<uint64_t>(now->get(a).num) == shipped) return true;
          return old && old->has(a) && old->get(a).num == now->get(a).num;
        };
        if (!accepted(Attr::Mode, mode))
          bad = "mode " + octal(static_cast<uint64_t>(now->get(Attr::Mode).num)) + ", the package's " + octal(mode);
        else if (!accepted(Attr::Uid, uid) || !accepted(Attr::Gid, gid))
          bad = "owner " + std::to_string(now->get(Attr::Uid).num) + ":" + std::to_string(now->get(Attr::Gid).num) +
                ", the package's " + std::to_string(uid) + ":" + std::to_string(gid);
        else if (static_cast<uint32_t>(now->get(Attr::Mode).num) != mode || now->get(Attr::Uid).num != static_cast<int64_t>(uid) ||
                 now->get(Attr::Gid).num != static_cast<int64_t>(gid))
          kept_by_baseline = " (mode " + octal(static_cast<uint64_t>(now->get(Attr::Mode).num)) + " " +
                             std::to_string(now->get(Attr::Uid).num) + ":" + std::to_string(now->get(Attr::Gid).num) +
                             " as the baseline accepted it; the package ships " + octal(mode) + " " + std::to_string(uid) +
                             ":" + std::to_string(gid) + ")";
      }
      if (!bad.empty()) {
        n.verdict = Verdict::Mismatch;
        n.detail = bad;
      } else {
        n.verdict = Verdict::Verified;
        n.detail = source + kept_by_baseline;
      }
      pick();
      continue;
    }
    // dpkg's own records: weaker, they live on this host.
    if (t == FileType::File) {
      const std::string want = impl_->db->md5(*o.pkg, o.listed);
      if (want.empty() || !now->has(Attr::Sha256)) {
        n.detail = (want.empty() ? "dpkg has no MD5 of it" : "no digest recorded") + std::string(" and ") + why_no_deb;
        pick();
        continue;
      }
      n.evidence = Evidence::DpkgMd5;
      const std::string got = impl_->md5_if_same(any.path, now->get(Attr::Sha256).bytes);
      if (got.empty()) {
        n.detail = "changed again while being checked";
      } else if (got != want) {
        n.verdict = conffile ? Verdict::Conffile : Verdict::Mismatch;
        n.detail = conffile ? "conffile edited locally (dpkg's MD5 " + want + ")"
                            : "content differs from dpkg's MD5 " + want;
      } else if (std::string why = owner_mode_changed(old, *now); !why.empty()) {
        n.verdict = Verdict::Mismatch;
        n.detail = why;
      } else {
        n.verdict = Verdict::Verified;
        n.detail = "matches dpkg's MD5 (weak: " + why_no_deb + ")";
      }
      pick();
      continue;
    }
    if (t == FileType::Dir && old) {
      n.evidence = Evidence::DpkgList;
      if (std::string why = owner_mode_changed(old, *now); !why.empty()) {
        n.verdict = Verdict::Mismatch;
        n.detail = why;
      } else {
        n.verdict = Verdict::Verified;
        n.detail = "a directory of " + o.pkg->name + "; only times, size or link count changed";
      }
      pick();
      continue;
    }
    n.detail = why_no_deb;
    pick();
  }
  return best;
}

}  // namespace fim::pkg
