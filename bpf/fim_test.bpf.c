// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fim_test.bpf.c: the LSM programs' decisions (lib/classify.bpf.h) in a SEC("syscall")
 * program, which loads where LSM programs do not (docs/design.md, Real time) and runs through
 * BPF_PROG_TEST_RUN: the host-side test of the helper logic (tests/root/bpf_helpers_test.cpp).
 * It reads its arguments from the context and writes the answer back into it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "fim_abi.h"
#include "lib/classify.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("syscall")
int fim_test_classify(struct fim_test_ctx *ctx)
{
	__u64 r = 0;

	switch (ctx->op) {
	case FIM_TEST_ADDS_EXEC:
		r = mode__adds_exec(ctx->a, ctx->b);
		break;
	case FIM_TEST_OPEN_IS_WRITE:
		r = open__is_write(ctx->a, ctx->b);
		break;
	case FIM_TEST_DENY:
		r = policy__deny(ctx->a, ctx->b, ctx->c);
		break;
	case FIM_TEST_MODULE_READ:
		r = kread__is_module(ctx->a);
		break;
	case FIM_TEST_MODULE_LOAD:
		r = kload__is_module(ctx->a);
		break;
	case FIM_TEST_EXEC_DENY:
		r = exec__deny(ctx->a, ctx->b, ctx->c);
		break;
	case FIM_TEST_MOUNT_HIDES:
		r = mount__hides(ctx->a);
		break;
	case FIM_TEST_MOUNT_DENY:
		r = mount__deny(ctx->a, ctx->b, ctx->c);
		break;
	case FIM_TEST_KDEV:
		r = dev__kernel(ctx->a, ctx->b);
		break;
	default:
		return 1; /* unknown op */
	}
	ctx->result = r;
	return 0;
}
