// SPDX-License-Identifier: GPL-2.0-or-later
// The two record keepers behind pkg::Verifier: dpkg's database on this host (who ships a
// path, with which MD5) and apt's signed archive chain (what a .deb holds).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fim/base/fd.h"
#include "fim/pkg.h"

namespace fim::pkg {

struct Package {
  std::string name, version, arch;
  std::map<Bytes, std::string> conffiles;  ///< path -> md5 hex (from the status file)
  std::string info_stem;                   ///< "name" or "name:arch" in /var/lib/dpkg/info
};

/// The packages on disk (installed, unpacked, half-configured) from dpkg's status file.
Result<std::vector<Package>> read_status(const Options& opts);

/// dpkg's database: /var/lib/dpkg/{status,info/*.list,info/*.md5sums,diversions,statoverride}.
class DpkgDb {
 public:
  static Result<std::unique_ptr<DpkgDb>> open(const Options& opts);

  /// The packages shipping `path` (as fimctl records it: real directories, merged /usr
  /// resolved), each with the path as the package lists it (diversions applied).
  struct Owner {
    const Package* pkg;
    Bytes listed;
  };
  std::vector<Owner> owners(const Bytes& path);
  /// dpkg's MD5 (hex) of a file the package lists; empty when md5sums has none.
  std::string md5(const Package& p, const Bytes& listed);
  /// dpkg-statoverride for `listed`: (uid, gid, mode) when overridden.
  struct Override {
    uint64_t uid, gid;
    uint32_t mode;
  };
  std::optional<Override> stat_override(const Bytes& path) const;
  /// A user or group name of the system (its /etc/passwd, /etc/group) -> id.
  std::optional<uint64_t> uid_of(const std::string& name) const;
  std::optional<uint64_t> gid_of(const std::string& name) const;
  const std::vector<Package>& packages() const { return packages_; }
  /// `path` with its directory's symlinks resolved inside the root (merged /usr: /bin/ls ->
  /// /usr/bin/ls).
  Bytes canonical(const Bytes& path);

 private:
  DpkgDb() = default;
  Options opts_;
  UniqueFd root_;
  std::vector<Package> packages_;
  std::unordered_map<Bytes, std::vector<std::pair<uint32_t, Bytes>>> index_;  // canonical path -> owners
  std::unordered_map<Bytes, Bytes> dir_cache_;
  std::map<std::string, std::map<Bytes, std::string>> md5_cache_;  // info stem -> listed path -> md5
  std::map<Bytes, Override> overrides_;
  std::map<std::string, uint64_t> users_, groups_;
};

/// apt's archive chain: InRelease (gpgv) -> Packages (SHA-256) -> .deb (SHA-256) -> members.
class AptArchive {
 public:
  explicit AptArchive(const Options& opts) : opts_(opts) {}
  /// What the .deb of exactly this installed version holds, or why that cannot be known
  /// (no signed index lists it, no .deb in the cache or mirrors, a .deb that does not match).
  /// Cached per package.
  const std::map<Bytes, DebMember>* members(const Package& p, std::string* why);
  /// Verifies the InRelease files and reads the Packages entries of the installed versions.
  void load_indexes(const std::vector<Package>& wanted);
  /// The SHA-256 (hex) the signed index lists for exactly `p`'s name, version and arch
  /// (load_indexes() with `p` first), or why there is none.
  Result<std::string> listed_sha256(const Package& p) const;
  /// The members of the .deb at `fd` if its SHA-256 is `sha256_hex` (hashed into a private
  /// copy, which is what dpkg-deb then reads).
  Result<std::map<Bytes, DebMember>> extract_verified(int fd, const std::string& sha256_hex);
  bool loaded() const { return loaded_; }

 private:
  struct Listed {
    std::string sha256_hex, filename;
  };
  /// Hashes `fd` into a private copy; when it is `want`'s .deb, its members (else *mismatch).
  Result<std::map<Bytes, DebMember>> extract_if_listed(int fd, const Listed& want, bool* mismatch, std::string* got_hex);
  Options opts_;
  bool loaded_ = false;
  std::string load_problem_;
  std::map<std::string, Listed> listed_;  // "name version arch" -> index entry
  std::map<std::string, std::optional<std::map<Bytes, DebMember>>> cache_;
  std::map<std::string, std::string> why_;
};

/// The apt hook's records as the Verifier uses them (hook_record.cpp).
class HookRecords {
 public:
  void set(std::vector<TrustedHookRecord> records, std::map<std::string, std::string> refused);
  /// The record of exactly this version (a signed one before an unsigned one), or null.
  const TrustedHookRecord* find(const Package& p) const;
  /// Why a record of exactly this version was not used, or "".
  std::string refused(const Package& p) const;
  /// The record of an apt run since the baseline whose replaced version's file list held
  /// `canonical_path` (`canon` canonicalises listed paths), or null.
  const TrustedHookRecord* removed(const Bytes& canonical_path, const std::function<Bytes(const Bytes&)>& canon);
  bool empty() const { return records_.empty(); }
  /// "as recorded from the signed .deb by the apt hook at TIME (name version)", or the
  /// unsigned record's weak label.
  static std::string label(const TrustedHookRecord& t);

 private:
  std::vector<TrustedHookRecord> records_;
  std::map<std::string, std::string> refused_;
  std::multimap<Bytes, size_t> listed_;  // canonical old-list path -> record
  bool indexed_ = false;
};

/// One entry of apt's sources (sources.list, sources.list.d/*.list one-line entries,
/// sources.list.d/*.sources deb822 stanzas, one entry per URI and suite).
struct AptSource {
  std::string where;      ///< "file:line" or "file stanza N", for messages
  std::string uri;        ///< as written, with a trailing '/' (apt adds one)
  std::string suite;      ///< "bookworm", or a flat repository's path ending in '/'
  std::string signed_by;  ///< raw: key file paths and/or fingerprints, or an armoured key block
  bool trusted_yes = false;  ///< [trusted=yes]: apt skips verification; fimctl does not trust it
};
/// One-line format ("deb [opt=val ...] uri suite [component...]"), '#' comments.
std::vector<AptSource> parse_sources_list(std::string_view text, const std::string& file);
/// deb822 format (Types, URIs, Suites, Signed-By, Trusted, Enabled), field names as apt reads
/// them (case-insensitive); only stanzas with Types deb or deb-src.
std::vector<AptSource> parse_sources_deb822(std::string_view text, const std::string& file);
/// apt's URItoFileName: the scheme and user:password dropped, unsafe characters %-quoted,
/// '/' -> '_' ("http://127.0.0.1:8080/dists/x/InRelease" -> "127.0.0.1:8080_dists_x_InRelease").
std::string uri_to_filename(std::string_view uri);
/// The lists file name of the source's InRelease without "InRelease" (apt's MetaIndexURI).
std::string release_stem(const AptSource& s);
/// Every source apt reads under opts.root; unreadable files are noted in *problems.
std::vector<AptSource> read_apt_sources(const Options& o, std::vector<std::string>* problems);

/// An ASCII-armoured OpenPGP block ("-----BEGIN PGP PUBLIC KEY BLOCK-----") -> its binary
/// packets; several blocks are concatenated; a CRC24 line, when present, must match.
Result<std::string> dearmor(std::string_view text);

/// A keyring held in memory (binary OpenPGP packets or a keybox), handed to gpgv as a memfd.
struct Keyring {
  std::string name;  ///< where it came from, for messages
  UniqueFd fd;       ///< memfd with the binary keyring
};
/// Who may sign the Release files of one source, as apt binds keys to sources.
struct Trust {
  std::vector<const Keyring*> keyrings;   ///< gpgv's --keyring list
  std::vector<std::string> fingerprints;  ///< Signed-By fingerprints (upper case; '!' = exact key)
  std::string refused;                    ///< non-empty: never trusted, and why
  std::string label;                      ///< "the default keyrings", "Signed-By /etc/...", ...
};
/// apt's keyrings and the trust of each lists file stem (release_stem) of its sources.
class AptKeys {
 public:
  /// Reads trusted.gpg, trusted.gpg.d/*.gpg|*.asc, sources and their Signed-By keys; with
  /// opts.keyrings set, those (host paths) are the only keyrings and bind every stem.
  static AptKeys load(const Options& o);
  /// The trust of lists files with this stem; refused when no configured source explains it.
  Trust trust_for(const std::string& stem) const;
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::unique_ptr<Keyring>> keyrings_;
  std::vector<const Keyring*> defaults_;
  std::map<std::string, Trust> by_stem_;
  std::optional<Trust> everything_;  // opts.keyrings
  std::vector<std::string> problems_;
};

/// What gpgv's --status-fd lines say about a signed file, judged as apt's gpgv method does.
struct GpgvVerdict {
  bool ok = false;
  std::string why;     ///< when not ok: expired key, revoked key, unknown key, weak digest, ...
  std::string signer;  ///< the accepted signature's key fingerprint
};
/// `fingerprints` non-empty: only signatures by those keys (or, without '!', their subkeys) count.
GpgvVerdict judge_gpgv_status(std::string_view status, const std::vector<std::string>& fingerprints);
/// Verifies `data` with gpgv against `trust`: clearsigned (InRelease) when `detached` is null,
/// else the detached signature over `data` (Release + Release.gpg). Returns the text that was
/// signed (gpgv --output for InRelease; `data` itself for a detached signature).
Result<std::string> gpgv_verify(const Options& o, const Trust& trust, const std::string& data,
                                const std::string* detached);
/// A Release text's Valid-Until, if any, is after `now` (apt refuses an expired Release).
Status check_valid_until(std::string_view release, int64_t now);

/// Reads `path` (as seen inside opts.root) whole, at most `limit` bytes; inside a root other
/// than "/" with RESOLVE_IN_ROOT, so a symlink in it cannot lead out.
Result<std::string> read_in_root(const Options& o, const Bytes& path, size_t limit);

/// Opens `path` (as seen inside opts.root) with `flags`, the same way.
int open_in(const Options& o, const Bytes& path, int flags);

/// `rel` under `root` ("/" + "var/lib/dpkg" or "/srv/r" + "/var/lib/dpkg").
Bytes under_root(const Bytes& root, const Bytes& rel);

}  // namespace fim::pkg

// Files that maintainer scripts and triggers regenerate (derived.cpp, pyc.cpp; fim/pkg.h,
// Evidence::Derived).
namespace fim::pkg {

/// dir/__pycache__/NAME.cpython-3XY[.opt-N].pyc (py3compile, compileall) or a legacy
/// dir/NAME.pyc beside its dir/NAME.py.
struct PycName {
  Bytes source;         ///< the .py it is compiled from
  std::string version;  ///< "3.11"; empty for a legacy name (the header's magic tells)
  int optimize = 0;     ///< from ".opt-N"
};
std::optional<PycName> parse_pyc_name(const Bytes& path);

/// The 16-byte header (PEP 552): magic, flags (0 timestamp, 1 unchecked hash, 3 checked hash),
/// then the source's mtime and size (both mod 2^32) or its SipHash.
struct PycHeader {
  std::string magic;  ///< the 4 raw bytes
  uint32_t flags = 0;
  uint32_t mtime = 0, size = 0;
  bool hash_based() const { return flags & 1; }
};
std::optional<PycHeader> parse_pyc_header(std::string_view data);
/// "3.11" for the magic of a CPython 3.8 .. 3.13 .pyc; empty when unknown.
std::string python_of_magic(std::string_view magic);

/// The user and group id confined children run as when fimctl is root: one no account has, so
/// no other process can signal or ptrace them.
constexpr uid_t kConfinedId = 2147483646;

/// Starts the executable open at `exe_fd` (verified by its caller, run as that very inode)
/// with a fixed argv and an empty environment, stdin and stdout the socket `io`, stderr
/// /dev/null, other descriptors closed; unprivileged (kConfinedId, no groups, no new privileges) when we are root, and within
/// rlimits (CPU seconds, address space, file size, no processes). Returns its pid.
Result<pid_t> spawn_confined(int exe_fd, const std::vector<std::string>& argv, int io, uint64_t cpu_seconds,
                             uint64_t file_size);

/// One confined python3.X for all the .pyc files of a check: it compiles each verified source
/// and compares the code objects with the .pyc's, recursively, all but co_filename.
class PycChecker {
 public:
  static Result<std::unique_ptr<PycChecker>> start(int interpreter_fd);
  ~PycChecker();
  const std::string& magic() const { return magic_; }  ///< importlib.util.MAGIC_NUMBER
  struct Answer {
    bool same_code = false;  ///< the code objects are equal
    bool hash_ok = true;     ///< hash-based: the header's hash is the source's
  };
  /// An error (the child crashed, timed out, could not load it) is "unverifiable", never verified.
  Result<Answer> compare(std::string_view source, std::string_view pyc, int optimize);

 private:
  PycChecker() = default;
  pid_t pid_ = -1;
  UniqueFd io_;
  std::string magic_;
};

/// Explains unpackaged files regenerated from verified inputs by a verified tool: .pyc files,
/// /etc/ld.so.cache. Only on the host's own root ("/"): the tools run here.
class Deriver {
 public:
  /// What a package's .deb holds (the Verifier's: apt's cache, mirrors, the apt hook's signed
  /// records), with the evidence behind it; null and *why when unknown.
  using Members = std::function<const std::map<Bytes, DebMember>*(const Package&, std::string* why, Evidence* ev)>;
  /// The SHA-256 the verified baseline records for a path (none: not in it): a tool unchanged
  /// since the signed baseline is trusted as the baseline is.
  using BaselineDigest = std::function<std::optional<Bytes>(const Bytes& path)>;
  Deriver(const Options& o, DpkgDb& db, Members members, BaselineDigest baseline);
  ~Deriver();
  /// False when `now` is nothing this knows how to regenerate; else *n is the verdict.
  bool explain(const Record* old, const Record& now, Note* n);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fim::pkg
