// SPDX-License-Identifier: GPL-2.0-or-later
// The BPF LSM sensors' loader (include/fim/bpf.h): the skeleton built from bpf/fim.bpf.c,
// loaded and attached as the probe (docs/design.md, Conventions 11: available only when `bpf` is an
// active LSM, the object loads and every program attaches), then the ring buffer consumed.
// Built as a stub returning Errc::Unsupported when FIM_HAVE_BPF is 0.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <map>
#include <mutex>

#include "fim/base/fd.h"
#include "fim/base/sys.h"
#include "fim/bpf.h"
#include "fim_config.h"

#if FIM_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fim.skel.h"
#include "fim_abi.h"
#endif

namespace fim {

bool bpf_built_in() { return FIM_HAVE_BPF; }

#if FIM_HAVE_BPF

namespace {

// libbpf's messages: kept (the last few) to explain a failed load, never printed as they come
// (its EPERM hint about 'ulimit -l' is wrong on the hosts that refuse LSM programs).
std::mutex g_log_mu;
std::string g_log;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  std::vsnprintf(line, sizeof line, fmt, ap);
  std::lock_guard<std::mutex> lk(g_log_mu);
  g_log += line;
  if (g_log.size() > 8192) g_log.erase(0, g_log.size() - 8192);
  return 0;
}

/// The first line of libbpf's log that says why, for the one-line error.
std::string libbpf_reason() {
  std::lock_guard<std::mutex> lk(g_log_mu);
  size_t at = 0;
  std::string last;
  while (at < g_log.size()) {
    size_t nl = g_log.find('\n', at);
    if (nl == std::string::npos) nl = g_log.size();
    std::string l = g_log.substr(at, nl - at);
    if (!l.empty() && l.find("ulimit") == std::string::npos) last = l;
    at = nl + 1;
  }
  return last;
}

Error unsupported(const std::string& what, int err) {
  std::string msg = what;
  const std::string why = libbpf_reason();
  if (!why.empty() && err != EPERM) msg += " (libbpf: " + why + ")";
  return make_error(Errc::Unsupported, msg, err);
}

}  // namespace

struct BpfSensor::Impl {
  // Destroyed in reverse order: the ring buffer, then the links, then the object they use.
  std::unique_ptr<fim_bpf, CDeleter<fim_bpf__destroy>> skel;
  std::vector<std::unique_ptr<bpf_link, CDeleter<bpf_link__destroy>>> links;
  std::unique_ptr<ring_buffer, CDeleter<ring_buffer__free>> rb;
  std::string hooks;
  std::map<std::pair<uint64_t, uint64_t>, Bytes> roots;  // kernel (dev, ino) -> root path
  std::map<std::pair<uint64_t, uint64_t>, Bytes> no_mount;  // kernel (dev, ino) -> fimctl's own path
  const std::function<void(BpfEvent&&)>* on_event = nullptr;
  uint64_t bad_records = 0;

  static int handle(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    auto ev = decode_bpf_event(std::string_view(static_cast<const char*>(data), size));
    if (!ev) {
      ++self->bad_records;
      return 0;
    }
    self->complete(*ev);
    (*self->on_event)(std::move(*ev));
    return 0;
  }

  /// The path: the root's path and the names walked below it; bpf_d_path otherwise (or when
  /// a name was cut at FIM_NAME_LEN).
  void complete(BpfEvent& ev) const {
    ev.path = ev.dpath;
    if (ev.is_mount()) {  // the mount point: one of the paths deny_mounts was given
      if (auto it = no_mount.find({kernel_dev(ev.dev), ev.ino}); it != no_mount.end()) ev.path = it->second;
    }
    if (ev.in_root()) {
      auto it = roots.find({kernel_dev(ev.root_dev), ev.root_ino});
      bool whole = it != roots.end();
      for (const auto& n : ev.names) whole = whole && n.size() < FIM_NAME_LEN - 1 && !n.empty();
      if (whole) {
        Bytes p = it->second;
        for (auto n = ev.names.rbegin(); n != ev.names.rend(); ++n) p = join_path(p, *n);
        ev.path = std::move(p);
      }
    }
    char exe[4096];
    const std::string link = "/proc/" + std::to_string(ev.who.tgid) + "/exe";
    const ssize_t n = ::readlink(link.c_str(), exe, sizeof exe);
    if (n > 0) ev.who.exe.assign(exe, static_cast<size_t>(n));
  }

  /// Removes `flag` from every fim_watched entry.
  void clear_flag(uint32_t flag) {
    fim_key k{}, next{};
    const fim_key* prev = nullptr;
    std::vector<fim_key> keys;
    while (bpf_map__get_next_key(skel->maps.fim_watched, prev, &next, sizeof next) == 0) {
      keys.push_back(next);
      k = next;
      prev = &k;
    }
    for (const auto& key : keys) {
      uint32_t v = 0;
      if (bpf_map__lookup_elem(skel->maps.fim_watched, &key, sizeof key, &v, sizeof v, 0) != 0 || !(v & flag)) continue;
      v &= ~flag;
      if (v) (void)bpf_map__update_elem(skel->maps.fim_watched, &key, sizeof key, &v, sizeof v, BPF_ANY);
      else (void)bpf_map__delete_elem(skel->maps.fim_watched, &key, sizeof key, 0);
    }
  }

  void clear_allow() {
    fim_key k{}, next{};
    std::vector<fim_key> keys;
    const fim_key* prev = nullptr;
    while (bpf_map__get_next_key(skel->maps.fim_exec_allow, prev, &next, sizeof next) == 0) {
      keys.push_back(next);
      k = next;
      prev = &k;
    }
    for (const auto& key : keys) (void)bpf_map__delete_elem(skel->maps.fim_exec_allow, &key, sizeof key, 0);
  }

  Status set_flags(const Bytes& path, uint32_t add, struct stat* out) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return make_error(Errc::Io, "cannot stat " + quote(path), errno);
    fim_key k{kernel_dev(st.st_dev), st.st_ino};
    uint32_t v = 0;
    (void)bpf_map__lookup_elem(skel->maps.fim_watched, &k, sizeof k, &v, sizeof v, 0);
    v |= add;
    if (int err = bpf_map__update_elem(skel->maps.fim_watched, &k, sizeof k, &v, sizeof v, BPF_ANY); err)
      return make_error(Errc::Io, "cannot add " + quote(path) + " to the BPF map", -err);
    if (out) *out = st;
    return {};
  }

  uint64_t counter(uint32_t idx) const {
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return 0;
    std::vector<uint64_t> v(static_cast<size_t>(ncpu));
    if (bpf_map__lookup_elem(skel->maps.fim_counters, &idx, sizeof idx, v.data(), v.size() * sizeof(uint64_t), 0))
      return 0;
    uint64_t sum = 0;
    for (uint64_t x : v) sum += x;
    return sum;
  }
};

Result<std::unique_ptr<BpfSensor>> BpfSensor::open(const BpfOptions& opts) {
  libbpf_set_print(libbpf_print);
  // Cheap first question: is bpf an active LSM at all (lsm= on the kernel command line)?
  if (auto lsm = read_small_file("/sys/kernel/security/lsm", 4096); lsm) {
    const std::string l = "," + *lsm + ",";
    if (l.find(",bpf,") == std::string::npos && l.find(",bpf\n") == std::string::npos)
      return make_error(Errc::Unsupported,
                        "the kernel's active LSMs do not include bpf (" + quote(*lsm) + "; boot with lsm=...,bpf)");
  }
  auto impl = std::make_unique<Impl>();
  impl->skel.reset(fim_bpf__open());
  if (!impl->skel) return unsupported("cannot open the BPF object", errno);
  impl->skel->rodata->fim_self_tgid = static_cast<uint32_t>(::getpid());
  impl->skel->rodata->fim_enforce = opts.enforce ? 1 : 0;
  // Mounts over fimctl's own files are denied where the daemon or the host would see them:
  // the daemon's mount namespace and PID 1's (a systemd unit's sandbox gives the daemon one of
  // its own), by inode number, which is what the programs read from the task.
  struct stat ns;
  if (::stat("/proc/self/ns/mnt", &ns) == 0) impl->skel->rodata->fim_self_mntns = static_cast<uint32_t>(ns.st_ino);
  if (::stat("/proc/1/ns/mnt", &ns) == 0) impl->skel->rodata->fim_host_mntns = static_cast<uint32_t>(ns.st_ino);
  if (!opts.exempt_exe.empty()) {
    struct stat st;
    if (::stat(opts.exempt_exe.c_str(), &st) == 0) {
      impl->skel->rodata->fim_exempt_dev = kernel_dev(st.st_dev);
      impl->skel->rodata->fim_exempt_ino = st.st_ino;
    }
  }
  // A hook this kernel does not have (file_truncate before 6.2) is not loaded, so the rest
  // loads: asked of the kernel's BTF, not of its version.
  std::string absent;
  bpf_program* prog;
  bpf_object__for_each_program(prog, impl->skel->obj) {
    const char* sec = bpf_program__section_name(prog);
    if (std::strncmp(sec, "lsm/", 4) != 0) continue;
    if (libbpf_find_vmlinux_btf_id(sec + 4, BPF_LSM_MAC) < 0) {
      bpf_program__set_autoload(prog, false);
      absent += (absent.empty() ? "" : ",") + std::string(sec + 4);
    }
  }
  if (int err = fim_bpf__load(impl->skel.get()); err) return unsupported("the BPF LSM programs did not load", -err);
  bpf_object__for_each_program(prog, impl->skel->obj) {
    if (!bpf_program__autoload(prog)) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      const int err = errno;
      return unsupported("BPF LSM program " + quote(bpf_program__section_name(prog)) + " did not attach", err);
    }
    impl->links.emplace_back(link);
    impl->hooks += (impl->hooks.empty() ? "" : ",") + std::string(bpf_program__section_name(prog) + 4);
  }
  if (!absent.empty()) impl->hooks += " (absent here: " + absent + ")";
  impl->rb.reset(ring_buffer__new(bpf_map__fd(impl->skel->maps.fim_events), &Impl::handle, impl.get(), nullptr));
  if (!impl->rb) return unsupported("cannot map the BPF ring buffer", errno);
  return std::unique_ptr<BpfSensor>(new BpfSensor(std::move(impl)));
}

Status BpfSensor::watch_root(const Bytes& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return make_error(Errc::Io, "cannot stat " + quote(dir), errno);
  const std::pair<uint64_t, uint64_t> key{kernel_dev(st.st_dev), st.st_ino};
  if (auto it = impl_->roots.find(key); it != impl_->roots.end() && it->second == dir) return {};  // as registered
  for (auto it = impl_->roots.begin(); it != impl_->roots.end();) {
    if (it->second != dir) {
      ++it;
      continue;
    }
    // The directory was replaced: its old inode (whose number may be reused) is no root.
    fim_key old{it->first.first, it->first.second};
    uint32_t v = 0;
    if (bpf_map__lookup_elem(impl_->skel->maps.fim_watched, &old, sizeof old, &v, sizeof v, 0) == 0) {
      v &= ~FIM_W_ROOT;
      if (v) (void)bpf_map__update_elem(impl_->skel->maps.fim_watched, &old, sizeof old, &v, sizeof v, BPF_ANY);
      else (void)bpf_map__delete_elem(impl_->skel->maps.fim_watched, &old, sizeof old, 0);
    }
    it = impl_->roots.erase(it);
  }
  FIM_TRY(impl_->set_flags(dir, FIM_W_ROOT, &st));
  impl_->roots[{kernel_dev(st.st_dev), st.st_ino}] = dir;
  return {};
}

Status BpfSensor::protect(const Bytes& path) { return impl_->set_flags(path, FIM_W_PROTECT | FIM_W_SELF, nullptr); }

Status BpfSensor::deny_mounts(const Bytes& path) {
  struct stat st;
  FIM_TRY(impl_->set_flags(path, FIM_W_NOMOUNT, &st));
  impl_->no_mount[{kernel_dev(st.st_dev), st.st_ino}] = path;
  return {};
}

Status BpfSensor::set_exec_policy(const std::vector<Bytes>& guards, const std::vector<std::pair<dev_t, uint64_t>>& allow) {
  // Guards off first: while the allowlist is rebuilt nothing is denied that should run.
  impl_->clear_flag(FIM_W_EXEC_GUARD);
  impl_->clear_allow();
  if (allow.size() > kMaxExecAllow)
    return make_error(Errc::Usage, std::to_string(allow.size()) + " files below deny_unknown_exec rules, more than the " +
                                       std::to_string(kMaxExecAllow) + " the kernel map holds: exec enforcement is off");
  const uint8_t one = 1;
  for (const auto& [dev, ino] : allow) {
    fim_key k{kernel_dev(dev), ino};
    if (int err = bpf_map__update_elem(impl_->skel->maps.fim_exec_allow, &k, sizeof k, &one, sizeof one, BPF_ANY); err) {
      impl_->clear_allow();
      return make_error(Errc::Io, "cannot fill the exec allowlist", -err);
    }
  }
  for (const auto& g : guards) FIM_TRY(impl_->set_flags(g, FIM_W_EXEC_GUARD, nullptr));
  return {};
}

int BpfSensor::fd() const { return ring_buffer__epoll_fd(impl_->rb.get()); }

Result<size_t> BpfSensor::consume(const std::function<void(BpfEvent&&)>& on_event) {
  impl_->on_event = &on_event;
  const int n = ring_buffer__consume(impl_->rb.get());
  impl_->on_event = nullptr;
  if (n < 0) return make_error(Errc::Io, "reading the BPF ring buffer", -n);
  return static_cast<size_t>(n);
}

uint64_t BpfSensor::lost() const { return impl_->counter(FIM_CNT_RINGBUF_FULL); }
uint64_t BpfSensor::submitted() const { return impl_->counter(FIM_CNT_EVENTS); }
uint64_t BpfSensor::denied() const { return impl_->counter(FIM_CNT_DENIED); }
const std::string& BpfSensor::hooks() const { return impl_->hooks; }

#else  // !FIM_HAVE_BPF

struct BpfSensor::Impl {
  std::string hooks;
};

Result<std::unique_ptr<BpfSensor>> BpfSensor::open(const BpfOptions&) {
  return make_error(Errc::Unsupported, "this fimctl was built without BPF support (clang, bpftool or libbpf missing)");
}
Status BpfSensor::watch_root(const Bytes&) { return make_error(Errc::Unsupported, "no BPF support"); }
Status BpfSensor::protect(const Bytes&) { return make_error(Errc::Unsupported, "no BPF support"); }
Status BpfSensor::deny_mounts(const Bytes&) { return make_error(Errc::Unsupported, "no BPF support"); }
Status BpfSensor::set_exec_policy(const std::vector<Bytes>&, const std::vector<std::pair<dev_t, uint64_t>>&) {
  return make_error(Errc::Unsupported, "no BPF support");
}
int BpfSensor::fd() const { return -1; }
Result<size_t> BpfSensor::consume(const std::function<void(BpfEvent&&)>&) { return size_t{0}; }
uint64_t BpfSensor::lost() const { return 0; }
uint64_t BpfSensor::submitted() const { return 0; }
uint64_t BpfSensor::denied() const { return 0; }
const std::string& BpfSensor::hooks() const { return impl_->hooks; }

#endif

BpfSensor::BpfSensor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpfSensor::~BpfSensor() = default;

}  // namespace fim
