// SPDX-License-Identifier: GPL-2.0-or-later
// Attributes: declared once in FIM_ATTRIBUTES (docs/design.md, Conventions 8). The enum, the
// baseline columns, the canonical row encoding, the diff loop and every report read it.
#pragma once

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fim/base/bytes.h"
#include "fim/base/fd.h"

namespace fim {

/// How a value is stored (INTEGER or BLOB column) and rendered.
enum class AttrKind : uint8_t {
  Type,    ///< FileType as integer
  Mode,    ///< permission bits (st_mode & 07777), rendered octal
  Int,     ///< plain number, a JSON number
  Time,    ///< nanoseconds since the epoch, rendered ISO 8601
  DevNo,   ///< dev_t, rendered major:minor
  Flags,   ///< chattr flags (FS_IOC_GETFLAGS), rendered as names
  Text,    ///< raw bytes (link target, SELinux label)
  Digest,  ///< raw digest bytes, rendered hex
  Xattrs,  ///< canonical list of (name, value), see encode_xattrs()
  Acl,     ///< raw system.posix_acl_* value, rendered like getfacl
  Caps,    ///< raw security.capability value, rendered like getcap
};

// X(Id, key, kind). The position is the persisted bit index: append only, never reorder.
// The key is the baseline column name, the JSON key and the report label.
#define FIM_ATTRIBUTES(X)               \
  X(Type, "type", Type)                 \
  X(Mode, "mode", Mode)                 \
  X(Uid, "uid", Int)                    \
  X(Gid, "gid", Int)                    \
  X(Size, "size", Int)                  \
  X(Mtime, "mtime", Time)               \
  X(Ctime, "ctime", Time)               \
  X(Inode, "inode", Int)                \
  X(Dev, "dev", DevNo)                  \
  X(Rdev, "rdev", DevNo)                \
  X(Nlink, "nlink", Int)                \
  X(Link, "link", Text)                 \
  X(Sha256, "sha256", Digest)           \
  X(Xattrs, "xattrs", Xattrs)           \
  X(AclAccess, "acl_access", Acl)       \
  X(AclDefault, "acl_default", Acl)     \
  X(Caps, "caps", Caps)                 \
  X(Selinux, "selinux", Text)           \
  X(Flags, "flags", Flags)              \
  X(Xxh128, "xxh128", Digest)           \
  X(Btime, "btime", Time)               \
  X(Handle, "handle", Digest)           \
  X(Verity, "verity", Text)

enum class Attr : uint8_t {
#define FIM_X(id, key, kind) id,
  FIM_ATTRIBUTES(FIM_X)
#undef FIM_X
};

inline constexpr size_t kAttrCount = 0
#define FIM_X(id, key, kind) +1
    FIM_ATTRIBUTES(FIM_X)
#undef FIM_X
    ;

using AttrMask = uint64_t;
constexpr AttrMask attr_bit(Attr a) { return AttrMask{1} << static_cast<unsigned>(a); }
inline constexpr AttrMask kAllAttrs = (AttrMask{1} << kAttrCount) - 1;

struct AttrInfo {
  Attr id;
  std::string_view key;
  AttrKind kind;
};
const AttrInfo& attr_info(Attr a);
std::optional<Attr> attr_from_key(std::string_view key);
/// True for kinds stored as INTEGER; the others are BLOBs.
bool attr_is_integer(Attr a);

/// File type, persisted as an integer: append only.
enum class FileType : uint8_t { Unknown = 0, File, Dir, Symlink, Fifo, Socket, CharDev, BlockDev };
FileType file_type_of(mode_t mode);
std::string_view file_type_name(FileType t);

/// Every entry ends in exactly one status (docs/design.md, Architecture); append only.
enum class EntryStatus : uint8_t {
  Ok = 0,
  Unreadable,  ///< open or read failed (errno kept)
  Vanished,    ///< gone between directory listing and inspection
  Unstable,    ///< changed while it was inspected, retries exhausted
  TooLarge,    ///< over the hash size limit: metadata only (a policy choice)
  SkippedFs,   ///< filesystem type excluded by the policy (a policy choice)
  Timeout,     ///< inspection exceeded its time budget
};
inline constexpr int kEntryStatusCount = 7;
std::string_view entry_status_name(EntryStatus s);
/// Failures set exit bit 8; policy choices (too_large, skipped_fs) do not.
bool entry_status_is_failure(EntryStatus s);

struct AttrValue {
  int64_t num = 0;
  Bytes bytes;
  bool operator==(const AttrValue&) const = default;
};

/// What "unchanged" rests on for one entry (docs/design.md, Evidence), strongest first; the
/// order is the report's. Not stored in baselines.
enum class EntryEvidence : uint8_t {
  Hashed,   ///< read and hashed in this run (every attribute read)
  Verity,   ///< the kernel's fs-verity digest equals the baseline's; metadata read
  Watched,  ///< a gapless watch daemon saw no event on it since it was last hashed
  Stat,     ///< identity and times (dev, inode, handle, btime, ctime, mtime, size) as recorded
};
inline constexpr int kEvidenceCount = 4;
std::string_view evidence_name(EntryEvidence e);

/// What fimctl knows about one path: the unit stored in a baseline and compared by diff.
struct Record {
  Bytes path;
  EntryStatus status = EntryStatus::Ok;
  int sys_errno = 0;  ///< why the status is not ok, when a system call said so
  /// check --fast: what this run's verdict rests on; Stat, Watched and Verity records lack the
  /// attributes that were not read (the merge takes them from the verified baseline row).
  EntryEvidence evidence = EntryEvidence::Hashed;
  bool rolling = false;  ///< hashed because its turn in the rolling re-hash came (fast mode)
  AttrMask have = 0;  ///< attributes actually collected
  std::array<AttrValue, kAttrCount> v;

  bool has(Attr a) const { return (have & attr_bit(a)) != 0; }
  const AttrValue& get(Attr a) const { return v[static_cast<size_t>(a)]; }
  void set_num(Attr a, int64_t n) {
    v[static_cast<size_t>(a)].num = n;
    have |= attr_bit(a);
  }
  void set_bytes(Attr a, Bytes b) {
    v[static_cast<size_t>(a)].bytes = std::move(b);
    have |= attr_bit(a);
  }
  void drop(Attr a) {
    v[static_cast<size_t>(a)] = AttrValue{};
    have &= ~attr_bit(a);
  }
  FileType type() const { return static_cast<FileType>(get(Attr::Type).num); }
};

/// Human-readable value ("0644", "2024-01-01T00:00:00.000000000Z", "user::rw-,..."). Bytes of
/// Text attributes are returned as they are: escape them at the output edge.
std::string render_attr(Attr a, const AttrValue& v);

// --- decoders of kernel formats (attacker-controlled bytes: total, never trusting lengths) ---
/// system.posix_acl_{access,default} value -> "user::rw-,user:1000:r--,group::r--,mask::r--,other::r--".
std::string render_acl(std::string_view raw);
/// security.capability value -> "cap_net_raw,cap_sys_admin=ep" (plus " rootid=N" for v3).
std::string render_caps(std::string_view raw);
/// FS_IOC_GETFLAGS bits -> "immutable,append,extents"; "-" when none.
std::string render_flags(uint32_t flags);
/// Canonical encoding of xattrs sorted by name: per entry u32le name length, name,
/// u32le value length, value. decode returns false on a malformed buffer.
struct XattrEntry {
  Bytes name;
  Bytes value;
};
Bytes encode_xattrs(std::vector<XattrEntry> entries);
bool decode_xattrs(std::string_view raw, std::vector<XattrEntry>* out);
/// "name=\"text\"" or "name=0xHEX", joined by "; ": always valid UTF-8 and terminal-safe.
std::string render_xattrs(std::string_view raw);

// --- collection ---

/// One entry to inspect: the parent directory fd (shared with the walker), the name in it,
/// the full path for reports, and what lstat said during the walk.
struct Target {
  SharedFd dir;
  Bytes name;
  Bytes path;
  struct stat st {};
  int64_t btime_ns = -1;  ///< birth time from the walk's statx; -1 where the filesystem has none
};

struct CollectOptions {
  AttrMask mask = kAllAttrs;
  uint64_t max_hash_bytes = 0;  ///< 0 = no limit
  int max_attempts = 3;         ///< re-reads of a file that changes while hashed
  /// Bumped as file data is read, so a watcher can tell a slow read from one that is stuck
  /// (a hung FUSE or network filesystem); may be null.
  std::atomic<uint64_t>* progress = nullptr;
  /// Also bumped as file data is read: the run's byte count for its progress line; may be null.
  std::atomic<uint64_t>* read_total = nullptr;
  /// A growing log (the `>` group): content is hashed up to the size the walk saw and that
  /// size is recorded with it, so appends during the read neither tear nor destabilise it.
  bool growing = false;
  /// check --fast's plan for this entry (src/pipeline/fast.cpp). Stat or Watched: no open, only
  /// the walk's stat, btime and the file handle, which must equal `expect_handle` (else the
  /// entry is collected in full). Verity: opened and measured, not read, when the measure equals
  /// `expect_verity` (else hashed). Hashed: everything, as always.
  EntryEvidence plan = EntryEvidence::Hashed;
  bool rolling = false;  ///< Hashed because the rolling re-hash chose it
  Bytes expect_handle;
  Bytes expect_verity;
};

/// Per-thread collector: owns the read buffer and digest contexts, so workers never share
/// mutable state. Collects everything `opts.mask` selects; never throws, never logs: any
/// failure ends up in Record::status.
class Collector {
 public:
  Collector();
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  void collect(const Target& t, const CollectOptions& opts, Record* out);

  /// SHA-256 of the first `len` bytes of DIRFD/NAME, read from offset 0, if it is still the
  /// regular file `seen` recorded (same inode) and at least that long: a growing log's old
  /// prefix, which must not have been rewritten (docs/design.md, Threat model). False when it
  /// cannot be read whole: the caller then has no evidence the prefix is intact.
  bool prefix_sha256(int dirfd, const Bytes& name, const Record& seen, uint64_t len, Bytes* out);

  uint64_t bytes_hashed() const { return bytes_hashed_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t bytes_hashed_ = 0;
};

/// The file handle of DIRFD/NAME (name_to_handle_at, not following a symlink): u32le handle
/// type, then the handle's bytes. Empty where the filesystem gives none.
Bytes file_handle_of(int dirfd, const char* name);
/// The fs-verity digest of an open regular file as "sha256:HEX" (FS_IOC_MEASURE_VERITY: the
/// kernel's, no data read). Empty when the file is not sealed or the filesystem has no fs-verity.
Bytes measure_verity(int fd);

/// Fills the stat-derived attributes of `r` from `st`, restricted to `mask`.
void fill_stat_attrs(const struct stat& st, AttrMask mask, Record* r);

}  // namespace fim
