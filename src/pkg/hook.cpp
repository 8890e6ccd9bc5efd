// SPDX-License-Identifier: GPL-2.0-or-later
// fimctl apt-hook pre-install (DPkg::Pre-Install-Pkgs): the .debs apt is about to hand to
// dpkg, verified against the signed index chain while they still exist (apt deletes them
// afterwards), and what they hold kept as records, with dpkg's file list of the version each
// replaces (so a later check can tell a file the upgrade dropped from one that vanished).
#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "fim/base/sys.h"
#include "internal.h"
#include "spawn.h"

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

std::vector<HookRecord> record_debs(const Options& opts, std::vector<HookInput> debs, int64_t at_ns,
                                    std::vector<std::string>* problems) {
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
    UniqueFd fd(::open(d.deb.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) {
      problems->push_back("cannot open " + quote(d.deb) + ": " + std::strerror(errno));
      continue;
    }
    HookRecord r;
    r.name = d.name;
    r.version = d.version;
    r.arch = d.arch;
    r.at_ns = at_ns;
    auto members = archive.verify_deb(Package{d.name, d.version, d.arch, {}, {}}, fd.get(), &r.deb_sha256);
    if (!members) {
      problems->push_back(quote(d.deb) + ": " + members.error().describe());
      continue;
    }
    r.members = std::move(*members);
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

}  // namespace fim::pkg
