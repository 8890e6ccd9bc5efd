// SPDX-License-Identifier: GPL-2.0-or-later
// Evidence::Derived (fim/pkg.h; docs/design.md, Packages: derived files): a file no package
// ships, that a maintainer script or trigger writes (py3compile's .pyc files, ldconfig's
// /etc/ld.so.cache), is regenerated here from verified inputs by a verified tool and compared.
// The verdict takes the WEAKEST evidence of its inputs: derived only when every input (the
// .py and the interpreter; ldconfig) is vouched for by its signed .deb; with one only by
// dpkg's MD5, verified by dpkg-md5 (accepted only with --weak); with one unverified, not
// verified at all. Its own attributes must be what such a tool writes: root's, not set-id,
// not writable by others, and no capabilities, xattrs or ACLs the baseline did not have.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fim/base/bytes.h"
#include "fim/base/digest.h"
#include "fim/base/sys.h"
#include "internal.h"

namespace fim::pkg {

namespace {

constexpr size_t kMaxInput = 64 << 20;  // interpreters, sources, caches: far larger than any real one

/// Reads an open regular file whole.
Result<std::string> read_all(int fd, const Bytes& shown) {
  return read_to_end(fd, kMaxInput, quote(shown));
}

/// An input of a regeneration: its content, stat and the evidence that it is its package's.
struct Input {
  UniqueFd fd;  ///< kept open: a tool runs as this very inode (execveat)
  struct stat st {};
  std::string content;
  Evidence evidence = Evidence::None;
  std::string who, why;  ///< "python3.11-minimal 3.11.2-6"; why it is not verified
  const Package* pkg = nullptr;  ///< the owner whose record vouches for it
  int open_errno = 0;
};

/// Derived when every input's evidence is the signed .deb's, else the weakest of them.
Evidence derived_from(Evidence weakest) { return weakest == Evidence::DebSha256 ? Evidence::Derived : weakest; }

/// Attributes a regenerating tool would not give the file.
std::string odd_attributes(const Record* old, const Record& now) {
  const uint64_t mode = static_cast<uint64_t>(now.get(Attr::Mode).num);
  if (now.get(Attr::Uid).num != 0 || now.get(Attr::Gid).num != 0) return "not owned by root";
  if (mode & 07022) return "set-id or writable by others";
  for (Attr a : {Attr::Caps, Attr::Xattrs, Attr::AclAccess, Attr::AclDefault}) {
    if (!now.has(a)) continue;
    const AttrValue v = now.get(a);
    if (old && old->has(a) ? !(old->get(a) == v) : !(v.bytes.empty() && v.num == 0))
      return std::string(attr_info(a).key) + " set, which no tool writes";
  }
  return {};
}

}  // namespace

struct Deriver::Impl {
  Options opts;
  DpkgDb& db;
  Deriver::Members members_of;
  Deriver::BaselineDigest baseline_digest;
  std::map<Bytes, std::shared_ptr<Input>> tools;        // interpreters, ldconfig: read once
  std::map<std::string, std::unique_ptr<PycChecker>> checkers;  // version -> its child
  std::map<std::string, std::string> broken;            // version -> why no child
  std::optional<std::pair<Bytes, std::string>> ld_cache;  // what ldconfig wrote, or why not

  Impl(const Options& o, DpkgDb& d, Deriver::Members m, Deriver::BaselineDigest b)
      : opts(o), db(d), members_of(std::move(m)), baseline_digest(std::move(b)) {}

  /// Opens and reads `path` and weighs its content against its owners' records.
  std::shared_ptr<Input> vouch(const Bytes& path, bool follow = true) {
    auto in = std::make_shared<Input>();
    in->fd.reset(open_in(opts, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!in->fd.valid()) in->open_errno = errno;
    if (in->open_errno == ELOOP && follow) return vouch_link(path);
    if (!in->fd.valid() || ::fstat(in->fd.get(), &in->st) != 0 || !S_ISREG(in->st.st_mode)) {
      in->why = quote(path) + " is not a readable regular file";
      return in;
    }
    auto c = read_all(in->fd.get(), path);
    if (!c) {
      in->why = c.error().message;
      return in;
    }
    in->content = std::move(*c);
    const auto owners = db.owners(path);
    if (owners.empty()) in->why = "no package ships " + quote(path);
    const Bytes sha = sha256_of(in->content);
    std::string md5;
    for (const auto& o : owners) {
      std::string why;
      Evidence e = Evidence::None, deb = Evidence::None;
      if (const auto* members = members_of(*o.pkg, &why, &deb)) {
        // The signed .deb decides: dpkg's MD5 does not overrule it.
        auto m = members->find(o.listed);
        if (m != members->end() && m->second.type == '0' && m->second.sha256 == sha) e = deb;
        else why = "its content is not what the signed .deb of " + o.pkg->name + " holds";
      } else if (const std::string want = db.md5(*o.pkg, o.listed); !want.empty()) {
        if (md5.empty()) {
          DigestStream d("md5");
          d.update(in->content);
          md5 = hex_encode(d.finish());
        }
        if (md5 == want) e = Evidence::DpkgMd5;
        else why = "its content differs from dpkg's MD5";
      }
      // A tool or input unchanged since the signed baseline is what the operator accepted:
      // as good as its .deb (interpreters installed long ago, whose .debs are gone).
      std::string unchanged;
      if (e < Evidence::DebSha256 && e != Evidence::None && baseline_digest) {
        if (auto b = baseline_digest(db.canonical(path)); b && *b == sha) {
          e = Evidence::DebSha256;
          unchanged = ", unchanged since the signed baseline";
        }
      }
      if (e > in->evidence) {
        in->evidence = e;
        in->who = o.pkg->name + " " + o.pkg->version + unchanged;
        in->pkg = o.pkg;
      } else if (in->evidence == Evidence::None && in->why.empty()) {
        in->why = quote(path) + ": " + why;
      }
    }
    return in;
  }

  /// A symbolic link the signed .deb ships with this target (Debian's sitecustomize.py ->
  /// /etc/python3.X/sitecustomize.py), then its target (one link, no further): the weaker of both.
  std::shared_ptr<Input> vouch_link(const Bytes& path) {
    auto out = std::make_shared<Input>();
    out->why = quote(path) + " is a symbolic link its package's signed .deb does not ship";
    char buf[4096];
    const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return out;
    const Bytes link(buf, static_cast<size_t>(n));
    bool shipped = false;
    for (const auto& o : db.owners(path)) {
      std::string why;
      Evidence ev = Evidence::None;
      const auto* members = members_of(*o.pkg, &why, &ev);
      auto m = members ? members->find(o.listed) : decltype(members->end()){};
      if (members && m != members->end() && m->second.type == '2' && m->second.link == link) shipped = true;
    }
    if (!shipped) return out;
    const Bytes target = link[0] == '/' ? link : path.substr(0, path.rfind('/') + 1) + link;
    out = vouch(target, false);
    return out;
  }

  std::shared_ptr<Input> tool(const Bytes& path) {
    auto& t = tools[path];
    if (!t) t = vouch(path);
    return t;
  }

  /// python3.X and what it runs before our program: the source modules it imports at start-up
  /// (encodings, compiled from source: no .pyc is read) must be their packages' too, and no
  /// python3X.zip may come before them on its path.
  std::shared_ptr<Input> interpreter(const std::string& version) {
    auto& t = tools["python" + version];
    if (t) return t;
    t = vouch("/usr/bin/python" + version);
    if (t->evidence == Evidence::None) return t;
    std::string digits = version;
    digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
    const Bytes zip = "/usr/lib/python" + digits + ".zip", lib = "/usr/lib/python" + version + "/encodings";
    struct stat st;
    if (::lstat(zip.c_str(), &st) == 0 || errno != ENOENT) {
      t->evidence = Evidence::None;
      t->why = quote(zip) + " exists: python would import from it first";
      return t;
    }
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(lib.c_str()), ::closedir);
    size_t modules = 0;
    for (const dirent* e; dir && (e = ::readdir(dir.get()));) {
      const std::string_view name(e->d_name);
      if (name.size() < 4 || name.substr(name.size() - 3) != ".py") continue;
      const auto m = vouch(lib + "/" + std::string(name));
      if (m->evidence == Evidence::None) {
        t->evidence = Evidence::None;
        t->why = "a module it imports at start-up is not verified: " + m->why;
        return t;
      }
      t->evidence = std::min(t->evidence, m->evidence);
      ++modules;
    }
    if (modules == 0) {
      t->evidence = Evidence::None;
      t->why = "cannot read " + quote(lib);
    }
    return t;
  }

  /// The verdict from inputs: the weakest evidence among them.
  static bool weigh(Note* n, std::initializer_list<const Input*> inputs, const std::string& what) {
    Evidence weakest = Evidence::DebSha256;
    std::string from;
    for (const Input* in : inputs) {
      if (in->evidence == Evidence::None) {
        n->verdict = Verdict::Unverifiable;
        n->detail = what + ", but an input is not verified: " + in->why;
        return false;
      }
      weakest = std::min(weakest, in->evidence);
      from += (from.empty() ? "" : ", ") + in->who + " (" + std::string(evidence_name(in->evidence)) + ")";
    }
    n->verdict = Verdict::Verified;
    n->evidence = derived_from(weakest);
    n->detail = what + " from " + from;
    return true;
  }

  void pyc(const PycName& name, const Record& now, Note* n) {
    n->verdict = Verdict::Unverifiable;
    UniqueFd fd(open_in(opts, now.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    auto data = fd.valid() ? read_all(fd.get(), now.path) : Result<std::string>(make_error(Errc::Io, "gone"));
    if (!data || !now.has(Attr::Sha256) || sha256_of(*data) != now.get(Attr::Sha256).bytes) {
      n->detail = "changed again while being checked";
      return;
    }
    const auto header = parse_pyc_header(*data);
    const std::string version = !name.version.empty() ? name.version : header ? python_of_magic(header->magic) : "";
    if (!header || version.empty()) {
      n->detail = "not a .pyc header of a Python this knows";
      return;
    }
    const auto src = vouch(name.source);
    if (src->open_errno == ENOENT) {
      n->verdict = Verdict::Unpackaged;
      n->detail = "no installed package ships this path, and there is no " + quote(name.source) + " to compile";
      return;
    }
    if (src->evidence == Evidence::None) {
      n->detail = "a .pyc whose source is not verified: " + src->why;
      return;
    }
    // Named after the source's package: an apt run that changed it groups this too.
    n->package = src->pkg->name;
    n->version = src->pkg->version;
    n->arch = src->pkg->arch;
    const auto python = interpreter(version);
    if (python->evidence == Evidence::None) {
      n->detail = "a .pyc of Python " + version + ", whose interpreter is not verified: " + python->why;
      return;
    }
    auto& checker = checkers[version];
    if (!checker && !broken.count(version)) {
      auto c = PycChecker::start(python->fd.get());
      if (c) checker = std::move(*c);
      else broken[version] = c.error().message;
    }
    if (!checker) {
      n->detail = "cannot run python" + version + ": " + broken[version];
      return;
    }
    if (header->magic != checker->magic()) {
      n->detail = "its magic number is not python" + version + "'s";
      return;
    }
    auto a = checker->compare(src->content, *data, name.optimize);
    if (!a) {
      // A crash or a timeout may be this file's doing: no verdict, and a fresh child for the next.
      checkers.erase(version);
      n->detail = "cannot compare it with its source: " + a.error().message;
      return;
    }
    if (!a->same_code) {
      n->verdict = Verdict::Mismatch;
      n->evidence = derived_from(std::min(src->evidence, python->evidence));
      n->detail = "its code is not what python" + version + " compiles from " + quote(name.source) +
                  " (" + src->who + ")";
      return;
    }
    const bool stale = header->hash_based()
                           ? !a->hash_ok
                           : header->mtime != static_cast<uint32_t>(src->st.st_mtim.tv_sec) ||
                                 header->size != static_cast<uint32_t>(src->st.st_size);
    if (stale) {
      n->detail = "its header names another version of " + quote(name.source) + " (python ignores it)";
      return;
    }
    weigh(n, {src.get(), python.get()}, "compiled from " + quote(name.source) + " by python" + version);
  }

  /// What the verified ldconfig writes into a private file, or why there is nothing.
  std::pair<Bytes, std::string> regenerate_ld_cache(Input& ldconfig) {
    char dir[] = "/tmp/fimctl-ldconfig-XXXXXX";
    if (!::mkdtemp(dir)) return {{}, std::string("cannot make a private directory: ") + std::strerror(errno)};
    const std::string file = std::string(dir) + "/ld.so.cache";
    // Its child runs confined: the directory (0700) is then its.
    if (::geteuid() == 0 && ::chown(dir, kConfinedId, kConfinedId) != 0) {
      ::rmdir(dir);
      return {{}, "cannot give the private directory to the confined user"};
    }
    int sv[2];
    std::pair<Bytes, std::string> out;
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      ::rmdir(dir);
      return {{}, "socketpair failed"};
    }
    UniqueFd mine(sv[0]), theirs(sv[1]);
    // -X: never touch the libraries' links; -C: write there, not /etc/ld.so.cache (and no aux cache).
    auto pid = spawn_confined(ldconfig.fd.get(), {"ldconfig", "-X", "-C", file}, theirs.get(), 60, kMaxInput);
    theirs.reset();
    if (!pid) {
      out.second = pid.error().message;
    } else {
      pollfd p{mine.get(), POLLIN, 0};
      char buf[256];
      for (;;) {  // until it closes its end (exits), at most a minute
        const int r = ::poll(&p, 1, 60000);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
          ::kill(*pid, SIGKILL);
          break;
        }
        if (::read(mine.get(), buf, sizeof buf) <= 0) break;
      }
      int st = 0;
      while (::waitpid(*pid, &st, 0) < 0 && errno == EINTR) {
      }
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        out.second = "ldconfig failed";
      } else {
        Options here;  // the private file is on this host, whatever the root
        auto c = read_in_root(here, file, kMaxInput);
        if (c) out.first = std::move(*c);
        else out.second = c.error().message;
      }
    }
    ::unlink(file.c_str());
    ::unlink((file + "~").c_str());
    ::rmdir(dir);
    return out;
  }

  void ld_so_cache(const Record& now, Note* n) {
    n->verdict = Verdict::Unverifiable;
    const auto ldconfig = tool("/sbin/ldconfig");
    if (ldconfig->evidence == Evidence::None) {
      n->detail = "ldconfig is not verified: " + ldconfig->why;
      return;
    }
    auto current = read_in_root(opts, now.path, kMaxInput);
    if (!current || !now.has(Attr::Sha256) || sha256_of(*current) != now.get(Attr::Sha256).bytes) {
      n->detail = "changed again while being checked";
      return;
    }
    if (!ld_cache) ld_cache = regenerate_ld_cache(*ldconfig);
    if (!ld_cache->second.empty()) {
      n->detail = "cannot regenerate it: " + ld_cache->second;
      return;
    }
    if (ld_cache->first != *current) {
      n->verdict = Verdict::Mismatch;
      n->evidence = derived_from(ldconfig->evidence);
      n->detail = "not what the verified ldconfig writes from this host's libraries and ld.so.conf (forged or stale)";
      return;
    }
    weigh(n, {ldconfig.get()}, "what ldconfig writes from this host's libraries and ld.so.conf");
  }
};

Deriver::Deriver(const Options& o, DpkgDb& db, Members members, BaselineDigest baseline)
    : impl_(std::make_unique<Impl>(o, db, std::move(members), std::move(baseline))) {}
Deriver::~Deriver() = default;

bool Deriver::explain(const Record* old, const Record& now, Note* n) {
  // The tools run on this host: a --sysroot's files are not this host's to regenerate.
  if (!(impl_->opts.root.empty() || impl_->opts.root == "/") || now.type() != FileType::File) return false;
  const auto pyc = parse_pyc_name(now.path);
  if (!pyc && now.path != "/etc/ld.so.cache") return false;
  if (std::string odd = odd_attributes(old, now); !odd.empty()) {
    n->verdict = Verdict::Unpackaged;
    n->detail = "no installed package ships this path, and it is " + odd;
    return true;
  }
  if (pyc) impl_->pyc(*pyc, now, n);
  else impl_->ld_so_cache(now, n);
  return true;
}

}  // namespace fim::pkg
