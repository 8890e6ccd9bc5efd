// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fim.bpf.c: fimctl's BPF LSM sensors (docs/design.md, Real time).
 *
 * One CO-RE object, built against bpf/vmlinux/x86/vmlinux.h (the 6.1 BTF, the oldest kernel
 * supported) and loaded unchanged on newer kernels. The programs tell the watch daemon who
 * changes what below its roots, which kernel modules and BPF programs are loaded and which
 * binaries below the roots are executed; with enforcement on, they deny writes, truncation,
 * attribute changes, renames and unlinks of protected inodes, and mounts over fimctl's own
 * files and directories.
 *
 * What "below a root" means: fim_watched holds the roots' (dev, ino); a hook walks at most
 * FIM_MAX_DEPTH d_parent links up from the object looking for one, and records the names it
 * passed, so user space rebuilds the path as root + names without a lookup. bpf_d_path is
 * used only where every supported kernel allows it (file_open, bprm_check_security,
 * kernel_read_file: docs/design.md, Real time).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "fim_abi.h"
#include "lib/classify.bpf.h"
#include "lib/event.bpf.h"

char LICENSE[] SEC("license") = "GPL"; /* LSM programs must be GPL */

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
 * (docs/design.md, Real time, verifier quirk 2). */
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

/* Where a mount at `to` takes effect (FIM_MNT_*): the daemon's or PID 1's namespace, or a
 * shared mount point, from which it propagates into theirs. */
static __always_inline __u32 mount__scope(const struct path *to)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u32 ns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	__u32 scope = 0;

	if (ns == fim_self_mntns)
		scope |= FIM_MNT_SELF_NS;
	if (fim_host_mntns && ns == fim_host_mntns)
		scope |= FIM_MNT_HOST_NS;
	if (BPF_CORE_READ(to, mnt, mnt_flags) & FIM_VFSMOUNT_SHARED)
		scope |= FIM_MNT_SHARED;
	return scope;
}

/* A mount whose mount point is one of fimctl's own files or directories (or an ancestor of
 * them): it would hide the baseline, keys or policy behind another tree. `from` (move_mount)
 * is the tree put there: the same inode is a directory bound over itself, which hides nothing. */
static __always_inline int mount__check(const struct path *to, __u32 kind, __u32 flags, const char *source,
					const char *type, const struct path *from)
{
	struct fim_key k, fk;
	struct fim_event *e;
	__u32 w, scope;
	int deny;

	if (kind == FIM_EV_MOUNT && !mount__hides(flags))
		return 0;
	w = inode__lookup(BPF_CORE_READ(to, dentry, d_inode), &k);
	if (!(w & FIM_W_NOMOUNT))
		return 0;
	if (from) {
		inode__lookup(BPF_CORE_READ(from, dentry, d_inode), &fk);
		if (fk.dev == k.dev && fk.ino == k.ino)
			return 0;
	}
	scope = mount__scope(to);
	deny = mount__deny(fim_enforce, w, scope);
	e = event__new(kind);
	if (e) {
		e->dev = k.dev;
		e->ino = k.ino;
		e->mode = flags;
		e->extra = scope;
		if (deny)
			e->flags |= FIM_F_DENIED;
		if (source)
			bpf_probe_read_kernel_str(e->path, sizeof(e->path), source);
		if (type)
			bpf_probe_read_kernel_str(e->name2, sizeof(e->name2), type);
		event__submit(e);
	}
	return verdict(deny);
}

/* mount(2): `path` is the mount point; dev_name and type are the kernel's copies. */
SEC("lsm/sb_mount")
int BPF_PROG(fim_sb_mount, const char *dev_name, const struct path *path, const char *type, unsigned long flags,
	     void *data)
{
	return mount__check(path, FIM_EV_MOUNT, (__u32)flags, dev_name, type, NULL);
}

/* move_mount(2), the new mount API's attach (fsmount, open_tree): to_path is the mount point. */
SEC("lsm/move_mount")
int BPF_PROG(fim_move_mount, const struct path *from_path, const struct path *to_path)
{
	return mount__check(to_path, FIM_EV_MOVE_MOUNT, 0, NULL, NULL, from_path);
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
