// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl apt-hook pre-install (DPkg::Pre-Install-Pkgs): the .debs apt is about to hand to
// dpkg, verified against the signed index chain while they still exist (apt deletes them
// afterwards), and what they hold kept as records, with dpkg's file list of the version each
// replaces (so a later check can tell a file the upgrade dropped from one that vanished).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "internal.h"
#include "fim/base/spawn.h"

namespace fim::pkg {
namespace {

/// Every line, empty ones too (protocol 3 ends its header with one).
void each_line(std::string_view s, const std::function<void(std::string_view)>& f) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string_view::npos) end = s.size();
    f(s.substr(pos, end - pos));
    pos = end + 1;
  }
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < line.size()) {
    const size_t sp = line.find(' ', pos);
    const size_t end = sp == std::string_view::npos ? line.size() : sp;
    if (end > pos) out.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

/// apt's archive names: NAME_VERSION_ARCH.deb, the epoch's ':' as "%3a".
bool from_file_name(const Bytes& path, HookInput* in) {
  std::string base = path.substr(path.rfind('/') + 1);
  if (base.size() < 5 || base.compare(base.size() - 4, 4, ".deb") != 0) return false;
  base.resize(base.size() - 4);
  const size_t a = base.find('_'), b = base.rfind('_');
  if (a == std::string::npos || a == b || a == 0 || b + 1 == base.size()) return false;
  in->name = base.substr(0, a);
  in->version = base.substr(a + 1, b - a - 1);
  in->arch = base.substr(b + 1);
  for (size_t p; (p = in->version.find("%3a")) != std::string::npos;) in->version.replace(p, 3, ":");
  return !in->version.empty();
}

}  // namespace

std::vector<HookInput> parse_hook_input(std::string_view text) {
  std::vector<HookInput> out;
  const bool v3 = text.rfind("VERSION 3\n", 0) == 0;
  bool header = v3;  // protocol 3: the configuration dump until an empty line
  each_line(text, [&](std::string_view l) {
    if (header) {
      if (l.empty()) header = false;
      return;
    }
    HookInput in;
    if (!v3) {
      if (!l.empty() && l.front() == '/') in.deb = Bytes(l);
    } else {
      // NAME OLDVER OLDARCH OLDMA CMP NEWVER NEWARCH NEWMA FILE|**CONFIGURE**|**REMOVE**
      const auto w = words(l);
      if (w.size() >= 9 && w[8].front() == '/') {
        in.deb = Bytes(l.substr(static_cast<size_t>(w[8].data() - l.data())));  // the rest: a path may hold spaces
        in.name = std::string(w[0]);
        in.version = std::string(w[5]);
        in.arch = std::string(w[6]);
      }
    }
    if (!in.deb.empty()) out.push_back(std::move(in));
  });
  return out;
}

namespace {

/// Hashes `fd` from its start; hex.
Result<std::string> sha256_hex_of(int fd) {
  Sha256Stream sha;
  if (auto st = read_chunks(fd, "a .deb", [&](std::string_view b) { sha.update(b); return Status{}; }); !st)
    return st.error();
  return hex_encode(sha.finish());
}

/// The very inode that was hashed, linked into the spool (apt's name for it goes away); a
/// copy when the spool is on another filesystem. Either way it is hashed again before use.
Status spool(int fd, int spool_fd, const std::string& name) {
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, proc.c_str(), spool_fd, name.c_str(), AT_SYMLINK_FOLLOW) == 0 || errno == EEXIST) return {};
  UniqueFd out(::openat(spool_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!out.valid()) return errno == EEXIST ? Status{} : make_error(Errc::Io, "cannot spool " + name, errno);
  if (::lseek(fd, 0, SEEK_SET) != 0) return make_error(Errc::Io, "lseek", errno);
  const std::string what = "the spool copy " + name;
  auto st = read_chunks(fd, "a .deb", [&](std::string_view b) { return write_all(out.get(), b, what.c_str()); });
  if (!st) ::unlinkat(spool_fd, name.c_str(), 0);
  return st;
}

}  // namespace

std::vector<HookRecord> verify_and_spool(const Options& opts, std::vector<HookInput> debs, int64_t at_ns,
                                         int spool_fd, std::vector<std::string>* problems) {
  std::vector<HookRecord> out;
  std::vector<Package> wanted;
  for (auto& d : debs) {
    if (d.name.empty() && !from_file_name(d.deb, &d)) {
      // Not apt's name for it: the .deb's own control fields (the index decides anyway).
      UniqueFd fd(::open(d.deb.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      auto f = fd.valid() ? run_capture({opts.dpkg_deb, "--field", "/dev/stdin", "Package", "Version", "Architecture"},
                                        fd.get(), 1 << 16)
                          : Result<std::string>(make_error(Errc::Io, "cannot open " + quote(d.deb), errno));
      if (f)
        parse_stanzas(*f, [&](const Stanza& s) {
          auto g = [&](const char* k) { return s.count(k) ? s.at(k) : std::string(); };
          d.name = g("Package"), d.version = g("Version"), d.arch = g("Architecture");
          return false;
        });
    }
    if (d.name.empty()) continue;
    wanted.push_back(Package{d.name, d.version, d.arch, {}, {}});
  }
  AptArchive archive(opts);
  archive.load_indexes(wanted);
  auto installed = read_status(opts);
  if (!installed) problems->push_back(installed.error().describe());
  for (const auto& d : debs) {
    if (d.name.empty()) {
      problems->push_back(quote(d.deb) + ": not a .deb apt names NAME_VERSION_ARCH.deb, and no control fields");
      continue;
    }
    HookRecord r;
    r.name = d.name;
    r.version = d.version;
    r.arch = d.arch;
    r.at_ns = at_ns;
    auto want = archive.listed_sha256(Package{d.name, d.version, d.arch, {}, {}});
    if (!want) {
      problems->push_back(quote(d.deb) + ": " + want.error().describe());
      continue;
    }
    UniqueFd fd(::open(d.deb.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    auto got = fd.valid() ? sha256_hex_of(fd.get()) : Result<std::string>(make_error(Errc::Io, "cannot open", errno));
    if (!got) {
      problems->push_back(quote(d.deb) + ": " + got.error().describe());
      continue;
    }
    if (*got != *want) {
      problems->push_back(quote(d.deb) + " does not match the signed index (SHA-256 " + *got + ")");
      continue;
    }
    if (auto st = spool(fd.get(), spool_fd, *got + ".deb"); !st) {
      problems->push_back(st.error().describe());
      continue;
    }
    r.deb_sha256 = *got;
    // The version on disk now (dpkg's status, not what apt says it is) and its file list.
    if (installed)
      for (const auto& p : *installed) {
        if (p.name != d.name || (p.arch != d.arch && p.arch != "all" && d.arch != "all")) continue;
        r.old_version = p.version;
        auto list = read_in_root(opts, opts.admindir + "/info/" + p.info_stem + ".list", 64 << 20);
        if (!list) {
          problems->push_back(p.name + " " + p.version + ": " + list.error().describe());
          break;
        }
        each_line(*list, [&](std::string_view l) {
          if (!l.empty() && l != "/.") r.old_list.emplace_back(l);
        });
        break;
      }
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::map<Bytes, DebMember>> spooled_members(const Options& opts, int spool_fd, const HookRecord& r) {
  UniqueFd fd(::openat(spool_fd, (r.deb_sha256 + ".deb").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return make_error(Errc::Io, "the spooled .deb of " + r.name + " " + r.version + " is gone", errno);
  AptArchive archive(opts);
  return archive.extract_verified(fd.get(), r.deb_sha256);
}

}  // namespace fim::pkg
