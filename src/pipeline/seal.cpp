// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl seal (fim/seal.h): fs-verity on the files the baseline vouches for. What is sealed is
// what was recorded, never what happens to be there: a file whose content no longer hashes to
// its verified row is refused, and the content is hashed once more after sealing (when the
// kernel no longer lets it change) so that a writer racing the seal is caught, not trusted.
#include "fim/seal.h"

#include <fcntl.h>
#include <linux/fsverity.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "fim/base/digest.h"
#include "fim/base/fd.h"
#include "fim/base/sys.h"
#include "fim/merge.h"

namespace fim {
namespace {

constexpr uint32_t kVerityBlock = 4096;

/// The SHA-256 of everything `fd` reads from offset 0; errno set on failure (EIO: a block
/// fs-verity refused).
bool hash_fd(int fd, Bytes* out) {
  Digester dg;
  dg.begin(true, false);
  if (::lseek(fd, 0, SEEK_SET) != 0) return false;
  const Status st = read_chunks(fd, "the file to seal", [&](std::string_view b) -> Status {
    dg.update(b.data(), b.size());
    return {};
  });
  if (!st) {
    errno = st.error().sys_errno;
    return false;
  }
  dg.finish(out, nullptr);
  return true;
}

/// The refusal of the filesystem or kernel, said once for the whole run (exit 21).
Error unsupported(const Bytes& path, int err, const std::string& fstype) {
  // ext4 says EOPNOTSUPP both without the feature and without CONFIG_FS_VERITY; the kernel
  // lists the features it has in /sys/fs/ext4/features.
  const bool no_kernel = err == ENOTTY || (fstype == "ext4" && ::access("/sys/fs/ext4/features/verity", F_OK) != 0);
  if (!no_kernel)
    return make_error(Errc::Unsupported, "the filesystem of " + quote(path) +
                                             " has no fs-verity: ext4 needs -O verity (tune2fs -O verity DEVICE, "
                                             "4096-byte blocks); nothing was sealed from here on",
                      err);
  return make_error(Errc::Unsupported, "this kernel has no fs-verity for " + quote(path) + " (" + fstype +
                                           "): it needs CONFIG_FS_VERITY, and a filesystem that has it (ext4, f2fs, "
                                           "btrfs); nothing was sealed from here on",
                    err);
}

struct Candidate {
  Record row;
  bool named = false;  ///< PATH named the file itself (not found below a directory)
};

/// Why `rule` does not allow sealing, or "" when it does.
std::string rule_refusal(const Rule* rule, size_t idx) {
  if (!rule) return "no rule of the policy selects it";
  if (!rule->seal) return "its rule, " + rule->label(idx) + ", does not say seal = true";
  if (rule->attrs.growing || !(rule->attrs.mask & attr_bit(Attr::Sha256)))
    return "its rule, " + rule->label(idx) + ", records no sha256 or a growing log (written in place)";
  return {};
}

/// Seals one file: Unsupported stops the run; every other outcome is the file's.
Result<SealOutcome> seal_one(const Record& row, const Policy& policy, const Selector& sel, bool named,
                             bool* skip) {
  using K = SealOutcome::Kind;
  if (!row.has(Attr::Sha256)) return SealOutcome{row.path, K::Refused, "the baseline records no sha256 of it"};
  // Read-only: the kernel refuses to seal a file anyone (this process included) has open for
  // writing (ETXTBSY), and from then on refuses every open for writing.
  UniqueFd fd(::open(row.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return SealOutcome{row.path, K::Failed, "cannot open it: " + std::string(std::strerror(errno))};
  struct stat st {};
  struct statfs sfs {};
  if (::fstat(fd.get(), &st) != 0 || ::fstatfs(fd.get(), &sfs) != 0)
    return SealOutcome{row.path, K::Failed, std::strerror(errno)};
  if (!S_ISREG(st.st_mode)) return SealOutcome{row.path, K::Changed, "it is no longer a regular file"};
  const int idx = sel.winner(sel.scope_of(row.path), FileType::File, fstype_name(sfs.f_type));
  if (std::string why = rule_refusal(detail::rule_at(policy, idx), static_cast<size_t>(std::max(idx, 0)));
      !why.empty()) {
    if (!named) *skip = true;
    return SealOutcome{row.path, K::Refused, why};
  }
  const Bytes& want = row.get(Attr::Sha256).bytes;
  Bytes now;
  if (!hash_fd(fd.get(), &now)) return SealOutcome{row.path, K::Failed, "cannot read it: " + std::string(std::strerror(errno))};
  if (now != want)
    return SealOutcome{row.path, K::Changed,
                       "its content is not the baseline's: seal what was recorded, not what is there (check it, "
                       "then update or accept)"};
  if (std::string v = measure_verity(fd.get()); !v.empty()) return SealOutcome{row.path, K::AlreadySealed, v};
  struct fsverity_enable_arg arg {};
  arg.version = 1;
  arg.hash_algorithm = FS_VERITY_HASH_ALG_SHA256;
  arg.block_size = kVerityBlock;
  if (::ioctl(fd.get(), FS_IOC_ENABLE_VERITY, &arg) != 0) {
    const int err = errno;
    if (err == EOPNOTSUPP || err == ENOTTY) return unsupported(row.path, err, fstype_name(sfs.f_type));
    if (err == ETXTBSY) return SealOutcome{row.path, K::Failed, "a process has it open for writing (ETXTBSY)"};
    if (err == EINVAL)
      return SealOutcome{row.path, K::Failed, "the filesystem refused 4096-byte verity blocks (EINVAL: a block "
                                              "size other than the page size needs Linux 6.3)"};
    if (err != EEXIST) return SealOutcome{row.path, K::Failed, "FS_IOC_ENABLE_VERITY: " + std::string(std::strerror(err))};
  }
  // Sealed: the content can no longer change. A writer that got in between the hash above and
  // the ioctl is caught here, and said as such: what is sealed is not what was recorded.
  if (!hash_fd(fd.get(), &now) || now != want)
    return SealOutcome{row.path, K::Changed, "written while it was sealed: it is now sealed with content that is "
                                             "not the baseline's (check reports it)"};
  return SealOutcome{row.path, K::Sealed, measure_verity(fd.get())};
}

}  // namespace

Result<SealResult> run_seal(const RunOptions& opts, Sink& sink) {
  if (opts.sysroot_fd >= 0) return make_error(Errc::Usage, "seal acts on this host's files: --sysroot has no meaning here");
  if (opts.paths.empty()) return make_error(Errc::Usage, "seal needs PATHs (files, or directories: the files below them)");
  auto trusted = detail::open_trusted(opts, sink);
  if (!trusted) return trusted.error();
  std::vector<Candidate> rows;
  std::vector<bool> found(opts.paths.size(), false);
  FIM_TRY(detail::read_verified(*trusted->base, [&](const Record& r) -> Status {
    for (size_t i = 0; i < opts.paths.size(); ++i) {
      if (!path_within(r.path, opts.paths[i])) continue;
      found[i] = true;
      if (r.type() == FileType::File) rows.push_back(Candidate{r, r.path == opts.paths[i]});
      break;
    }
    return {};
  }));
  // Nothing read is trusted before read_verified returns: only now are the rows used.
  SealResult res;
  for (size_t i = 0; i < opts.paths.size(); ++i)
    if (!found[i])
      res.files.push_back(SealOutcome{opts.paths[i], SealOutcome::Kind::Refused, "not in the baseline"});
  const Policy policy = detail::effective_policy(opts.policy, trusted->base->meta());
  const Selector sel(policy);
  for (const Candidate& c : rows) {
    bool skip = false;
    auto o = seal_one(c.row, policy, sel, c.named, &skip);
    if (!o) return o.error();
    if (skip) ++res.skipped;
    else res.files.push_back(std::move(*o));
  }
  return res;
}

}  // namespace fim
