/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * event.bpf.h: ring-buffer records: the task's who-data, the names walked below the root, submission,
 * and the LSM verdict.
 */
#ifndef FIM_EVENT_BPF_H
#define FIM_EVENT_BPF_H

#include "dentry.bpf.h"

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
 * value should have been in [-4095, 0]", docs/design.md, Real time, verifier quirk 1). A side
 * effect in the deny branch keeps two return paths with constant R0. */
static __always_inline int verdict(int deny)
{
	if (deny) {
		counter__add(FIM_CNT_DENIED);
		return -FIM_EPERM;
	}
	return 0;
}

#endif
