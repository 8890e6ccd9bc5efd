/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state.bpf.h: the maps and the load-time configuration of fim.bpf.c. Included once, by that one
 * translation unit (a BPF object is one); user space sees them through the skeleton.
 */
#ifndef FIM_STATE_BPF_H
#define FIM_STATE_BPF_H

/* Set by the loader before load (skeleton rodata). */
const volatile __u32 fim_self_tgid = 0;  /* the daemon: never reported, never denied */
const volatile __u32 fim_enforce = 0;    /* honour FIM_W_PROTECT */
const volatile __u64 fim_exempt_dev = 0; /* fimctl's own binary (kernel dev, ino): its */
const volatile __u64 fim_exempt_ino = 0; /* update/accept may replace the baseline */
const volatile __u32 fim_self_mntns = 0; /* the daemon's mount namespace (inode number) */
const volatile __u32 fim_host_mntns = 0; /* PID 1's, 0 when unknown */

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

#endif
