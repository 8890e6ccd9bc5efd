/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * classify.bpf.h: the decisions the LSM programs make, as pure functions of plain integers,
 * so that fim_test.bpf.c (a SEC("syscall") program) can run them on hosts that refuse LSM
 * programs (docs/design.md, Real time) through BPF_PROG_TEST_RUN. Named object__verb
 * (docs/design.md, Conventions 10).
 */
#ifndef FIM_CLASSIFY_BPF_H
#define FIM_CLASSIFY_BPF_H

#include "fim_abi.h"

/* From the kernel's uapi/linux headers, which vmlinux.h (BTF) does not carry: macros. */
#define FIM_FMODE_WRITE 0x2u  /* include/linux/fs.h */
#define FIM_O_TRUNC 01000u    /* uapi/asm-generic/fcntl.h */
#define FIM_S_IFMT 0170000u
#define FIM_S_IFREG 0100000u
#define FIM_EPERM 1
#define FIM_READING_MODULE 2u /* enum kernel_read_file_id */
#define FIM_LOADING_MODULE 2u /* enum kernel_load_data_id */
/* uapi/linux/mount.h */
#define FIM_MS_REMOUNT 32u
#define FIM_MS_BIND 4096u
#define FIM_MS_PROPAGATION ((1u << 17) | (1u << 18) | (1u << 19) | (1u << 20)) /* UNBINDABLE..SHARED */
#define FIM_MS_MGC_MSK 0xffff0000u
#define FIM_MS_MGC_VAL 0xc0ed0000u
#define FIM_VFSMOUNT_SHARED 0x1000 /* MNT_SHARED in vfsmount.mnt_flags (include/linux/mount.h) */

/* A chmod of a regular file that adds an x bit (user, group or other) it did not have. */
static __always_inline int mode__adds_exec(__u32 old_mode, __u32 new_mode)
{
	if ((old_mode & FIM_S_IFMT) != FIM_S_IFREG)
		return 0;
	return (new_mode & 0111) && !(old_mode & 0111);
}

/* An open that can change the content: opened for writing, or truncated by O_TRUNC. */
static __always_inline int open__is_write(__u32 f_mode, __u32 f_flags)
{
	return (f_mode & FIM_FMODE_WRITE) || (f_flags & FIM_O_TRUNC);
}

/* Enforcement: only when switched on, only on protected inodes, never for fimctl itself. */
static __always_inline int policy__deny(__u32 enforce, __u32 watched, __u32 exempt)
{
	return enforce && (watched & FIM_W_PROTECT) && !exempt;
}

/* Exec enforcement: below a guarded directory, only what the allowlist (the baseline's files,
 * as they were) holds may run. */
static __always_inline int exec__deny(__u32 enforce, __u32 guarded, __u32 allowed)
{
	return enforce && guarded && !allowed;
}

/* Whether mount(2) with these flags puts another tree at its mount point, in the order the
 * kernel's path_mount() dispatches them: a remount (MS_BIND with it changes per-mount flags
 * only) and a change of propagation alone show the same files, so they are never denied; a bind
 * (even with propagation flags), a move and a new mount do not. systemd's sandboxing remounts
 * and changes propagation at every service start. */
static __always_inline int mount__hides(__u32 flags)
{
	if ((flags & FIM_MS_MGC_MSK) == FIM_MS_MGC_VAL) /* the old magic, discarded by the kernel */
		flags &= ~FIM_MS_MGC_MSK;
	if (flags & FIM_MS_REMOUNT)
		return 0;
	if (flags & FIM_MS_BIND)
		return 1;
	return !(flags & FIM_MS_PROPAGATION);
}

/* A mount over fimctl's own files (FIM_W_NOMOUNT): denied with enforcement, and only where the
 * daemon or the host would see it (scope: FIM_MNT_*). In another mount namespace whose mount
 * point does not propagate (systemd's ReadWritePaths= binding a directory over itself in a
 * service's namespace) it is reported and allowed. */
static __always_inline int mount__deny(__u32 enforce, __u32 watched, __u32 scope)
{
	return enforce && (watched & FIM_W_NOMOUNT) && scope != 0;
}

static __always_inline int kread__is_module(__u32 id)
{
	return id == FIM_READING_MODULE;
}

static __always_inline int kload__is_module(__u32 id)
{
	return id == FIM_LOADING_MODULE;
}

/* The kernel's dev_t encoding (MKDEV in include/linux/kdev_t.h), as fim_key.dev holds it. */
static __always_inline __u64 dev__kernel(__u32 major, __u32 minor)
{
	return ((__u64)major << 20) | (minor & 0xfffffu);
}

#endif
