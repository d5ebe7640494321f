// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * floor.bpf.c - the cheapest useful tracer, for collector-bench: on each
 * exit of the benchmarked syscalls, reserve and submit one fixed
 * 160-byte record (no pairing, no strings). kl.bpf.c is measured
 * against it, and against the paired floor below (the same record with
 * a duration: the least that pairing entry with exit costs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

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

/*
 * The cheapest tracer that pairs entry with exit, as the issue asks of
 * kl: the entry keeps only its timestamp in task storage; the exit finds
 * it, reads the clock again and reserves+submits the same fixed record
 * with the duration. What this costs over floor_exit is the least any
 * in-kernel pairing costs: kl.bpf.c is also measured against it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* collector-bench sets it to kl's ring size */
} pair_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} pair_ts SEC(".maps");

__u64 pair_lost = 0;

SEC("tp_btf/sys_enter")
int BPF_PROG(floor_pair_enter, struct pt_regs *regs, long nr)
{
	__u64 *ts;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	if (nr != 0 && nr != 3 && nr != 257)
		return 0;
	ts = bpf_task_storage_get(&pair_ts, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (ts)
		*ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_pair_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	__u64 *ts, *rec, now;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	if (nr != 0 && nr != 3 && nr != 257)
		return 0;
	ts = bpf_task_storage_get(&pair_ts, bpf_get_current_task_btf(), 0, 0);
	if (!ts || !*ts)
		return 0;
	now = bpf_ktime_get_ns();
	rec = bpf_ringbuf_reserve(&pair_rb, 160, 0);
	if (!rec) {
		__sync_fetch_and_add(&pair_lost, 1);
		return 0;
	}
	rec[0] = *ts;
	rec[1] = now - *ts;
	rec[2] = nr;
	rec[3] = ret;
	*ts = 0;
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return 0;
}
