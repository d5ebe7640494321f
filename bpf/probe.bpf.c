// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * probe.bpf.c - one trivial program per hook type. The collector loads
 * and attaches each one alone to learn what this kernel offers, instead
 * of assuming it (a kernel may load a program it cannot attach).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} probe_rb SEC(".maps");

__u64 hits = 0;

SEC("tp/raw_syscalls/sys_enter")
int probe_tp(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }

SEC("raw_tp/sys_enter")
int probe_raw_tp(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }

SEC("tp_btf/sys_enter")
int probe_tp_btf(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }

SEC("kprobe/do_sys_openat2")
int probe_kprobe(void *ctx) { __sync_fetch_and_add(&hits, 1); return 0; }

SEC("fentry/do_sys_openat2")
int BPF_PROG(probe_fentry) { __sync_fetch_and_add(&hits, 1); return 0; }

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, struct file *file) { return 0; }

SEC("cgroup_skb/egress")
int probe_cgroup_skb(struct __sk_buff *skb) { return 1; }

SEC("tp/raw_syscalls/sys_exit")
int probe_ringbuf(void *ctx)
{
	__u64 *v = bpf_ringbuf_reserve(&probe_rb, 8, 0);

	if (v) {
		*v = 1;
		bpf_ringbuf_submit(v, BPF_RB_NO_WAKEUP);
	}
	return 0;
}
