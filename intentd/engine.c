/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine.c - kl-intentd's folding engine.
 *
 * State, all bounded:
 * - processes keyed by (pid, start_ns), LRU-ordered, capped (max_procs);
 * - per process an fd table pointing at "open descriptions" (struct ofd):
 *   one per open()/socket()/accept(), shared by dup'd fds and freed when
 *   the last fd referring to it closes, which is when its FileAccess or
 *   NetworkExchange is emitted. A global list of them, ordered by window
 *   start, drives the "continuing" windows and eviction (max_open);
 * - DNS queries awaiting a response (max_dns_pending, timeout), and a
 *   direct-mapped cache of recent answers (fixed size, overwrite on
 *   collision) that links a later connection to its DNSQuery.
 *
 * The hot path (read/write on a known fd) touches one hash bucket, one
 * fd slot and one ofd; it does not allocate. Allocation happens per
 * process (fork), per open description (from a free list after warm-up)
 * and when a process's context strings change.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <kloudlens/recutil.h>

#include "intentd.h"

#define S_NS 1000000000ull
#define PATH_INLINE 256
#define ADDR_MAX 112            /* >= sizeof(struct sockaddr_un) */
#define OUT_CAP 32768
#define SWEEP_NS (S_NS / 2)     /* window/timeout resolution, event time */
#define ANS_CACHE 4096          /* power of two */

/* x86_64 syscall numbers */
enum {
	NR_read = 0, NR_write = 1, NR_open = 2, NR_close = 3, NR_fstat = 5, NR_lseek = 8, NR_mmap = 9,
	NR_ioctl = 16, NR_pread64 = 17, NR_pwrite64 = 18, NR_readv = 19, NR_writev = 20, NR_pipe = 22,
	NR_dup = 32, NR_dup2 = 33, NR_sendfile = 40, NR_socket = 41, NR_connect = 42, NR_accept = 43,
	NR_sendto = 44, NR_recvfrom = 45, NR_sendmsg = 46, NR_recvmsg = 47, NR_bind = 49,
	NR_listen = 50, NR_socketpair = 53, NR_execve = 59, NR_kill = 62, NR_fcntl = 72, NR_flock = 73,
	NR_fsync = 74, NR_fdatasync = 75, NR_truncate = 76, NR_ftruncate = 77, NR_getdents = 78,
	NR_rename = 82, NR_mkdir = 83, NR_rmdir = 84, NR_creat = 85, NR_link = 86, NR_unlink = 87,
	NR_symlink = 88, NR_chmod = 90, NR_fchmod = 91, NR_chown = 92, NR_fchown = 93, NR_lchown = 94,
	NR_ptrace = 101, NR_setuid = 105, NR_setgid = 106, NR_setreuid = 113, NR_setregid = 114,
	NR_setgroups = 116, NR_setresuid = 117, NR_setresgid = 119, NR_setfsuid = 122,
	NR_setfsgid = 123, NR_capset = 126, NR_rt_sigqueueinfo = 129, NR_mknod = 133,
	NR_pivot_root = 155, NR_chroot = 161, NR_mount = 165, NR_umount2 = 166, NR_init_module = 175,
	NR_delete_module = 176, NR_tkill = 200, NR_getdents64 = 217, NR_tgkill = 234,
	NR_openat = 257, NR_mkdirat = 258, NR_mknodat = 259, NR_fchownat = 260, NR_unlinkat = 263,
	NR_renameat = 264, NR_linkat = 265, NR_symlinkat = 266, NR_fchmodat = 268, NR_unshare = 272,
	NR_splice = 275, NR_accept4 = 288, NR_dup3 = 292, NR_pipe2 = 293, NR_preadv = 295,
	NR_pwritev = 296, NR_recvmmsg = 299, NR_sendmmsg = 307, NR_setns = 308, NR_finit_module = 313,
	NR_renameat2 = 316, NR_memfd_create = 319, NR_bpf = 321, NR_execveat = 322,
	NR_copy_file_range = 326, NR_preadv2 = 327, NR_pwritev2 = 328, NR_pidfd_send_signal = 424,
	NR_open_tree = 428, NR_move_mount = 429, NR_fsmount = 432, NR_close_range = 436,
	NR_openat2 = 437, NR_fchmodat2 = 452,
};

enum ofd_type {
	OFD_FILE = 1,       /* -> FileAccess */
	OFD_SOCK = 2,       /* -> NetworkExchange */
	OFD_LISTEN = 3,     /* NetworkListen already emitted; silent at close */
	OFD_IPC = 4,        /* pipe / socketpair end: IPC emitted at creation; silent */
};

struct ofd {
	struct ofd *prev, *next;    /* global list, ordered by win_start */
	struct iproc *owner;
	uint32_t refs;
	uint8_t type;
	bool memfd;
	uint16_t family, socktype;
	uint32_t iflags, dflags;
	int32_t fd;                 /* the fd it was opened as */
	uint64_t first_seq, last_seq, count, first_ts, last_ts, win_start, open_ts;
	int64_t result;
	uint64_t bytes_in, bytes_out, ops_in, ops_out, ops_other;
	uint64_t open_flags, mode, dns_seq;
	uint16_t path_len, local_len, peer_len, dns_len;
	bool path_trunc;
	char path[PATH_INLINE];
	uint8_t local[ADDR_MAX], peer[ADDR_MAX];
	char dns_name[PATH_INLINE];
};

struct fdslot {
	struct ofd *o;
	bool cloexec;
};

struct iproc {
	struct iproc *hnext;            /* hash chain */
	struct iproc *lprev, *lnext;    /* LRU: head = most recent */
	uint32_t pid;
	uint64_t start_ns;
	struct kl_event ev;             /* latest head: comm, uid, cgroup ... */
	uint32_t ppid;
	uint64_t pstart, ctr;
	uint64_t fork_seq, fork_ts, first_seq;
	uint32_t children, execs;
	bool inherited, memexec_done;
	bool entered;                   /* latest event: KL_EN_ENTERED (a runtime's init) */
	uint8_t *ctx;                   /* context TLV fields, verbatim from the latest event */
	uint32_t ctx_len, ctx_cap;
	struct fdslot *fds;
	uint32_t nfds;
};

struct dns_pending {
	uint16_t id, sport, family, qtype;
	uint64_t cgroup, seq, ts, count, last_seq;
	struct kl_event ev;
	uint32_t ppid;
	uint64_t pstart, ctr;
	uint8_t saddr[16], daddr[16];
	uint16_t dport;
};

struct ans_entry {
	uint64_t cgroup, ts, intent_seq;
	uint16_t family;
	uint8_t addr[16];
	char name[PATH_INLINE];
};

/* Fields of the current enriched record that the folding needs. */
struct cur {
	const struct kl_enriched *en;   /* aligned copy */
	const uint8_t *ctx;
	size_t ctx_len;
	struct kl_field_view abs1, abs2, fdp, local, peer;
	bool has_abs1, has_abs2, has_fdp, has_local, has_peer;
	const void *raw;
	size_t raw_len;
};

struct kl_intentd {
	struct kl_intentd_opts o;
	kl_intent_emit_fn emit;
	void *emit_ctx;
	size_t node_len;
	uint64_t now, next_sweep, next_iseq;
	struct iproc **buckets;
	uint32_t nbuckets;
	struct iproc *lru_head, *lru_tail;
	struct ofd *open_head, *open_tail, *free_ofd;
	struct dns_pending *dns;
	struct ans_entry *ans;
	struct kl_intentd_stats st;
	int emitted;                    /* during one process() call */
	uint8_t out[OUT_CAP] __attribute__((aligned(8)));
};

/* ---- small helpers -------------------------------------------------------- */

static uint64_t mix64(uint64_t a, uint64_t b)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2));
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static bool is_ctx_field(uint16_t id)
{
	switch (id) {
	case KL_F_EXE: case KL_F_ARGV: case KL_F_CWD: case KL_F_PARENT_EXE: case KL_F_CONTAINER_ID:
	case KL_F_CONTAINER_NAME: case KL_F_IMAGE: case KL_F_POD_NAME: case KL_F_POD_NAMESPACE:
	case KL_F_POD_UID:
		return true;
	default:
		return false;
	}
}

/* Find context field @id inside a TLV blob (the blob came from a validated record). */
static bool blob_find(const uint8_t *p, size_t len, uint16_t id, struct kl_field_view *f)
{
	struct kl_field_iter it = { .p = p, .end = p + len };

	while (kl_field_next(&it, f))
		if (f->id == id)
			return true;
	return false;
}

/* ---- emission ------------------------------------------------------------- */

struct ib {
	struct kl_tail_builder b;
	struct kl_intent *in;
};

static void ib_start(struct kl_intentd *e, struct ib *ib, uint16_t kind, const struct kl_event *ev,
		     const uint8_t *ctx, size_t ctx_len)
{
	struct kl_intent in;

	memset(&in, 0, sizeof(in));
	in.ev = *ev;
	in.ev.flags &= KL_EV_BOOTSTRAP;
	in.ev.tail_len = 0;
	in.ev.ts_ns = e->now;
	in.kind = kind;
	memcpy(e->out, &in, sizeof(in));
	ib->in = (struct kl_intent *)e->out;
	kl_tail_init(&ib->b, e->out, sizeof(in), sizeof(e->out));
	if (e->node_len)
		kl_tail_add(&ib->b, KL_F_NODE, e->o.node, e->node_len);
	/* the context blob is already TLV from a validated record: copy it whole */
	if (ctx_len && ib->b.len + ctx_len <= ib->b.cap) {
		memcpy(e->out + ib->b.len, ctx, ctx_len);
		ib->b.len += ctx_len;
	}
}

static void ib_emit(struct kl_intentd *e, struct ib *ib)
{
	ib->in->ev.seq = ++e->next_iseq;
	if (ib->in->result < 0)
		ib->in->iflags |= KL_IN_FAILED;
	size_t len = kl_tail_finish(&ib->b);
	if (ib->b.truncated)
		e->st.truncated++;
	e->st.intents++;
	if (ib->in->kind < KL_INTENT__COUNT)
		e->st.by_kind[ib->in->kind]++;
	e->emitted++;
	if (e->emit(e->emit_ctx, e->out, len) < 0)
		e->st.emit_errors++;
}

static void ib_proc(struct ib *ib, const struct iproc *p)
{
	if (p->entered)
		ib->in->iflags |= KL_IN_ENTERED;
	ib->in->parent_pid = p->ppid;
	ib->in->parent_start_ns = p->pstart;
	ib->in->ctr_cgroup_id = p->ctr;
}

static void ib_one(struct ib *ib, const struct kl_event *ev)
{
	ib->in->first_seq = ib->in->last_seq = ev->seq;
	ib->in->first_ts = ib->in->last_ts = ev->ts_ns;
	ib->in->count = 1;
}

static void ib_str(struct ib *ib, uint16_t id, const struct kl_field_view *f)
{
	size_t n = strnlen((const char *)f->data, f->len);

	kl_tail_add(&ib->b, id, f->data, n);
}

/* ---- processes ------------------------------------------------------------ */

static struct iproc **proc_slot(struct kl_intentd *e, uint32_t pid, uint64_t start)
{
	struct iproc **pp = &e->buckets[mix64(pid, start) & (e->nbuckets - 1)];

	while (*pp && ((*pp)->pid != pid || (*pp)->start_ns != start))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(struct kl_intentd *e, struct iproc *p)
{
	if (p->lprev)
		p->lprev->lnext = p->lnext;
	else
		e->lru_head = p->lnext;
	if (p->lnext)
		p->lnext->lprev = p->lprev;
	else
		e->lru_tail = p->lprev;
	p->lprev = p->lnext = NULL;
}

static void lru_push(struct kl_intentd *e, struct iproc *p)
{
	p->lnext = e->lru_head;
	p->lprev = NULL;
	if (e->lru_head)
		e->lru_head->lprev = p;
	e->lru_head = p;
	if (!e->lru_tail)
		e->lru_tail = p;
}

static void rehash(struct kl_intentd *e)
{
	uint32_t n = e->nbuckets * 2;
	struct iproc **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;     /* longer chains, still correct */
	for (uint32_t i = 0; i < e->nbuckets; i++) {
		struct iproc *p = e->buckets[i];
		while (p) {
			struct iproc *nx = p->hnext;
			uint32_t h = (uint32_t)(mix64(p->pid, p->start_ns) & (n - 1));
			p->hnext = nb[h];
			nb[h] = p;
			p = nx;
		}
	}
	free(e->buckets);
	e->buckets = nb;
	e->nbuckets = n;
}

static void flush_proc(struct kl_intentd *e, struct iproc *p, uint32_t why);

static void proc_free(struct kl_intentd *e, struct iproc *p)
{
	struct iproc **pp = proc_slot(e, p->pid, p->start_ns);

	if (*pp == p)
		*pp = p->hnext;
	lru_unlink(e, p);
	free(p->fds);
	free(p->ctx);
	free(p);
	e->st.procs--;
}

static struct iproc *proc_get(struct kl_intentd *e, uint32_t pid, uint64_t start)
{
	return *proc_slot(e, pid, start);
}

static struct iproc *proc_new(struct kl_intentd *e, const struct kl_event *ev)
{
	struct iproc *p;

	/* Cap: the least recently seen process goes, its state flushed first. */
	while (e->st.procs >= e->o.max_procs && e->lru_tail) {
		struct iproc *old = e->lru_tail;
		flush_proc(e, old, KL_IN_EVICTED);
		proc_free(e, old);
		e->st.procs_evicted++;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = ev->pid;
	p->start_ns = ev->start_ns;
	p->ev = *ev;
	struct iproc **pp = proc_slot(e, ev->pid, ev->start_ns);
	*pp = p;
	lru_push(e, p);
	if (++e->st.procs > e->nbuckets)
		rehash(e);
	return p;
}

/* Keep the process's context blob equal to the latest event's. */
static void proc_ctx(struct iproc *p, const struct cur *c)
{
	if (p->ctx_len == c->ctx_len && (!c->ctx_len || !memcmp(p->ctx, c->ctx, c->ctx_len)))
		return;
	if (c->ctx_len > p->ctx_cap) {
		uint8_t *n = realloc(p->ctx, c->ctx_len);
		if (!n)
			return;     /* keep the old context rather than none */
		p->ctx = n;
		p->ctx_cap = (uint32_t)c->ctx_len;
	}
	if (c->ctx_len)
		memcpy(p->ctx, c->ctx, c->ctx_len);
	p->ctx_len = (uint32_t)c->ctx_len;
}

/* ---- open descriptions ---------------------------------------------------- */

static void open_unlink(struct kl_intentd *e, struct ofd *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		e->open_head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		e->open_tail = o->prev;
	o->prev = o->next = NULL;
}

static void open_append(struct kl_intentd *e, struct ofd *o)
{
	o->prev = e->open_tail;
	o->next = NULL;
	if (e->open_tail)
		e->open_tail->next = o;
	else
		e->open_head = o;
	e->open_tail = o;
}

static void ofd_emit(struct kl_intentd *e, struct ofd *o, uint32_t why);

static void ofd_free(struct kl_intentd *e, struct ofd *o)
{
	open_unlink(e, o);
	o->next = e->free_ofd;
	e->free_ofd = o;
	e->st.open--;
}

static void fd_install(struct kl_intentd *e, struct iproc *p, int64_t fd, struct ofd *o, bool cloexec);

static struct ofd *ofd_new(struct kl_intentd *e, struct iproc *p, uint8_t type, const struct kl_event *ev)
{
	struct ofd *o;

	if (e->st.open >= e->o.max_open && e->open_head) {
		/* Cap: the description with the oldest window goes, emitted first. */
		struct ofd *old = e->open_head;
		struct iproc *op = old->owner;
		ofd_emit(e, old, KL_IN_EVICTED);
		for (uint32_t i = 0; op && i < op->nfds; i++)
			if (op->fds[i].o == old)
				op->fds[i].o = NULL;
		ofd_free(e, old);
		e->st.open_evicted++;
	}
	o = e->free_ofd;
	if (o)
		e->free_ofd = o->next;
	else if (!(o = malloc(sizeof(*o))))
		return NULL;
	/* clear the counters, not the inline buffers: lengths say what is valid */
	memset(o, 0, offsetof(struct ofd, path));
	o->owner = p;
	o->type = type;
	o->first_seq = o->last_seq = ev->seq;
	o->first_ts = o->last_ts = o->open_ts = o->win_start = ev->ts_ns;
	o->count = 1;
	o->fd = -1;
	open_append(e, o);
	e->st.open++;
	return o;
}

static void ofd_fold(struct ofd *o, const struct kl_event *ev)
{
	if (!o->count) {
		o->first_seq = ev->seq;
		o->first_ts = ev->ts_ns;
	}
	o->count++;
	o->last_seq = ev->seq;
	o->last_ts = ev->ts_ns;
}

static void set_path(struct ofd *o, const void *s, size_t n)
{
	n = strnlen(s, n);
	o->path_trunc = n >= PATH_INLINE;
	if (n >= PATH_INLINE)
		n = PATH_INLINE - 1;
	memcpy(o->path, s, n);
	o->path_len = (uint16_t)n;
}

static void set_addr(uint8_t *dst, uint16_t *dlen, const void *s, size_t n)
{
	if (n > ADDR_MAX)
		n = ADDR_MAX;
	memcpy(dst, s, n);
	*dlen = (uint16_t)n;
}

/* Emit the FileAccess/NetworkExchange for what @o folded since its last emission. */
static void ofd_emit(struct kl_intentd *e, struct ofd *o, uint32_t why)
{
	struct iproc *p = o->owner;
	struct ib ib;
	uint16_t kind;

	if (o->type == OFD_FILE)
		kind = KL_INTENT_FILE_ACCESS;
	else if (o->type == OFD_SOCK)
		kind = KL_INTENT_NETWORK_EXCHANGE;
	else
		return;
	if (!o->count)
		return;     /* nothing since the last window */
	ib_start(e, &ib, kind, &p->ev, p->ctx, p->ctx_len);
	ib_proc(&ib, p);
	ib.in->iflags |= o->iflags | why;   /* ib_proc may have marked it already */
	ib.in->first_seq = o->first_seq;
	ib.in->last_seq = o->last_seq;
	ib.in->count = o->count;
	ib.in->first_ts = o->first_ts;
	ib.in->last_ts = o->last_ts;
	ib.in->result = o->result;
	ib.in->bytes_in = o->bytes_in;
	ib.in->bytes_out = o->bytes_out;
	ib.in->ops_in = o->ops_in;
	ib.in->ops_out = o->ops_out;
	if (kind == KL_INTENT_FILE_ACCESS) {
		ib.in->dflags = o->dflags;
		ib.in->arg[0] = o->open_flags;
		ib.in->arg[1] = o->mode;
		ib.in->arg[2] = (uint64_t)(int64_t)o->fd;
		ib.in->arg[3] = o->ops_other;
		if (o->path_len)
			kl_tail_add(&ib.b, KL_F_PATH, o->path, o->path_len);
		if (o->path_trunc)
			ib.b.truncated = true;      /* -> KL_EV_TRUNCATED: the path was cut */
	} else {
		ib.in->arg[0] = o->family;
		ib.in->arg[1] = o->socktype;
		ib.in->arg[2] = o->last_ts - o->open_ts;
		ib.in->arg[3] = o->dns_seq;
		if (o->local_len)
			kl_tail_add(&ib.b, KL_F_LOCAL_ADDR, o->local, o->local_len);
		if (o->peer_len)
			kl_tail_add(&ib.b, KL_F_PEER_ADDR, o->peer, o->peer_len);
		if (o->path_len)
			kl_tail_add(&ib.b, KL_F_PATH, o->path, o->path_len);
		if (o->dns_len)
			kl_tail_add(&ib.b, KL_F_DNS_NAME, o->dns_name, o->dns_len);
	}
	ib_emit(e, &ib);
	/* the next window starts empty; the flags that describe the object stay */
	o->count = 0;
	o->bytes_in = o->bytes_out = o->ops_in = o->ops_out = o->ops_other = 0;
	o->iflags &= ~(uint32_t)KL_IN_FAILED;
	o->win_start = e->now;
}

/* One fd stops referring to @o; the last one emits it. */
static void ofd_put(struct kl_intentd *e, struct ofd *o, uint32_t why)
{
	if (--o->refs)
		return;
	ofd_emit(e, o, why);
	ofd_free(e, o);
}

static struct fdslot *fd_slot(struct kl_intentd *e, struct iproc *p, int64_t fd, bool grow)
{
	if (fd < 0)
		return NULL;
	if ((uint64_t)fd >= p->nfds) {
		if (!grow)
			return NULL;
		if ((uint64_t)fd >= e->o.max_fds_per_proc) {
			e->st.fd_untracked++;
			return NULL;
		}
		uint32_t n = p->nfds ? p->nfds : 16;
		while (n <= (uint64_t)fd)
			n *= 2;
		if (n > e->o.max_fds_per_proc)
			n = e->o.max_fds_per_proc;
		struct fdslot *t = realloc(p->fds, n * sizeof(*t));
		if (!t)
			return NULL;
		memset(t + p->nfds, 0, (n - p->nfds) * sizeof(*t));
		p->fds = t;
		p->nfds = n;
	}
	return &p->fds[fd];
}

static struct ofd *fd_get(struct iproc *p, int64_t fd)
{
	return fd >= 0 && (uint64_t)fd < p->nfds ? p->fds[fd].o : NULL;
}

static void fd_release(struct kl_intentd *e, struct iproc *p, int64_t fd, uint32_t why)
{
	struct fdslot *s = fd_slot(e, p, fd, false);

	if (s && s->o) {
		struct ofd *o = s->o;
		s->o = NULL;
		ofd_put(e, o, why);
	}
}

static void fd_install(struct kl_intentd *e, struct iproc *p, int64_t fd, struct ofd *o, bool cloexec)
{
	struct fdslot *s = fd_slot(e, p, fd, true);

	if (!s) {
		/* untracked fd number: emit now rather than leak the description */
		if (!o->refs) {
			ofd_emit(e, o, 0);
			ofd_free(e, o);
		}
		return;
	}
	/* an occupied slot means we missed its close: that description ends here */
	if (s->o && s->o != o) {
		struct ofd *old = s->o;
		s->o = NULL;
		ofd_put(e, old, 0);
	}
	if (s->o != o) {
		o->refs++;
		s->o = o;
	}
	s->cloexec = cloexec;
	if (o->fd < 0)
		o->fd = (int32_t)fd;
}

static uint16_t kind_family(uint16_t k)
{
	switch (k) {
	case KL_FD_SOCK_INET: return AF_INET;
	case KL_FD_SOCK_INET6: return AF_INET6;
	case KL_FD_SOCK_UNIX: return AF_UNIX;
	default: return 0;
	}
}

/*
 * An fd we never saw opened (inherited across fork/exec, or from before we
 * started) but that the enricher knows: fold from here on, marked inherited.
 */
static struct ofd *fd_adopt(struct kl_intentd *e, struct iproc *p, int64_t fd, const struct cur *c)
{
	const struct kl_enriched *en = c->en;
	struct ofd *o;
	uint8_t type;

	if (!(en->eflags & KL_EN_FD_RESOLVED))
		return NULL;
	switch (en->fd_kind) {
	case KL_FD_FILE: case KL_FD_MEMFD: type = OFD_FILE; break;
	case KL_FD_SOCK_INET: case KL_FD_SOCK_INET6: case KL_FD_SOCK_UNIX: case KL_FD_SOCK_OTHER:
		type = OFD_SOCK; break;
	case KL_FD_PIPE: type = OFD_IPC; break;
	default: return NULL;
	}
	o = ofd_new(e, p, type, &en->ev);
	if (!o)
		return NULL;
	o->count = 0;       /* the caller folds the event */
	o->iflags |= KL_IN_INHERITED;
	o->memfd = en->fd_kind == KL_FD_MEMFD;
	o->family = kind_family(en->fd_kind);
	if (c->has_fdp)
		set_path(o, c->fdp.data, c->fdp.len);
	if (c->has_local)
		set_addr(o->local, &o->local_len, c->local.data, c->local.len);
	if (c->has_peer)
		set_addr(o->peer, &o->peer_len, c->peer.data, c->peer.len);
	fd_install(e, p, fd, o, false);
	return fd_get(p, fd) == o ? o : NULL;
}

static void flush_proc(struct kl_intentd *e, struct iproc *p, uint32_t why)
{
	for (uint32_t i = 0; i < p->nfds; i++)
		fd_release(e, p, i, why);
}

/* ---- DNS ------------------------------------------------------------------ */

static size_t make_sockaddr(uint8_t *out, uint16_t family, const uint8_t addr[16], uint16_t port)
{
	if (family == AF_INET) {
		struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
		memcpy(&s.sin_addr, addr, 4);
		memcpy(out, &s, sizeof(s));
		return sizeof(s);
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
		memcpy(&s.sin6_addr, addr, 16);
		memcpy(out, &s, sizeof(s));
		return sizeof(s);
	}
	return 0;
}

/* sockaddr bytes -> (family, 16-byte addr); false if not inet. */
static bool sa_addr(const uint8_t *sa, size_t n, uint16_t *family, uint8_t addr[16])
{
	sa_family_t f;

	if (n < sizeof(f))
		return false;
	memcpy(&f, sa, sizeof(f));
	memset(addr, 0, 16);
	if (f == AF_INET && n >= sizeof(struct sockaddr_in)) {
		memcpy(addr, sa + offsetof(struct sockaddr_in, sin_addr), 4);
	} else if (f == AF_INET6 && n >= sizeof(struct sockaddr_in6)) {
		memcpy(addr, sa + offsetof(struct sockaddr_in6, sin6_addr), 16);
		/* v4-mapped v6 (dual-stack sockets) matches the A record */
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (!memcmp(addr, mapped, 12)) {
			memmove(addr, addr + 12, 4);
			memset(addr + 4, 0, 12);
			f = AF_INET;
		}
	} else {
		return false;
	}
	*family = f;
	return true;
}

static struct ans_entry *ans_slot(struct kl_intentd *e, uint64_t cgroup, uint16_t family, const uint8_t addr[16])
{
	uint64_t a, b;

	memcpy(&a, addr, 8);
	memcpy(&b, addr + 8, 8);
	return &e->ans[mix64(cgroup ^ family, a ^ mix64(b, 0)) & (ANS_CACHE - 1)];
}

/* A connection to an address a DNS answer gave this cgroup: link it. */
static void dns_link(struct kl_intentd *e, struct ofd *o, uint64_t cgroup)
{
	uint16_t fam;
	uint8_t addr[16];

	if (o->dns_seq || !o->peer_len || !sa_addr(o->peer, o->peer_len, &fam, addr))
		return;
	struct ans_entry *a = ans_slot(e, cgroup, fam, addr);
	if (!a->ts || a->cgroup != cgroup || a->family != fam || memcmp(a->addr, addr, 16) ||
	    e->now - a->ts > e->o.dns_link_ttl_ns)
		return;
	o->dns_seq = a->intent_seq;
	o->dns_len = (uint16_t)strnlen(a->name, sizeof(a->name));
	memcpy(o->dns_name, a->name, o->dns_len);
	o->iflags |= KL_IN_DNS_LINKED;
	e->st.dns_linked++;
}

static int64_t rcode_errno(uint8_t rcode)
{
	switch (rcode) {
	case 0: return 0;
	case 2: return -EAGAIN;     /* SERVFAIL */
	case 3: return -ENOENT;     /* NXDOMAIN */
	case 5: return -EACCES;     /* REFUSED */
	default: return -EIO;
	}
}

static void dns_emit_pending(struct kl_intentd *e, struct dns_pending *q, uint32_t why)
{
	struct iproc *p = q->ev.pid ? proc_get(e, q->ev.pid, q->ev.start_ns) : NULL;
	struct ib ib;
	uint8_t sa[sizeof(struct sockaddr_in6)];
	size_t n;

	ib_start(e, &ib, KL_INTENT_DNS_QUERY, &q->ev, p ? p->ctx : NULL, p ? p->ctx_len : 0);
	ib.in->parent_pid = q->ppid;
	ib.in->parent_start_ns = q->pstart;
	ib.in->ctr_cgroup_id = q->ctr;
	ib.in->iflags = why;
	ib.in->first_seq = q->seq;
	ib.in->last_seq = q->last_seq;
	ib.in->first_ts = q->ts;
	ib.in->last_ts = q->ts;
	ib.in->count = q->count;
	ib.in->ops_out = q->count;
	ib.in->result = why & KL_IN_TIMEOUT ? -ETIMEDOUT : 0;
	ib.in->arg[0] = q->qtype;
	ib.in->arg[3] = q->id;
	if ((n = make_sockaddr(sa, q->family, q->saddr, q->sport)))
		kl_tail_add(&ib.b, KL_F_LOCAL_ADDR, sa, n);
	if ((n = make_sockaddr(sa, q->family, q->daddr, q->dport)))
		kl_tail_add(&ib.b, KL_F_PEER_ADDR, sa, n);
	ib_emit(e, &ib);
}

static void dns_drop(struct kl_intentd *e, uint32_t i)
{
	e->dns[i] = e->dns[--e->st.dns_pending];
}

static void on_dns(struct kl_intentd *e, const struct cur *c, struct iproc *p)
{
	struct kl_dns d;
	struct kl_field_view f;
	struct kl_dns_msg m;

	if (c->raw_len < sizeof(d))
		return;
	memcpy(&d, c->raw, sizeof(d));
	if (!kl_field_find(KL_REC_DNS, c->raw, c->raw_len, KL_F_DATA, &f) ||
	    kl_dns_parse(f.data, f.len, d.proto == IPPROTO_TCP, &m)) {
		e->st.dns_unparsed++;
		return;
	}
	/*
	 * A DNSQuery is a process asking: its query leaves (egress) and the
	 * answer comes in (ingress). The same packets seen the other way are
	 * a local DNS server's side of the exchange, and on loopback every
	 * packet is seen both ways: counting them would report each query twice.
	 */
	if (d.direction != (m.response ? KL_DIR_INGRESS : KL_DIR_EGRESS)) {
		e->st.dns_server_side++;
		return;
	}
	const struct kl_event *ev = &c->en->ev;
	if (!m.response) {
		for (uint32_t i = 0; i < e->st.dns_pending; i++) {
			struct dns_pending *q = &e->dns[i];
			if (q->id == m.id && q->sport == d.sport && q->cgroup == ev->cgroup_id) {
				q->count++;     /* retransmission */
				q->last_seq = ev->seq;
				return;
			}
		}
		if (e->st.dns_pending >= e->o.max_dns_pending) {
			uint32_t oldest = 0;
			for (uint32_t i = 1; i < e->st.dns_pending; i++)
				if (e->dns[i].ts < e->dns[oldest].ts)
					oldest = i;
			dns_emit_pending(e, &e->dns[oldest], KL_IN_EVICTED);
			dns_drop(e, oldest);
			e->st.dns_evicted++;
		}
		struct dns_pending *q = &e->dns[e->st.dns_pending++];
		memset(q, 0, sizeof(*q));
		q->id = m.id;
		q->sport = d.sport;
		q->dport = d.dport;
		q->family = d.family;
		q->qtype = m.qtype;
		q->cgroup = ev->cgroup_id;
		q->seq = q->last_seq = ev->seq;
		q->ts = ev->ts_ns;
		q->count = 1;
		q->ev = *ev;
		q->ppid = c->en->parent_pid;
		q->pstart = c->en->parent_start_ns;
		q->ctr = c->en->ctr_cgroup_id;
		memcpy(q->saddr, d.saddr, 16);
		memcpy(q->daddr, d.daddr, 16);
		return;
	}

	/* response: match its query (our port is its destination port) */
	struct dns_pending q = { 0 };
	bool matched = false;
	for (uint32_t i = 0; i < e->st.dns_pending; i++) {
		if (e->dns[i].id == m.id && e->dns[i].sport == d.dport && e->dns[i].cgroup == ev->cgroup_id) {
			q = e->dns[i];
			dns_drop(e, i);
			matched = true;
			break;
		}
	}
	const struct kl_event *who = matched && !ev->pid ? &q.ev : ev;
	struct iproc *owner = who->pid ? proc_get(e, who->pid, who->start_ns) : NULL;
	if (!owner)
		owner = p;
	struct ib ib;
	ib_start(e, &ib, KL_INTENT_DNS_QUERY, who, owner ? owner->ctx : c->ctx,
		 owner ? owner->ctx_len : c->ctx_len);
	ib.in->parent_pid = matched ? q.ppid : c->en->parent_pid;
	ib.in->parent_start_ns = matched ? q.pstart : c->en->parent_start_ns;
	ib.in->ctr_cgroup_id = c->en->ctr_cgroup_id;
	ib.in->first_seq = matched ? q.seq : ev->seq;
	ib.in->first_ts = matched ? q.ts : ev->ts_ns;
	ib.in->last_seq = ev->seq;
	ib.in->last_ts = ev->ts_ns;
	ib.in->count = matched ? q.count + 1 : 1;
	ib.in->ops_out = matched ? q.count : 0;
	ib.in->ops_in = 1;
	ib.in->result = rcode_errno(m.rcode);
	ib.in->arg[0] = m.qtype;
	ib.in->arg[1] = m.rcode;
	ib.in->arg[2] = m.nanswers;
	ib.in->arg[3] = m.id;
	uint8_t sa[sizeof(struct sockaddr_in6)];
	size_t n;
	if ((n = make_sockaddr(sa, d.family, d.daddr, d.dport)))
		kl_tail_add(&ib.b, KL_F_LOCAL_ADDR, sa, n);
	if ((n = make_sockaddr(sa, d.family, d.saddr, d.sport)))
		kl_tail_add(&ib.b, KL_F_PEER_ADDR, sa, n);
	kl_tail_add_str(&ib.b, KL_F_DNS_NAME, m.name);
	if (m.answers_len)
		kl_tail_add(&ib.b, KL_F_DNS_ANSWERS, m.answers, m.answers_len);
	ib_emit(e, &ib);
	/* remember the answers so the connection that follows can point here */
	for (uint32_t i = 0; i < m.naddrs; i++) {
		struct ans_entry *a = ans_slot(e, ev->cgroup_id, m.addrs[i].family, m.addrs[i].addr);
		a->cgroup = ev->cgroup_id;
		a->family = m.addrs[i].family;
		memcpy(a->addr, m.addrs[i].addr, 16);
		a->ts = ev->ts_ns ? ev->ts_ns : 1;
		a->intent_seq = e->next_iseq;
		snprintf(a->name, sizeof(a->name), "%s", m.name);
	}
}

/* ---- windows and timeouts -------------------------------------------------- */

static void sweep(struct kl_intentd *e)
{
	/* The list is ordered by win_start: stop at the first one still inside its window. */
	while (e->open_head && e->open_head->win_start + e->o.window_ns <= e->now) {
		struct ofd *o = e->open_head;
		ofd_emit(e, o, KL_IN_CONTINUING);
		o->win_start = e->now;
		open_unlink(e, o);
		open_append(e, o);
	}
	for (uint32_t i = 0; i < e->st.dns_pending;) {
		if (e->dns[i].ts + e->o.dns_timeout_ns <= e->now) {
			dns_emit_pending(e, &e->dns[i], KL_IN_TIMEOUT);
			dns_drop(e, i);
			e->st.dns_timeouts++;
		} else {
			i++;
		}
	}
	e->next_sweep = e->now + SWEEP_NS;
}

/* ---- syscalls ------------------------------------------------------------- */

static uint32_t decode_open(uint64_t fl)
{
	uint32_t d = 0;

	if (fl & O_PATH)
		return KL_IA_PATH | (fl & O_CLOEXEC ? KL_IA_CLOEXEC : 0) |
		       (fl & O_DIRECTORY ? KL_IA_DIRECTORY : 0);
	switch (fl & O_ACCMODE) {
	case O_RDONLY: d |= KL_IA_READ; break;
	case O_WRONLY: d |= KL_IA_WRITE; break;
	default: d |= KL_IA_READ | KL_IA_WRITE; break;
	}
	if (fl & O_CREAT) d |= KL_IA_CREATE;
	if (fl & O_TRUNC) d |= KL_IA_TRUNCATE;
	if (fl & O_APPEND) d |= KL_IA_APPEND;
	if ((fl & O_TMPFILE) == O_TMPFILE) d |= KL_IA_TMPFILE;
	else if (fl & O_DIRECTORY) d |= KL_IA_DIRECTORY;
	if (fl & O_CLOEXEC) d |= KL_IA_CLOEXEC;
	if (fl & O_NONBLOCK) d |= KL_IA_NONBLOCK;
	if (fl & O_EXCL) d |= KL_IA_EXCL;
	if (fl & (O_SYNC | O_DSYNC)) d |= KL_IA_SYNC;
	return d;
}

static bool raw_field(const struct cur *c, uint16_t id, struct kl_field_view *f)
{
	return kl_field_find(KL_REC_SYSCALL, c->raw, c->raw_len, id, f);
}

/* Best path for argument 1: absolute if the enricher made it so, else as passed. */
static bool path1(const struct cur *c, struct kl_field_view *f)
{
	if (c->has_abs1) {
		*f = c->abs1;
		return true;
	}
	return raw_field(c, KL_F_PATH, f);
}

static bool path2(const struct cur *c, struct kl_field_view *f)
{
	if (c->has_abs2) {
		*f = c->abs2;
		return true;
	}
	return raw_field(c, KL_F_PATH2, f);
}

/* A one-event intent from this syscall (meta, privilege, namespace, ...). */
static void single(struct kl_intentd *e, struct iproc *p, const struct cur *c, const struct kl_syscall *sc,
		   uint16_t kind, struct ib *ib)
{
	ib_start(e, ib, kind, &c->en->ev, p ? p->ctx : c->ctx, p ? p->ctx_len : c->ctx_len);
	ib->in->parent_pid = c->en->parent_pid;
	ib->in->parent_start_ns = c->en->parent_start_ns;
	ib->in->ctr_cgroup_id = c->en->ctr_cgroup_id;
	ib_one(ib, &c->en->ev);
	if (c->en->eflags & KL_EN_ENTERED)
		ib->in->iflags |= KL_IN_ENTERED;
	ib->in->op = (uint16_t)sc->nr;
	ib->in->result = sc->ret < 0 ? sc->ret : 0;
	if (c->en->ev.flags & KL_EV_BOOTSTRAP)
		ib->in->iflags |= KL_IN_INHERITED;
}

static bool is_read(uint32_t nr)
{
	switch (nr) {
	case NR_read: case NR_pread64: case NR_readv: case NR_preadv: case NR_preadv2:
	case NR_recvfrom: case NR_recvmsg: case NR_recvmmsg:
		return true;
	default:
		return false;
	}
}

static bool is_write(uint32_t nr)
{
	switch (nr) {
	case NR_write: case NR_pwrite64: case NR_writev: case NR_pwritev: case NR_pwritev2:
	case NR_sendto: case NR_sendmsg: case NR_sendmmsg:
		return true;
	default:
		return false;
	}
}

/* A read- or write-side transfer of @ret on @o; mmsg calls return messages, not bytes. */
static void io(struct ofd *o, bool in, int64_t ret, bool msgs)
{
	if (ret < 0) {
		/* would-block and interrupted calls are not outcomes */
		if (ret != -EAGAIN && ret != -EINTR && !o->result)
			o->result = ret;
		return;
	}
	if (msgs) {
		if (in)
			o->ops_in += (uint64_t)ret;
		else
			o->ops_out += (uint64_t)ret;
		return;
	}
	if (in) {
		o->bytes_in += (uint64_t)ret;
		o->ops_in++;
	} else {
		o->bytes_out += (uint64_t)ret;
		o->ops_out++;
	}
}

static struct ofd *fd_use(struct kl_intentd *e, struct iproc *p, int64_t fd, const struct cur *c, bool adopt)
{
	struct ofd *o = fd_get(p, fd);

	if (!o && adopt)
		o = fd_adopt(e, p, fd, c);
	if (o)
		ofd_fold(o, &c->en->ev);
	return o;
}

static void exec_memcheck(struct kl_intentd *e, struct iproc *p, const struct cur *c, int64_t fd);

static void on_syscall(struct kl_intentd *e, struct iproc *p, const struct cur *c)
{
	struct kl_syscall sc;
	struct kl_field_view f, g;
	const struct kl_event *ev = &c->en->ev;
	struct ib ib;
	struct ofd *o;

	memcpy(&sc, c->raw, sizeof(sc));
	int64_t ret = sc.ret;
	if (sc.sflags & (KL_SC_ENTRY_ONLY | KL_SC_NO_EXIT)) {
		/* no outcome known: nothing can be created from it, and no bytes moved */
		switch (sc.nr) {
		case NR_open: case NR_openat: case NR_openat2: case NR_creat: case NR_memfd_create:
		case NR_socket: case NR_accept: case NR_accept4: case NR_dup: case NR_dup2: case NR_dup3:
		case NR_fcntl: case NR_pipe: case NR_pipe2: case NR_socketpair: case NR_close:
		case NR_close_range:
			return;
		default:
			ret = 0;
		}
	}

	if (is_read(sc.nr) || is_write(sc.nr)) {
		bool in = is_read(sc.nr);
		if (!p || !(o = fd_use(e, p, (int64_t)sc.args[0], c, true)))
			return;
		io(o, in, ret, sc.nr == NR_recvmmsg || sc.nr == NR_sendmmsg);
		/* unconnected datagram sockets: the first explicit peer names the exchange */
		if (o->type == OFD_SOCK && !o->peer_len && ret >= 0 &&
		    (raw_field(c, in ? KL_F_SOCKADDR2 : KL_F_SOCKADDR, &f) ||
		     (in && raw_field(c, KL_F_SOCKADDR, &f)))) {
			set_addr(o->peer, &o->peer_len, f.data, f.len);
			dns_link(e, o, ev->cgroup_id);
		}
		return;
	}

	switch (sc.nr) {
	case NR_open: case NR_openat: case NR_openat2: case NR_creat: {
		uint64_t fl, mode;
		switch (sc.nr) {
		case NR_open: fl = sc.args[1]; mode = sc.args[2]; break;
		case NR_openat: fl = sc.args[2]; mode = sc.args[3]; break;
		case NR_creat: fl = O_CREAT | O_WRONLY | O_TRUNC; mode = sc.args[1]; break;
		default: fl = 0; mode = 0; break;   /* openat2: flags sit in user memory */
		}
		fl &= 0xffffffffull;
		bool have = path1(c, &f);
		if (ret < 0 || !p) {
			/* denied (or nothing to fold into): one intent now */
			single(e, p, c, &sc, KL_INTENT_FILE_ACCESS, &ib);
			ib.in->op = 0;
			ib.in->dflags = decode_open(fl);
			ib.in->arg[0] = fl;
			ib.in->arg[1] = mode;
			ib.in->arg[2] = (uint64_t)ret;
			if (have)
				ib_str(&ib, KL_F_PATH, &f);
			ib_emit(e, &ib);
			return;
		}
		o = ofd_new(e, p, OFD_FILE, ev);
		if (!o)
			return;
		o->open_flags = fl;
		o->mode = mode;
		o->dflags = decode_open(fl);
		if (have)
			set_path(o, f.data, f.len);
		fd_install(e, p, ret, o, (fl & O_CLOEXEC) != 0);
		return;
	}
	case NR_memfd_create:
		if (ret < 0 || !p)
			return;
		o = ofd_new(e, p, OFD_FILE, ev);
		if (!o)
			return;
		o->memfd = true;
		o->dflags = KL_IA_READ | KL_IA_WRITE | KL_IA_CREATE;
		if (raw_field(c, KL_F_PATH, &f) || raw_field(c, KL_F_NAME, &f)) {
			char b[PATH_INLINE];
			snprintf(b, sizeof(b), "memfd:%.*s", (int)strnlen((const char *)f.data, f.len),
				 (const char *)f.data);
			set_path(o, b, strlen(b));
		}
		fd_install(e, p, ret, o, (sc.args[1] & 1u /* MFD_CLOEXEC */) != 0);
		return;
	case NR_socket:
		if (ret < 0 || !p) {
			single(e, p, c, &sc, KL_INTENT_NETWORK_EXCHANGE, &ib);
			ib.in->op = 0;
			ib.in->arg[0] = sc.args[0];
			ib.in->arg[1] = sc.args[1] & 0xf;
			ib_emit(e, &ib);
			return;
		}
		o = ofd_new(e, p, OFD_SOCK, ev);
		if (!o)
			return;
		o->family = (uint16_t)sc.args[0];
		o->socktype = (uint16_t)(sc.args[1] & 0xf);
		fd_install(e, p, ret, o, (sc.args[1] & SOCK_CLOEXEC) != 0);
		return;
	case NR_connect:
		if (!p || !(o = fd_use(e, p, (int64_t)sc.args[0], c, true))) {
			single(e, p, c, &sc, KL_INTENT_NETWORK_EXCHANGE, &ib);
			ib.in->op = 0;
			ib.in->iflags |= KL_IN_CONNECT;
			if (raw_field(c, KL_F_SOCKADDR, &f))
				kl_tail_add(&ib.b, KL_F_PEER_ADDR, f.data, f.len);
			ib_emit(e, &ib);
			return;
		}
		if (o->type != OFD_SOCK)
			return;
		o->iflags |= KL_IN_CONNECT;
		if (raw_field(c, KL_F_SOCKADDR, &f)) {
			sa_family_t fam;
			set_addr(o->peer, &o->peer_len, f.data, f.len);
			if (f.len >= sizeof(fam) && !o->family) {
				memcpy(&fam, f.data, sizeof(fam));
				o->family = fam;
			}
			if (o->family == AF_UNIX && f.len > sizeof(fam))
				set_path(o, f.data + sizeof(fam), f.len - sizeof(fam));
		}
		if (ret == -EINPROGRESS)
			o->iflags |= KL_IN_ASYNC;
		else if (ret < 0 && ret != -EINTR)
			o->result = ret;
		dns_link(e, o, ev->cgroup_id);
		return;
	case NR_accept: case NR_accept4: {
		if (!p || ret < 0)
			return;     /* EAGAIN on a non-blocking listener is not an exchange */
		/* ofd_new() first: its eviction could free the listener under us */
		o = ofd_new(e, p, OFD_SOCK, ev);
		if (!o)
			return;
		struct ofd *l = fd_get(p, (int64_t)sc.args[0]);
		o->iflags |= KL_IN_ACCEPT;
		if (l) {
			o->family = l->family;
			o->socktype = l->socktype;
			if (l->local_len)
				set_addr(o->local, &o->local_len, l->local, l->local_len);
			ofd_fold(l, ev);
			l->ops_in++;
		}
		if (!o->local_len && c->has_local)
			set_addr(o->local, &o->local_len, c->local.data, c->local.len);
		if (!o->family)
			o->family = kind_family(c->en->fd_kind);
		if (raw_field(c, KL_F_SOCKADDR2, &f) || raw_field(c, KL_F_SOCKADDR, &f))
			set_addr(o->peer, &o->peer_len, f.data, f.len);
		fd_install(e, p, ret, o, sc.nr == NR_accept4 && (sc.args[3] & SOCK_CLOEXEC));
		return;
	}
	case NR_bind:
		if (p && (o = fd_use(e, p, (int64_t)sc.args[0], c, true)) && raw_field(c, KL_F_SOCKADDR, &f) &&
		    ret == 0) {
			set_addr(o->local, &o->local_len, f.data, f.len);
			if (o->family == AF_UNIX && f.len > sizeof(sa_family_t))
				set_path(o, f.data + sizeof(sa_family_t), f.len - sizeof(sa_family_t));
		}
		if (ret < 0) {
			single(e, p, c, &sc, KL_INTENT_NETWORK_LISTEN, &ib);
			ib.in->arg[3] = sc.args[0];
			if (raw_field(c, KL_F_SOCKADDR, &f))
				kl_tail_add(&ib.b, KL_F_LOCAL_ADDR, f.data, f.len);
			ib_emit(e, &ib);
		}
		return;
	case NR_listen:
		o = p ? fd_use(e, p, (int64_t)sc.args[0], c, true) : NULL;
		single(e, p, c, &sc, KL_INTENT_NETWORK_LISTEN, &ib);
		ib.in->arg[2] = sc.args[1];
		ib.in->arg[3] = sc.args[0];
		if (o) {
			ib.in->first_seq = o->first_seq;
			ib.in->first_ts = o->first_ts;
			ib.in->count = o->count;
			ib.in->arg[0] = o->family;
			ib.in->arg[1] = o->socktype;
			ib.in->iflags |= o->iflags & KL_IN_INHERITED;
			if (o->local_len)
				kl_tail_add(&ib.b, KL_F_LOCAL_ADDR, o->local, o->local_len);
			if (o->path_len)
				kl_tail_add(&ib.b, KL_F_PATH, o->path, o->path_len);
		} else if (c->has_local) {
			kl_tail_add(&ib.b, KL_F_LOCAL_ADDR, c->local.data, c->local.len);
		}
		ib_emit(e, &ib);
		if (o && ret == 0) {
			o->type = OFD_LISTEN;   /* accepts become their own exchanges */
			o->count = 0;
		}
		return;
	case NR_sendfile:
		if (!p)
			return;
		if ((o = fd_use(e, p, (int64_t)sc.args[0], c, true)))
			io(o, false, ret, false);
		if ((o = fd_use(e, p, (int64_t)sc.args[1], c, false)))
			io(o, true, ret, false);
		return;
	case NR_splice: case NR_copy_file_range:
		if (!p)
			return;
		if ((o = fd_use(e, p, (int64_t)sc.args[0], c, true)))
			io(o, true, ret, false);
		if ((o = fd_use(e, p, (int64_t)sc.args[2], c, false)))
			io(o, false, ret, false);
		return;
	case NR_mmap:
		if (!p || (int32_t)sc.args[4] < 0 || ret < 0)
			return;
		if ((o = fd_use(e, p, (int32_t)sc.args[4], c, false))) {
			o->ops_other++;
			if (sc.args[2] & 4 /* PROT_EXEC */)
				o->dflags |= KL_IA_EXEC;
		}
		return;
	case NR_fstat: case NR_lseek: case NR_ioctl: case NR_flock: case NR_fsync: case NR_fdatasync:
	case NR_getdents: case NR_getdents64:
		if (p && (o = fd_use(e, p, (int64_t)sc.args[0], c, false)))
			o->ops_other++;
		return;
	case NR_close:
		/* Linux frees the descriptor even when close reports EINTR. */
		if (!p || (ret != 0 && ret != -EINTR))
			return;
		if ((o = fd_get(p, (int64_t)sc.args[0])))
			ofd_fold(o, ev);
		fd_release(e, p, (int64_t)sc.args[0], 0);
		return;
	case NR_close_range: {
		if (!p || ret != 0)
			return;
		uint64_t lo = sc.args[0], hi = sc.args[1];
		for (uint64_t i = lo; i <= hi && i < p->nfds; i++) {
			if (!p->fds[i].o)
				continue;
			if (sc.args[2] & 4 /* CLOSE_RANGE_CLOEXEC */) {
				p->fds[i].cloexec = true;
			} else {
				ofd_fold(p->fds[i].o, ev);
				fd_release(e, p, (int64_t)i, 0);
			}
		}
		return;
	}
	case NR_dup: case NR_dup2: case NR_dup3:
		if (!p || ret < 0 || (sc.nr != NR_dup && sc.args[0] == sc.args[1]))
			return;
		if (!(o = fd_use(e, p, (int64_t)sc.args[0], c, true))) {
			fd_release(e, p, ret, 0);   /* the target is something we do not know now */
			return;
		}
		fd_install(e, p, ret, o, sc.nr == NR_dup3 && (sc.args[2] & O_CLOEXEC));
		return;
	case NR_fcntl:
		if (!p || ret < 0)
			return;
		if (sc.args[1] == F_DUPFD || sc.args[1] == F_DUPFD_CLOEXEC) {
			if ((o = fd_use(e, p, (int64_t)sc.args[0], c, true)))
				fd_install(e, p, ret, o, sc.args[1] == F_DUPFD_CLOEXEC);
		} else if (sc.args[1] == F_SETFD) {
			struct fdslot *s = fd_slot(e, p, (int64_t)sc.args[0], false);
			if (s && s->o)
				s->cloexec = (sc.args[2] & FD_CLOEXEC) != 0;
		} else if ((o = fd_use(e, p, (int64_t)sc.args[0], c, false))) {
			o->ops_other++;
		}
		return;
	case NR_pipe: case NR_pipe2: case NR_socketpair: {
		int32_t fds[2] = { -1, -1 };
		if (ret == 0 && raw_field(c, KL_F_FDS, &f) && f.len >= sizeof(fds))
			memcpy(fds, f.data, sizeof(fds));
		single(e, p, c, &sc, KL_INTENT_IPC, &ib);
		ib.in->arg[0] = (uint64_t)(int64_t)fds[0];
		ib.in->arg[1] = (uint64_t)(int64_t)fds[1];
		ib.in->arg[2] = sc.nr == NR_socketpair ? sc.args[1] & 0xf : 0;
		ib_emit(e, &ib);
		bool cloexec = sc.nr == NR_pipe2 ? (sc.args[1] & O_CLOEXEC) != 0
			     : sc.nr == NR_socketpair ? (sc.args[1] & SOCK_CLOEXEC) != 0 : false;
		for (int i = 0; p && ret == 0 && i < 2; i++) {
			if (fds[i] < 0 || !(o = ofd_new(e, p, OFD_IPC, ev)))
				continue;
			fd_install(e, p, fds[i], o, cloexec);
		}
		return;
	}
	case NR_execve: case NR_execveat:
		if (p && ret == 0 && sc.nr == NR_execveat && c->en->fd_kind == KL_FD_MEMFD)
			exec_memcheck(e, p, c, (int64_t)sc.args[0]);
		return;
	default:
		break;
	}

	/* one-event kinds */
	uint16_t kind = 0;
	switch (sc.nr) {
	case NR_rename: case NR_renameat: case NR_renameat2: case NR_unlink: case NR_unlinkat:
	case NR_mkdir: case NR_mkdirat: case NR_rmdir: case NR_link: case NR_linkat: case NR_symlink:
	case NR_symlinkat: case NR_chmod: case NR_fchmod: case NR_fchmodat: case NR_fchmodat2:
	case NR_chown: case NR_fchown: case NR_lchown: case NR_fchownat: case NR_truncate:
	case NR_ftruncate: case NR_mknod: case NR_mknodat:
		kind = KL_INTENT_FILE_META_CHANGE;
		break;
	case NR_setuid: case NR_setgid: case NR_setreuid: case NR_setregid: case NR_setgroups:
	case NR_setresuid: case NR_setresgid: case NR_setfsuid: case NR_setfsgid: case NR_capset:
		kind = KL_INTENT_PRIVILEGE_CHANGE;
		break;
	case NR_unshare: case NR_setns: case NR_mount: case NR_umount2: case NR_pivot_root:
	case NR_chroot: case NR_move_mount: case NR_fsmount: case NR_open_tree:
		kind = KL_INTENT_NAMESPACE_CHANGE;
		break;
	case NR_init_module: case NR_finit_module: case NR_delete_module:
		kind = KL_INTENT_MODULE_LOAD;
		break;
	case NR_bpf:
		/* map/prog creation, attach, BTF and links: not lookups (bpftool polls those) */
		switch (sc.args[0]) {
		case 0: case 5: case 8: case 18: case 28: kind = KL_INTENT_BPF_LOAD; break;
		default: return;
		}
		break;
	case NR_ptrace:
		/* attach and write operations; PEEK/GETREGS polling would flood */
		switch (sc.args[0]) {
		case 0: case 4: case 5: case 6: case 13: case 15: case 16: case 0x4206: case 0x4207:
			kind = KL_INTENT_PTRACE;
			break;
		default:
			return;
		}
		break;
	case NR_kill: case NR_tkill: case NR_tgkill: case NR_rt_sigqueueinfo: case NR_pidfd_send_signal:
		kind = KL_INTENT_SIGNAL;
		break;
	default:
		return;
	}

	single(e, p, c, &sc, kind, &ib);
	if (sc.nr == NR_setfsuid || sc.nr == NR_setfsgid)
		ib.in->result = 0;  /* they return the previous id, never an error */
	switch (kind) {
	case KL_INTENT_FILE_META_CHANGE:
		switch (sc.nr) {
		case NR_chmod: case NR_fchmod: case NR_mkdir: case NR_mknod: ib.in->arg[0] = sc.args[1]; break;
		case NR_fchmodat: case NR_fchmodat2: case NR_mkdirat: case NR_mknodat: ib.in->arg[0] = sc.args[2]; break;
		case NR_chown: case NR_fchown: case NR_lchown:
			ib.in->arg[1] = sc.args[1];
			ib.in->arg[2] = sc.args[2];
			break;
		case NR_fchownat:
			ib.in->arg[1] = sc.args[2];
			ib.in->arg[2] = sc.args[3];
			break;
		case NR_truncate: case NR_ftruncate: ib.in->arg[3] = sc.args[1]; break;
		case NR_unlinkat:
			/* AT_REMOVEDIR makes it an rmdir */
			if (sc.args[2] & 0x200)
				ib.in->op = NR_rmdir;
			break;
		default: break;
		}
		if (sc.nr == NR_symlink || sc.nr == NR_symlinkat) {
			/* the link is the path that changes; the target is content */
			if (path2(c, &f))
				ib_str(&ib, KL_F_PATH, &f);
			if (raw_field(c, KL_F_PATH, &g))
				ib_str(&ib, KL_F_PATH2, &g);
		} else if (sc.nr == NR_fchmod || sc.nr == NR_fchown || sc.nr == NR_ftruncate) {
			if (c->has_fdp)
				ib_str(&ib, KL_F_PATH, &c->fdp);
			if (p && (o = fd_get(p, (int64_t)sc.args[0]))) {
				ofd_fold(o, ev);
				o->ops_other++;
			}
		} else {
			if (path1(c, &f))
				ib_str(&ib, KL_F_PATH, &f);
			else if (c->has_fdp)
				ib_str(&ib, KL_F_PATH, &c->fdp);
			if (path2(c, &f))
				ib_str(&ib, KL_F_PATH2, &f);
		}
		break;
	case KL_INTENT_SIGNAL:
		if (sc.args[1] == 0 && sc.nr == NR_kill)
			return;     /* kill(pid, 0) probes for existence; the builder is simply dropped */
		switch (sc.nr) {
		case NR_kill: case NR_rt_sigqueueinfo:
			if ((uint32_t)sc.args[0] == ev->pid)
				return;     /* to itself: not another process */
			ib.in->arg[0] = sc.args[0];
			ib.in->arg[1] = sc.args[1];
			break;
		case NR_tkill:
			ib.in->arg[2] = sc.args[0];
			ib.in->arg[1] = sc.args[1];
			break;
		case NR_tgkill:
			if ((uint32_t)sc.args[0] == ev->pid)
				return;
			ib.in->arg[0] = sc.args[0];
			ib.in->arg[2] = sc.args[1];
			ib.in->arg[1] = sc.args[2];
			break;
		default:    /* pidfd_send_signal: the target is behind the pidfd */
			ib.in->arg[0] = (uint64_t)-1;
			ib.in->arg[1] = sc.args[1];
			break;
		}
		if (sc.nr == NR_tkill && (uint32_t)sc.args[0] == ev->tid)
			return;
		break;
	case KL_INTENT_PTRACE:
		ib.in->arg[0] = sc.args[0];
		ib.in->arg[1] = sc.args[1];
		break;
	case KL_INTENT_BPF_LOAD:
		ib.in->arg[0] = sc.args[0];
		break;
	case KL_INTENT_MODULE_LOAD:
		memcpy(ib.in->arg, sc.args, 3 * sizeof(sc.args[0]));
		if (sc.nr == NR_finit_module && c->has_fdp)
			ib_str(&ib, KL_F_PATH, &c->fdp);
		if (raw_field(c, KL_F_NAME, &f) || raw_field(c, KL_F_PATH, &f))
			ib_str(&ib, KL_F_NAME, &f);
		break;
	default:    /* privilege, namespace: raw arguments, paths where there are */
		memcpy(ib.in->arg, sc.args, 4 * sizeof(sc.args[0]));
		if (kind == KL_INTENT_NAMESPACE_CHANGE) {
			if (path1(c, &f))
				ib_str(&ib, KL_F_PATH, &f);
			if (path2(c, &f))
				ib_str(&ib, KL_F_PATH2, &f);
			if (sc.nr == NR_setns && c->has_fdp)
				ib_str(&ib, KL_F_NAME, &c->fdp);
		}
		break;
	}
	ib_emit(e, &ib);
}

/* ---- process lifecycle ---------------------------------------------------- */

static bool ends_with(const char *s, size_t n, const char *suf)
{
	size_t l = strlen(suf);
	return n >= l && !memcmp(s + n - l, suf, l);
}

static void exec_memcheck(struct kl_intentd *e, struct iproc *p, const struct cur *c, int64_t fd)
{
	struct ib ib;
	struct kl_field_view f;

	if (p->memexec_done)
		return;
	p->memexec_done = true;
	ib_start(e, &ib, KL_INTENT_EXEC_FROM_MEMORY, &c->en->ev, c->ctx, c->ctx_len);
	ib_proc(&ib, p);
	ib_one(&ib, &c->en->ev);
	ib.in->arg[0] = (uint64_t)fd;
	if (blob_find(c->ctx, c->ctx_len, KL_F_EXE, &f))
		ib_str(&ib, KL_F_PATH, &f);
	ib_emit(e, &ib);
}

/* /dev/fd/N or /proc/self/fd/N -> N, else -1 */
static int64_t fd_path_num(const uint8_t *s, size_t n)
{
	static const char *const pre[] = { "/dev/fd/", "/proc/self/fd/" };
	char b[64];

	n = strnlen((const char *)s, n);
	if (n >= sizeof(b))
		return -1;
	memcpy(b, s, n);
	b[n] = 0;
	for (int i = 0; i < 2; i++) {
		size_t l = strlen(pre[i]);
		if (!strncmp(b, pre[i], l) && b[l]) {
			char *end;
			long v = strtol(b + l, &end, 10);
			return *end || v < 0 ? -1 : v;
		}
	}
	return -1;
}

static void on_proc(struct kl_intentd *e, struct iproc *p, const struct cur *c)
{
	struct kl_proc pr;
	struct kl_field_view f;
	const struct kl_event *ev = &c->en->ev;
	struct ib ib;

	memcpy(&pr, c->raw, sizeof(pr));
	switch (pr.kind) {
	case KL_PROC_FORK: {
		if ((pr.child_tid && pr.child_tid != ev->pid) || (ev->tid && ev->tid != ev->pid))
			return;     /* a new thread, not a process */
		struct iproc *parent = proc_get(e, pr.parent_pid, pr.parent_start_ns);
		if (parent)
			parent->children++;
		if (p) {
			p->fork_seq = ev->seq;
			p->fork_ts = ev->ts_ns;
		}
		return;
	}
	case KL_PROC_EXEC: {
		if (!p)
			return;
		int64_t memfd = -1;
		bool deleted = false;
		p->execs++;
		p->memexec_done = false;
		/* exec from memory: the exe is a memfd or a deleted file, or the
		 * filename is /dev/fd/N with N a memfd (checked before cloexec closes it) */
		if (blob_find(c->ctx, c->ctx_len, KL_F_EXE, &f)) {
			size_t n = strnlen((const char *)f.data, f.len);
			deleted = (n >= 7 && !memcmp(f.data, "/memfd:", 7)) ||
				  ends_with((const char *)f.data, n, " (deleted)");
		}
		if (kl_field_find(KL_REC_PROC, c->raw, c->raw_len, KL_F_FILENAME, &f)) {
			int64_t n = fd_path_num(f.data, f.len);
			struct ofd *o = n >= 0 ? fd_get(p, n) : NULL;
			if (o && o->memfd)
				memfd = n;
		}
		for (uint32_t i = 0; i < p->nfds; i++)
			if (p->fds[i].o && p->fds[i].cloexec)
				fd_release(e, p, i, 0);
		ib_start(e, &ib, KL_INTENT_PROCESS_START, ev, c->ctx, c->ctx_len);
		ib_proc(&ib, p);
		ib_one(&ib, ev);
		if (p->fork_seq && p->execs == 1) {
			ib.in->first_seq = p->fork_seq;
			ib.in->first_ts = p->fork_ts;
			ib.in->count = 2;
		}
		if (p->inherited && p->execs == 1 && !p->fork_seq)
			ib.in->iflags |= KL_IN_INHERITED;
		ib.in->arg[0] = p->execs;
		ib.in->arg[1] = p->fork_seq;
		ib_emit(e, &ib);
		if (memfd >= 0 || deleted)
			exec_memcheck(e, p, c, memfd);
		return;
	}
	case KL_PROC_SNAPSHOT:
		if (!p)
			return;
		p->inherited = true;
		ib_start(e, &ib, KL_INTENT_PROCESS_START, ev, c->ctx, c->ctx_len);
		ib_proc(&ib, p);
		ib_one(&ib, ev);
		ib.in->iflags |= KL_IN_INHERITED;
		ib_emit(e, &ib);
		return;
	case KL_PROC_EXIT: {
		uint64_t lifetime = ev->ts_ns >= ev->start_ns ? ev->ts_ns - ev->start_ns : 0;
		uint32_t children = p ? p->children : 0;
		uint64_t fork_seq = p ? p->fork_seq : 0, fork_ts = p ? p->fork_ts : 0;
		/* everything the process still holds comes out before its exit */
		if (p) {
			flush_proc(e, p, KL_IN_AT_EXIT);
			proc_free(e, p);
		}
		ib_start(e, &ib, KL_INTENT_PROCESS_EXIT, ev, c->ctx, c->ctx_len);
		if (c->en->eflags & KL_EN_ENTERED)
			ib.in->iflags |= KL_IN_ENTERED;
		ib.in->parent_pid = c->en->parent_pid;
		ib.in->parent_start_ns = c->en->parent_start_ns;
		ib.in->ctr_cgroup_id = c->en->ctr_cgroup_id;
		ib_one(&ib, ev);
		if (fork_seq) {
			ib.in->first_seq = fork_seq;
			ib.in->first_ts = fork_ts;
			ib.in->count = 2;
		}
		/* wait(2) status: low 7 bits the signal, next byte the exit code */
		ib.in->arg[0] = (uint64_t)((pr.exit_code >> 8) & 0xff);
		ib.in->arg[1] = (uint64_t)(pr.exit_code & 0x7f);
		ib.in->arg[2] = lifetime;
		ib.in->arg[3] = children;
		ib_emit(e, &ib);
		return;
	}
	default:
		return;
	}
}

/* ---- entry points --------------------------------------------------------- */

int kl_intentd_process(struct kl_intentd *e, uint16_t type, const void *rec, size_t len)
{
	struct kl_enriched en;
	struct kl_field_iter it;
	struct kl_field_view f;
	struct cur c;
	uint16_t rtype;

	if (type != KL_REC_ENRICHED)
		return 0;
	e->st.events++;
	if (kl_rec_validate(type, rec, len) != KL_REC_OK ||
	    kl_enriched_raw(rec, len, &rtype, &c.raw, &c.raw_len)) {
		e->st.invalid++;
		return -EBADMSG;
	}
	memcpy(&en, rec, sizeof(en));
	memset(&c, 0, offsetof(struct cur, raw));
	c.en = &en;
	e->emitted = 0;
	if (en.ev.ts_ns > e->now)
		e->now = en.ev.ts_ns;
	if (e->now >= e->next_sweep)
		sweep(e);

	/* one pass over the enrichment: the context run first (the enricher
	 * writes it first), then the fields the folding needs */
	kl_field_iter_init(&it, type, rec, len);
	const uint8_t *start = it.p;
	bool in_ctx = true;
	while (kl_field_next(&it, &f)) {
		if (in_ctx && is_ctx_field(f.id)) {
			c.ctx = start;
			c.ctx_len = (size_t)(it.p - start);
			continue;
		}
		in_ctx = false;
		switch (f.id) {
		case KL_F_ABS_PATH: c.abs1 = f; c.has_abs1 = true; break;
		case KL_F_ABS_PATH2: c.abs2 = f; c.has_abs2 = true; break;
		case KL_F_FD_PATH: c.fdp = f; c.has_fdp = true; break;
		case KL_F_LOCAL_ADDR: if (!c.has_local) { c.local = f; c.has_local = true; } break;
		case KL_F_PEER_ADDR: if (!c.has_peer) { c.peer = f; c.has_peer = true; } break;
		default: break;
		}
	}

	struct iproc *p = NULL;
	if (en.ev.pid && (rtype == KL_REC_SYSCALL || rtype == KL_REC_PROC || rtype == KL_REC_DNS)) {
		p = proc_get(e, en.ev.pid, en.ev.start_ns);
		/* a late event of an exited process gets no new state: it would never be flushed */
		if (!p && !(en.eflags & KL_EN_EXITED) && rtype != KL_REC_DNS &&
		    !(rtype == KL_REC_PROC && ((const struct kl_proc *)c.raw)->kind == KL_PROC_EXIT))
			p = proc_new(e, &en.ev);
		if (p) {
			if (p->lprev) {
				lru_unlink(e, p);
				lru_push(e, p);
			}
			p->ev = en.ev;
			p->ppid = en.parent_pid;
			p->pstart = en.parent_start_ns;
			p->ctr = en.ctr_cgroup_id;
			p->entered = (en.eflags & KL_EN_ENTERED) != 0;
			proc_ctx(p, &c);
		}
	}
	switch (rtype) {
	case KL_REC_SYSCALL:
		if (c.raw_len >= sizeof(struct kl_syscall))
			on_syscall(e, p, &c);
		break;
	case KL_REC_PROC:
		if (c.raw_len >= sizeof(struct kl_proc))
			on_proc(e, p, &c);
		break;
	case KL_REC_DNS:
		on_dns(e, &c, p);
		break;
	default:
		break;
	}
	return e->emitted;
}

int kl_intentd_tick(struct kl_intentd *e, uint64_t now_ns)
{
	e->emitted = 0;
	if (now_ns > e->now)
		e->now = now_ns;
	if (e->now >= e->next_sweep)
		sweep(e);
	return e->emitted;
}

int kl_intentd_flush(struct kl_intentd *e)
{
	e->emitted = 0;
	for (struct iproc *p = e->lru_head; p; p = p->lnext)
		flush_proc(e, p, KL_IN_SHUTDOWN);
	while (e->st.dns_pending) {
		dns_emit_pending(e, &e->dns[0], KL_IN_SHUTDOWN);
		dns_drop(e, 0);
	}
	return e->emitted;
}

int kl_intentd_new(const struct kl_intentd_opts *opts, kl_intent_emit_fn emit, void *ctx,
		   struct kl_intentd **out)
{
	struct kl_intentd *e;

	if (!emit || !out)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (opts)
		e->o = *opts;
	if (!e->o.window_ns)
		e->o.window_ns = 10 * S_NS;
	if (!e->o.max_procs)
		e->o.max_procs = 65536;
	if (!e->o.max_fds_per_proc)
		e->o.max_fds_per_proc = 4096;
	if (!e->o.max_open)
		e->o.max_open = 262144;
	if (!e->o.max_dns_pending)
		e->o.max_dns_pending = 4096;
	if (!e->o.dns_timeout_ns)
		e->o.dns_timeout_ns = 5 * S_NS;
	if (!e->o.dns_link_ttl_ns)
		e->o.dns_link_ttl_ns = 300 * S_NS;
	if (e->o.node) {
		e->node_len = strnlen(e->o.node, 255);
	}
	e->emit = emit;
	e->emit_ctx = ctx;
	e->nbuckets = 1024;
	e->buckets = calloc(e->nbuckets, sizeof(*e->buckets));
	e->dns = calloc(e->o.max_dns_pending, sizeof(*e->dns));
	e->ans = calloc(ANS_CACHE, sizeof(*e->ans));
	if (!e->buckets || !e->dns || !e->ans) {
		kl_intentd_free(e);
		return -ENOMEM;
	}
	*out = e;
	return 0;
}

void kl_intentd_free(struct kl_intentd *e)
{
	if (!e)
		return;
	while (e->lru_head) {
		struct iproc *p = e->lru_head;
		for (uint32_t i = 0; i < p->nfds; i++) {
			struct ofd *o = p->fds[i].o;
			if (o && !--o->refs)
				ofd_free(e, o);
			p->fds[i].o = NULL;
		}
		proc_free(e, p);
	}
	while (e->free_ofd) {
		struct ofd *o = e->free_ofd;
		e->free_ofd = o->next;
		free(o);
	}
	free(e->buckets);
	free(e->dns);
	free(e->ans);
	free(e);
}

void kl_intentd_stats(const struct kl_intentd *e, struct kl_intentd_stats *st)
{
	*st = e->st;
}
