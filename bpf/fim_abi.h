/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fim_abi.h: the one header shared by the BPF LSM programs (fim.bpf.c) and fimctl's loader
 * (src/watch/bpf_*.cpp). It is an ABI (docs/design.md, Conventions 9): fixed-width types only,
 * every record starts with abi_version and kind, and every struct's size and the offsets user space
 * relies on are checked on both sides at compile time. Change a layout only together with
 * FIM_ABI_VERSION; user space refuses records of another version.
 *
 * <stdint.h> does not compile under clang -target bpf on Debian, so the BPF side takes its
 * __u8..__u64 from vmlinux.h and user space from <linux/types.h>.
 */
#ifndef FIM_ABI_H
#define FIM_ABI_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define FIM_ABI_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define FIM_ABI_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define FIM_ABI_VERSION 1

#define FIM_COMM_LEN 16  /* TASK_COMM_LEN */
#define FIM_PATH_LEN 256 /* bpf_d_path buffer; longer paths fail the helper and are walked instead */
#define FIM_NAME_LEN 48  /* bytes per walked component (NAME_MAX is 255: longer names are cut) */
/* Ancestors looked at for a watched root, and components recorded below it. A bounded
 * loop: 6.1's verifier walks every iteration, so this bounds the program's complexity. */
#define FIM_MAX_DEPTH 12

/* What a record is about (fim_event.kind). */
enum fim_kind {
	FIM_EV_OPEN_WRITE = 1, /* file_open with FMODE_WRITE (or O_TRUNC) */
	FIM_EV_TRUNCATE = 2,   /* path_truncate (truncate(2)), file_truncate (ftruncate, >= 6.2) */
	FIM_EV_CHMOD = 3,      /* path_chmod: mode = new mode, extra = old mode */
	FIM_EV_CHOWN = 4,      /* path_chown: mode = new gid, extra = new uid */
	FIM_EV_CREATE = 5,     /* path_mknod: open(O_CREAT) of a new file, mknod(2) */
	FIM_EV_MKDIR = 6,      /* path_mkdir */
	FIM_EV_RENAME = 7,     /* inode_rename: name2 = the new name */
	FIM_EV_UNLINK = 8,     /* inode_unlink */
	FIM_EV_EXEC = 9,       /* bprm_check_security: name2 = the filename exec'd */
	FIM_EV_KREAD = 10,     /* kernel_read_file: extra = enum kernel_read_file_id */
	FIM_EV_KLOAD = 11,     /* kernel_load_data: extra = enum kernel_load_data_id */
	FIM_EV_BPF = 12,       /* bpf(BPF_PROG_LOAD): extra = prog type, mode = attach type */
	/* sb_mount (mount(2)) over a FIM_W_NOMOUNT inode: mode = the MS_* flags, extra = FIM_MNT_*,
	 * path = the source as given (dev_name; never FIM_F_DPATH), name2 = the filesystem type. */
	FIM_EV_MOUNT = 13,
	FIM_EV_MOVE_MOUNT = 14, /* move_mount(2) onto a FIM_W_NOMOUNT inode: extra = FIM_MNT_* */
	FIM_EV_KIND_MAX = 15,
};

/* fim_watched values: what an inode is to the programs. */
#define FIM_W_ROOT 1u    /* a watched root: what happens below it is reported */
#define FIM_W_PROTECT 2u /* with enforce: writes, truncation, chmod/chown, rename, unlink denied */
#define FIM_W_SELF 4u    /* report events on this inode itself (protected files) */
#define FIM_W_EXEC_GUARD 8u /* with enforce: execs below it need an entry in fim_exec_allow */
#define FIM_W_NOMOUNT 16u   /* fimctl's own files, directories and their ancestors: with enforce,
			     * a mount over it is denied where it could hide them (FIM_MNT_*) */

/* Where a mount over a FIM_W_NOMOUNT inode takes effect (fim_event.extra of the mount kinds):
 * any bit set means the daemon's or the host's view changes, and only then is it denied. */
#define FIM_MNT_SELF_NS 1u /* the task is in the daemon's mount namespace */
#define FIM_MNT_HOST_NS 2u /* the task is in PID 1's mount namespace */
#define FIM_MNT_SHARED 4u  /* the mount point's mount is shared: the mount propagates to peers */

/* fim_event.flags */
#define FIM_F_DENIED 1u      /* the hook returned -EPERM */
#define FIM_F_ADDS_EXEC 2u   /* chmod that gives a regular file an x bit it did not have */
#define FIM_F_DPATH 4u       /* path[] was filled by bpf_d_path */
#define FIM_F_IN_ROOT 8u     /* root_dev/root_ino name the watched root above the object */
#define FIM_F_PROTECTED 16u  /* the object (or the rename target) is protected */

/* fim_counters (per-CPU array) indexes: read every tick by user space. */
enum fim_counter {
	FIM_CNT_RINGBUF_FULL = 0, /* an event was lost: the ring buffer was full */
	FIM_CNT_EVENTS = 1,       /* events submitted */
	FIM_CNT_DENIED = 2,       /* operations denied */
	FIM_CNT_MAX = 3,
};

/* fim_watched key. dev is the kernel's s_dev encoding, (major << 20) | minor, not glibc's. */
struct fim_key {
	__u64 dev;
	__u64 ino;
};

/* One ring-buffer record (1 KiB). Strings are NUL-terminated when shorter than their field. */
struct fim_event {
	__u16 abi_version; /* FIM_ABI_VERSION */
	__u16 kind;        /* enum fim_kind */
	__u32 flags;       /* FIM_F_* */
	__u64 ts_ns;       /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 pid;         /* thread id, host pid namespace */
	__u32 tgid;
	__u32 ppid;        /* real_parent's tgid */
	__u32 uid;         /* current uid */
	__u32 loginuid;    /* audit login uid; 4294967295 when unset */
	__u32 mntns;       /* mount namespace inode number (== stat -L /proc/PID/ns/mnt) */
	__u64 cgroup_id;   /* cgroup v2 id of the task */
	__u64 dev, ino;    /* the object (kernel s_dev encoding); 0 when it does not exist yet */
	__u64 root_dev, root_ino; /* the watched root above it (FIM_F_IN_ROOT) */
	__u64 exe_dev, exe_ino;   /* the task's executable */
	__u32 mode;        /* per kind, see enum fim_kind */
	__u32 extra;
	__u32 depth;       /* valid comps[]: comps[0] is the object's name, then its parents' */
	__u32 reserved;
	char comm[FIM_COMM_LEN];
	char path[FIM_PATH_LEN];  /* bpf_d_path where the hook allows it (FIM_F_DPATH) */
	char name2[FIM_NAME_LEN + 16];
	char comps[FIM_MAX_DEPTH][FIM_NAME_LEN];
};

/* Input and output of the SEC("syscall") test program (fim_test.bpf.c): the classification
 * helpers run on the host through BPF_PROG_TEST_RUN, where LSM programs cannot load. */
enum fim_test_op {
	FIM_TEST_ADDS_EXEC = 1,     /* a = old mode, b = new mode */
	FIM_TEST_OPEN_IS_WRITE = 2, /* a = f_mode, b = f_flags */
	FIM_TEST_DENY = 3,          /* a = enforce, b = watched flags, c = exempt */
	FIM_TEST_MODULE_READ = 4,   /* a = kernel_read_file_id */
	FIM_TEST_MODULE_LOAD = 5,   /* a = kernel_load_data_id */
	FIM_TEST_KDEV = 6,          /* a = major, b = minor: result64 = kernel s_dev */
	FIM_TEST_EXEC_DENY = 7,     /* a = enforce, b = guarded, c = allowed */
	FIM_TEST_MOUNT_HIDES = 8,   /* a = MS_* flags */
	FIM_TEST_MOUNT_DENY = 9,    /* a = enforce, b = watched flags, c = FIM_MNT_* */
};

struct fim_test_ctx {
	__u32 op;
	__u32 a, b, c;
	__u64 result;
};

FIM_ABI_ASSERT(sizeof(struct fim_key) == 16, "fim_key layout");
FIM_ABI_ASSERT(sizeof(struct fim_event) == 1024, "fim_event layout");
FIM_ABI_ASSERT(__builtin_offsetof(struct fim_event, ts_ns) == 8, "fim_event.ts_ns");
FIM_ABI_ASSERT(__builtin_offsetof(struct fim_event, cgroup_id) == 40, "fim_event.cgroup_id");
FIM_ABI_ASSERT(__builtin_offsetof(struct fim_event, dev) == 48, "fim_event.dev");
FIM_ABI_ASSERT(__builtin_offsetof(struct fim_event, mode) == 96, "fim_event.mode");
FIM_ABI_ASSERT(__builtin_offsetof(struct fim_event, comm) == 112, "fim_event.comm");
FIM_ABI_ASSERT(__builtin_offsetof(struct fim_event, path) == 128, "fim_event.path");
FIM_ABI_ASSERT(__builtin_offsetof(struct fim_event, name2) == 384, "fim_event.name2");
FIM_ABI_ASSERT(__builtin_offsetof(struct fim_event, comps) == 448, "fim_event.comps");
FIM_ABI_ASSERT(sizeof(struct fim_test_ctx) == 24, "fim_test_ctx layout");

#endif /* FIM_ABI_H */
