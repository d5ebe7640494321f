// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * kl.bpf.c - the KloudLens sensor: syscalls paired entry/exit per task,
 * process lifecycle from the sched tracepoints, DNS from cgroup_skb.
 *
 * Why raw_syscalls and not one program per syscall: one entry and one
 * exit program see every call, the syscall set is a rodata table the
 * verifier folds, and a call is never split (entry and exit are paired
 * here, in the kernel, and leave as one record through one ring).
 *
 * The same handlers are attached either as raw tracepoints (cheaper: no
 * perf-event marshalling) or, where a kernel lacks them, as classic
 * tracepoints; the collector chooses with bpf_program__set_autoload().
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include <kloudlens/record.h>
#include "kl_bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* ---- configuration: rodata is frozen at load, so disabled filters are pruned ---- */
const volatile struct kl_sc_cfg sc_cfg[KL_NR_MAX] = {};
const volatile __u8 filter_cgroup = 0;     /* only cgroups in cg_allow */
const volatile __u8 filter_pidns = 0;      /* only pid namespaces in pidns_allow */
const volatile __u8 containers_only = 0;   /* only tasks outside host_pidns */
const volatile __u32 host_pidns = 0;
const volatile __u64 wake_bytes = 1 << 20; /* force a wakeup past this much unread data */
const volatile __u8 dns_enabled = 1;
const volatile __u8 live_filters = 0;     /* the live filter below is in force */

/* ---- runtime state shared with the collector through the mmap'd bss ---- */
__u32 shed_level = 0;
__u64 cnt[KL_MAX_CPUS][KL_CNT_SLOTS] = {};
/* The live filter, written by the collector at run time (kl_bpf.h). */
struct kl_live live[2] = {};
__u32 live_cur = 0;
/*
 * Identity cache (kl_pending.id_*): bumped after every cgroup migration
 * on the node, so a cached cgroup id is re-read at the next call. Caching
 * is on only once the collector attached the programs that bump it
 * (ident_cache, set after attach).
 */
__u32 ident_gen = 0;
__u32 ident_cache = 0;
/* Records left out by HookSubscription sampling: chosen, so not a loss. */
__u64 sampled_out[KL_MAX_CPUS][8] = {};

/*
 * A task's call in flight. One entry per thread, kept while the thread
 * lives (reused call after call: no insert/delete on the hot path) and
 * deleted at sched_process_exit, so the table cannot leak. The record is
 * built in place and output straight from here at exit.
 */
struct kl_pending {
	__u8 state;             /* PEND_IDLE / PEND_INFLIGHT */
	__u8 excluded;          /* self-exclusion, decided once per thread */
	__u8 cached;            /* identity fields below are valid */
	__u8 retry;             /* user strings unreadable at entry: read again at exit */
	__u32 tail_len;
	__u8 init;              /* excluded has been decided */
	__u8 nout;              /* records output: the ring's fill is checked every 16th */
	__u8 _p1[2];
	/*
	 * What the cached uid/gid, ppid and cgroup id were read from: the
	 * task's cred, real_parent and css_set pointers and ident_gen. A
	 * call whose task still points at the same three (and no migration
	 * happened since) reuses them; the loads that miss the cache most
	 * (the parent's task_struct, the cgroup's kernfs node) are skipped.
	 */
	__u32 id_gen;
	__u64 id_cred;
	__u64 id_parent;
	__u64 id_css;
	struct kl_syscall rec;
	__u8 tail[KL_TAIL_MAX];
};

#define PEND_IDLE 0
#define PEND_INFLIGHT 1

/*
 * Task-local storage: found from the task itself (no hashing on the hot
 * path) and freed by the kernel with the task, so it cannot leak even
 * if an exit is missed.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct kl_pending);
} pending SEC(".maps");

/* The agent's own thread groups; inherited by children at fork. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} excl_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} cg_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} pidns_allow SEC(".maps");

/* Rules of the live filter that select a container's cgroup (kl_bpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct kl_cg_rules);
} cg_rules SEC(".maps");

/* Owner of a socket that sent DNS, so the answer (softirq) can be attributed. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct kl_event);
} dns_owner SEC(".maps");

struct kl_scratch {
	union {
		struct kl_proc proc;
		struct kl_dns dns;
	};
	__u8 tail[KL_ARGV_COPY * 2 + KL_PATH_COPY * 2 + 64];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kl_scratch);
} scratch SEC(".maps");

/*
 * d_path() is not callable from tracepoints, so the exe path is built by
 * walking dentries up to the task's root, back to front, in a per-CPU
 * buffer with room past its end for one name (so no write needs a
 * runtime bound the verifier cannot see).
 */
#define KL_DPATH_BUF 4096
#define KL_DPATH_DEPTH 48
#define KL_NAME_MAX 255
struct kl_pathbuf {
	char b[KL_DPATH_BUF + KL_NAME_MAX + 16];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kl_pathbuf);
} pathbuf SEC(".maps");


#define RB(name) \
	struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 22); } name SEC(".maps")
RB(rb_crit);
RB(rb_bulk_file);
RB(rb_bulk_net);
RB(rb_bulk_proc);
RB(rb_bulk_file_meta);
RB(rb_dns);
RB(rb_proc_lc);
RB(rb_sock_lc);

static __always_inline void count(__u32 what, __u32 cat)
{
	__u32 cpu = bpf_get_smp_processor_id() & (KL_MAX_CPUS - 1);
	__u32 slot = (what * 8 + cat) & (KL_CNT_SLOTS - 1);

	/* atomic: another program may preempt this one on the same CPU */
	__sync_fetch_and_add(&cnt[cpu][slot], 1);
}

static __always_inline long out_ring(void *rb, void *data, __u64 size, bool check)
{
	/*
	 * No wakeup per record: the collector drains on a short timer, and
	 * only a ring filling up wakes it early (DESIGN §6: wakeups are the
	 * first cost of a tracer). The fill is read only when @check: the
	 * query reads the consumer position, a line the collector keeps
	 * writing from another CPU.
	 */
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (check && bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA) >= wake_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	return bpf_ringbuf_output(rb, data, size, flags);
}

/*
 * Output to the ring of @cat; failures are counted, never silent (what
 * arrives is counted by the collector). @check: see out_ring().
 */
static __always_inline void emit_chk(__u32 cat, void *data, __u64 size, bool check)
{
	long err;

	switch (cat) {
	case KL_CAT_CRIT: err = out_ring(&rb_crit, data, size, check); break;
	case KL_CAT_BULK_FILE: err = out_ring(&rb_bulk_file, data, size, check); break;
	case KL_CAT_BULK_NET: err = out_ring(&rb_bulk_net, data, size, check); break;
	case KL_CAT_BULK_PROC: err = out_ring(&rb_bulk_proc, data, size, check); break;
	case KL_CAT_BULK_FILE_META: err = out_ring(&rb_bulk_file_meta, data, size, check); break;
	case KL_CAT_DNS: err = out_ring(&rb_dns, data, size, check); break;
	case KL_CAT_PROC_LC: err = out_ring(&rb_proc_lc, data, size, check); break;
	default: cat = KL_CAT_SOCK_LC; err = out_ring(&rb_sock_lc, data, size, check); break;
	}
	if (err)
		count(KL_CNT_RESERVE, cat);
}

static __always_inline void emit(__u32 cat, void *data, __u64 size)
{
	emit_chk(cat, data, size, true);
}

/* ---- identity ----------------------------------------------------------- */

/* Fields that change only at exec/setns/unshare: read once and cached. */
static __always_inline void fill_slow(struct kl_event *ev, struct task_struct *t)
{
	struct task_struct *leader = BPF_CORE_READ(t, group_leader);
	struct pid *pid = BPF_CORE_READ(leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	ev->start_ns = BPF_CORE_READ(leader, start_boottime);
	bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[level & 31]);
	ev->ns_pid = up.nr;
	ev->pid_ns = BPF_CORE_READ(up.ns, ns.inum);
	ev->mnt_ns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
}

/* The pid namespace @t's thread group lives in (its innermost level). */
static __always_inline __u32 task_pidns(struct task_struct *t)
{
	struct pid *pid = BPF_CORE_READ(t, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[level & 31]);
	return BPF_CORE_READ(up.ns, ns.inum);
}

/* Fields any call may change (setuid, prctl, reparenting, cgroup moves). */
static __always_inline void fill_fast(struct kl_event *ev, struct task_struct *t)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();

	ev->pid = pt >> 32;
	ev->tid = (__u32)pt;
	ev->uid = (__u32)ug;
	ev->gid = ug >> 32;
	ev->ppid = BPF_CORE_READ(t, real_parent, tgid);
	ev->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
}

/*
 * The identity of the current task for a syscall record, from the cache
 * in its pending slot where still valid. A task's cred pointer changes
 * with every commit_creds (setuid & co, exec), its real_parent when it is
 * reparented, its css_set when it moves between cgroups (and ident_gen
 * then, for a css_set freed and reallocated at the same address). Only
 * the current task changes its own cred, so the compare is exact for
 * uid/gid. comm is read every call: another thread of the process may
 * rename this one (/proc/self/task/N/comm), and the rename tracepoint
 * fires before the new name is in place.
 */
static __always_inline void fill_ident(struct kl_pending *p, struct task_struct *t, __u64 pt)
{
	struct kl_event *ev = &p->rec.ev;
	__u64 cred = (__u64)t->cred, parent = (__u64)t->real_parent, css = (__u64)t->cgroups;
	__u32 gen = *(volatile __u32 *)&ident_gen;

	if (!p->cached) {
		fill_slow(ev, t);
		p->cached = 1;
		p->id_cred = 0;
	}
	if (p->id_cred != cred || p->id_parent != parent || p->id_css != css || p->id_gen != gen ||
	    !ident_cache) {
		__u64 ug = bpf_get_current_uid_gid();

		ev->uid = (__u32)ug;
		ev->gid = ug >> 32;
		ev->ppid = t->real_parent->tgid;
		ev->cgroup_id = bpf_get_current_cgroup_id();
		p->id_cred = cred;
		p->id_parent = parent;
		p->id_css = css;
		p->id_gen = gen;
	}
	ev->pid = pt >> 32;
	ev->tid = (__u32)pt;
}

/* Same as fill_slow+fill_fast but for a task other than current. */
static __always_inline void fill_task(struct kl_event *ev, struct task_struct *t)
{
	ev->pid = BPF_CORE_READ(t, tgid);
	ev->tid = BPF_CORE_READ(t, pid);
	ev->uid = BPF_CORE_READ(t, cred, uid.val);
	ev->gid = BPF_CORE_READ(t, cred, gid.val);
	ev->ppid = BPF_CORE_READ(t, real_parent, tgid);
	ev->cgroup_id = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	BPF_CORE_READ_STR_INTO(&ev->comm, t, comm);
	fill_slow(ev, t);
}

/* Self-exclusion and the cgroup / namespace filters. */
static __always_inline bool filtered_out(struct kl_event *ev)
{
	if (filter_cgroup && !bpf_map_lookup_elem(&cg_allow, &ev->cgroup_id))
		return true;
	if (containers_only && ev->pid_ns == host_pidns)
		return true;
	if (filter_pidns && !bpf_map_lookup_elem(&pidns_allow, &ev->pid_ns))
		return true;
	return false;
}

/*
 * One load of the live slot index. clang 14 has no BPF load-acquire; the
 * JITs emit a plain load, which on x86-64 (TSO) already orders the later
 * loads of live[cur] after it. Pairs with the collector's release store.
 */
static __always_inline __u32 live_cur_load(void)
{
	return *(volatile __u32 *)&live_cur;
}

/* Rules of live[cur] that select the task behind @ev. */
static __always_inline __u32 live_rules(struct kl_event *ev, struct kl_live *L, __u32 cur)
{
	struct kl_cg_rules *r;
	__u32 m = L->all_rules;

	m |= ev->pid_ns == L->host_pidns ? L->host_rules : L->ctr_rules;
	if (L->sel_rules) {
		r = bpf_map_lookup_elem(&cg_rules, &ev->cgroup_id);
		if (r)
			m |= r->r[cur & 1];
	}
	return m;
}

/* The live filter for a record that is not a syscall (lifecycle, DNS). */
static __always_inline bool live_out(struct kl_event *ev, __u32 cat)
{
	__u32 cur;

	if (!live_filters)
		return false;
	/* one load: the collector flips live_cur after filling the slot (release) */
	cur = live_cur_load() & 1;
	return !(live_rules(ev, &live[cur], cur) & live[cur].cat_rules[cat & 7]);
}

/* ---- tail fields ---------------------------------------------------------- */

/* Offsets are masked so the verifier can bound every write: 511 + 4 + 257 < KL_TAIL_MAX. */
#define TAIL_OFF(o) ((o) & 511)
#define KL_BARRIER_VAR(v) asm volatile("" : "+r"(v))

static __always_inline __u32 tail_ustr(__u8 *tail, __u32 off, __u16 id, const void *uptr)
{
	struct kl_field *f;
	long n;

	if (!uptr)
		return off;
	off = TAIL_OFF(off);
	n = bpf_probe_read_user_str(tail + off + sizeof(*f), KL_PATH_COPY + 1, uptr);
	if (n <= 0)
		return off;
	f = (void *)(tail + off);
	if (n > KL_PATH_COPY) {
		f->id = id | KL_FIELD_TRUNC;
		f->len = KL_PATH_COPY;
	} else {
		f->id = id;
		f->len = n - 1; /* without the NUL */
	}
	return off + sizeof(*f) + f->len;
}

static __always_inline __u32 tail_ubytes(__u8 *tail, __u32 off, __u16 id, const void *uptr, __u64 len)
{
	struct kl_field *f;
	__u32 n;

	if (!uptr || len == 0)
		return off;
	off = TAIL_OFF(off);
	f = (void *)(tail + off);
	f->id = id;
	n = len;
	if (len > KL_ADDR_COPY) {
		n = KL_ADDR_COPY;
		f->id = id | KL_FIELD_TRUNC;
	}
	/* clang may reuse the unclamped register: pin the bound for the verifier */
	KL_BARRIER_VAR(n);
	n &= 0xff;
	if (n > KL_ADDR_COPY || bpf_probe_read_user(tail + off + sizeof(*f), n, uptr))
		return off;
	f->len = n;
	return off + sizeof(*f) + n;
}

/* ---- syscalls -------------------------------------------------------------- */

static __always_inline struct kl_pending *pending_get(__u32 tgid)
{
	struct kl_pending *p;

	p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (p && !p->init) {
		/* first call of this thread */
		p->excluded = bpf_map_lookup_elem(&excl_tgid, &tgid) != NULL;
		p->init = 1;
	}
	return p;
}

static __always_inline struct kl_pending *pending_cur(void)
{
	return bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
}

/* Copy the user-memory arguments of @plan into p->tail; returns the tail length. */
static __always_inline __u32 read_plan(struct kl_pending *p, __u8 plan, __u64 a0, __u64 a1, __u64 a2,
				       __u64 a3, __u64 a4, __u64 a5)
{
	__u32 off = 0;

	switch (plan) {
	case KL_PLAN_P0:
	case KL_PLAN_NAME0:
		off = tail_ustr(p->tail, off, plan == KL_PLAN_P0 ? KL_F_PATH : KL_F_NAME, (void *)a0);
		break;
	case KL_PLAN_EXEC0:
		off = tail_ustr(p->tail, off, KL_F_FILENAME, (void *)a0);
		break;
	case KL_PLAN_EXEC1:
		off = tail_ustr(p->tail, off, KL_F_FILENAME, (void *)a1);
		break;
	case KL_PLAN_P1:
		off = tail_ustr(p->tail, off, KL_F_PATH, (void *)a1);
		break;
	case KL_PLAN_P0_P1:
		off = tail_ustr(p->tail, off, KL_F_PATH, (void *)a0);
		off = tail_ustr(p->tail, off, KL_F_PATH2, (void *)a1);
		break;
	case KL_PLAN_P1_P3:
		off = tail_ustr(p->tail, off, KL_F_PATH, (void *)a1);
		off = tail_ustr(p->tail, off, KL_F_PATH2, (void *)a3);
		break;
	case KL_PLAN_P0_P2:
		off = tail_ustr(p->tail, off, KL_F_PATH, (void *)a0);
		off = tail_ustr(p->tail, off, KL_F_PATH2, (void *)a2);
		break;
	case KL_PLAN_ADDR1:
		off = tail_ubytes(p->tail, off, KL_F_SOCKADDR, (void *)a1, a2);
		break;
	case KL_PLAN_ADDR4:
		off = tail_ubytes(p->tail, off, KL_F_SOCKADDR, (void *)a4, a5);
		break;
	case KL_PLAN_MSG1: {
		struct user_msghdr m = {};

		if (!bpf_probe_read_user(&m, sizeof(m), (void *)a1))
			off = tail_ubytes(p->tail, off, KL_F_SOCKADDR, m.msg_name, m.msg_namelen);
		break;
	}
	default:
		break;
	}
	return off;
}

static __always_inline int on_enter(__u64 id, __u64 a0, __u64 a1, __u64 a2, __u64 a3,
				    __u64 a4, __u64 a5)
{
	const volatile struct kl_sc_cfg *c;
	struct task_struct *t;
	struct kl_pending *p;
	__u32 off = 0, cat;
	__u64 pt;

	if (id >= KL_NR_MAX)
		return 0;
	c = &sc_cfg[id];
	if (!c->traced)
		return 0;
	if (c->cond == KL_COND_PROT_EXEC && !(a2 & 4 /* PROT_EXEC */))
		return 0;
	if (c->cond == KL_COND_FCNTL_DUP && a1 != 0 /* F_DUPFD */ && a1 != 1030 /* F_DUPFD_CLOEXEC */ &&
	    a1 != 2 /* F_SETFD: close-on-exec changes what survives exec */)
		return 0;
	cat = c->category & 7;
	/* cheap rejection: no live rule traces this syscall for anyone */
	if (live_filters && !live[live_cur_load() & 1].sc_rules[id])
		return 0;

	pt = bpf_get_current_pid_tgid();
	p = pending_get(pt >> 32);
	if (!p) {
		count(KL_CNT_PENDING, cat);
		return 0;
	}
	if (p->excluded)
		return 0;

	t = bpf_get_current_task_btf();
	fill_ident(p, t, pt);
	/* filters first (shed counts cover watched tasks only), then shed, then the rest */
	if ((filter_cgroup || containers_only || filter_pidns) && filtered_out(&p->rec.ev))
		return 0;
	if (live_filters) {
		__u32 cur = live_cur_load() & 1, m, pct = 0;
		struct kl_live *L = &live[cur];

		m = live_rules(&p->rec.ev, L, cur) & L->sc_rules[id];
		if (!m)
			return 0;
		if (cat == KL_CAT_BULK_FILE || cat == KL_CAT_BULK_NET || cat == KL_CAT_BULK_FILE_META) {
			/* several rules sample the same call: the highest percentage wins */
			for (int r = 0; r < KL_LIVE_RULES; r++) {
				__u32 v = L->sample_pct[r][cat];

				if (!(m & (1u << r)))
					continue;
				if (!v || v > 100)
					v = 100;
				if (v > pct)
					pct = v;
			}
			if (pct < 100 && bpf_get_prandom_u32() % 100 >= pct) {
				__u32 cpu = bpf_get_smp_processor_id() & (KL_MAX_CPUS - 1);

				__sync_fetch_and_add(&sampled_out[cpu][cat], 1);
				return 0;
			}
		}
	}
	if (c->shed && shed_level >= c->shed) {
		count(KL_CNT_SHED, cat);
		return 0;
	}
	bpf_get_current_comm(p->rec.ev.comm, sizeof(p->rec.ev.comm));
	p->rec.ev.ts_ns = bpf_ktime_get_ns();
	p->rec.ev.seq = KL_REC_SYSCALL; /* type tag; the collector assigns the real seq */
	p->rec.ev.flags = 0;
	p->rec.args[0] = a0;
	p->rec.args[1] = a1;
	p->rec.args[2] = a2;
	p->rec.args[3] = a3;
	p->rec.args[4] = a4;
	p->rec.args[5] = a5;
	p->rec.nr = id;
	p->rec.category = cat;
	p->rec.sflags = 0;
	p->rec.ret = 0;
	p->rec.duration_ns = 0;

	off = read_plan(p, c->plan, a0, a1, a2, a3, a4, a5);
	/* a string not yet faulted in cannot be read here: retry at exit, when the kernel has */
	p->retry = off == 0 && c->plan != KL_PLAN_NONE && c->plan != KL_PLAN_PEER1 && c->plan != KL_PLAN_PEER4 &&
		   c->plan != KL_PLAN_FDS0 && c->plan != KL_PLAN_FDS3;
	p->tail_len = off;
	p->rec.ev.tail_len = off;

	if (c->no_exit) {
		/* exit/exit_group never return: emit now, nothing left pending */
		p->rec.sflags = KL_SC_NO_EXIT;
		emit(cat, &p->rec, sizeof(p->rec) + (off & (KL_TAIL_MAX - 1)));
		return 0;
	}
	p->state = PEND_INFLIGHT;
	return 0;
}

/*
 * @sysno: the number of the call returning (-1 if unknown). A call that
 * may change the cached identity (setns, unshare, ...) drops the cache
 * even when it was not captured: left out by --syscalls, a filter or the
 * downgrade, it still moved the task to another namespace.
 */
static __always_inline int on_exit(long sysno, long ret)
{
	const volatile struct kl_sc_cfg *c;
	struct kl_pending *p;
	__u32 off, nr;
	__u64 now, *a;

	p = pending_cur();
	if (!p)
		return 0;
	if (p->state != PEND_INFLIGHT) {
		if (sysno >= 0 && sysno < KL_NR_MAX && sc_cfg[sysno].refresh)
			p->cached = 0;
		return 0;
	}
	p->state = PEND_IDLE;
	now = bpf_ktime_get_ns();
	p->rec.ret = ret;
	p->rec.duration_ns = now - p->rec.ev.ts_ns;
	nr = p->rec.nr;
	if (nr >= KL_NR_MAX)
		return 0;
	c = &sc_cfg[nr];
	off = p->tail_len;
	if (p->retry) {
		a = p->rec.args;
		off = read_plan(p, c->plan, a[0], a[1], a[2], a[3], a[4], a[5]);
		p->tail_len = off;
		p->rec.ev.tail_len = off;
		p->retry = 0;
	}
	if (ret >= 0 && (c->plan == KL_PLAN_PEER1 || c->plan == KL_PLAN_PEER4)) {
		/* the peer address exists only once the call has returned */
		void *addr = (void *)(c->plan == KL_PLAN_PEER1 ? p->rec.args[1] : p->rec.args[4]);
		void *lenp = (void *)(c->plan == KL_PLAN_PEER1 ? p->rec.args[2] : p->rec.args[5]);
		int alen = 0;

		if (addr && lenp && !bpf_probe_read_user(&alen, sizeof(alen), lenp) && alen > 0)
			off = tail_ubytes(p->tail, off, KL_F_SOCKADDR2, addr, alen);
		p->rec.ev.tail_len = off;
	}
	if (ret == 0 && (c->plan == KL_PLAN_FDS0 || c->plan == KL_PLAN_FDS3)) {
		/* the two new descriptors exist only once the call has returned */
		struct kl_field *f;

		off = TAIL_OFF(off);
		f = (void *)(p->tail + off);
		if (!bpf_probe_read_user(p->tail + off + sizeof(*f), 8,
					 (void *)(c->plan == KL_PLAN_FDS0 ? p->rec.args[0] : p->rec.args[3]))) {
			f->id = KL_F_FDS;
			f->len = 8;
			off += sizeof(*f) + 8;
		}
		p->rec.ev.tail_len = off;
	}
	if (c->refresh)
		p->cached = 0;
	emit_chk(p->rec.category, &p->rec, sizeof(p->rec) + (off & (KL_TAIL_MAX - 1)), !(++p->nout & 15));
	return 0;
}

SEC("raw_tp/sys_enter")
int kl_raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	__u64 id = ctx->args[1];
	/* x86-64 pt_regs from r10 to di: the six argument registers in one 64-byte read */
	struct { __u64 r10, r9, r8, ax, cx, dx, si, di; } r;

	/* cheap rejection before copying the registers */
	if (id >= KL_NR_MAX || !sc_cfg[id].traced)
		return 0;
	if (bpf_probe_read_kernel(&r, sizeof(r), &regs->r10))
		return 0;
	return on_enter(id, r.di, r.si, r.dx, r.r10, r.r8, r.r9);
}

SEC("raw_tp/sys_exit")
int kl_raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = -1;

	bpf_probe_read_kernel(&nr, sizeof(nr), &regs->orig_ax);
	return on_exit(nr, (long)ctx->args[1]);
}

/*
 * BTF-typed raw tracepoints: the registers are read with plain loads
 * instead of a probe read, and the exit side can reject an untraced call
 * by its number before touching the pending table. Preferred where the
 * kernel offers them; raw_tp and tp are the fallbacks.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(kl_btf_enter, struct pt_regs *regs, long id)
{
	if (id < 0 || id >= KL_NR_MAX || !sc_cfg[id].traced)
		return 0;
	return on_enter(id, regs->di, regs->si, regs->dx, regs->r10, regs->r8, regs->r9);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(kl_btf_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;

	/* untraced calls are rejected by number, but for those that drop the identity cache */
	if (nr < 0 || nr >= KL_NR_MAX || !(sc_cfg[nr].traced || sc_cfg[nr].refresh))
		return 0;
	return on_exit(nr, ret);
}

SEC("tp/raw_syscalls/sys_enter")
int kl_tp_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = ctx->id;

	if (id >= KL_NR_MAX || !sc_cfg[id].traced)
		return 0;
	return on_enter(id, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3],
			ctx->args[4], ctx->args[5]);
}

SEC("tp/raw_syscalls/sys_exit")
int kl_tp_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->id, ctx->ret);
}

/*
 * Cgroup migrations move tasks between css_sets, and a css_set freed by
 * one move can be reallocated at the same address by the next: bump the
 * generation so every cached cgroup id is read again (fill_ident). Both
 * tracepoints fire once the move is done. Attached separately by the
 * collector, which turns the cache on only once they are in place.
 */
SEC("raw_tp/cgroup_attach_task")
int kl_cg_attach(struct bpf_raw_tracepoint_args *ctx)
{
	__sync_fetch_and_add(&ident_gen, 1);
	return 0;
}

SEC("raw_tp/cgroup_transfer_tasks")
int kl_cg_transfer(struct bpf_raw_tracepoint_args *ctx)
{
	__sync_fetch_and_add(&ident_gen, 1);
	return 0;
}

/* ---- process lifecycle -------------------------------------------------- */

static __always_inline struct kl_scratch *scratch_get(void)
{
	__u32 z = 0;

	return bpf_map_lookup_elem(&scratch, &z);
}

static __always_inline void proc_ids(struct kl_proc *pr, struct task_struct *t)
{
	pr->nthreads = BPF_CORE_READ(t, signal, nr_threads);
	pr->net_ns = BPF_CORE_READ(t, nsproxy, net_ns, ns.inum);
	pr->ipc_ns = BPF_CORE_READ(t, nsproxy, ipc_ns, ns.inum);
	pr->uts_ns = BPF_CORE_READ(t, nsproxy, uts_ns, ns.inum);
	pr->euid = BPF_CORE_READ(t, cred, euid.val);
	pr->cap_effective = BPF_CORE_READ(t, cred, cap_effective.val);
}

static __always_inline bool proc_filtered(struct kl_event *ev)
{
	return bpf_map_lookup_elem(&excl_tgid, &ev->pid) || filtered_out(ev);
}

/*
 * The head of an exec or exit record of @t (the current task): identity,
 * time, kind, parent. Return: false when the filters leave @t out.
 */
static __always_inline bool proc_head(struct kl_proc *pr, struct task_struct *t, __u32 kind)
{
	__builtin_memset(pr, 0, sizeof(*pr));
	fill_slow(&pr->ev, t);
	fill_fast(&pr->ev, t);
	if (proc_filtered(&pr->ev) || live_out(&pr->ev, KL_CAT_PROC_LC))
		return false;
	pr->ev.ts_ns = bpf_ktime_get_ns();
	pr->ev.seq = KL_REC_PROC;
	pr->kind = kind;
	pr->parent_pid = pr->ev.ppid;
	return true;
}

SEC("raw_tp/sched_process_fork")
int kl_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct kl_scratch *s = scratch_get();
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	struct kl_proc *pr;

	if (!s)
		return 0;
	if (bpf_map_lookup_elem(&excl_tgid, &ptgid)) {
		/* the agent's children are the agent too */
		__u8 one = 1;

		if (ctgid != ptgid)
			bpf_map_update_elem(&excl_tgid, &ctgid, &one, BPF_ANY);
		return 0;
	}
	pr = &s->proc;
	__builtin_memset(pr, 0, sizeof(*pr));
	fill_task(&pr->ev, child);
	if (filtered_out(&pr->ev) || live_out(&pr->ev, KL_CAT_PROC_LC))
		return 0;
	pr->ev.ts_ns = bpf_ktime_get_ns();
	pr->ev.seq = KL_REC_PROC;
	pr->kind = KL_PROC_FORK;
	/* a child born into another pid namespace: how runtimes put a process into a container */
	if (ctgid != ptgid && pr->ev.pid_ns != task_pidns(parent))
		pr->ev.flags |= KL_EV_NEW_PIDNS;
	pr->parent_pid = ptgid;
	pr->parent_start_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
	pr->child_tid = pr->ev.tid;
	proc_ids(pr, child);
	emit(KL_CAT_PROC_LC, pr, sizeof(*pr));
	return 0;
}

/*
 * The path of @fp as task @t sees it (what readlink /proc/PID/exe shows):
 * names from the dentry up to the task's root, crossing mount points, and
 * " (deleted)" for an unlinked file (memfds, a binary removed after exec).
 * Deeper than KL_DPATH_DEPTH or a name that does not fit: the path so far
 * is not a path, so it is given up. Return: offset of the first byte in
 * pb->b (the path ends with a NUL at KL_DPATH_BUF - 1) or -1.
 */
static __always_inline int dpath(struct kl_pathbuf *pb, struct file *fp, struct task_struct *t)
{
	struct dentry *d = BPF_CORE_READ(fp, f_path.dentry);
	struct vfsmount *vm = BPF_CORE_READ(fp, f_path.mnt);
	struct dentry *root_d = BPF_CORE_READ(t, fs, root.dentry);
	struct vfsmount *root_m = BPF_CORE_READ(t, fs, root.mnt);
	struct mount *m = container_of(vm, struct mount, mnt);
	__u32 off = KL_DPATH_BUF - 1;
	bool done = false;
	int i;

	if (!d || !vm)
		return -1;
	pb->b[off] = 0;
	if (!BPF_CORE_READ(d, d_hash.pprev) && BPF_CORE_READ(d, d_parent) != d) {
		static const char del[] = " (deleted)";

		off -= sizeof(del) - 1;
		bpf_probe_read_kernel(&pb->b[off], sizeof(del) - 1, del);
	}
	for (i = 0; i < KL_DPATH_DEPTH; i++) {
		struct dentry *parent, *mroot;
		struct qstr q;
		__u32 len;

		if (d == root_d && vm == root_m) {
			done = true;
			break;
		}
		mroot = BPF_CORE_READ(vm, mnt_root);
		parent = BPF_CORE_READ(d, d_parent);
		if (d == mroot || d == parent) {
			struct mount *mp = BPF_CORE_READ(m, mnt_parent);

			/* the top of a mount: continue from where it is mounted, unless it
			 * is the last one (a root outside the task's, or an internal mount
			 * such as the one behind memfds: what d_path prints then too) */
			if (d != mroot || mp == m) {
				done = true;
				break;
			}
			d = BPF_CORE_READ(m, mnt_mountpoint);
			m = mp;
			vm = &mp->mnt;
			continue;
		}
		q = BPF_CORE_READ(d, d_name);
		len = q.len;
		if (len == 0 || len > KL_NAME_MAX || off < len + 2)
			return -1;
		off -= len;
		KL_BARRIER_VAR(off);
		off &= KL_DPATH_BUF - 1;
		if (bpf_probe_read_kernel(&pb->b[off], len & KL_NAME_MAX, q.name))
			return -1;
		off--;
		off &= KL_DPATH_BUF - 1;
		pb->b[off] = '/';
		d = parent;
	}
	if (!done)
		return -1;
	if (off == KL_DPATH_BUF - 1 || pb->b[off] != '/') {
		/* the root itself, or a name with nothing above it (internal mounts) */
		if (off == 0)
			return -1;
		off--;
		off &= KL_DPATH_BUF - 1;
		pb->b[off] = '/';
	}
	return (int)off;
}

SEC("raw_tp/sched_process_exec")
int kl_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *t = (struct task_struct *)ctx->args[0];
	__u32 old_pid = (__u32)ctx->args[1];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	struct kl_scratch *s = scratch_get();
	struct kl_pending *p;
	struct kl_proc *pr;
	struct kl_field *f;
	struct kl_pathbuf *pb;
	unsigned long as, ae;
	__u32 off = 0, len, fn_off, zero = 0;
	long n;
	int exe;

	if (!s)
		return 0;
	/*
	 * A successful execve never returns to the old image: its record is
	 * emitted here, flagged NO_EXIT, before the exec event, and nothing
	 * stays pending (the old tid may differ from the new one: de_thread).
	 */
	/* the storage follows the task_struct, which keeps it across de_thread */
	p = pending_cur();
	if (p && p->state == PEND_INFLIGHT) {
		p->state = PEND_IDLE;
		p->cached = 0;
		p->rec.sflags = KL_SC_NO_EXIT;
		p->rec.ret = 0;
		if (p->retry) {
			/* the kernel's copy of the filename: the old image's string was not readable */
			struct kl_field *pf = (void *)p->tail;
			long fn = bpf_probe_read_kernel_str(p->tail + sizeof(*pf), KL_PATH_COPY + 1,
							    BPF_CORE_READ(bprm, filename));

			if (fn > 0) {
				pf->id = KL_F_FILENAME;
				pf->len = fn - 1;
				if (fn > KL_PATH_COPY) {
					pf->id |= KL_FIELD_TRUNC;
					pf->len = KL_PATH_COPY;
				}
				p->tail_len = sizeof(*pf) + pf->len;
				p->rec.ev.tail_len = p->tail_len;
			}
			p->retry = 0;
		}
		emit(p->rec.category, &p->rec, sizeof(p->rec) + (p->tail_len & (KL_TAIL_MAX - 1)));
	}
	if (p)
		p->cached = 0; /* comm, exe changed; namespaces re-read at next call */

	pr = &s->proc;
	if (!proc_head(pr, t, KL_PROC_EXEC))
		return 0;
	pr->parent_start_ns = BPF_CORE_READ(t, real_parent, group_leader, start_boottime);
	pr->old_pid = old_pid;
	proc_ids(pr, t);

	/* argv: the new image's stack, bounded, NUL-separated as the kernel laid it out */
	as = BPF_CORE_READ(t, mm, arg_start);
	ae = BPF_CORE_READ(t, mm, arg_end);
	len = ae > as ? ae - as : 0;
	f = (void *)s->tail;
	f->id = KL_F_ARGV;
	if (len > KL_ARGV_COPY) {
		len = KL_ARGV_COPY;
		f->id |= KL_FIELD_TRUNC;
	}
	KL_BARRIER_VAR(len);
	len &= (KL_ARGV_COPY * 2 - 1);
	if (len && len <= KL_ARGV_COPY && !bpf_probe_read_user(s->tail + sizeof(*f), len, (void *)as)) {
		/* drop the trailing NUL so the field is exactly the strings joined by NULs */
		if (len > 0 && s->tail[(sizeof(*f) + len - 1) & (KL_ARGV_COPY * 2 - 1)] == 0 &&
		    !(f->id & KL_FIELD_TRUNC))
			len--;
		f->len = len;
		off = sizeof(*f) + len;
	}
	off &= (KL_ARGV_COPY * 2 - 1);
	/* the filename exec was given, after the interpreter lookup ("/bin/sh", "/proc/self/exe") */
	f = (void *)(s->tail + off);
	n = bpf_probe_read_kernel_str(s->tail + off + sizeof(*f), KL_PATH_COPY + 1, BPF_CORE_READ(bprm, filename));
	fn_off = off;
	if (n > 0) {
		f->id = KL_F_FILENAME;
		f->len = n - 1;
		if (n > KL_PATH_COPY) {
			f->id |= KL_FIELD_TRUNC;
			f->len = KL_PATH_COPY;
		}
		off += sizeof(*f) + f->len;
	}
	if (off > KL_ARGV_COPY * 2 + KL_PATH_COPY + 8)
		off = KL_ARGV_COPY * 2 + KL_PATH_COPY + 8; /* cannot happen; bounds the verifier */
	/* the file that runs, as the task's root sees it: symlinks and
	 * /proc/self/exe re-execs resolved (runc, busybox applets) */
	f = (void *)(s->tail + off);
	pb = bpf_map_lookup_elem(&pathbuf, &zero);
	exe = pb ? dpath(pb, BPF_CORE_READ(t, mm, exe_file), t) : -1;
	if (exe >= 0 && exe < KL_DPATH_BUF - 1) {
		len = KL_DPATH_BUF - 1 - (__u32)exe;
		f->id = KL_F_EXE;
		if (len > KL_PATH_COPY) {
			len = KL_PATH_COPY;
			f->id |= KL_FIELD_TRUNC;
		}
		KL_BARRIER_VAR(len);
		len &= (KL_PATH_COPY * 2 - 1);
		if (len <= KL_PATH_COPY &&
		    !bpf_probe_read_kernel(s->tail + off + sizeof(*f), len, &pb->b[exe & (KL_DPATH_BUF - 1)])) {
			f->len = len;
			off += sizeof(*f) + len;
		}
	} else if (n > 0) {
		/* no walkable path (a detached mount, too deep): the filename is the best there is */
		struct kl_field *ff = (void *)(s->tail + (fn_off & (KL_ARGV_COPY * 2 - 1)));

		ff->id = (ff->id & KL_FIELD_TRUNC) | KL_F_EXE;
	}
	if (off > KL_ARGV_COPY * 2 + KL_PATH_COPY * 2 + 16)
		off = KL_ARGV_COPY * 2 + KL_PATH_COPY * 2 + 16; /* cannot happen; bounds the verifier */
	pr->ev.tail_len = off;
	emit(KL_CAT_PROC_LC, pr, sizeof(*pr) + off);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int kl_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *t = (struct task_struct *)ctx->args[0];
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tgid = pt >> 32;
	struct kl_scratch *s;
	struct kl_pending *p;
	struct kl_proc *pr;
	bool excluded;

	p = pending_cur();
	if (p) {
		if (p->state == PEND_INFLIGHT) {
			/* died mid-call (a signal): the entry is still worth having */
			p->state = PEND_IDLE;
			p->rec.sflags = KL_SC_ENTRY_ONLY;
			p->rec.duration_ns = bpf_ktime_get_ns() - p->rec.ev.ts_ns;
			emit(p->rec.category, &p->rec, sizeof(p->rec) + (p->tail_len & (KL_TAIL_MAX - 1)));
		}
		bpf_task_storage_delete(&pending, bpf_get_current_task_btf());
	}
	if (BPF_CORE_READ(t, signal, live.counter) != 0)
		return 0; /* other threads still run: the group has not exited */
	excluded = bpf_map_lookup_elem(&excl_tgid, &tgid) != NULL;
	if (excluded) {
		bpf_map_delete_elem(&excl_tgid, &tgid);
		return 0;
	}
	s = scratch_get();
	if (!s)
		return 0;
	pr = &s->proc;
	if (!proc_head(pr, t, KL_PROC_EXIT))
		return 0;
	pr->exit_code = BPF_CORE_READ(t, exit_code);
	proc_ids(pr, t);
	emit(KL_CAT_PROC_LC, pr, sizeof(*pr));
	return 0;
}

/* ---- DNS over cgroup_skb -------------------------------------------------- */

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

static __always_inline int dns_skb(struct __sk_buff *skb, __u8 dir)
{
	struct kl_scratch *s;
	struct kl_dns *d;
	struct kl_event *owner;
	struct kl_field *f;
	__u32 l4off, poff, plen, proto;
	__u16 ports[2];
	__u64 cookie;

	if (!dns_enabled)
		return 1;
	s = scratch_get();
	if (!s)
		return 1;
	d = &s->dns;
	__builtin_memset(d, 0, sizeof(*d));
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		if (ip.frag_off & bpf_htons(0x1fff))
			return 1; /* not the first fragment: no L4 header here */
		proto = ip.protocol;
		l4off = ip.ihl * 4;
		d->family = 2; /* AF_INET */
		__builtin_memcpy(d->saddr, &ip.saddr, 4);
		__builtin_memcpy(d->daddr, &ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		proto = ip6.nexthdr; /* extension headers are not walked */
		l4off = sizeof(ip6);
		d->family = 10; /* AF_INET6 */
		__builtin_memcpy(d->saddr, &ip6.saddr, 16);
		__builtin_memcpy(d->daddr, &ip6.daddr, 16);
	} else {
		return 1;
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 1;
	if (bpf_skb_load_bytes(skb, l4off, ports, sizeof(ports)))
		return 1;
	d->sport = bpf_ntohs(ports[0]);
	d->dport = bpf_ntohs(ports[1]);
	if (d->sport != 53 && d->dport != 53)
		return 1;
	if (proto == IPPROTO_UDP) {
		poff = l4off + 8;
	} else {
		__u8 doff;

		if (bpf_skb_load_bytes(skb, l4off + 12, &doff, 1))
			return 1;
		poff = l4off + (doff >> 4) * 4;
	}
	if (skb->len <= poff)
		return 1; /* no payload: a bare TCP ACK/handshake */
	plen = skb->len - poff;
	d->proto = proto;
	d->direction = dir;
	d->msg_len = plen;
	cookie = bpf_get_socket_cookie(skb);
	d->sock_cookie = cookie;

	owner = bpf_map_lookup_elem(&dns_owner, &cookie);
	if (owner) {
		__builtin_memcpy(&d->ev, owner, sizeof(d->ev));
	} else if (dir == KL_DIR_EGRESS) {
		/*
		 * The first egress packet of a socket is sent from the owner's
		 * syscall: current is the sender. Later packets (answers arriving
		 * in softirq) are attributed by the socket cookie.
		 */
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();

		fill_slow(&d->ev, t);
		fill_fast(&d->ev, t);
		d->ev.flags = 0;
		d->ev.tail_len = 0;
		bpf_map_update_elem(&dns_owner, &cookie, &d->ev, BPF_ANY);
	}
	if (d->ev.pid && (bpf_map_lookup_elem(&excl_tgid, &d->ev.pid) || filtered_out(&d->ev) || live_out(&d->ev, KL_CAT_DNS)))
		return 1;
	d->ev.ts_ns = bpf_ktime_get_ns();
	d->ev.seq = KL_REC_DNS;
	d->ev.flags = 0;

	f = (void *)s->tail;
	f->id = KL_F_DATA;
	if (plen > KL_DNS_COPY) {
		plen = KL_DNS_COPY;
		f->id |= KL_FIELD_TRUNC;
		d->ev.flags |= KL_EV_TRUNCATED;
	}
	KL_BARRIER_VAR(plen);
	plen &= (KL_DNS_COPY * 2 - 1);
	if (plen == 0 || plen > KL_DNS_COPY || bpf_skb_load_bytes(skb, poff, s->tail + sizeof(*f), plen))
		return 1;
	f->len = plen;
	d->ev.tail_len = sizeof(*f) + plen;
	emit(KL_CAT_DNS, d, sizeof(*d) + ((sizeof(*f) + plen) & (KL_DNS_COPY * 2 - 1)));
	return 1;
}

SEC("cgroup_skb/egress")
int kl_dns_egress(struct __sk_buff *skb)
{
	return dns_skb(skb, KL_DIR_EGRESS);
}

SEC("cgroup_skb/ingress")
int kl_dns_ingress(struct __sk_buff *skb)
{
	return dns_skb(skb, KL_DIR_INGRESS);
}
