// SPDX-License-Identifier: GPL-2.0-or-later
// pkg: what the package manager vouches for (issue 11; docs/design.md, Packages: provenance graded
// by strength). For a changed path: which dpkg package ships it, and whether its current
// content is the package's, by the strongest evidence there is:
//
//   deb-sha256  the file's digest inside the .deb whose SHA-256 is listed in a Packages index
//               whose SHA-256 is listed in an InRelease file that gpgv verified against apt's
//               keyrings: a chain that ends at the archive's signing key.
//   derived     regenerated from verified inputs by a verified tool and compared (a .pyc
//               against the code its verified interpreter compiles from its verified .py;
//               /etc/ld.so.cache against what the verified ldconfig writes to a private file)
//   dpkg-md5    dpkg's md5sums (or, for conffiles, the status file): written on this host at
//               install time, so only as trustworthy as the host; MD5 is re-computed here.
//   written-by-dpkg  the watch daemon saw a descendant of a recorded apt run's dpkg write it:
//               who wrote it, not what it holds
//   dpkg-list   the path is in the package's file list and only times, size of a directory
//               or link count changed (directories touched by an upgrade): no content claim.
//
// Nothing here trusts a path name alone (Debian's AIDE wrapper filters by dpkg.log path
// lists): a packaged file whose content is not the package's is the most suspicious change.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fim/attr.h"
#include "fim/base/result.h"

namespace fim::pkg {

/// How strong the evidence behind a verdict is (ordered: stronger is greater).
enum class Evidence : uint8_t { None = 0, DpkgList, WrittenByDpkg, DpkgMd5, Derived, DebSha256 };
/// "none", "dpkg-list", "written-by-dpkg", "dpkg-md5", "derived", "deb-sha256"
std::string_view evidence_name(Evidence e);
/// Evidence that accept --package-verified takes without --weak: a chain that ends outside
/// this host (deb-sha256) or a regeneration from such inputs (derived).
bool strong_evidence(std::string_view name);

enum class Verdict : uint8_t {
  Verified,      ///< content (and, with a .deb, mode and owner) is what the package ships
  Mismatch,      ///< packaged, and the package's record says otherwise: suspicious
  Conffile,      ///< a conffile that is not the package's version: a local edit
  Unverifiable,  ///< packaged, but no record to compare with (no md5sums entry, no .deb)
  Unpackaged,    ///< no installed package ships this path
  Removed,       ///< gone, and no installed package ships it any more
};
std::string_view verdict_name(Verdict v);  ///< "verified", "mismatch", ...

/// The annotation of one change.
struct Note {
  Verdict verdict = Verdict::Unpackaged;
  Evidence evidence = Evidence::None;
  std::string package, version, arch;  ///< owner; empty when unpackaged
  std::string detail;                  ///< why, for people (ASCII)
  std::string upgrade;                 ///< the apt run since the baseline that changed the package, if recorded
};

/// Where the package manager keeps its records (all under `root`, which is "/" on a host).
struct Options {
  Bytes root = "/";
  Bytes admindir = "/var/lib/dpkg";
  Bytes lists = "/var/lib/apt/lists";
  std::vector<Bytes> archives{"/var/cache/apt/archives"};  ///< downloaded .debs (apt's cache)
  std::vector<Bytes> mirrors;   ///< local mirrors: a .deb is looked for at MIRROR/<Filename>
  std::vector<Bytes> keyrings;  ///< empty: apt's (trusted.gpg, trusted.gpg.d, Signed-By)
  Bytes gpgv = "/usr/bin/gpgv";
  Bytes dpkg_deb = "/usr/bin/dpkg-deb";
  Bytes apt_helper = "/usr/lib/apt/apt-helper";  ///< decompresses apt's lists (lz4, gz, xz...)
};

/// What a package's .deb holds at one path (from its data.tar).
struct DebMember {
  char type = '0';      ///< tar type: '0' file, '2' symlink, '5' dir, '1' hard link
  uint32_t mode = 0;    ///< permission bits
  uint64_t uid = 0, gid = 0;
  std::string uname, gname;  ///< dpkg uses these when they name a user or group of the system
  Bytes sha256;         ///< raw, regular files only
  Bytes link;           ///< symlink target
};

/// Parses the tar stream of a .deb's data part (what `dpkg-deb --fsys-tarfile` writes): ustar,
/// GNU long names and links, pax path/linkpath. Member names are made absolute ("./bin/ls" ->
/// "/bin/ls"); hard links get their target's digest. Fails on a malformed archive.
Result<std::map<Bytes, DebMember>> parse_data_tar(int fd);

/// One control-file stanza ("Package: x\nVersion: ..."): field -> value (continuation lines
/// joined with '\n'). parse_stanzas() calls `f` for each; `f` returns false to stop.
using Stanza = std::map<std::string, std::string>;
void parse_stanzas(std::string_view text, const std::function<bool(const Stanza&)>& f);

/// The SHA256 section of a Release file: index path ("main/binary-amd64/Packages") -> hex digest.
std::map<std::string, std::string> release_sha256(std::string_view release_text);

/// "name:arch" -> version of every package dpkg has on disk (the apt hook's snapshot). Reads
/// only the status file; on failure returns nothing and sets *st.
std::map<std::string, std::string> installed_versions(const Options& opts, Status* st);

/// What the apt hook (fimctl apt-hook pre-install) kept of one .deb before dpkg installed it
/// (docs/design.md, Packages: hook records): the .deb was verified against the signed index
/// chain then, so its members stand for it once apt has deleted it. Stored in state.db, which
/// is not signed: the record is, with the host key (unsigned records count as dpkg-md5).
struct HookRecord {
  std::string name, version, arch;  ///< as the signed index lists the .deb
  std::string deb_sha256;           ///< hex, the index's
  int64_t at_ns = 0;                ///< when the hook read it
  std::string old_version;          ///< the version it replaces ("": a new install)
  std::map<Bytes, DebMember> members;
  std::vector<Bytes> old_list;      ///< dpkg's file list of old_version, before dpkg ran
};
/// The canonical encoding (what is signed): every field length-prefixed, members in path
/// order. decode_hook_record() takes exactly what encode_hook_record() writes.
std::string encode_hook_record(const HookRecord& r);
Result<HookRecord> decode_hook_record(std::string_view body);
/// A record as a reader may use it: `is_signed` once its signature verified with the pinned
/// public key; unsigned ones (a host that signs off-host) count only as dpkg-md5.
struct TrustedHookRecord {
  HookRecord rec;
  bool is_signed = false;
  bool since_baseline = false;  ///< read by an apt run after the baseline was written
};

/// One .deb apt hands a DPkg::Pre-Install-Pkgs hook: its path and, with protocol version 3,
/// the name, version and arch apt says it is (empty with protocol 1: read from the name).
struct HookInput {
  Bytes deb;
  std::string name, version, arch;
};
/// What apt writes to the hook's stdin: "VERSION 3\n", its configuration, an empty line and a
/// line per package action (only installs from a .deb are returned), or (protocol 1) a .deb
/// path a line.
std::vector<HookInput> parse_hook_input(std::string_view text);
/// The hook's part while apt waits (it must take seconds): each .deb's SHA-256 is checked
/// against the signed index chain (what the index lists for that name, version and arch), the
/// verified file is linked (else copied) into `spool_fd` as "<sha256>.deb", and dpkg's file
/// list of the version on disk now is read. The records have no members yet: extracting them
/// (dpkg-deb, the bulk of the cost) is spooled_members(), after apt's run. A .deb that does not
/// verify gets no record; why goes to *problems (one line each).
std::vector<HookRecord> verify_and_spool(const Options& opts, std::vector<HookInput> debs, int64_t at_ns,
                                         int spool_fd, std::vector<std::string>* problems);
/// The members of the spooled .deb of `r`, its SHA-256 checked again against r.deb_sha256.
Result<std::map<Bytes, DebMember>> spooled_members(const Options& opts, int spool_fd, const HookRecord& r);

/// The changed entries directly inside one directory, as directory_note() weighs them.
struct Children {
  size_t changed = 0, verified = 0;
  Evidence weakest = Evidence::DebSha256;  ///< the weakest evidence among the verified ones
  Bytes unverified;                        ///< one that is not verified, for the detail
  void add(const Bytes& path, const Note& n);
  /// A changed entry the verdict cannot weigh (reported, but not among what is accepted).
  void add_unknown(const Bytes& path);
};

/// The verdict on a directory (docs/design.md, Packages: directories). `own` is explain()'s
/// note on the directory alone. A directory an upgrade touched changes only in times, size
/// and link count; it is as trustworthy as what changed inside it:
///  - with changed children that are not all verified, it is not verified either (its mtime
///    is the trace of what an intruder dropped in it);
///  - changed only in times/size/nlink/inode (`only_times`), its owner, mode and xattrs what
///    the baseline accepted, and every changed child verified: verified, with the weakest of
///    the children's evidence (at most derived when no package ships it);
///  - added or removed: verified only if `own` is (its mode and owner are the package's), with
///    the weaker of its own and its children's evidence; an added directory no package ships
///    (__pycache__) only when every entry in it is verified, it is root's and neither
///    world-writable nor set-id, and then at most `derived`;
///  - without changed children, `own` stands.
Note directory_note(Note own, const Record* old, const Record* now, bool only_times, const Children& kids);

class Verifier {
 public:
  /// Reads dpkg's status, file lists and diversions (not the archive chain: that is read the
  /// first time a .deb is needed).
  static Result<std::unique_ptr<Verifier>> open(const Options& opts);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  /// Versions an apt run replaced or removed since the baseline ("name:arch" -> old version,
  /// from the apt hook's records): a path that is gone and that one of their signed .debs
  /// held was removed by that run (verdict verified, evidence deb-sha256); a directory is
  /// checked against the .debs of these packages only (else dpkg-list). Call before explain().
  void set_replaced(const std::map<std::string, std::string>& replaced);

  /// The apt hook's records (verified by the caller). A record of exactly an installed
  /// version stands in for its .deb when no .deb is at hand; a path gone that a replaced
  /// version's recorded file list held, and no installed package lists, was removed by that
  /// run (evidence dpkg-list). `refused`: "name version arch" -> why its record was not used.
  void set_hook_records(std::vector<TrustedHookRecord> records, std::map<std::string, std::string> refused);
  /// What the watch daemon saw dpkg write during recorded apt runs since the baseline (state.db,
  /// StateStore::dpkg_writes_since): path -> each run's record of it.
  struct DpkgWritten {
    uint64_t dev = 0, ino = 0;    ///< the inode dpkg's descendant wrote
    int64_t from_ns = 0, to_ns = 0;  ///< the run, as the daemon watched it (to: the post hook)
    std::string run, who;         ///< "apt run 3 at ...", the last writer
  };
  /// An unpackaged regular file (added or changed) that one of these records names, still the
  /// inode written and last changed (ctime) within that run: verified, evidence written-by-dpkg.
  void set_written_by_dpkg(std::multimap<Bytes, DpkgWritten> written);
  /// The SHA-256 the verified baseline records for a path (none: not in it). A tool that
  /// regenerates derived files (an interpreter, ldconfig) and is unchanged since the signed
  /// baseline is trusted as the baseline is. Call before explain().
  void set_baseline_digest(std::function<std::optional<Bytes>(const Bytes& path)> lookup);

  /// The verdict on a change: `now` is the entry as it is (null: removed), `old` as the
  /// baseline has it (null: added). Regular files and symlinks are compared; content is read
  /// again for MD5 only when the evidence is dpkg's, and only if it still has `now`'s SHA-256.
  Note explain(const Record* old, const Record* now);

 private:
  struct Impl;
  explicit Verifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fim::pkg
