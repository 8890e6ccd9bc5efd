// SPDX-License-Identifier: GPL-2.0-or-later
// The BPF LSM programs' decisions (bpf/lib/classify.bpf.h) run in the kernel on this host:
// fim_test.bpf.c is a SEC("syscall") program, which loads where LSM programs are refused
// (docs/design.md, Real time), run through BPF_PROG_TEST_RUN (ctx_in only: the kernel writes the
// result back into it). One row per case (docs/design.md, Conventions 8). Needs CAP_BPF: exits 77
// (skip) when not root or when the kernel refuses the program type too.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "fim/bpf.h"
#include "fim_abi.h"
#include "fim_test.skel.h"

namespace {

struct Case {
  const char* what;
  uint32_t op, a, b, c;
  uint64_t want;
};

constexpr uint32_t kRoot = FIM_W_ROOT, kProt = FIM_W_PROTECT, kSelf = FIM_W_SELF;

const Case kCases[] = {
    {"chmod 644 -> 755 adds exec", FIM_TEST_ADDS_EXEC, 0100644, 0100755, 0, 1},
    {"chmod 600 -> 610 adds group exec", FIM_TEST_ADDS_EXEC, 0100600, 0100610, 0, 1},
    {"chmod 755 -> 775 had exec already", FIM_TEST_ADDS_EXEC, 0100755, 0100775, 0, 0},
    {"chmod 644 -> 664 no exec", FIM_TEST_ADDS_EXEC, 0100644, 0100664, 0, 0},
    {"directory search bit is not exec", FIM_TEST_ADDS_EXEC, 040644, 040755, 0, 0},
    {"open O_RDONLY", FIM_TEST_OPEN_IS_WRITE, 0x1, 0, 0, 0},
    {"open O_WRONLY (FMODE_WRITE)", FIM_TEST_OPEN_IS_WRITE, 0x2, 01, 0, 1},
    {"open O_RDWR", FIM_TEST_OPEN_IS_WRITE, 0x3, 02, 0, 1},
    {"open O_RDONLY|O_TRUNC", FIM_TEST_OPEN_IS_WRITE, 0x1, 01000, 0, 1},
    {"protected, enforcement off", FIM_TEST_DENY, 0, kProt | kSelf, 0, 0},
    {"protected, enforcing", FIM_TEST_DENY, 1, kProt | kSelf, 0, 1},
    {"protected, enforcing, fimctl itself", FIM_TEST_DENY, 1, kProt | kSelf, 1, 0},
    {"a root, enforcing", FIM_TEST_DENY, 1, kRoot, 0, 0},
    {"a protected root, enforcing", FIM_TEST_DENY, 1, kRoot | kProt, 0, 1},
    {"kernel_read_file READING_MODULE", FIM_TEST_MODULE_READ, 2, 0, 0, 1},
    {"kernel_read_file READING_FIRMWARE", FIM_TEST_MODULE_READ, 1, 0, 0, 0},
    {"kernel_load_data LOADING_MODULE", FIM_TEST_MODULE_LOAD, 2, 0, 0, 1},
    {"kernel_load_data LOADING_FIRMWARE", FIM_TEST_MODULE_LOAD, 1, 0, 0, 0},
    {"exec below a guard, not allowed, enforcing", FIM_TEST_EXEC_DENY, 1, 1, 0, 1},
    {"exec below a guard, allowed, enforcing", FIM_TEST_EXEC_DENY, 1, 1, 1, 0},
    {"exec below a guard, not allowed, enforcement off", FIM_TEST_EXEC_DENY, 0, 1, 0, 0},
    {"exec elsewhere, not allowed, enforcing", FIM_TEST_EXEC_DENY, 1, 0, 0, 0},
    {"mount -t tmpfs (new mount)", FIM_TEST_MOUNT_HIDES, 0, 0, 0, 1},
    {"mount --bind", FIM_TEST_MOUNT_HIDES, MS_BIND, 0, 0, 1},
    {"mount --rbind --make-private (still a bind)", FIM_TEST_MOUNT_HIDES, MS_BIND | MS_REC | MS_PRIVATE, 0, 0, 1},
    {"mount --move", FIM_TEST_MOUNT_HIDES, MS_MOVE, 0, 0, 1},
    {"mount with the old magic", FIM_TEST_MOUNT_HIDES, MS_MGC_VAL, 0, 0, 1},
    {"remount read-only", FIM_TEST_MOUNT_HIDES, MS_REMOUNT | MS_RDONLY, 0, 0, 0},
    {"remount,bind read-only (systemd)", FIM_TEST_MOUNT_HIDES, MS_REMOUNT | MS_BIND | MS_RDONLY, 0, 0, 0},
    {"make-rslave (systemd)", FIM_TEST_MOUNT_HIDES, MS_SLAVE | MS_REC, 0, 0, 0},
    {"make-private", FIM_TEST_MOUNT_HIDES, MS_PRIVATE, 0, 0, 0},
    {"make-shared", FIM_TEST_MOUNT_HIDES, MS_SHARED, 0, 0, 0},
    {"make-unbindable", FIM_TEST_MOUNT_HIDES, MS_UNBINDABLE, 0, 0, 0},
    {"mount over own dir, daemon's namespace, enforcing", FIM_TEST_MOUNT_DENY, 1, FIM_W_NOMOUNT, FIM_MNT_SELF_NS, 1},
    {"mount over own dir, host namespace, enforcing", FIM_TEST_MOUNT_DENY, 1, FIM_W_NOMOUNT, FIM_MNT_HOST_NS, 1},
    {"mount over own dir, shared mount point, enforcing", FIM_TEST_MOUNT_DENY, 1, FIM_W_NOMOUNT, FIM_MNT_SHARED, 1},
    {"mount over own dir, other namespace, private", FIM_TEST_MOUNT_DENY, 1, FIM_W_NOMOUNT, 0, 0},
    {"mount over own dir, enforcement off", FIM_TEST_MOUNT_DENY, 0, FIM_W_NOMOUNT, FIM_MNT_SELF_NS, 0},
    {"mount over a protected file (not own)", FIM_TEST_MOUNT_DENY, 1, FIM_W_PROTECT | FIM_W_SELF, FIM_MNT_SELF_NS, 0},
    {"kernel dev_t 8:1", FIM_TEST_KDEV, 8, 1, 0, fim::kernel_dev(makedev(8, 1))},
    {"kernel dev_t 259:65536", FIM_TEST_KDEV, 259, 65536, 0, fim::kernel_dev(makedev(259, 65536))},
    {"kernel dev_t 0:26 (tmpfs)", FIM_TEST_KDEV, 0, 26, 0, fim::kernel_dev(makedev(0, 26))},
};

int run(int fd, fim_test_ctx* ctx, int* retval) {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = ctx, .ctx_size_in = sizeof *ctx);
  const int err = bpf_prog_test_run_opts(fd, &opts);
  *retval = static_cast<int>(opts.retval);
  return err;
}

}  // namespace

int main() {
  if (::geteuid() != 0) {
    std::puts("SKIP: needs root (CAP_BPF)");
    return 77;
  }
  libbpf_set_print([](enum libbpf_print_level, const char*, va_list) { return 0; });
  fim_test_bpf* skel = fim_test_bpf__open_and_load();
  if (!skel) {
    const int err = errno;
    std::printf("SKIP: the syscall test program did not load: %s\n", std::strerror(err));
    return err == EPERM || err == EINVAL ? 77 : 1;
  }
  const int fd = bpf_program__fd(skel->progs.fim_test_classify);
  int failed = 0;
  for (const Case& c : kCases) {
    fim_test_ctx ctx{c.op, c.a, c.b, c.c, ~0ull};
    int retval = -1;
    const int err = run(fd, &ctx, &retval);
    const bool ok = err == 0 && retval == 0 && ctx.result == c.want;
    std::printf("%s %s: result %llu, want %llu (err %d, retval %d)\n", ok ? "ok  " : "FAIL", c.what,
                static_cast<unsigned long long>(ctx.result), static_cast<unsigned long long>(c.want), err, retval);
    failed += !ok;
  }
  // An unknown operation is refused by the program (return 1), not answered.
  fim_test_ctx bad{99, 0, 0, 0, 5};
  int retval = -1;
  if (run(fd, &bad, &retval) != 0 || retval != 1 || bad.result != 5) {
    std::printf("FAIL unknown op: retval %d\n", retval);
    ++failed;
  }
  fim_test_bpf__destroy(skel);
  std::printf("%d of %zu cases failed\n", failed, sizeof kCases / sizeof kCases[0] + 1);
  return failed ? 1 : 0;
}
