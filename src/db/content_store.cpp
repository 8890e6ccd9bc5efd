// SPDX-License-Identifier: GPL-2.0-or-later
// The content store (fim/content_store.h; docs/design.md, Content store). Every file is opened
// relative to the directory's fd with O_NOFOLLOW: a planted symlink is refused, never followed.
// A kept version is "fimctl-content-v1\n" and a zlib stream of the masked text.
#include "fim/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <vector>

#include "fim/base/sys.h"
#include "fim/db.h"

namespace fim {
namespace {

constexpr std::string_view kMagic = "fimctl-content-v1\n";

Error planted(const Bytes& dir, const std::string& name, const char* why) {
  return make_error(Errc::Trust, quote(join_path(dir, name)) + " " + why + ": the content store holds only regular "
                                 "files of root or the running user; someone planted it, remove it after looking");
}

Status check_entry(const Bytes& dir, const std::string& name, const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return planted(dir, name, "is a symbolic link");
  if (!S_ISREG(st.st_mode)) return planted(dir, name, "is not a regular file");
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) return planted(dir, name, "is owned by another user");
  if (st.st_nlink > 1) return planted(dir, name, "has more than one name");
  return {};
}

Result<std::string> compress(std::string_view text) {
  uLongf len = compressBound(static_cast<uLong>(text.size()));
  std::string out(kMagic);
  out.resize(kMagic.size() + len);
  if (compress2(reinterpret_cast<Bytef*>(out.data() + kMagic.size()), &len,
                reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()), 6) != Z_OK)
    return make_error(Errc::Bug, "zlib could not compress a kept version");
  out.resize(kMagic.size() + len);
  return out;
}

Result<std::string> decompress(std::string_view data, const std::string& shown) {
  if (data.substr(0, kMagic.size()) != kMagic)
    return make_error(Errc::Database, shown + " is not a kept version of this fimctl (no fimctl-content-v1 header)");
  data.remove_prefix(kMagic.size());
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return make_error(Errc::Bug, "zlib inflateInit failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  int rc = Z_OK;
  std::vector<char> buf(64 * 1024);
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
    if (out.size() > ContentStore::kMaxText) rc = Z_MEM_ERROR;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return make_error(Errc::Database, shown + " is corrupt or too large");
  return out;
}

}  // namespace

Bytes content_store_dir(const Bytes& db_path) {
  Bytes dir, name;
  split_path(db_path, &dir, &name);
  return join_path(dir, "content");
}

bool is_content_name(std::string_view s) {
  if (s.size() != 64) return false;
  for (const char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<std::unique_ptr<ContentStore>> ContentStore::open(const Bytes& dir, bool create) {
  Bytes parent, name;
  split_path(dir, &parent, &name);
  FIM_TRY(check_baseline_dir(parent));
  if (create && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return make_error(Errc::Io, "cannot create the content store " + quote(dir), errno);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return make_error(Errc::Database, "no content store at " + quote(dir));
    if (errno == ELOOP || errno == ENOTDIR)
      return make_error(Errc::Trust, "the content store " + quote(dir) + " is not a directory (a symbolic link?): "
                                     "refused, never followed");
    return make_error(Errc::Io, "cannot open the content store " + quote(dir), errno);
  }
  UniqueFd owned(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return make_error(Errc::Io, "cannot stat " + quote(dir), errno);
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return make_error(Errc::Trust, "the content store " + quote(dir) + " is owned by uid " + std::to_string(st.st_uid));
  // Root's only: what is kept may be a file only root may read (content_private).
  if ((st.st_mode & 077) != 0 && ::fchmod(fd, 0700) != 0)
    return make_error(Errc::Io, "cannot make the content store " + quote(dir) + " mode 0700", errno);
  FIM_TRY(check_baseline_dir(dir));
  return std::unique_ptr<ContentStore>(new ContentStore(dir, std::move(owned)));
}

bool ContentStore::has(const std::string& sha_hex) const {
  struct stat st;
  return is_content_name(sha_hex) && ::fstatat(fd_.get(), sha_hex.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISREG(st.st_mode);
}

Status ContentStore::put(const std::string& sha_hex, std::string_view masked) {
  if (!is_content_name(sha_hex)) return make_error(Errc::Bug, "a kept version named " + quote(sha_hex));
  struct stat st;
  if (::fstatat(fd_.get(), sha_hex.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return check_entry(dir_, sha_hex, st);
  auto data = compress(masked);
  if (!data) return data.error();
  const std::string tmp = ".tmp." + sha_hex + "." + std::to_string(::getpid());
  ::unlinkat(fd_.get(), tmp.c_str(), 0);
  const int fd = ::openat(fd_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(Errc::Io, "cannot write to the content store " + quote(dir_), errno);
  UniqueFd out(fd);
  Status st2 = write_all(fd, *data, "the content store");
  if (st2 && ::fsync(fd) != 0) st2 = make_error(Errc::Io, "cannot sync a kept version in " + quote(dir_), errno);
  if (st2 && ::renameat(fd_.get(), tmp.c_str(), fd_.get(), sha_hex.c_str()) != 0)
    st2 = make_error(Errc::Io, "cannot install a kept version in " + quote(dir_), errno);
  if (!st2) {
    ::unlinkat(fd_.get(), tmp.c_str(), 0);
    return st2;
  }
  ::fsync(fd_.get());
  return {};
}

Result<std::optional<std::string>> ContentStore::get(const std::string& sha_hex) const {
  if (!is_content_name(sha_hex)) return std::optional<std::string>();
  const int fd = ::openat(fd_.get(), sha_hex.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    if (errno == ELOOP) return planted(dir_, sha_hex, "is a symbolic link");
    return make_error(Errc::Io, "cannot read " + quote(join_path(dir_, sha_hex)), errno);
  }
  UniqueFd in(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return make_error(Errc::Io, "cannot stat " + quote(join_path(dir_, sha_hex)), errno);
  FIM_TRY(check_entry(dir_, sha_hex, st));
  const std::string shown = quote(join_path(dir_, sha_hex));
  auto data = read_to_end(fd, kMaxText + 4096, shown);
  if (!data) return data.error();
  auto text = decompress(*data, shown);
  if (!text) return text.error();
  return std::optional<std::string>(std::move(*text));
}

Status ContentStore::for_each(const std::function<void(const std::string&, uint64_t, int64_t)>& each) const {
  const int fd = ::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::Io, "cannot list " + quote(dir_), errno);
  const std::unique_ptr<DIR, CDeleter<::closedir>> d(::fdopendir(fd));
  if (!d) {
    ::close(fd);
    return make_error(Errc::Io, "cannot list " + quote(dir_), errno);
  }
  while (const dirent* e = ::readdir(d.get())) {
    const std::string name = e->d_name;
    if (!is_content_name(name)) continue;
    struct stat st;
    if (::fstatat(fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    each(name, static_cast<uint64_t>(st.st_size), timespec_ns(st.st_mtim));
  }
  return {};
}

Status ContentStore::remove(const std::string& sha_hex) {
  if (!is_content_name(sha_hex)) return {};
  if (::unlinkat(fd_.get(), sha_hex.c_str(), 0) != 0 && errno != ENOENT)
    return make_error(Errc::Io, "cannot remove " + quote(join_path(dir_, sha_hex)), errno);
  return {};
}

}  // namespace fim
