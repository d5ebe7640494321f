/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kl_bpf.h - the ABI between bpf/kl.bpf.c and the collector: per-syscall
 * capture plans, loss counter layout and limits. Records themselves are
 * in <kloudlens/record.h>. Fixed-width types only, no pointers.
 */
#ifndef KLOUDLENS_KL_BPF_H
#define KLOUDLENS_KL_BPF_H

#if !defined(__bpf__) && !defined(__BPF__)
#include <linux/types.h>
#endif

#define KL_NR_MAX 512           /* syscall numbers above this are never traced */
#define KL_PATH_COPY 256        /* bytes kept of one user string */
#define KL_ADDR_COPY 128        /* bytes kept of one sockaddr */
#define KL_TAIL_MAX 1024        /* tail buffer of a pending syscall */
#define KL_ARGV_COPY 1024       /* bytes kept of argv on exec */
#define KL_DNS_COPY 512         /* bytes kept of one DNS message */
#define KL_MAX_CPUS 128         /* loss counters are per CPU, indexed cpu & (KL_MAX_CPUS-1) */

/* What to copy from user memory for a syscall, beyond the 6 registers. */
enum kl_plan {
	KL_PLAN_NONE = 0,
	KL_PLAN_P0,             /* path in arg0 */
	KL_PLAN_P1,             /* path in arg1 (the *at family) */
	KL_PLAN_P0_P1,          /* rename, link, symlink, pivot_root, mount */
	KL_PLAN_P1_P3,          /* renameat, renameat2, linkat */
	KL_PLAN_P0_P2,          /* symlinkat */
	KL_PLAN_ADDR1,          /* sockaddr in arg1, len arg2: connect, bind */
	KL_PLAN_ADDR4,          /* sockaddr in arg4, len arg5: sendto */
	KL_PLAN_MSG1,           /* msghdr in arg1: sendmsg (msg_name) */
	KL_PLAN_PEER1,          /* at exit: sockaddr arg1, len* arg2: accept, accept4 */
	KL_PLAN_PEER4,          /* at exit: sockaddr arg4, len* arg5: recvfrom */
	KL_PLAN_NAME0,          /* name string in arg0: memfd_create, delete_module */
	KL_PLAN_EXEC0,          /* execve: filename arg0 */
	KL_PLAN_EXEC1,          /* execveat: filename arg1 */
	KL_PLAN_FDS0,           /* at exit: int[2] in arg0: pipe, pipe2 */
	KL_PLAN_FDS3,           /* at exit: int[2] in arg3: socketpair */
};

/* Extra in-kernel condition for a syscall to be traced at all. */
enum kl_cond {
	KL_COND_ALWAYS = 0,
	KL_COND_PROT_EXEC,      /* mmap/mprotect: only with PROT_EXEC in arg2 */
	KL_COND_FCNTL_DUP,      /* fcntl: only F_DUPFD / F_DUPFD_CLOEXEC / F_SETFD (fd table changes) */
};

/* One entry per syscall number (rodata, set before load). */
struct kl_sc_cfg {
	__u8 traced;            /* 0: ignored at entry */
	__u8 category;          /* enum kl_category: the ring it goes to */
	__u8 shed;              /* shed when shed_level >= this (0 = never) */
	__u8 plan;              /* enum kl_plan */
	__u8 cond;              /* enum kl_cond */
	__u8 no_exit;           /* exit, exit_group: emitted at entry */
	__u8 refresh;           /* identity may change: re-read namespaces at exit */
	__u8 _pad;
};
_Static_assert(sizeof(struct kl_sc_cfg) == 8, "kl_sc_cfg layout is ABI");

/* Loss counters: cnt[cpu][slot], slot = KL_CNT_<where> * 8 + category. */
enum kl_cnt {
	KL_CNT_RESERVE = 0,     /* ringbuf output failed (ring full) */
	KL_CNT_SHED = 1,        /* dropped at entry by the downgrade level */
	KL_CNT_PENDING = 2,     /* no room in the pending table */
	KL_CNT_EMITTED = 3,     /* unused: an atomic per record for a figure the collector has (events received) */
	KL_CNT__COUNT = 4,
};
#define KL_CNT_SLOTS 32         /* KL_CNT__COUNT * 8 categories */

/* Downgrade levels written by the collector into bss.shed_level. */
enum kl_shed {
	KL_SHED_NONE = 0,
	KL_SHED_RW = 1,         /* reads and writes */
	KL_SHED_FILE_META = 2,  /* + opens, closes, renames, ... */
	KL_SHED_NET = 3,        /* + send/recv */
	KL_SHED__MAX = 3,
};

/*
 * Live filter (docker-mode HookSubscriptions, docs/control-plane.md):
 * up to KL_LIVE_RULES rules, bit i of every mask below = rule i. A record
 * is kept when a rule selects the task (all_rules; host_rules or
 * ctr_rules by pid namespace; cg_rules[cgroup id]) and the same rule
 * covers the syscall (sc_rules) or, for non-syscall records, the
 * category (cat_rules). Double-buffered in bss: the collector fills
 * live[!live_cur] and the cg_rules slot of the same index, then flips
 * live_cur with one store, so a program never sees half a filter.
 */
#define KL_LIVE_RULES 8
struct kl_live {
	__u8 sc_rules[KL_NR_MAX];
	__u8 cat_rules[8];
	__u8 all_rules;         /* no selector: every task, host included */
	__u8 host_rules;        /* tasks in host_pidns */
	__u8 ctr_rules;         /* every task outside host_pidns */
	__u8 sel_rules;         /* rules with cg_rules entries (0: skip the lookup) */
	__u32 host_pidns;
	__u8 sample_pct[KL_LIVE_RULES][8]; /* [rule][category]: 1..100 kept, 0 = 100 */
	__u64 generation;
};
_Static_assert(sizeof(struct kl_live) == 600, "kl_live layout is ABI");

struct kl_cg_rules {
	__u8 r[2];              /* rule mask per live[] slot */
};

#endif /* KLOUDLENS_KL_BPF_H */
