// SPDX-License-Identifier: GPL-2.0-or-later
// An image's root assembled read-only (fim/image.h): each archived layer unpacked into a
// directory of its own with its whiteouts turned into overlayfs' (what containers-storage
// does), then every layer stacked in one read-only overlay mount, so whiteouts, opaque
// directories and hard links are applied by the kernel exactly as in the runtime's overlay.
// Layers are untrusted: no member may leave its layer's directory (".." refused, no symlink
// followed when a member's parent is opened), trusted.overlay.* attributes are refused (they
// would forge whiteouts or redirects), and any malformed member fails the build.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "fim/base/spawn.h"
#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "fim/image.h"
#include "fim/tar.h"

namespace fim {
namespace {

constexpr uint64_t kMaxMember = uint64_t{64} << 30;  // a single file larger than this is refused

int open_beneath(int root, const std::string& rel, int flags) {
  struct open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  return static_cast<int>(::syscall(SYS_openat2, root, rel.empty() ? "." : rel.c_str(), &how, sizeof how));
}

/// "./usr/bin/ls", "/usr/bin/ls", "usr/bin/ls/" -> "usr/bin/ls"; "" for the layer's root;
/// false for a name with a ".." component (or NUL), which could only be meant to escape.
bool layer_relative(const std::string& name, std::string* out) {
  std::string r;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string::npos) j = name.size();
    const std::string part = name.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == ".." || part.find('\0') != std::string::npos) return false;
    r += (r.empty() ? "" : "/") + part;
  }
  *out = r;
  return true;
}

void split(const std::string& rel, std::string* dir, std::string* base) {
  const size_t s = rel.rfind('/');
  *dir = s == std::string::npos ? std::string() : rel.substr(0, s);
  *base = s == std::string::npos ? rel : rel.substr(s + 1);
}

class LayerWriter {
 public:
  /// `lowers`: the layers below this one, top first, whose directories give a parent this
  /// layer's archive leaves out its owner, mode and times (as the runtimes do).
  LayerWriter(int root, std::string what, std::vector<int> lowers)
      : root_(root), what_(std::move(what)), lowers_(std::move(lowers)) {}

  Status member(const TarEntry& e, const TarDataReader& data) {
    std::string rel, dir, base;
    if (!layer_relative(e.name, &rel)) return refuse("member " + quote(e.name) + " names a path outside the layer");
    if (rel.empty()) {  // the layer's root itself: its metadata is the image root's
      if (e.type != '5') return refuse("its root is not a directory");
      dirs_[""] = e;
      return {};
    }
    split(rel, &dir, &base);
    FIM_TRY(make_parents(dir));
    UniqueFd parent(open_parent(dir));
    if (!parent.valid())
      return make_error(Errc::Io, what_ + ": cannot open the directory of " + quote(e.name) +
                                      " inside the layer (a symlink on the way is refused)", errno);
    if (base == ".wh..wh..opq") {
      UniqueFd d(open_beneath(root_, dir, O_RDONLY | O_DIRECTORY));
      if (!d.valid() || ::fsetxattr(d.get(), "trusted.overlay.opaque", "y", 1, 0) != 0)
        return make_error(Errc::Io, what_ + ": cannot mark " + quote(dir) + " opaque", errno);
      return {};
    }
    if (base.rfind(".wh..wh.", 0) == 0) return {};  // aufs bookkeeping (.wh..wh.plnk): nothing to apply
    if (base.rfind(".wh.", 0) == 0) {
      const std::string hidden = base.substr(4);
      if (hidden.empty()) return refuse("member " + quote(e.name) + " is a whiteout of nothing");
      FIM_TRY(clear(parent.get(), hidden));
      if (::mknodat(parent.get(), hidden.c_str(), S_IFCHR | 0, ::makedev(0, 0)) != 0)
        return make_error(Errc::Io, what_ + ": cannot write the whiteout of " + quote(e.name), errno);
      return {};
    }
    for (const auto& [k, v] : e.xattrs)
      if (k.rfind("trusted.overlay.", 0) == 0) return refuse("member " + quote(e.name) + " sets " + k);
    if (e.type != '5') FIM_TRY(clear(parent.get(), base));
    const char* n = base.c_str();
    const int p = parent.get();
    int rc = 0;
    switch (e.type) {
      case '5':
        rc = ::mkdirat(p, n, 0700);
        if (rc != 0 && errno == EEXIST) rc = 0;
        dirs_[rel] = e;
        made_.insert(rel);
        break;
      case '0': {
        if (e.size > kMaxMember) return refuse("member " + quote(e.name) + " is larger than any file fimctl accepts");
        FIM_TRY(room_for(e));
        UniqueFd f(::openat(p, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!f.valid()) return make_error(Errc::Io, what_ + ": cannot create " + quote(e.name), errno);
        FIM_TRY(data([&](std::string_view d) { return write_all(f.get(), d, "an image layer's file"); }));
        return finish_file(f.get(), e);
      }
      case '2':
        rc = ::symlinkat(e.link.c_str(), p, n);
        if (rc == 0) rc = ::fchownat(p, n, static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid), AT_SYMLINK_NOFOLLOW);
        if (rc == 0) rc = set_times(p, n, e, AT_SYMLINK_NOFOLLOW);
        break;
      case '1': {
        std::string trel, tdir, tbase;
        if (!layer_relative(e.link, &trel) || trel.empty())
          return refuse("hard link " + quote(e.name) + " points outside the layer");
        split(trel, &tdir, &tbase);
        UniqueFd tparent(open_parent(tdir));
        if (!tparent.valid() || ::linkat(tparent.get(), tbase.c_str(), p, n, 0) != 0)
          return make_error(Errc::Io, what_ + ": hard link " + quote(e.name) + " to " + quote(e.link) +
                                          ", which is not a file of this layer", errno);
        return link_metadata(p, n, e);
      }
      case '3':
      case '4':
      case '6': {
        const mode_t kind = e.type == '3' ? S_IFCHR : e.type == '4' ? S_IFBLK : S_IFIFO;
        rc = ::mknodat(p, n, kind | 0600, ::makedev(e.dev_major, e.dev_minor));
        if (rc == 0) {
          UniqueFd f(::openat(p, n, O_PATH | O_NOFOLLOW | O_CLOEXEC));
          rc = f.valid() ? 0 : -1;
          if (rc == 0) {
            const std::string proc = "/proc/self/fd/" + std::to_string(f.get());
            rc = ::chown(proc.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid));
            if (rc == 0) rc = ::chmod(proc.c_str(), e.mode);
            if (rc == 0) rc = set_times(p, n, e, AT_SYMLINK_NOFOLLOW);
          }
        }
        break;
      }
      default:
        return refuse("member " + quote(e.name) + " has tar type " + quote(std::string(1, e.type)) +
                      ", which an image layer does not use");
    }
    if (rc != 0) return make_error(Errc::Io, what_ + ": cannot unpack " + quote(e.name), errno);
    return {};
  }

  /// Directories last: their owners, modes, attributes and times, once nothing is added below them.
  Status finish() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      UniqueFd d(open_beneath(root_, it->first, O_RDONLY | O_DIRECTORY));
      if (!d.valid()) return make_error(Errc::Io, what_ + ": cannot reopen " + quote(it->first), errno);
      FIM_TRY(finish_file(d.get(), it->second));
    }
    return {};
  }

 private:
  Error refuse(const std::string& why) const { return Error{Errc::Trust, 0, what_ + ": " + why}; }

  /// A layer that would fill the filesystem the baselines and state.db live on is refused
  /// before it does (a decompression bomb must not stop the next check from writing state).
  Status room_for(const TarEntry& e) const {
    struct statvfs v{};
    if (::fstatvfs(root_, &v) != 0) return {};
    const uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
    const uint64_t reserve = std::max<uint64_t>(uint64_t{256} << 20, static_cast<uint64_t>(v.f_blocks) * v.f_frsize / 20);
    if (e.size + reserve > avail)
      return make_error(Errc::Io, what_ + ": unpacking " + quote(e.name) + " (" + std::to_string(e.size) +
                                      " bytes) would leave less than " + std::to_string(reserve >> 20) +
                                      " MiB free where the baselines are: refused");
    return {};
  }

  int open_parent(const std::string& dir) const { return open_beneath(root_, dir, O_PATH | O_DIRECTORY); }

  /// The directories above a member that the archive did not list: made, with the metadata
  /// of the same directory in a lower layer (or root's 0755).
  Status make_parents(const std::string& dir) {
    if (dir.empty() || made_.count(dir)) return {};
    std::string at;
    size_t i = 0;
    while (i <= dir.size()) {
      size_t j = dir.find('/', i);
      if (j == std::string::npos) j = dir.size();
      at = dir.substr(0, j);
      i = j + 1;
      if (made_.count(at)) continue;
      std::string up, name;
      split(at, &up, &name);
      UniqueFd parent(open_parent(up));
      if (!parent.valid()) return make_error(Errc::Io, what_ + ": cannot open " + quote(up) + " inside the layer", errno);
      if (::mkdirat(parent.get(), name.c_str(), 0755) == 0) {
        if (!dirs_.count(at)) dirs_[at] = lower_dir(at);
      } else if (errno != EEXIST) {
        return make_error(Errc::Io, what_ + ": cannot create " + quote(at) + " inside the layer", errno);
      }
      made_.insert(at);
    }
    return {};
  }

  TarEntry lower_dir(const std::string& rel) const {
    TarEntry e;
    e.name = rel;
    e.type = '5';
    e.mode = 0755;
    for (const int l : lowers_) {
      struct stat st{};
      if (::fstatat(l, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        e.mode = st.st_mode & 07777;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.mtime_ns = timespec_ns(st.st_mtim);
        break;
      }
    }
    return e;
  }

  /// What an earlier member of the same layer put at `name` goes (a later member replaces it).
  Status clear(int parent, const std::string& name) const {
    if (::unlinkat(parent, name.c_str(), 0) == 0 || errno == ENOENT) return {};
    if (errno == EISDIR || errno == EPERM) {
      if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) == 0) return {};
      return refuse("a later member replaces the non-empty directory " + quote(name));
    }
    return make_error(Errc::Io, what_ + ": cannot replace " + quote(name), errno);
  }

  static int set_times(int dirfd, const char* name, const TarEntry& e, int flags) {
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = e.mtime_ns / 1'000'000'000;
    ts[0].tv_nsec = ts[1].tv_nsec = e.mtime_ns % 1'000'000'000;
    return ::utimensat(dirfd, name, ts, flags);
  }

  /// A hard link's own header applies to the inode it shares, as the runtimes unpack it
  /// (containerd and containers-storage chmod the link; an owner is changed only when it
  /// differs, since chown drops a file capability).
  Status link_metadata(int parent, const char* name, const TarEntry& e) const {
    UniqueFd f(::openat(parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st{};
    if (!f.valid() || ::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
    if ((st.st_uid != e.uid || st.st_gid != e.gid) &&
        ::fchown(f.get(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid)) != 0)
      return make_error(Errc::Io, what_ + ": cannot set the owner of " + quote(e.name), errno);
    if (::fchmod(f.get(), e.mode) != 0) return make_error(Errc::Io, what_ + ": cannot set the mode of " + quote(e.name), errno);
    for (const auto& [k, v] : e.xattrs)
      if (::fsetxattr(f.get(), k.c_str(), v.data(), v.size(), 0) != 0)
        return make_error(Errc::Io, what_ + ": cannot set " + k + " on " + quote(e.name), errno);
    return {};
  }

  /// Owner before mode and capabilities (chown clears set-id bits and security.capability).
  Status finish_file(int fd, const TarEntry& e) const {
    if (::fchown(fd, static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid)) != 0 || ::fchmod(fd, e.mode) != 0)
      return make_error(Errc::Io, what_ + ": cannot set the owner and mode of " + quote(e.name), errno);
    for (const auto& [k, v] : e.xattrs)
      if (::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0)
        return make_error(Errc::Io, what_ + ": cannot set " + k + " on " + quote(e.name), errno);
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = e.mtime_ns / 1'000'000'000;
    ts[0].tv_nsec = ts[1].tv_nsec = e.mtime_ns % 1'000'000'000;
    if (::futimens(fd, ts) != 0) return make_error(Errc::Io, what_ + ": cannot set the times of " + quote(e.name), errno);
    return {};
  }

  int root_;
  std::string what_;
  std::vector<int> lowers_;
  std::map<std::string, TarEntry> dirs_;  // path order: parents before children
  std::set<std::string> made_;            // directories known to exist in this layer
};

/// The layer's blob checked against its digest, then its tar stream (decompressed by gzip or
/// zstd as children) unpacked into `dir`.
Status unpack_layer(const ImageLayer& layer, int dir, std::vector<int> lowers) {
  const std::string what = "layer " + layer.digest;
  UniqueFd blob(::open(layer.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!blob.valid()) return make_error(Errc::Io, "cannot open " + what + " (" + quote(layer.path) + ")", errno);
  Sha256Stream sha;
  FIM_TRY(read_chunks(blob.get(), "an image layer", [&](std::string_view d) -> Status {
    sha.update(d);
    return {};
  }));
  if ("sha256:" + hex_encode(sha.finish()) != layer.digest)
    return make_error(Errc::Trust, what + " does not match its digest (the layout was altered)");
  if (::lseek(blob.get(), 0, SEEK_SET) != 0) return make_error(Errc::Io, "cannot rewind " + what, errno);
  const std::string& t = layer.media_type;
  const auto ends = [&](std::string_view s) { return t.size() >= s.size() && t.compare(t.size() - s.size(), s.size(), s) == 0; };
  std::vector<std::string> argv;
  if (ends("+gzip") || ends(".gzip")) argv = {"/usr/bin/gzip", "-dc"};
  else if (ends("+zstd")) argv = {"/usr/bin/zstd", "-dcq"};
  else if (!ends(".tar") && !ends("tar"))
    return make_error(Errc::Usage, what + " has media type " + quote(t) + ", which is not a layer fimctl can unpack");
  if (!argv.empty() && ::access(argv[0].c_str(), X_OK) != 0)
    return make_error(Errc::Usage, what + " is " + quote(t) + ": unpacking it needs " + argv[0], errno);
  LayerWriter w(dir, what, std::move(lowers));
  const auto each = [&](const TarEntry& e, const TarDataReader& data) { return w.member(e, data); };
  if (argv.empty()) {
    FIM_TRY(read_tar(blob.get(), what, each));
  } else {
    auto child = Child::start(argv, blob.get());
    if (!child) return child.error();
    const Status st = read_tar(child->out(), what, each);
    const Status done = child->wait();
    FIM_TRY(st);
    FIM_TRY(done);
  }
  return w.finish();
}

/// Removes a scratch tree (unpacked layers) without following symlinks.
void remove_tree(int parent, const char* name) {
  UniqueFd d(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (d.valid()) {
    (void)::fchmod(d.get(), 0700);
    std::vector<std::pair<std::string, bool>> entries;
    if (DIR* dir = ::fdopendir(::dup(d.get()))) {
      while (dirent* de = ::readdir(dir)) {
        if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0)
          entries.emplace_back(de->d_name, de->d_type == DT_DIR);
      }
      ::closedir(dir);
    }
    for (const auto& [n, is_dir] : entries) {
      if (is_dir) remove_tree(d.get(), n.c_str());
      else (void)::unlinkat(d.get(), n.c_str(), 0);
    }
  }
  (void)::unlinkat(parent, name, AT_REMOVEDIR);
}

}  // namespace

ImageRoot::ImageRoot(ImageRoot&& o) noexcept : fd_(std::move(o.fd_)), scratch_(std::move(o.scratch_)) { o.scratch_.clear(); }

ImageRoot::~ImageRoot() {
  fd_.reset();
  if (scratch_.empty()) return;
  Bytes dir, name;
  split_path(scratch_, &dir, &name);
  UniqueFd parent(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent.valid()) remove_tree(parent.get(), name.c_str());
}

Result<ImageRoot> assemble_image(const ResolvedImage& image, const Bytes& scratch_parent) {
  ImageRoot root;
  Bytes tmpl = join_path(scratch_parent, ".image-XXXXXX");
  if (!::mkdtemp(tmpl.data())) return make_error(Errc::Io, "cannot create a scratch directory in " + quote(scratch_parent), errno);
  root.scratch_ = tmpl;
  // The kernel resolves each lower directory by path: /proc/self/fd/N of an fd we hold, so a
  // path can neither be swapped under us nor overflow the mount data (one page).
  std::vector<UniqueFd> lowers;
  const Bytes empty = join_path(tmpl, "empty");  // a read-only overlay needs two lower layers
  if (::mkdir(empty.c_str(), 0755) != 0) return make_error(Errc::Io, "cannot create " + quote(empty), errno);
  lowers.emplace_back(::open(empty.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const ImageLayer& layer = image.layers[i];
    if (layer.directory) {
      lowers.emplace_back(::open(layer.path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!lowers.back().valid()) return make_error(Errc::Io, "cannot open layer " + quote(layer.path), errno);
      continue;
    }
    const Bytes dir = join_path(tmpl, std::to_string(i));
    if (::mkdir(dir.c_str(), 0700) != 0) return make_error(Errc::Io, "cannot create " + quote(dir), errno);
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d.valid()) return make_error(Errc::Io, "cannot open " + quote(dir), errno);
    std::vector<int> below;  // top first; a lower from containers-storage counts too
    for (size_t k = lowers.size(); k-- > 1;) below.push_back(lowers[k].get());
    FIM_TRY(unpack_layer(layer, d.get(), std::move(below)));
    lowers.emplace_back(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
  std::string opts = "lowerdir=";
  for (size_t i = lowers.size(); i-- > 0;)  // overlayfs lists the top layer first
    opts += "/proc/self/fd/" + std::to_string(lowers[i].get()) + (i ? ":" : "");
  const Bytes mnt = join_path(tmpl, "root");
  if (::mkdir(mnt.c_str(), 0700) != 0) return make_error(Errc::Io, "cannot create " + quote(mnt), errno);
  if (::mount("fimctl-image", mnt.c_str(), "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, opts.c_str()) != 0)
    return make_error(Errc::Io, "cannot mount the image's layers as an overlay at " + quote(mnt) + " (needs root and overlayfs)",
                      errno);
  root.fd_.reset(::open(mnt.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  const int open_errno = errno;
  // Detached at once: the fd keeps the mount usable for the scan, and nothing else can reach it.
  (void)::umount2(mnt.c_str(), MNT_DETACH);
  if (!root.fd_.valid()) return make_error(Errc::Io, "cannot open the image's root", open_errno);
  return root;
}

}  // namespace fim
