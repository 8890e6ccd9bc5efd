// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fim.bpf.c: fimctl's BPF LSM sensors (DESIGN.md, Real time; notes/kernel.md §2).
 *
 * One CO-RE object, built against bpf/vmlinux/x86/vmlinux.h (the 6.1 BTF, the oldest kernel
 * supported) and loaded unchanged on newer kernels. The programs tell the watch daemon who
 * changes what below its roots, which kernel modules and BPF programs are loaded and which
 * binaries below the roots are executed; with enforcement on, they deny writes, truncation,
 * attribute changes, renames and unlinks of protected inodes.
 *
 * What "below a root" means: fim_watched holds the roots' (dev, ino); a hook walks at most
 * FIM_MAX_DEPTH d_parent links up from the object looking for one, and records the names it
 * passed, so user space rebuilds the path as root + names without a lookup. bpf_d_path is
 * used only where every supported kernel allows it (file_open, bprm_check_security,
 * kernel_read_file: notes/kernel.md §2.3).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "fim_abi.h"
#include "lib/classify.bpf.h"

char LICENSE[] SEC("license") = "GPL"; /* LSM programs must be GPL */

/* Set by the loader before load (skeleton rodata). */
const volatile __u32 fim_self_tgid = 0;  /* the daemon: never reported, never denied */
const volatile __u32 fim_enforce = 0;    /* honour FIM_W_PROTECT */
const volatile __u64 fim_exempt_dev = 0; /* fimctl's own binary (kernel dev, ino): its */
const volatile __u64 fim_exempt_ino = 0; /* update/accept may replace the baseline */

/* 1 MiB: 1024 records. A full buffer is counted (FIM_CNT_RINGBUF_FULL) and makes the daemon
 * rescan its roots, as a fanotify overflow does. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} fim_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fim_key);
	__type(value, __u32);
} fim_watched SEC(".maps");

/* Exec enforcement's allowlist: the baseline's files below guarded directories, as they were
 * when the daemon verified the baseline. An open for writing removes an entry: a binary
 * modified in place is no longer the one the baseline records. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fim_key);
	__type(value, __u8);
} fim_exec_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FIM_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} fim_counters SEC(".maps");

static __always_inline void counter__add(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&fim_counters, &idx);

	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

/* fim_watched flags of an inode; fills its key. */
static __always_inline __u32 inode__lookup(struct inode *inode, struct fim_key *k)
{
	__u32 *v;

	k->dev = 0;
	k->ino = 0;
	if (!inode)
		return 0;
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->ino = BPF_CORE_READ(inode, i_ino);
	v = bpf_map_lookup_elem(&fim_watched, k);
	return v ? *v : 0;
}

/* The watched root at or above dentry d: its key in *root and the number of names from d
 * up to it (0: d is the root), or -1. Stops at the filesystem's root (d_parent == self). */
static __always_inline int dentry__find_root(struct dentry *d, struct fim_key *root)
{
	struct fim_key k;

	if (inode__lookup(BPF_CORE_READ(d, d_inode), &k) & FIM_W_ROOT) {
		*root = k;
		return 0;
	}
	for (int i = 1; i <= FIM_MAX_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);

		if (!parent || parent == d)
			return -1;
		if (inode__lookup(BPF_CORE_READ(parent, d_inode), &k) & FIM_W_ROOT) {
			*root = k;
			return i;
		}
		d = parent;
	}
	return -1;
}

/* As dentry__find_root, and whether d or an ancestor within FIM_MAX_DEPTH is an exec guard. */
static __always_inline int dentry__find_root_guard(struct dentry *d, struct fim_key *root, int *guarded)
{
	struct fim_key k;
	int depth = -1;
	__u32 w = inode__lookup(BPF_CORE_READ(d, d_inode), &k);

	*guarded = (w & FIM_W_EXEC_GUARD) != 0;
	if (w & FIM_W_ROOT) {
		*root = k;
		depth = 0;
	}
	for (int i = 1; i <= FIM_MAX_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);

		if (!parent || parent == d || (depth >= 0 && *guarded))
			break;
		w = inode__lookup(BPF_CORE_READ(parent, d_inode), &k);
		if ((w & FIM_W_ROOT) && depth < 0) {
			*root = k;
			depth = i;
		}
		if (w & FIM_W_EXEC_GUARD)
			*guarded = 1;
		d = parent;
	}
	return depth;
}

/* comps[0..depth): the names from d up to (not including) the root. */
static __always_inline void event__walk(struct fim_event *e, struct dentry *d, int depth)
{
	for (int i = 0; i < FIM_MAX_DEPTH; i++) {
		if (i >= depth)
			break;
		bpf_probe_read_kernel_str(e->comps[i], FIM_NAME_LEN, BPF_CORE_READ(d, d_name.name));
		e->depth = i + 1;
		d = BPF_CORE_READ(d, d_parent);
	}
}

static __always_inline int task__is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == fim_self_tgid;
}

/* fimctl's own binary (update/accept replace the protected baseline by rename). */
static __always_inline int task__is_exempt(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct inode *exe = BPF_CORE_READ(t, mm, exe_file, f_inode);

	if (!exe || !fim_exempt_ino)
		return 0;
	return BPF_CORE_READ(exe, i_ino) == fim_exempt_ino && BPF_CORE_READ(exe, i_sb, s_dev) == fim_exempt_dev;
}

/* A record with the task's who-data filled in, or NULL (counted) when the buffer is full. */
static __always_inline struct fim_event *event__new(__u32 kind)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fim_event *e = bpf_ringbuf_reserve(&fim_events, sizeof(*e), 0);
	__u64 id = bpf_get_current_pid_tgid();
	struct file *exe;

	if (!e) {
		counter__add(FIM_CNT_RINGBUF_FULL);
		return NULL;
	}
	e->abi_version = FIM_ABI_VERSION;
	e->kind = kind;
	e->flags = 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = (__u32)id;
	e->tgid = id >> 32;
	e->ppid = BPF_CORE_READ(t, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->loginuid = (__u32)-1;
	if (bpf_core_field_exists(t->loginuid)) /* CONFIG_AUDIT (Debian: on) */
		e->loginuid = BPF_CORE_READ(t, loginuid.val);
	e->mntns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->dev = e->ino = e->root_dev = e->root_ino = 0;
	exe = BPF_CORE_READ(t, mm, exe_file);
	e->exe_dev = exe ? BPF_CORE_READ(exe, f_inode, i_sb, s_dev) : 0;
	e->exe_ino = exe ? BPF_CORE_READ(exe, f_inode, i_ino) : 0;
	e->mode = e->extra = e->depth = e->reserved = 0;
	e->path[0] = 0;
	e->name2[0] = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void event__submit(struct fim_event *e)
{
	counter__add(FIM_CNT_EVENTS);
	bpf_ringbuf_submit(e, 0);
}

/* The LSM verdict. "return deny ? -EPERM : 0;" compiles (clang 14) to r0 = -deny, whose range
 * the verifier does not track; kernels >= 6.10 then reject the object ("R0 has unknown scalar
 * value should have been in [-4095, 0]", notes/kernel.md §2.5 item 1). A side effect in the
 * deny branch keeps two return paths with constant R0. */
static __always_inline int verdict(int deny)
{
	if (deny) {
		counter__add(FIM_CNT_DENIED);
		return -FIM_EPERM;
	}
	return 0;
}

/* The common case: an object (dentry d, maybe its inode) changes. Reported when it is below
 * a root or is itself watched; denied when protected and enforcement is on. */
static __always_inline int object__change(struct dentry *d, __u32 kind, __u32 mode, __u32 extra,
					  struct dentry *target)
{
	struct fim_key k, tk, root;
	__u32 w, tw = 0;
	int depth, deny;
	struct fim_event *e;

	if (task__is_self())
		return 0;
	w = inode__lookup(BPF_CORE_READ(d, d_inode), &k);
	if (k.ino && (kind == FIM_EV_OPEN_WRITE || kind == FIM_EV_TRUNCATE))
		bpf_map_delete_elem(&fim_exec_allow, &k); /* no longer what the baseline records */
	if (target)
		tw = inode__lookup(BPF_CORE_READ(target, d_inode), &tk); /* rename over a file */
	depth = dentry__find_root(d, &root);
	if (depth < 0 && target)
		depth = dentry__find_root(target, &root); /* moved into a root */
	if (depth < 0 && !((w | tw) & (FIM_W_SELF | FIM_W_PROTECT)))
		return 0;
	deny = policy__deny(fim_enforce, w | tw, task__is_exempt());
	e = event__new(kind);
	if (e) {
		e->dev = k.dev;
		e->ino = k.ino;
		e->mode = mode;
		e->extra = extra;
		if ((w | tw) & FIM_W_PROTECT)
			e->flags |= FIM_F_PROTECTED;
		if (deny)
			e->flags |= FIM_F_DENIED;
		if (depth >= 0) {
			e->flags |= FIM_F_IN_ROOT;
			e->root_dev = root.dev;
			e->root_ino = root.ino;
			event__walk(e, d, depth);
		}
		if (kind == FIM_EV_CHMOD) {
			e->extra = BPF_CORE_READ(d, d_inode, i_mode);
			if (mode__adds_exec(e->extra, mode))
				e->flags |= FIM_F_ADDS_EXEC;
		}
		if (target)
			bpf_probe_read_kernel_str(e->name2, sizeof(e->name2), BPF_CORE_READ(target, d_name.name));
		event__submit(e);
	}
	return verdict(deny);
}

SEC("lsm/file_open")
int BPF_PROG(fim_file_open, struct file *file)
{
	if (!open__is_write(BPF_CORE_READ(file, f_mode), BPF_CORE_READ(file, f_flags)))
		return 0;
	return object__change(BPF_CORE_READ(file, f_path.dentry), FIM_EV_OPEN_WRITE, BPF_CORE_READ(file, f_flags), 0,
			      NULL);
}

/* ftruncate(2) on kernels >= 6.2 (before, it went through path_truncate). The loader turns
 * autoload off where the hook does not exist, so the object still loads on 6.1. */
SEC("lsm/file_truncate")
int BPF_PROG(fim_file_truncate, struct file *file)
{
	return object__change(BPF_CORE_READ(file, f_path.dentry), FIM_EV_TRUNCATE, 0, 0, NULL);
}

SEC("lsm/path_truncate")
int BPF_PROG(fim_path_truncate, const struct path *path)
{
	return object__change(BPF_CORE_READ(path, dentry), FIM_EV_TRUNCATE, 0, 0, NULL);
}

SEC("lsm/path_chmod")
int BPF_PROG(fim_path_chmod, const struct path *path, umode_t mode)
{
	return object__change(BPF_CORE_READ(path, dentry), FIM_EV_CHMOD, mode, 0, NULL);
}

/* kuid_t and kgid_t are passed by value, which BPF_PROG cannot declare: as __u32
 * (notes/kernel.md §2.5 item 2). */
SEC("lsm/path_chown")
int BPF_PROG(fim_path_chown, const struct path *path, __u32 uid, __u32 gid)
{
	return object__change(BPF_CORE_READ(path, dentry), FIM_EV_CHOWN, gid, uid, NULL);
}

/* New entries: the dentry is negative, its d_parent is the directory. path_mknod also runs
 * for open(O_CREAT) of a new regular file. */
SEC("lsm/path_mknod")
int BPF_PROG(fim_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode, unsigned int dev)
{
	return object__change(dentry, FIM_EV_CREATE, mode, dev, NULL);
}

SEC("lsm/path_mkdir")
int BPF_PROG(fim_path_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	return object__change(dentry, FIM_EV_MKDIR, mode, 0, NULL);
}

SEC("lsm/inode_rename")
int BPF_PROG(fim_inode_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry)
{
	return object__change(old_dentry, FIM_EV_RENAME, 0, 0, new_dentry);
}

SEC("lsm/inode_unlink")
int BPF_PROG(fim_inode_unlink, struct inode *dir, struct dentry *dentry)
{
	return object__change(dentry, FIM_EV_UNLINK, 0, 0, NULL);
}

/* Executions of binaries below a root (user space asks the baseline whether it knows them);
 * with enforcement, below a guarded directory only what fim_exec_allow holds may run. */
SEC("lsm/bprm_check_security")
int BPF_PROG(fim_bprm_check, struct linux_binprm *bprm)
{
	struct file *file = bprm->file;
	struct fim_key k, root;
	struct fim_event *e;
	int depth, guarded, deny;

	inode__lookup(file->f_inode, &k);
	depth = dentry__find_root_guard(file->f_path.dentry, &root, &guarded);
	deny = exec__deny(fim_enforce, guarded, bpf_map_lookup_elem(&fim_exec_allow, &k) != NULL);
	if (depth < 0 && !deny)
		return 0;
	e = event__new(FIM_EV_EXEC);
	if (!e)
		return verdict(deny);
	e->dev = k.dev;
	e->ino = k.ino;
	if (deny)
		e->flags |= FIM_F_DENIED;
	if (depth >= 0) {
		e->flags |= FIM_F_IN_ROOT;
		e->root_dev = root.dev;
		e->root_ino = root.ino;
		event__walk(e, file->f_path.dentry, depth);
	}
	if (bpf_d_path(&file->f_path, e->path, sizeof(e->path)) > 0)
		e->flags |= FIM_F_DPATH;
	bpf_probe_read_kernel_str(e->name2, sizeof(e->name2), bprm->filename);
	event__submit(e);
	return verdict(deny);
}

/* finit_module(2), firmware, kexec_file_load, policies: every one is reported. */
SEC("lsm/kernel_read_file")
int BPF_PROG(fim_kernel_read_file, struct file *file, int id, bool contents)
{
	struct fim_event *e = event__new(FIM_EV_KREAD);
	struct fim_key k;

	if (!e)
		return 0;
	e->extra = id;
	e->mode = contents;
	if (file) {
		inode__lookup(file->f_inode, &k);
		e->dev = k.dev;
		e->ino = k.ino;
		if (bpf_d_path(&file->f_path, e->path, sizeof(e->path)) > 0)
			e->flags |= FIM_F_DPATH;
	}
	event__submit(e);
	return 0;
}

/* init_module(2) from a buffer, kexec_load, firmware from the platform. */
SEC("lsm/kernel_load_data")
int BPF_PROG(fim_kernel_load_data, int id, bool contents)
{
	struct fim_event *e = event__new(FIM_EV_KLOAD);

	if (!e)
		return 0;
	e->extra = id;
	e->mode = contents;
	event__submit(e);
	return 0;
}

/* bpf(BPF_PROG_LOAD) by anyone but the daemon. The stable "bpf" hook, not bpf_prog_load
 * (6.9+, signature changed twice); only its first two arguments are used, which every
 * supported kernel passes alike (6.12 appended a bool). */
SEC("lsm/bpf")
int BPF_PROG(fim_bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
	struct fim_event *e;

	if (cmd != BPF_PROG_LOAD || task__is_self())
		return 0;
	e = event__new(FIM_EV_BPF);
	if (!e)
		return 0;
	e->extra = BPF_CORE_READ(attr, prog_type);
	e->mode = BPF_CORE_READ(attr, expected_attach_type);
	bpf_probe_read_kernel_str(e->name2, sizeof(attr->prog_name), attr->prog_name);
	event__submit(e);
	return 0;
}
