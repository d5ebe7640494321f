// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * floor.bpf.c - the cheapest useful tracer, for collector-bench: on each
 * exit of the benchmarked syscalls, reserve and submit one fixed
 * 160-byte record (no pairing, no strings). kl.bpf.c is measured
 * against it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__u32 target_tgid = 0; /* set once the loop is forked (bss) */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* collector-bench sets it to kl's ring size */
} floor_rb SEC(".maps");

__u64 lost = 0;

SEC("raw_tp/sys_exit")
int floor_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u64 *rec;
	long nr;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	if (bpf_probe_read_kernel(&nr, sizeof(nr), &regs->orig_ax))
		return 0;
	if (nr != 0 && nr != 3 && nr != 257) /* read, close, openat */
		return 0;
	rec = bpf_ringbuf_reserve(&floor_rb, 160, 0);
	if (!rec) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	rec[0] = bpf_ktime_get_ns();
	rec[1] = nr;
	rec[2] = ctx->args[1];
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return 0;
}
