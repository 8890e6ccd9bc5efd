// SPDX-License-Identifier: GPL-2.0-or-later
// dpkg's database, read-only: installed packages from the status file, who ships which path
// from info/*.list (with diversions and merged /usr resolved), MD5s from info/*.md5sums and
// the status file's Conffiles, and dpkg-statoverride's owners and modes.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "fim/base/sys.h"
#include "internal.h"

namespace fim::pkg {

Bytes under_root(const Bytes& root, const Bytes& rel) {
  if (root.empty() || root == "/") return rel;
  Bytes r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r + (rel.empty() || rel[0] != '/' ? "/" : "") + rel;
}

int open_in(const Options& o, const Bytes& path, int flags) {
  if (o.root.empty() || o.root == "/") return ::open(path.c_str(), flags);
  UniqueFd root(::open(o.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return -1;
  return open_in_root(root.get(), path, flags);
}

Result<std::string> read_in_root(const Options& o, const Bytes& path, size_t limit) {
  UniqueFd fd(open_in(o, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  const Bytes shown = under_root(o.root, path);
  if (!fd.valid()) return make_error(Errc::Io, "cannot read " + quote(shown), errno);
  return read_to_end(fd.get(), limit, quote(shown));
}

namespace {

void for_lines(std::string_view s, const std::function<void(std::string_view)>& f) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = s.substr(pos, end - pos);
    if (!line.empty()) f(line);
    pos = end + 1;
  }
}

/// name:x:ID:... lines of /etc/passwd or /etc/group.
void read_ids(const Options& o, const Bytes& path, std::map<std::string, uint64_t>* out) {
  auto s = read_in_root(o, path, 16 << 20);
  if (!s) return;
  for_lines(*s, [&](std::string_view l) {
    const size_t a = l.find(':');
    if (a == std::string_view::npos) return;
    const size_t b = l.find(':', a + 1);
    if (b == std::string_view::npos) return;
    const size_t c = l.find(':', b + 1);
    uint64_t id;
    if (parse_decimal(l.substr(b + 1, c == std::string_view::npos ? std::string_view::npos : c - b - 1), &id))
      out->emplace(std::string(l.substr(0, a)), id);
  });
}

}  // namespace

Result<std::vector<Package>> read_status(const Options& opts) {
  const Bytes& admin = opts.admindir;
  auto status = read_in_root(opts, admin + "/status", 512 << 20);
  if (!status)
    return make_error(Errc::Usage, "no dpkg database at " + quote(under_root(opts.root, admin)) +
                                       " (package checks need a Debian system's /var/lib/dpkg): " +
                                       status.error().describe());
  std::vector<Package> out;
  parse_stanzas(*status, [&](const Stanza& st) {
    auto get = [&](const char* k) {
      auto it = st.find(k);
      return it == st.end() ? std::string() : it->second;
    };
    const std::string s = get("Status");
    // Only what is on disk: installed, or unpacked/half-configured (files are there).
    if (s.find(" installed") == std::string::npos && s.find(" unpacked") == std::string::npos &&
        s.find(" half-configured") == std::string::npos)
      return true;
    Package p;
    p.name = get("Package");
    p.version = get("Version");
    p.arch = get("Architecture");
    for_lines(get("Conffiles"), [&](std::string_view l) {
      while (!l.empty() && l.front() == ' ') l.remove_prefix(1);
      const size_t sp = l.find(' ');
      if (sp == std::string_view::npos) return;
      std::string_view md5 = l.substr(sp + 1);
      md5 = md5.substr(0, md5.find(' '));
      p.conffiles[Bytes(l.substr(0, sp))] = std::string(md5);
    });
    const Bytes info = under_root(opts.root, admin + "/info/");
    p.info_stem = p.name + ":" + p.arch;
    if (::access((info + p.info_stem + ".list").c_str(), F_OK) != 0) p.info_stem = p.name;
    if (!p.name.empty()) out.push_back(std::move(p));
    return true;
  });
  return out;
}

std::map<std::string, std::string> installed_versions(const Options& opts, Status* st) {
  std::map<std::string, std::string> out;
  auto pk = read_status(opts);
  if (!pk) {
    if (st) *st = pk.error();
    return out;
  }
  for (const auto& p : *pk) out[p.name + ":" + p.arch] = p.version;
  return out;
}

Result<std::unique_ptr<DpkgDb>> DpkgDb::open(const Options& opts) {
  std::unique_ptr<DpkgDb> db(new DpkgDb());
  db->opts_ = opts;
  db->root_.reset(::open(opts.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!db->root_.valid()) return make_error(Errc::Io, "cannot open " + quote(opts.root), errno);
  const Bytes& admin = opts.admindir;
  auto pk = read_status(opts);
  if (!pk) return pk.error();
  db->packages_ = std::move(*pk);

  // Diversions: "from", "to", "package" lines; another package's 'from' lives at 'to'.
  struct Div {
    Bytes to;
    std::string by;
  };
  std::map<Bytes, Div> diversions;
  if (auto d = read_in_root(opts, admin + "/diversions", 64 << 20)) {
    std::vector<std::string_view> l;
    for_lines(*d, [&](std::string_view x) { l.push_back(x); });
    for (size_t i = 0; i + 2 < l.size(); i += 3) diversions[Bytes(l[i])] = Div{Bytes(l[i + 1]), std::string(l[i + 2])};
  }
  for (uint32_t i = 0; i < db->packages_.size(); ++i) {
    const Package& p = db->packages_[i];
    auto list = read_in_root(opts, admin + "/info/" + p.info_stem + ".list", 256 << 20);
    if (!list) continue;
    for_lines(*list, [&](std::string_view l) {
      Bytes listed(l);
      Bytes at = listed;
      if (auto d = diversions.find(listed); d != diversions.end() && d->second.by != p.name) at = d->second.to;
      db->index_[db->canonical(at)].emplace_back(i, listed);
    });
  }
  read_ids(opts, "/etc/passwd", &db->users_);
  read_ids(opts, "/etc/group", &db->groups_);
  if (auto so = read_in_root(opts, admin + "/statoverride", 16 << 20)) {
    for_lines(*so, [&](std::string_view l) {  // "user group mode path"
      std::vector<std::string> f;
      std::string cur;
      for (size_t k = 0; k < l.size(); ++k) {
        if (l[k] == ' ' && f.size() < 3) {
          if (!cur.empty()) f.push_back(cur);
          cur.clear();
        } else {
          cur += l[k];
        }
      }
      f.push_back(cur);
      if (f.size() != 4) return;
      auto id = [&](const std::string& n, bool user) -> std::optional<uint64_t> {
        uint64_t v;
        if (!n.empty() && n[0] == '#' && parse_decimal(std::string_view(n).substr(1), &v)) return v;
        return user ? db->uid_of(n) : db->gid_of(n);
      };
      auto u = id(f[0], true), g = id(f[1], false);
      uint32_t mode = 0;
      for (char c : f[2]) {
        if (c < '0' || c > '7') return;
        mode = mode * 8 + static_cast<uint32_t>(c - '0');
      }
      if (u && g) db->overrides_[db->canonical(Bytes(f[3]))] = Override{*u, *g, mode & 07777};
    });
  }
  return db;
}

Bytes DpkgDb::canonical(const Bytes& path) {
  const size_t slash = path.rfind('/');
  if (slash == Bytes::npos || slash == 0) return path;
  const Bytes dir = path.substr(0, slash);
  auto it = dir_cache_.find(dir);
  if (it == dir_cache_.end()) {
    Bytes real = dir;
    const int fd = open_in_root(root_.get(), dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4096];
      const ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf);
      ::close(fd);
      Bytes root = opts_.root;
      while (root.size() > 1 && root.back() == '/') root.pop_back();
      if (n > 0 && static_cast<size_t>(n) < sizeof buf) {
        Bytes got(buf, static_cast<size_t>(n));
        if (root == "/") real = got;
        else if (got.rfind(root + "/", 0) == 0) real = got.substr(root.size());
      }
    }
    it = dir_cache_.emplace(dir, real).first;
  }
  return it->second + path.substr(slash);
}

std::vector<DpkgDb::Owner> DpkgDb::owners(const Bytes& path) {
  std::vector<Owner> out;
  auto it = index_.find(canonical(path));
  if (it == index_.end()) return out;
  for (const auto& [i, listed] : it->second) out.push_back(Owner{&packages_[i], listed});
  return out;
}

std::string DpkgDb::md5(const Package& p, const Bytes& listed) {
  if (auto c = p.conffiles.find(listed); c != p.conffiles.end()) return c->second;
  auto it = md5_cache_.find(p.info_stem);
  if (it == md5_cache_.end()) {
    std::map<Bytes, std::string> m;
    if (auto s = read_in_root(opts_, opts_.admindir + "/info/" + p.info_stem + ".md5sums", 64 << 20)) {
      for_lines(*s, [&](std::string_view l) {  // "<md5>  <path without the leading slash>"
        if (l.size() < 35 || l[32] != ' ') return;
        std::string_view path = l.substr(33);
        while (!path.empty() && path.front() == ' ') path.remove_prefix(1);
        m["/" + Bytes(path)] = std::string(l.substr(0, 32));
      });
    }
    it = md5_cache_.emplace(p.info_stem, std::move(m)).first;
  }
  auto f = it->second.find(listed);
  return f == it->second.end() ? std::string() : f->second;
}

std::optional<DpkgDb::Override> DpkgDb::stat_override(const Bytes& path) const {
  auto it = overrides_.find(path);
  if (it == overrides_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint64_t> DpkgDb::uid_of(const std::string& name) const {
  auto it = users_.find(name);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}
std::optional<uint64_t> DpkgDb::gid_of(const std::string& name) const {
  auto it = groups_.find(name);
  if (it == groups_.end()) return std::nullopt;
  return it->second;
}

}  // namespace fim::pkg
