// SPDX-License-Identifier: GPL-2.0-or-later
// attr::Collector: everything fimctl records about one entry, read relative to the parent
// directory fd the walker holds (docs/design.md, Conventions 5).
//
// Safety rules, each from a measured attack (docs/design.md, Threat model):
//  - only entries the walk's lstat saw as regular files are opened, with
//    O_NOFOLLOW|O_NONBLOCK|O_NOCTTY: a symlink swapped in is never followed (ELOOP), a FIFO
//    never blocks; reads stop at the size lstat saw, and the fstat after the read rejects
//    anything that is not that regular file. (Swapping in a device node takes root: mknod
//    needs CAP_MKNOD, and /dev is another filesystem, so no hard link to one can be made.)
//  - the digest is kept only when (dev, ino, size, mtime, ctime) are the same before and after
//    the read and the byte count equals the size; otherwise the file is re-read, and after
//    `max_attempts` it is `unstable` with no digest (a torn hash is never stored); each read
//    starts by waiting out a write in progress (SEEK_DATA takes the inode lock a buffered
//    write holds), and a file modified within the last second is read twice and kept only if
//    both digests agree, because a write sets mtime when it starts (a read overlapping one
//    that began after our stat sees equal metadata before and after);
//  - xattrs use the f*/l* calls (AIDE issue #156: getxattr followed symlinks).
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/fsverity.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "fim/attr.h"
#include "fim/base/sys.h"
#include "fim/base/digest.h"

namespace fim {
namespace {

constexpr size_t kReadBuffer = 256 * 1024;
constexpr AttrMask kXattrFamily = attr_bit(Attr::Xattrs) | attr_bit(Attr::AclAccess) |
                                  attr_bit(Attr::AclDefault) | attr_bit(Attr::Caps) |
                                  attr_bit(Attr::Selinux);

bool same_file_state(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

/// Where xattrs are read from: an open fd, or a path that does not follow its last
/// component ("/proc/self/fd/DIRFD/NAME": still relative to the directory fd we hold).
struct XattrSource {
  int fd = -1;
  std::string path;

  ssize_t list(char* buf, size_t n) const {
    return fd >= 0 ? ::flistxattr(fd, buf, n) : ::llistxattr(path.c_str(), buf, n);
  }
  ssize_t get(const char* name, void* buf, size_t n) const {
    return fd >= 0 ? ::fgetxattr(fd, name, buf, n) : ::lgetxattr(path.c_str(), name, buf, n);
  }
};

bool xattr_unsupported(int err) { return err == ENOTSUP || err == ENOSYS; }

/// Reads every xattr. Returns 0 or an errno; ENOTSUP means "no xattrs here".
int read_xattrs(const XattrSource& src, std::vector<XattrEntry>* out) {
  std::vector<char> names;
  for (int tries = 0;; ++tries) {
    const ssize_t n = src.list(nullptr, 0);
    if (n < 0) return xattr_unsupported(errno) ? 0 : errno;
    if (n == 0) return 0;
    names.resize(static_cast<size_t>(n));
    const ssize_t m = src.list(names.data(), names.size());
    if (m >= 0) {
      names.resize(static_cast<size_t>(m));
      break;
    }
    if (errno != ERANGE || tries > 8) return errno;  // the list grew meanwhile: try again
  }
  std::vector<char> value;
  for (size_t off = 0; off < names.size();) {
    const char* name = names.data() + off;
    const size_t len = ::strnlen(name, names.size() - off);
    off += len + 1;
    if (len == 0 || off > names.size() + 1) continue;
    XattrEntry e;
    e.name.assign(name, len);
    for (int tries = 0;; ++tries) {
      const ssize_t n = src.get(e.name.c_str(), nullptr, 0);
      if (n < 0 && errno == ENODATA) break;  // removed meanwhile
      if (n < 0) return errno;
      value.resize(static_cast<size_t>(n));
      const ssize_t m = src.get(e.name.c_str(), value.data(), value.size());
      if (m >= 0) {
        e.value.assign(value.data(), static_cast<size_t>(m));
        out->push_back(std::move(e));
        break;
      }
      if (errno != ERANGE || tries > 8) return errno;
    }
  }
  return 0;
}

/// Splits the xattrs into the attributes that have their own meaning and the rest.
void store_xattrs(std::vector<XattrEntry> all, FileType type, AttrMask mask, Record* r) {
  const auto want = [&](Attr a) { return (mask & attr_bit(a)) != 0; };
  Bytes acl_access, acl_default, caps, selinux;
  std::vector<XattrEntry> rest;
  for (auto& e : all) {
    if (e.name == "system.posix_acl_access")
      acl_access = std::move(e.value);
    else if (e.name == "system.posix_acl_default")
      acl_default = std::move(e.value);
    else if (e.name == "security.capability")
      caps = std::move(e.value);
    else if (e.name == "security.selinux")
      selinux = std::move(e.value);
    else
      rest.push_back(std::move(e));
  }
  // The label is a C string; the trailing NUL is an encoding detail, not part of the label.
  while (!selinux.empty() && selinux.back() == '\0') selinux.pop_back();
  if (want(Attr::Xattrs)) r->set_bytes(Attr::Xattrs, encode_xattrs(std::move(rest)));
  if (want(Attr::AclAccess)) r->set_bytes(Attr::AclAccess, std::move(acl_access));
  if (want(Attr::AclDefault) && type == FileType::Dir)
    r->set_bytes(Attr::AclDefault, std::move(acl_default));
  if (want(Attr::Caps) && type == FileType::File) r->set_bytes(Attr::Caps, std::move(caps));
  if (want(Attr::Selinux)) r->set_bytes(Attr::Selinux, std::move(selinux));
}

void set_failure(Record* r, EntryStatus s, int err) {
  r->status = s;
  r->sys_errno = err;
}

EntryStatus status_for_open_errno(int err) {
  switch (err) {
    case ENOENT: return EntryStatus::Vanished;
    case ELOOP:      // became a symlink
    case ENOTDIR:    // became something else
    case ENXIO:      // became a socket or a device without a driver
      return EntryStatus::Unstable;
    default: return EntryStatus::Unreadable;
  }
}

}  // namespace

Bytes file_handle_of(int dirfd, const char* name) {
  // The handle names the inode the way the filesystem itself does (for ext4, xfs, tmpfs: inode
  // and generation), so a reused inode number is a different handle. No open is needed.
  union {
    struct file_handle fh;
    char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
  } h;
  h.fh.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(dirfd, name, &h.fh, &mount_id, 0) != 0) return {};  // EOPNOTSUPP: none here
  Bytes out(4, '\0');
  const uint32_t type = htole32(static_cast<uint32_t>(h.fh.handle_type));
  std::memcpy(out.data(), &type, 4);
  out.append(reinterpret_cast<const char*>(h.fh.f_handle), h.fh.handle_bytes);
  return out;
}

Bytes measure_verity(int fd) {
  constexpr size_t kMaxDigest = 64;
  alignas(struct fsverity_digest) unsigned char buf[sizeof(struct fsverity_digest) + kMaxDigest] = {};
  auto* d = reinterpret_cast<struct fsverity_digest*>(buf);
  d->digest_size = kMaxDigest;
  if (::ioctl(fd, FS_IOC_MEASURE_VERITY, d) != 0) return {};  // ENODATA: not sealed; ENOTTY: no fs-verity
  const char* alg = d->digest_algorithm == FS_VERITY_HASH_ALG_SHA256   ? "sha256:"
                    : d->digest_algorithm == FS_VERITY_HASH_ALG_SHA512 ? "sha512:"
                                                                        : nullptr;
  if (!alg || d->digest_size > kMaxDigest) return {};
  return alg + hex_encode(std::string_view(reinterpret_cast<const char*>(buf + sizeof(struct fsverity_digest)), d->digest_size));
}

struct Collector::Impl {
  std::vector<char> buf = std::vector<char>(kReadBuffer);
  Digester digester;
  bool noatime = true;  // O_NOATIME needs ownership or CAP_FOWNER; dropped after one EPERM

  int open_file(int dirfd, const char* name) {
    constexpr int kFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    if (noatime) {
      const int fd = ::openat(dirfd, name, kFlags | O_NOATIME);
      if (fd >= 0 || errno != EPERM) return fd;
      noatime = false;
    }
    return ::openat(dirfd, name, kFlags);
  }
};

namespace {

/// Whether the file's content changed within the last second (mtime, or ctime for a write
/// through a hard link whose mtime was set back).
bool recently_modified(const struct stat& st) {
  struct timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  const int64_t t = timespec_ns(now);
  return std::max(timespec_ns(st.st_mtim), timespec_ns(st.st_ctim)) > t - 1'000'000'000;
}

}  // namespace

Collector::Collector() : impl_(std::make_unique<Impl>()) {}
Collector::~Collector() = default;

void Collector::collect(const Target& t, const CollectOptions& opts, Record* out) {
  *out = Record{};
  out->path = t.path;
  const AttrMask mask = opts.mask;
  const FileType type = file_type_of(t.st.st_mode);
  fill_stat_attrs(t.st, mask, out);
  const int dirfd = t.dir->get();
  const char* name = t.name.c_str();
  if ((mask & attr_bit(Attr::Btime)) && t.btime_ns >= 0) out->set_num(Attr::Btime, t.btime_ns);
  if (mask & attr_bit(Attr::Handle)) {
    if (Bytes h = file_handle_of(dirfd, name); !h.empty()) out->set_bytes(Attr::Handle, std::move(h));
  }
  out->rolling = opts.rolling;
  if (opts.plan == EntryEvidence::Stat || opts.plan == EntryEvidence::Watched) {
    // Nothing is opened: the walk's stat and the handle are the evidence. A handle other than
    // the baseline's (a reused inode number) means it is not the recorded file: read it all.
    const Bytes& h = out->has(Attr::Handle) ? out->get(Attr::Handle).bytes : Bytes();
    if (h == opts.expect_handle) {
      out->evidence = opts.plan;
      return;
    }
  }

  UniqueFd fd;  // for regular files and directories: the source of xattrs and flags
  if (type == FileType::File) {
    const bool want_sha = mask & attr_bit(Attr::Sha256);
    const bool want_xxh = mask & attr_bit(Attr::Xxh128);
    const bool want_content = want_sha || want_xxh;
    const bool want_fd = want_content || (mask & (kXattrFamily | attr_bit(Attr::Flags)));
    bool done = !want_fd;
    // The walk's lstat stands in for the "before" stat of the first attempt: one syscall less
    // per file (they dominate on small files). What it cannot prove (that the fd is the inode
    // the walk saw, still a regular file) the fstat after the read proves, and the read is
    // bounded by the size seen, so nothing swapped in between is read past that. Only a
    // retry, where the walk's stat is stale, pays for a fresh fstat first.
    struct stat before = t.st;
    Bytes first_read;  // digests of a read that needs a second, agreeing one
    if (opts.plan == EntryEvidence::Verity && want_content) {
      // The kernel's measure of its Merkle tree: every read of this file is checked against
      // it, so content other than the baseline's cannot be read without EIO. Nothing is read.
      fd.reset(impl_->open_file(dirfd, name));
      struct stat now;
      if (fd.valid() && ::fstat(fd.get(), &now) == 0 && S_ISREG(now.st_mode) &&
          measure_verity(fd.get()) == opts.expect_verity) {
        fill_stat_attrs(now, mask, out);
        out->set_bytes(Attr::Verity, opts.expect_verity);
        out->evidence = EntryEvidence::Verity;
        done = true;
      }
    }
    for (int attempt = 0; !done && attempt < std::max(1, opts.max_attempts); ++attempt) {
      fd.reset(impl_->open_file(dirfd, name));
      if (!fd.valid()) {
        set_failure(out, status_for_open_errno(errno), errno);
        return;
      }
      const bool hash = want_content && !(opts.max_hash_bytes && static_cast<uint64_t>(before.st_size) > opts.max_hash_bytes);
      // Wait out a write in progress: a buffered write holds the inode lock, which
      // SEEK_DATA takes too (ext4, tmpfs, btrfs; elsewhere it returns at once). Without it a
      // write that set mtime before our stat and is still copying would go unseen. It also
      // moves the file offset past a leading hole, so the reads below are preads from
      // offset 0: a sparse file is hashed as the bytes it reads as, holes included.
      if (hash) (void)::lseek(fd.get(), 0, SEEK_DATA);
      if (attempt > 0 && ::fstat(fd.get(), &before) != 0) {
        set_failure(out, EntryStatus::Unreadable, errno);
        return;
      }
      // A growing log is hashed up to the size the walk saw, whatever was appended since:
      // the digest is of exactly the bytes the recorded size covers (merge.cpp compares the
      // same prefix later), and an append during the read does not make it unstable.
      const uint64_t expected = static_cast<uint64_t>(opts.growing ? t.st.st_size : before.st_size);
      uint64_t total = 0;
      int read_errno = 0;
      if (hash) {
        impl_->digester.begin(want_sha, want_xxh);
        for (;;) {
          const size_t want = opts.growing ? static_cast<size_t>(std::min<uint64_t>(impl_->buf.size(), expected - total))
                                           : impl_->buf.size();
          if (want == 0) break;  // growing: the recorded size is read
          const ssize_t n = ::pread(fd.get(), impl_->buf.data(), want, static_cast<off_t>(total));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            read_errno = errno;
            break;
          }
          if (n == 0) break;
          impl_->digester.update(impl_->buf.data(), static_cast<size_t>(n));
          total += static_cast<uint64_t>(n);
          if (opts.progress) opts.progress->fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
          if (opts.read_total && attempt == 0)  // a re-read is not more of the run's bytes
            opts.read_total->fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
          if (total > expected) break;  // grew, or not the file we stat'ed: retried below
          // A short read of a regular file is end of file; the fstat below proves the size.
          if (static_cast<size_t>(n) < impl_->buf.size() && total == expected) break;
        }
      }
      struct stat after;
      if (::fstat(fd.get(), &after) != 0) {
        set_failure(out, EntryStatus::Unreadable, errno);
        return;
      }
      if (!S_ISREG(after.st_mode)) {  // swapped for a FIFO or device after the walk's lstat
        fill_stat_attrs(after, mask, out);
        set_failure(out, EntryStatus::Unstable, 0);
        fd.reset();
        return;
      }
      fill_stat_attrs(after, mask, out);  // metadata of exactly the inode that was read
      if (read_errno) {
        set_failure(out, EntryStatus::Unreadable, read_errno);
        return;
      }
      if (!hash) {
        if (want_content) set_failure(out, EntryStatus::TooLarge, 0);
        done = true;
        break;
      }
      const bool settled = opts.growing
          ? before.st_dev == after.st_dev && before.st_ino == after.st_ino && total == expected &&
                static_cast<uint64_t>(after.st_size) >= expected
          : same_file_state(before, after) && total == static_cast<uint64_t>(after.st_size);
      if (settled) {
        Bytes sha, xxh;
        impl_->digester.finish(&sha, &xxh);
        // A write sets mtime when it starts, so a read overlapping a write that began just
        // before it sees the same metadata before and after and may still be half old, half
        // new. For a file modified within the last second the digest counts only when a
        // second read agrees with it (docs/design.md, Threat model, T21); a file that keeps
        // changing ends unstable.
        if (recently_modified(after)) {
          Bytes both = sha + xxh;
          if (first_read.empty() || first_read != both) {
            first_read = std::move(both);
            continue;
          }
        }
        if (opts.growing && (mask & attr_bit(Attr::Size))) out->set_num(Attr::Size, static_cast<int64_t>(expected));
        if (want_sha) out->set_bytes(Attr::Sha256, std::move(sha));
        if (want_xxh) out->set_bytes(Attr::Xxh128, std::move(xxh));
        bytes_hashed_ += total;  // the content a digest was recorded for (re-reads not counted)
        done = true;
      }
    }
    if (!done) set_failure(out, EntryStatus::Unstable, 0);
  } else if (type == FileType::Dir && (mask & (kXattrFamily | attr_bit(Attr::Flags)))) {
    fd.reset(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
      set_failure(out, status_for_open_errno(errno), errno);
      return;
    }
    struct stat now;
    if (::fstat(fd.get(), &now) != 0 || now.st_ino != t.st.st_ino || now.st_dev != t.st.st_dev) {
      set_failure(out, EntryStatus::Unstable, 0);
      return;
    }
  } else if (type == FileType::Symlink && (mask & attr_bit(Attr::Link))) {
    Bytes target(256, '\0');
    for (;;) {
      const ssize_t n = ::readlinkat(dirfd, name, target.data(), target.size());
      if (n < 0) {
        set_failure(out, errno == EINVAL ? EntryStatus::Unstable : status_for_open_errno(errno),
                    errno == EINVAL ? 0 : errno);
        return;
      }
      if (static_cast<size_t>(n) < target.size()) {
        target.resize(static_cast<size_t>(n));
        break;
      }
      target.resize(target.size() * 2);
    }
    out->set_bytes(Attr::Link, std::move(target));
  }

  if (mask & kXattrFamily) {
    XattrSource src;
    if (fd.valid()) {
      src.fd = fd.get();
    } else {
      char prefix[64];
      std::snprintf(prefix, sizeof prefix, "/proc/self/fd/%d/", dirfd);
      src.path = prefix + t.name;
    }
    std::vector<XattrEntry> xattrs;
    if (const int err = read_xattrs(src, &xattrs); err == 0) {
      store_xattrs(std::move(xattrs), type, mask, out);
    } else if (out->status == EntryStatus::Ok) {
      set_failure(out, err == ENOENT ? EntryStatus::Vanished : EntryStatus::Unreadable, err);
    }
  }
  if (fd.valid() && type == FileType::File && (mask & attr_bit(Attr::Verity)) && !out->has(Attr::Verity)) {
    if (Bytes v = measure_verity(fd.get()); !v.empty()) out->set_bytes(Attr::Verity, std::move(v));
  }
  if (fd.valid() && (mask & attr_bit(Attr::Flags))) {
    int flags = 0;
    if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) == 0)
      out->set_num(Attr::Flags, static_cast<uint32_t>(flags));
    // ENOTTY/EOPNOTSUPP: this filesystem has no such flags; the attribute is simply absent.
  }
}

bool Collector::prefix_sha256(int dirfd, const Bytes& name, const Record& seen, uint64_t len, Bytes* out) {
  UniqueFd fd(impl_->open_file(dirfd, name.c_str()));
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      (seen.has(Attr::Inode) && static_cast<int64_t>(st.st_ino) != seen.get(Attr::Inode).num) || static_cast<uint64_t>(st.st_size) < len)
    return false;
  impl_->digester.begin(true, false);
  for (uint64_t total = 0; total < len;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(impl_->buf.size(), len - total));
    const ssize_t n = ::pread(fd.get(), impl_->buf.data(), want, static_cast<off_t>(total));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // an error, or truncated under us: no digest to vouch with
    impl_->digester.update(impl_->buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  Bytes xxh;
  impl_->digester.finish(out, &xxh);
  bytes_hashed_ += len;
  return true;
}

}  // namespace fim
