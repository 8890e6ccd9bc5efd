/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dentry.bpf.h: inodes looked up in fim_watched, and the bounded d_parent walks that find the watched
 * root (and the exec guard) above an object.
 */
#ifndef FIM_DENTRY_BPF_H
#define FIM_DENTRY_BPF_H

#include "state.bpf.h"

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

#endif
