// SPDX-License-Identifier: GPL-2.0-or-later
// Iterative, dirfd-relative directory walk (docs/design.md, Conventions 5).
//
// Memory: one frame per directory level holding that directory's names (needed to sort
// them); nothing else grows with the tree. Per entry: one getdents64 share and one
// fstatat(AT_SYMLINK_NOFOLLOW); per directory: openat(O_DIRECTORY|O_NOFOLLOW), fstat, statx
// for the mount id. Mount boundaries are found by mount id, not st_dev: a bind mount has the
// same st_dev and inode as its source (docs/design.md, Threat model, T27). With types_only
// (init's pre-walk, counting) an entry is not stat'ed: the listing's d_type is its type.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>

#include "fim/base/sys.h"
#include "fim/walk.h"

namespace fim {
namespace {

struct Event {
  uint32_t idx;
  bool descend;  // false: emit the entry itself; true: walk its contents
};

struct Frame {
  SharedFd fd;                  // the directory being listed (unset for the roots frame)
  Bytes path;                   // its path
  std::vector<Bytes> names;     // for the roots frame: full root paths
  std::vector<unsigned char> types;  // each name's DT_* type: the listing's, lstat where it has none
  std::vector<SharedFd> root_parents;  // roots frame only: parent of each root
  std::vector<Scope> root_scopes;       // roots frame only: scope of each root's parent
  std::vector<std::string> root_fstypes;  // roots frame only: filesystem of each root's parent
  Scope scope;                  // which rules cover this directory
  std::string fstype;           // its filesystem type, when the policy asks
  std::vector<Event> events;    // sorted: the order entries are emitted in
  size_t next = 0;
  uint64_t mnt_id = 0;          // mount of this directory (subdirectories on another are not crossed)
  dev_t dev = 0;
  ino_t ino = 0;
  bool is_roots = false;
  bool fd_released = false;     // closed while deep below it; reopened through ".." on return
};

// Directory fds kept open along the current path: the deepest kFdFrames levels. Above them a
// level's fd is closed while the walk is below it and reopened through ".." of its child
// when the walk comes back, checked to be the same directory (dev, ino): a tree 10,000 levels
// deep needs no more descriptors than one 60 levels deep (docs/design.md, Threat model, T33).
constexpr size_t kFdFrames = 48;

/// Directory fds alive: the frames' and those that emitted items still hold (an item keeps
/// its parent directory open until it is collected). The walk waits before opening another
/// directory while the count is at the limit, so a deep or wide tree cannot run the process
/// out of descriptors however far the walk runs ahead of the collectors.
struct FdBudget {
  std::mutex mu;
  std::condition_variable cv;
  size_t live = 0;
  size_t limit = 0;
};

SharedFd budgeted(UniqueFd fd, const std::shared_ptr<FdBudget>& b) {
  {
    std::lock_guard lk(b->mu);
    ++b->live;
  }
  return SharedFd(new UniqueFd(std::move(fd)), [b](const UniqueFd* p) {
    delete p;
    {
      std::lock_guard lk(b->mu);
      --b->live;
    }
    b->cv.notify_all();
  });
}

size_t fd_limit() {
  struct rlimit rl;
  const size_t cur = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : 1024;
  // Half for directories; the rest for files being hashed, the baseline, sockets. At least
  // the frames kept open plus room to move.
  return std::max<size_t>(kFdFrames + 16, std::min<size_t>(cur / 2, 4096));
}

/// Compares name_a + (dir_a ? "/" : "") with name_b + (dir_b ? "/" : "") bytewise.
bool event_less(std::string_view a, bool da, std::string_view b, bool db) {
  const size_t la = a.size() + da, lb = b.size() + db;
  const size_t common = std::min(a.size(), b.size());
  if (const int c = std::memcmp(a.data(), b.data(), common); c != 0) return c < 0;
  for (size_t i = common; i < std::min(la, lb); ++i) {
    const auto ca = static_cast<unsigned char>(i < a.size() ? a[i] : '/');
    const auto cb = static_cast<unsigned char>(i < b.size() ? b[i] : '/');
    if (ca != cb) return ca < cb;
  }
  return la < lb;
}

/// `descend`: directories are also walked into (not for roots_only's roots).
void sort_events(Frame* f, bool descend) {
  f->events.clear();
  f->events.reserve(f->names.size() * 2);
  for (uint32_t i = 0; i < f->names.size(); ++i) {
    f->events.push_back({i, false});
    if (descend && f->types[i] == DT_DIR) f->events.push_back({i, true});
  }
  // Root names are full paths; the same rule orders them ("/a" < "/a.b" < "/a/").
  std::sort(f->events.begin(), f->events.end(), [&](const Event& x, const Event& y) {
    return event_less(f->names[x.idx], x.descend, f->names[y.idx], y.descend);
  });
}

uint64_t mount_id_of(int fd, dev_t fallback) {
  struct statx stx;
  if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) == 0 &&
      (stx.stx_mask & STATX_MNT_ID))
    return stx.stx_mnt_id;
  return static_cast<uint64_t>(fallback) | (uint64_t{1} << 63);  // kernels before 5.8
}

/// Reads all names of a directory (without "." and "..") and their types: d_type, or lstat's
/// when the filesystem does not fill d_type (DT_UNKNOWN when that fails too).
int list_directory(int fd, std::vector<Bytes>* names, std::vector<unsigned char>* types) {
  alignas(8) static thread_local char buf[64 * 1024];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    for (long off = 0; off < n;) {
      // The kernel's struct linux_dirent64 without its flexible array member (not ISO C++):
      // the name follows d_type.
      struct linux_dirent64 {
        ino64_t d_ino;
        off64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
      };
      const auto* d = reinterpret_cast<const linux_dirent64*>(buf + off);
      const char* nm = buf + off + offsetof(linux_dirent64, d_type) + 1;
      off += d->d_reclen;
      if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
      unsigned char type = d->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st;
        if (::fstatat(fd, nm, &st, AT_SYMLINK_NOFOLLOW) == 0) type = static_cast<unsigned char>(IFTODT(st.st_mode));
      }
      names->emplace_back(nm);
      types->push_back(type);
    }
  }
}

class Walk {
 public:
  Walk(const WalkOptions& opts, const std::function<bool(WalkItem&&)>& emit)
      : opts_(opts), sel_(*opts.selector), emit_(emit) {}

  Status run(const std::vector<Bytes>& roots) {
    Frame top;
    top.is_roots = true;
    for (const auto& root : roots) {
      Bytes dir, name;
      split_path(root, &dir, &name);
      UniqueFd parent(open_in_root(opts_.root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      struct stat st;
      int err = parent.valid() ? 0 : errno;
      if (!err && ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) err = errno;
      if (err == ENOENT || err == ENOTDIR) {
        if (opts_.roots_must_exist) return make_error(Errc::Usage, quote(root) + " does not exist");
        continue;  // recorded as absent: it shows up as added if it appears later
      }
      if (err) {
        return make_error(err == EACCES || err == EPERM ? Errc::Usage : Errc::Io,
                          "cannot read root " + quote(root), err);
      }
      if (S_ISDIR(st.st_mode)) {  // a root directory that cannot be listed is fatal, not partial
        UniqueFd probe(::openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!probe.valid())
          return make_error(errno == EACCES || errno == EPERM ? Errc::Usage : Errc::Io,
                            "cannot read root " + quote(root), errno);
      }
      top.names.push_back(root);
      top.root_scopes.push_back(sel_.scope_of(dir));
      top.root_fstypes.push_back(fstype_of(parent.get()));
      top.root_parents.push_back(budgeted(std::move(parent), budget_));
      top.types.push_back(static_cast<unsigned char>(IFTODT(st.st_mode)));
    }
    sort_events(&top, !opts_.roots_only);
    stack_.push_back(std::move(top));
    {
      // Never below what the walk itself must hold: the roots' parents and the frames.
      std::lock_guard lk(budget_->mu);
      budget_->limit = std::max(budget_->limit, budget_->live + kFdFrames + 16);
    }

    while (!stack_.empty()) {
      Frame& f = stack_.back();
      if (f.next == f.events.size()) {
        if (!return_to_parent()) return {};
        continue;
      }
      const Event ev = f.events[f.next++];
      SharedFd parent = f.is_roots ? f.root_parents[ev.idx] : f.fd;
      Bytes name, path;
      if (f.is_roots) {
        Bytes dir;
        path = f.names[ev.idx];
        split_path(path, &dir, &name);
      } else {
        name = f.names[ev.idx];
        path = join_path(f.path, name);
      }
      const bool is_root = f.is_roots;
      const unsigned char type = f.types[ev.idx];
      const uint64_t parent_mnt = f.mnt_id;
      // The frame may move when descend() pushes: take what the callee needs first.
      sel_.child_scope(f.is_roots ? f.root_scopes[ev.idx] : f.scope, path, &scope_);
      const std::string parent_fstype = f.is_roots ? f.root_fstypes[ev.idx] : f.fstype;
      if (scope_.empty() && !(ev.descend && sel_.may_match_below(path))) continue;  // nothing here for the policy
      if (!(ev.descend ? descend(std::move(parent), std::move(name), std::move(path), is_root, parent_mnt, parent_fstype)
                       : emit_entry(std::move(parent), std::move(name), std::move(path), type, parent_fstype)))
        return {};  // the consumer stopped us
    }
    return {};
  }

 private:
  /// The filesystem type of an open directory, when some rule asks for one.
  std::string fstype_of(int fd) const {
    if (!sel_.uses_fstype()) return {};
    struct statfs sf;
    return ::fstatfs(fd, &sf) == 0 ? fstype_name(static_cast<int64_t>(sf.f_type)) : std::string("unknown");
  }

  /// The rule that decides an entry of scope scope_, or -1 when it is not selected.
  int selecting_rule(FileType t, const std::string& fstype) const {
    const int w = sel_.winner(scope_, t, fstype);
    return w >= 0 && !sel_.policy().rules[static_cast<size_t>(w)].exclude ? w : -1;
  }

  /// `type`: the entry's DT_* type from its directory's listing.
  bool emit_entry(SharedFd parent, Bytes name, Bytes path, unsigned char type, const std::string& fstype) {
    WalkItem item;
    if (opts_.types_only && type != DT_UNKNOWN) {
      item.target.st.st_mode = DTTOIF(type);  // counting: the listing's type is enough
    } else if (lstat_at(parent->get(), name.c_str(), &item.target.st, &item.target.btime_ns) != 0) {
      if (errno == ENOENT) return true;  // gone since the listing: absent, like any removed entry
      item.kind = WalkItem::Kind::StatFailed;
      item.err = errno;
    }
    const FileType t = item.kind == WalkItem::Kind::Entry ? file_type_of(item.target.st.st_mode) : FileType::Unknown;
    item.rule = selecting_rule(t, fstype);
    if (item.rule < 0) return true;  // excluded, or no rule covers it
    item.target.dir = std::move(parent);
    item.target.name = std::move(name);
    item.target.path = std::move(path);
    return emit_(std::move(item));
  }

  bool incomplete(Bytes path, int err, WalkItem::Kind kind = WalkItem::Kind::SubtreeIncomplete, int rule = -2) {
    WalkItem item;
    item.kind = kind;
    item.err = err;
    item.rule = rule == -2 ? selecting_rule(FileType::Dir, {}) : rule;
    item.target.path = std::move(path);
    return emit_(std::move(item));
  }

  bool descend(SharedFd parent, Bytes name, Bytes path, bool is_root, uint64_t parent_mnt, const std::string& parent_fstype) {
    if (!sel_.descend(path, scope_)) return true;  // nothing below can be selected
    Scope scope = scope_;
    wait_for_fd();
    const int self_rule = selecting_rule(FileType::Dir, parent_fstype);
    const bool cross_fs = self_rule >= 0 ? sel_.policy().rules[static_cast<size_t>(self_rule)].cross_fs : sel_.policy().cross_fs;
    UniqueFd fd(::openat(parent->get(), name.c_str(),
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) {
      // Replaced by a non-directory or removed since its own entry was emitted: that entry
      // already says what it is now, and its old contents are absent.
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return true;
      return incomplete(std::move(path), errno);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return incomplete(std::move(path), errno);
    const uint64_t mnt = mount_id_of(fd.get(), st.st_dev);
    if (!is_root && mnt != parent_mnt && !cross_fs) return true;  // a mount point: not crossed
    std::string fstype = fstype_of(fd.get());
    if (!fstype.empty()) {
      // Contents no rule of their own reaches, on a filesystem type an exclusion names:
      // recorded as skipped_fs (visible in reports), not walked.
      const int w = sel_.winner(scope, FileType::Unknown, fstype, 1);
      const auto& rules = sel_.policy().rules;
      if (w >= 0 && rules[static_cast<size_t>(w)].exclude && !rules[static_cast<size_t>(w)].fstypes.empty() &&
          !sel_.may_match_below(path))
        return incomplete(std::move(path), 0, WalkItem::Kind::SubtreeSkipped, w);
    }
    for (const auto& anc : stack_) {  // only reachable through bind mounts, with cross_fs
      if (!anc.is_roots && anc.dev == st.st_dev && anc.ino == st.st_ino)
        return incomplete(std::move(path), ELOOP);
    }
    Frame f;
    f.path = std::move(path);
    f.scope = std::move(scope);
    f.fstype = std::move(fstype);
    f.mnt_id = mnt;
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    if (const int err = list_directory(fd.get(), &f.names, &f.types); err != 0)
      return incomplete(std::move(f.path), err);
    f.fd = budgeted(std::move(fd), budget_);
    sort_events(&f, true);
    stack_.push_back(std::move(f));
    if (stack_.size() > kFdFrames + 1) {
      Frame& far = stack_[stack_.size() - kFdFrames - 1];
      if (!far.is_roots && far.fd) {
        far.fd.reset();  // closed once the entries in flight that share it are collected
        far.fd_released = true;
      }
    }
    return true;
  }

  /// Pops the finished top frame. When its parent's fd was released, reopens it as ".." of
  /// the finished directory; if that is no longer the same directory (the tree was moved
  /// meanwhile), the parent's remaining entries are reported as not listed. False when the
  /// consumer stopped the walk.
  bool return_to_parent() {
    Frame& done = stack_.back();
    if (stack_.size() >= 2) {
      Frame& parent = stack_[stack_.size() - 2];
      if (parent.fd_released) {
        UniqueFd up;
        if (done.fd) up.reset(::openat(done.fd->get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        struct stat st;
        const bool same = up.valid() && ::fstat(up.get(), &st) == 0 && st.st_dev == parent.dev && st.st_ino == parent.ino;
        stack_.pop_back();
        Frame& p = stack_.back();
        if (!same) {
          const int err = up.valid() || !errno ? ESTALE : errno;
          p.next = p.events.size();  // nothing more of it can be listed safely
          return incomplete(p.path, err);
        }
        p.fd = budgeted(std::move(up), budget_);
        p.fd_released = false;
        return true;
      }
    }
    stack_.pop_back();
    return true;
  }

  /// Before opening a directory: waits while the budget of directory fds is spent.
  void wait_for_fd() {
    std::unique_lock lk(budget_->mu);
    if (budget_->live < budget_->limit) return;
    lk.unlock();
    if (opts_.flush) opts_.flush();  // what the walk holds back must reach the collectors
    lk.lock();
    budget_->cv.wait(lk, [&] { return budget_->live < budget_->limit; });
  }

  const WalkOptions& opts_;
  const Selector& sel_;
  std::shared_ptr<FdBudget> budget_ = [] {
    auto b = std::make_shared<FdBudget>();
    b->limit = fd_limit();
    return b;
  }();
  const std::function<bool(WalkItem&&)>& emit_;
  std::vector<Frame> stack_;
  Scope scope_;  // scope of the entry being handled
};

}  // namespace

Status walk(const std::vector<Bytes>& roots, const WalkOptions& opts,
            const std::function<bool(WalkItem&&)>& emit) {
  if (opts.selector) return Walk(opts, emit).run(roots);
  Policy everything;  // no selector: every entry below the roots
  everything.default_attrs = AttrSet{default_attrs(), false};
  add_path_rules(&everything, roots, "walk roots");
  const Selector sel(everything);
  WalkOptions o = opts;
  o.selector = &sel;
  return Walk(o, emit).run(roots);
}

}  // namespace fim
