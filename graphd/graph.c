/* SPDX-License-Identifier: Apache-2.0 */
/*
 * graph.c - kl-graphd's engine (graphd.h, docs/graph.md).
 *
 * Everything lives in preallocated slabs indexed by u32 with free lists
 * and chained hash buckets, so the per-event path allocates nothing but
 * a node's label the first time that node is seen (measured in
 * graphd-bench: bytes per edge). Lists are intrusive: each node heads
 * its out- and in-edge lists, each session its process list, and two
 * FIFOs (closed sessions, exited processes) give eviction its order when
 * a cap is reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <kloudlens/recutil.h>

#include "graphd.h"

#define NONE UINT32_MAX
#define NPFD 6                  /* pipe/socketpair fds a process can carry (a shell in a pipeline) */
#define NSEQ 4                  /* event seqs kept per edge (the newest) */
#define PIPE_SLOTS 4096         /* live pipes/socketpairs matched at once (direct-mapped) */
#define LISTEN_SLOTS 4096
#define CONNECT_SLOTS 1024
#define WRITER_SLOTS 8192       /* recent file writers for FILE_SHARED (direct-mapped) */
#define SWEEP_NS 100000000ull   /* session timers are checked every 100 ms of event time */
#define LABEL_MAX 1024

/* x86_64 syscall numbers (the collector only runs there) */
enum {
	NR_read = 0, NR_write = 1, NR_open = 2, NR_close = 3, NR_pread64 = 17, NR_pwrite64 = 18,
	NR_readv = 19, NR_writev = 20, NR_pipe = 22, NR_dup = 32, NR_dup2 = 33, NR_sendfile = 40, NR_connect = 42,
	NR_accept = 43, NR_sendto = 44, NR_recvfrom = 45, NR_sendmsg = 46, NR_recvmsg = 47,
	NR_bind = 49, NR_socketpair = 53, NR_kill = 62, NR_fcntl = 72, NR_creat = 85,
	NR_ptrace = 101, NR_setsid = 112, NR_rt_sigqueueinfo = 129, NR_tkill = 200,
	NR_tgkill = 234, NR_openat = 257, NR_accept4 = 288, NR_dup3 = 292, NR_pipe2 = 293,
	NR_preadv = 295, NR_pwritev = 296, NR_close_range = 436, NR_openat2 = 437,
};

#define NF_EXITED 1u
#define NF_ROOT   2u

struct pfd {
	int32_t fd;
	uint32_t sockpair;
	uint64_t pipe;          /* pipe id: the enriched seq of the pipe()/socketpair() call */
};

struct node {
	uint64_t id;
	uint32_t hnext;
	uint32_t out_head, in_head;
	uint32_t nedges;
	uint16_t kind;
	uint16_t flags;
	char *label;
	/* processes only */
	uint32_t pid, ns_pid, pid_ns, net_ns;
	uint64_t start_ns, exit_ns;
	uint32_t parent;            /* node index, NONE unknown */
	uint64_t parent_id;
	uint32_t sess;              /* session index */
	uint32_t snext, sprev;      /* session's process list */
	uint32_t xnext, xprev;      /* exited FIFO */
	uint32_t pnext;             /* (pid_ns, ns_pid) index */
	uint32_t ctr;               /* container slot + 1, 0 host / unknown */
	uint64_t ctr_cgroup_id;
	char comm[KL_COMM_LEN];
	uint32_t qmark;             /* query epoch that already listed it */
	struct pfd pfd[NPFD];
};

struct edge {
	uint32_t from, to;
	uint32_t hnext;
	uint32_t onext, oprev, inext, iprev;
	uint16_t kind;
	uint8_t dirty, nseq, seqpos;   /* seqs: a ring of the newest NSEQ, next write at seqpos */
	uint32_t flags;
	uint64_t first_ns, last_ns, count, first_seq, last_seq, arg, emitted_ns;
	uint64_t seqs[NSEQ];
};

enum { S_FREE = 0, S_OPEN, S_CLOSING, S_CLOSED };

struct session {
	uint64_t id;
	uint8_t state, origin, cross, truncated;
	uint32_t root;              /* node index, NONE once evicted */
	uint32_t root_pid;
	uint64_t root_start_ns;
	char root_label[96];
	char root_comm[KL_COMM_LEN];
	uint32_t ctr;
	uint64_t ctr_cgroup_id;
	uint64_t start_ns, end_ns, last_exit_ns;
	uint32_t procs, live, edges;
	uint32_t head;              /* process list */
	uint32_t cnext, cprev;      /* closed FIFO / free list (cnext) */
};

struct ctr {
	uint64_t cgroup_id;
	uint32_t init_pid;
	uint64_t stopped_ns;
	char id[80], name[80], image[128], pod[80], pod_ns[80];
};

struct pipe_slot { uint64_t pipe; uint64_t writer, reader; uint32_t sockpair; };
struct listen_slot { uint64_t key; uint64_t proc; uint32_t net_ns; uint32_t unix_; };
struct connect_slot { uint64_t proc; uint64_t ts; uint64_t seq; uint32_t net_ns; uint16_t port; uint8_t matched; };
struct writer_slot { uint64_t key; uint64_t proc; uint64_t ctr; uint64_t ts; };

struct kl_graphd {
	bool cur_runtime;            /* the record being processed is a runtime init's (KL_EN_ENTERED) */
	struct kl_graphd_opts o;
	kl_graph_emit_fn emit;
	void *ctx;
	uint64_t now, last_sweep, rec_seq;
	uint32_t qepoch;
	const char *exec_old;           /* EXEC being folded: the image it replaced */

	struct node *nodes;
	uint32_t *nbuckets, nmask, nfree, nused, nhigh;   /* slabs: free list, then never used above *high */
	uint32_t *pbuckets;             /* (pid_ns, ns_pid) -> live process */
	struct edge *edges;
	uint32_t *ebuckets, emask, efree, eused, ehigh;
	struct session *sess;
	uint32_t sfree, sused, shigh;
	uint32_t closed_head, closed_tail;   /* oldest first */
	uint32_t exited_head, exited_tail;
	struct ctr *ctrs;
	uint32_t nctrs;

	struct pipe_slot pipes[PIPE_SLOTS];
	struct listen_slot listens[LISTEN_SLOTS];
	struct connect_slot connects[CONNECT_SLOTS];
	struct writer_slot writers[WRITER_SLOTS];

	struct kl_graphd_stats st;
	uint64_t label_bytes;
	int emitted;                    /* records emitted by the current call */
	uint8_t buf[16384] __attribute__((aligned(8)));   /* the record being built (records are 8-aligned) */
};

/* ---- hashing ---------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return mix64(h);
}

/* Node ids carry their kind in the top byte, so ids of different kinds never collide. */
static inline uint64_t with_kind(uint64_t h, uint16_t kind)
{
	uint64_t id = (h & 0x00ffffffffffffffULL) | ((uint64_t)kind << 56);
	return id ? id : 1;
}

/*
 * The slabs are sized for the caps but touched only as they fill: mapped
 * directly, so no allocator tuning (MALLOC_PERTURB_ makes calloc clear
 * every page) commits hundreds of MiB up front.
 */
static void *slab_alloc(size_t n, size_t size)
{
	void *p = mmap(NULL, n * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void slab_free(void *p, size_t n, size_t size)
{
	if (p)
		munmap(p, n * size);
}

uint64_t kl_graph_proc_id(uint32_t pid, uint64_t start_ns)
{
	return with_kind(mix64(((uint64_t)pid << 32) ^ mix64(start_ns)), KL_GN_PROCESS);
}

static inline uint64_t file_id(const char *path, uint64_t ctr)
{
	return with_kind(hash_bytes(path, strlen(path), ctr), KL_GN_FILE);
}

static inline uint64_t edge_key(uint64_t from, uint64_t to, uint16_t kind)
{
	return mix64(from ^ (to * 0x9e3779b97f4a7c15ULL) ^ kind);
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1024;

	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

/* ---- containers ------------------------------------------------------- */

static struct ctr *ctr_get(struct kl_graphd *g, uint32_t slot1, uint64_t cgid)
{
	if (!slot1 || slot1 > g->nctrs)
		return NULL;
	struct ctr *c = &g->ctrs[slot1 - 1];
	return c->cgroup_id == cgid ? c : NULL;
}

static uint32_t ctr_find(struct kl_graphd *g, uint64_t cgid)
{
	for (uint32_t i = 0; i < g->nctrs; i++)
		if (g->ctrs[i].cgroup_id == cgid)
			return i + 1;
	return 0;
}

/* Find or add; when full, the oldest stopped container goes (nodes re-check cgroup ids). */
static uint32_t ctr_add(struct kl_graphd *g, uint64_t cgid)
{
	uint32_t s = ctr_find(g, cgid);

	if (s || !cgid)
		return s;
	if (g->nctrs < g->o.max_containers) {
		s = ++g->nctrs;
	} else {
		uint64_t best = UINT64_MAX;
		for (uint32_t i = 0; i < g->nctrs; i++)
			if (g->ctrs[i].stopped_ns && g->ctrs[i].stopped_ns < best) {
				best = g->ctrs[i].stopped_ns;
				s = i + 1;
			}
		if (!s)
			return 0;
	}
	memset(&g->ctrs[s - 1], 0, sizeof(g->ctrs[0]));
	g->ctrs[s - 1].cgroup_id = cgid;
	return s;
}

static void copy_field(char *dst, size_t cap, uint16_t type, const void *rec, size_t len, uint16_t id)
{
	struct kl_field_view f;

	if (!dst[0] && kl_field_find(type, rec, len, id, &f)) {
		size_t n = strnlen((const char *)f.data, f.len);
		if (n >= cap)
			n = cap - 1;
		memcpy(dst, f.data, n);
		dst[n] = 0;
	}
}

static void ctr_learn(struct kl_graphd *g, struct ctr *c, uint16_t type, const void *rec, size_t len)
{
	copy_field(c->id, sizeof(c->id), type, rec, len, KL_F_CONTAINER_ID);
	copy_field(c->name, sizeof(c->name), type, rec, len, KL_F_CONTAINER_NAME);
	copy_field(c->image, sizeof(c->image), type, rec, len, KL_F_IMAGE);
	copy_field(c->pod, sizeof(c->pod), type, rec, len, KL_F_POD_NAME);
	copy_field(c->pod_ns, sizeof(c->pod_ns), type, rec, len, KL_F_POD_NAMESPACE);
}

/* ---- slabs ------------------------------------------------------------ */

static void node_hash_del(struct kl_graphd *g, uint32_t i)
{
	uint32_t *pp = &g->nbuckets[g->nodes[i].id & g->nmask];

	while (*pp != NONE && *pp != i)
		pp = &g->nodes[*pp].hnext;
	if (*pp == i)
		*pp = g->nodes[i].hnext;
}

static uint32_t node_find(const struct kl_graphd *g, uint64_t id)
{
	for (uint32_t i = g->nbuckets[id & g->nmask]; i != NONE; i = g->nodes[i].hnext)
		if (g->nodes[i].id == id)
			return i;
	return NONE;
}

static uint32_t pkey(uint32_t pid_ns, uint32_t ns_pid, uint32_t mask)
{
	return (uint32_t)mix64(((uint64_t)pid_ns << 32) | ns_pid) & mask;
}

static void pid_index_del(struct kl_graphd *g, uint32_t i)
{
	struct node *n = &g->nodes[i];
	uint32_t *pp = &g->pbuckets[pkey(n->pid_ns, n->ns_pid, g->nmask)];

	while (*pp != NONE && *pp != i)
		pp = &g->nodes[*pp].pnext;
	if (*pp == i)
		*pp = n->pnext;
	n->pnext = NONE;
}

static void pid_index_add(struct kl_graphd *g, uint32_t i)
{
	struct node *n = &g->nodes[i];
	uint32_t *b = &g->pbuckets[pkey(n->pid_ns, n->ns_pid, g->nmask)];

	n->pnext = *b;
	*b = i;
}

static uint32_t pid_lookup(const struct kl_graphd *g, uint32_t pid_ns, uint32_t ns_pid)
{
	for (uint32_t i = g->pbuckets[pkey(pid_ns, ns_pid, g->nmask)]; i != NONE; i = g->nodes[i].pnext)
		if (g->nodes[i].pid_ns == pid_ns && g->nodes[i].ns_pid == ns_pid &&
		    !(g->nodes[i].flags & NF_EXITED))
			return i;
	return NONE;
}

static void edge_del(struct kl_graphd *g, uint32_t e);
static void node_free(struct kl_graphd *g, uint32_t i);
static int emit_session(struct kl_graphd *g, struct session *s, uint16_t op);

static void sess_unlink_proc(struct kl_graphd *g, uint32_t i)
{
	struct node *n = &g->nodes[i];
	struct session *s;

	if (n->sess == NONE)
		return;
	s = &g->sess[n->sess];
	if (n->sprev != NONE)
		g->nodes[n->sprev].snext = n->snext;
	else
		s->head = n->snext;
	if (n->snext != NONE)
		g->nodes[n->snext].sprev = n->sprev;
	n->snext = n->sprev = NONE;
	if (s->root == i)
		s->root = NONE;
	n->sess = NONE;
}

static void exited_unlink(struct kl_graphd *g, uint32_t i)
{
	struct node *n = &g->nodes[i];

	if (!(n->flags & NF_EXITED))
		return;
	if (n->xprev != NONE)
		g->nodes[n->xprev].xnext = n->xnext;
	else if (g->exited_head == i)
		g->exited_head = n->xnext;
	if (n->xnext != NONE)
		g->nodes[n->xnext].xprev = n->xprev;
	else if (g->exited_tail == i)
		g->exited_tail = n->xprev;
	n->xnext = n->xprev = NONE;
}

/* Drop a process node with every edge that touches it (eviction). */
static void proc_drop(struct kl_graphd *g, uint32_t i)
{
	struct node *n = &g->nodes[i];

	while (n->out_head != NONE)
		edge_del(g, n->out_head);
	while (n->in_head != NONE)
		edge_del(g, n->in_head);
	exited_unlink(g, i);
	if (!(n->flags & NF_EXITED))
		pid_index_del(g, i);
	if (n->sess != NONE) {
		struct session *s = &g->sess[n->sess];
		if (!(n->flags & NF_EXITED) && s->live)
			s->live--;
	}
	sess_unlink_proc(g, i);
	node_free(g, i);
}

static void closed_unlink(struct kl_graphd *g, uint32_t si)
{
	struct session *s = &g->sess[si];

	if (s->cprev != NONE)
		g->sess[s->cprev].cnext = s->cnext;
	else if (g->closed_head == si)
		g->closed_head = s->cnext;
	if (s->cnext != NONE)
		g->sess[s->cnext].cprev = s->cprev;
	else if (g->closed_tail == si)
		g->closed_tail = s->cprev;
	s->cnext = s->cprev = NONE;
}

static void sess_evict(struct kl_graphd *g, uint32_t si)
{
	struct session *s = &g->sess[si];

	if (s->state == S_CLOSED)
		closed_unlink(g, si);
	while (s->head != NONE)
		proc_drop(g, s->head);
	emit_session(g, s, KL_GOP_SESSION_EVICT);
	g->st.sessions_evicted++;
	if (s->state != S_CLOSED)
		g->st.sessions_open--;
	s->state = S_FREE;
	s->cnext = g->sfree;
	g->sfree = si;
	g->sused--;
}

/*
 * Make room under a cap: the oldest closed session first (it is what
 * retention would drop next anyway), else the oldest exited process of
 * an open session (its session is marked truncated).
 * Return: true if something was freed.
 */
static bool evict_one(struct kl_graphd *g, uint32_t keep)
{
	if (g->closed_head != NONE) {
		sess_evict(g, g->closed_head);
		return true;
	}
	for (uint32_t i = g->exited_head; i != NONE; i = g->nodes[i].xnext) {
		if (i == keep)
			continue;
		if (g->nodes[i].sess != NONE)
			g->sess[g->nodes[i].sess].truncated = 1;
		proc_drop(g, i);
		g->st.procs_evicted++;
		return true;
	}
	return false;
}

static uint32_t node_alloc(struct kl_graphd *g, uint64_t id, uint16_t kind, const char *label, uint32_t keep)
{
	uint32_t i;
	struct node *n;

	/* pages of never-used slots are not touched before they are needed */
	while (g->nfree == NONE && g->nhigh == g->o.max_nodes)
		if (!evict_one(g, keep)) {
			g->st.nodes_dropped++;
			return NONE;
		}
	if (g->nfree != NONE) {
		i = g->nfree;
		g->nfree = g->nodes[i].hnext;
	} else {
		i = g->nhigh++;
	}
	n = &g->nodes[i];
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->kind = kind;
	n->out_head = n->in_head = n->parent = n->sess = NONE;
	n->snext = n->sprev = n->xnext = n->xprev = n->pnext = NONE;
	for (int k = 0; k < NPFD; k++)
		n->pfd[k].fd = -1;
	if (label) {
		size_t l = strnlen(label, LABEL_MAX);
		n->label = malloc(l + 1);
		if (n->label) {
			memcpy(n->label, label, l);
			n->label[l] = 0;
			g->label_bytes += l + 1;
		}
	}
	n->hnext = g->nbuckets[id & g->nmask];
	g->nbuckets[id & g->nmask] = i;
	g->nused++;
	return i;
}

static void node_free(struct kl_graphd *g, uint32_t i)
{
	struct node *n = &g->nodes[i];

	node_hash_del(g, i);
	if (n->label) {
		g->label_bytes -= strlen(n->label) + 1;
		free(n->label);
	}
	n->label = NULL;
	n->id = 0;
	n->hnext = g->nfree;
	g->nfree = i;
	g->nused--;
}

static void node_set_label(struct kl_graphd *g, struct node *n, const char *label)
{
	size_t l = strnlen(label, LABEL_MAX);
	char *p;

	if (n->label && !strcmp(n->label, label))
		return;
	p = malloc(l + 1);
	if (!p)
		return;
	memcpy(p, label, l);
	p[l] = 0;
	if (n->label) {
		g->label_bytes -= strlen(n->label) + 1;
		free(n->label);
	}
	n->label = p;
	g->label_bytes += l + 1;
}

static void edge_del(struct kl_graphd *g, uint32_t e)
{
	struct edge *x = &g->edges[e];
	struct node *f = &g->nodes[x->from], *t = &g->nodes[x->to];
	uint64_t key = edge_key(f->id, t->id, x->kind);
	uint32_t *pp = &g->ebuckets[key & g->emask];

	while (*pp != NONE && *pp != e)
		pp = &g->edges[*pp].hnext;
	if (*pp == e)
		*pp = x->hnext;
	if (x->oprev != NONE)
		g->edges[x->oprev].onext = x->onext;
	else
		f->out_head = x->onext;
	if (x->onext != NONE)
		g->edges[x->onext].oprev = x->oprev;
	if (x->iprev != NONE)
		g->edges[x->iprev].inext = x->inext;
	else
		t->in_head = x->inext;
	if (x->inext != NONE)
		g->edges[x->inext].iprev = x->iprev;
	f->nedges--;
	t->nedges--;
	if (f->kind == KL_GN_PROCESS && f->sess != NONE && g->sess[f->sess].edges)
		g->sess[f->sess].edges--;
	/* files and endpoints exist only through their edges */
	if (f->kind != KL_GN_PROCESS && !f->nedges)
		node_free(g, x->from);
	if (t->kind != KL_GN_PROCESS && !t->nedges && x->to != x->from)
		node_free(g, x->to);
	x->kind = 0;
	x->hnext = g->efree;
	g->efree = e;
	g->eused--;
}

/* ---- sessions ------------------------------------------------------------ */

static void node_ctr(struct kl_graphd *g, const struct node *n, struct kl_gq_ctr *c)
{
	const struct ctr *k = ctr_get(g, n->ctr, n->ctr_cgroup_id);

	memset(c, 0, sizeof(*c));
	c->cgroup_id = n->ctr_cgroup_id;
	if (k) {
		c->id = k->id;
		c->name = k->name;
		c->image = k->image;
		c->pod = k->pod;
		c->pod_ns = k->pod_ns;
	}
}

static void sess_add_proc(struct kl_graphd *g, uint32_t si, uint32_t i)
{
	struct session *s = &g->sess[si];
	struct node *n = &g->nodes[i];

	n->sess = si;
	n->sprev = NONE;
	n->snext = s->head;
	if (s->head != NONE)
		g->nodes[s->head].sprev = i;
	s->head = i;
	s->procs++;
	if (!(n->flags & NF_EXITED)) {
		s->live++;
		if (s->state == S_CLOSING)
			s->state = S_OPEN;   /* a late arrival keeps it open */
	}
}

static uint32_t sess_new(struct kl_graphd *g, uint32_t root, uint16_t origin)
{
	struct node *n = &g->nodes[root];
	struct session *s;
	uint32_t si;

	if (g->sfree == NONE && g->shigh == g->o.max_sessions && g->closed_head != NONE)
		sess_evict(g, g->closed_head);
	if (g->sfree != NONE) {
		si = g->sfree;
		g->sfree = g->sess[si].cnext;
	} else if (g->shigh < g->o.max_sessions) {
		si = g->shigh++;
	} else {
		g->st.sessions_dropped++;
		return NONE;
	}
	s = &g->sess[si];
	memset(s, 0, sizeof(*s));
	s->id = n->id;
	s->state = S_OPEN;
	s->origin = (uint8_t)origin;
	s->root = root;
	s->root_pid = n->pid;
	s->root_start_ns = n->start_ns;
	snprintf(s->root_label, sizeof(s->root_label), "%s", n->label ? n->label : "");
	memcpy(s->root_comm, n->comm, sizeof(s->root_comm));
	s->ctr = n->ctr;
	s->ctr_cgroup_id = n->ctr_cgroup_id;
	s->start_ns = g->now;
	s->head = s->cnext = s->cprev = NONE;
	g->sused++;
	g->st.sessions_opened++;
	g->st.sessions_open++;
	n->flags |= NF_ROOT;
	/* the root moves out of the session it was born in */
	if (n->sess != NONE) {
		struct session *old = &g->sess[n->sess];
		if (!(n->flags & NF_EXITED) && old->live && --old->live == 0 && old->state == S_OPEN) {
			old->state = S_CLOSING;
			old->last_exit_ns = g->now;
		}
		if (old->procs)
			old->procs--;   /* it was never really that session's */
		sess_unlink_proc(g, root);
	}
	sess_add_proc(g, si, root);
	emit_session(g, s, KL_GOP_SESSION_OPEN);
	return si;
}

/* ---- emission ------------------------------------------------------------ */

static int emit_rec(struct kl_graphd *g, const struct kl_graph *h, const char *from, const char *to,
		    const struct kl_gq_ctr *fc, const struct kl_gq_ctr *tc, const uint64_t *seqs,
		    uint32_t nseq)
{
	struct kl_tail_builder b;
	struct kl_graph r = *h;
	char pod[170];
	int err;

	r.ev.seq = ++g->rec_seq;
	memcpy(g->buf, &r, sizeof(r));
	kl_tail_init(&b, g->buf, sizeof(r), sizeof(g->buf));
	if (from && from[0])
		kl_tail_add_str(&b, KL_F_GRAPH_FROM, from);
	if (to && to[0])
		kl_tail_add_str(&b, KL_F_GRAPH_TO, to);
	if (fc && fc->id && fc->id[0])
		kl_tail_add_str(&b, KL_F_GRAPH_FROM_CTR, fc->id);
	if (tc && tc->id && tc->id[0])
		kl_tail_add_str(&b, KL_F_GRAPH_TO_CTR, tc->id);
	if (nseq)
		kl_tail_add(&b, KL_F_GRAPH_SEQS, seqs, nseq * sizeof(uint64_t));
	if (fc && fc->pod && fc->pod[0]) {
		snprintf(pod, sizeof(pod), "%s/%s", fc->pod_ns ? fc->pod_ns : "", fc->pod);
		kl_tail_add_str(&b, KL_F_GRAPH_POD, pod);
	}
	size_t len = kl_tail_finish(&b);
	err = g->emit(g->ctx, g->buf, len);
	if (err) {
		g->st.emit_errors++;
		return err;
	}
	g->st.records++;
	g->emitted++;
	return 0;
}

static void fill_proc_head(struct kl_event *ev, const struct node *n)
{
	ev->pid = ev->tid = n->pid;
	ev->ns_pid = n->ns_pid;
	ev->pid_ns = n->pid_ns;
	ev->start_ns = n->start_ns;
	ev->cgroup_id = n->ctr_cgroup_id;
	memcpy(ev->comm, n->comm, sizeof(ev->comm));
}

static int emit_session(struct kl_graphd *g, struct session *s, uint16_t op)
{
	struct kl_graph h;
	struct kl_gq_ctr c;
	const struct ctr *k = ctr_get(g, s->ctr, s->ctr_cgroup_id);

	memset(&h, 0, sizeof(h));
	memset(&c, 0, sizeof(c));
	c.cgroup_id = s->ctr_cgroup_id;
	if (k) {
		c.id = k->id;
		c.pod = k->pod;
		c.pod_ns = k->pod_ns;
	}
	h.ev.ts_ns = g->now;
	h.ev.pid = h.ev.tid = s->root_pid;
	h.ev.start_ns = s->root_start_ns;
	h.ev.cgroup_id = s->ctr_cgroup_id;
	memcpy(h.ev.comm, s->root_comm, sizeof(h.ev.comm));
	h.op = op;
	h.from_kind = KL_GN_PROCESS;
	h.from_id = s->id;
	h.session_id = s->id;
	h.gflags = s->origin == KL_GS_EXEC_IN ? KL_GF_SESSION_EXEC
		 : s->origin == KL_GS_CONTAINER_INIT ? KL_GF_SESSION_CTR
		 : s->origin == KL_GS_SETSID ? KL_GF_SESSION_SETSID : 0;
	if (s->cross)
		h.gflags |= KL_GF_CROSS_CTR;
	h.first_ns = s->start_ns;
	h.last_ns = s->end_ns;
	h.count = s->procs;
	h.from_ctr_cgroup_id = s->ctr_cgroup_id;
	h.arg = s->origin;
	return emit_rec(g, &h, s->root_label, NULL, &c, NULL, NULL, 0);
}

static int emit_edge(struct kl_graphd *g, uint32_t e)
{
	struct edge *x = &g->edges[e];
	const struct node *f = &g->nodes[x->from], *t = &g->nodes[x->to];
	struct kl_graph h;
	struct kl_gq_ctr fc, tc;
	uint64_t seqs[NSEQ];
	uint32_t n = x->nseq;

	memset(&h, 0, sizeof(h));
	memset(&fc, 0, sizeof(fc));
	memset(&tc, 0, sizeof(tc));
	h.ev.ts_ns = x->last_ns;
	if (f->kind == KL_GN_PROCESS) {
		fill_proc_head(&h.ev, f);
		node_ctr(g, f, &fc);
		h.session_id = f->sess != NONE ? g->sess[f->sess].id : 0;
		h.from_ctr_cgroup_id = f->ctr_cgroup_id;
	}
	if (t->kind == KL_GN_PROCESS) {
		h.to_pid = t->pid;
		h.to_start_ns = t->start_ns;
		h.to_session_id = t->sess != NONE ? g->sess[t->sess].id : 0;
		h.to_ctr_cgroup_id = t->ctr_cgroup_id;
		node_ctr(g, t, &tc);
	}
	h.op = KL_GOP_EDGE;
	h.kind = x->kind;
	h.from_kind = f->kind;
	h.to_kind = t->kind;
	h.gflags = x->flags | (x->count == 1 && !x->emitted_ns ? KL_GF_NEW : 0);
	h.from_id = f->id;
	h.to_id = t->id;
	h.first_ns = x->first_ns;
	h.last_ns = x->last_ns;
	h.count = x->count;
	h.first_seq = x->first_seq;
	h.last_seq = x->last_seq;
	h.arg = x->arg;
	/* oldest first in the record: the ring of seqs is unrolled */
	for (uint32_t k = 0; k < n; k++)
		seqs[k] = x->seqs[(x->seqpos + NSEQ - n + k) % NSEQ];
	x->dirty = 0;
	x->emitted_ns = x->last_ns ? x->last_ns : 1;
	/* EXEC is a self loop: its labels are the old image (known only while the exec is folded) and the new */
	const char *to = t->label;
	if (x->kind == KL_GE_FILE_SHARED) {
		uint32_t fi = node_find(g, x->arg);
		to = fi != NONE && g->nodes[fi].label ? g->nodes[fi].label : to;
	}
	return emit_rec(g, &h, x->kind == KL_GE_EXEC ? (g->exec_old ? g->exec_old : "") : f->label, to,
			&fc, &tc, seqs, n);
}

/* ---- edges --------------------------------------------------------------- */

static bool cross(const struct node *a, const struct node *b)
{
	return a->kind == KL_GN_PROCESS && b->kind == KL_GN_PROCESS && a->ctr_cgroup_id != b->ctr_cgroup_id;
}

/*
 * Find or create the edge (from, to, kind) and fold one event into it.
 * New edges are emitted at once; updates at most every update_ns.
 * Return: edge index or NONE (cap full, counted).
 */
static uint32_t edge_touch(struct kl_graphd *g, uint32_t from, uint32_t to, uint16_t kind, uint32_t flags,
			   uint64_t arg, uint64_t seq, uint64_t ts)
{
	struct node *f, *t;
	uint64_t key;
	uint32_t e;
	struct edge *x;

	if (from == NONE || to == NONE)
		return NONE;
	f = &g->nodes[from];
	t = &g->nodes[to];
	key = edge_key(f->id, t->id, kind);
	for (e = g->ebuckets[key & g->emask]; e != NONE; e = g->edges[e].hnext) {
		x = &g->edges[e];
		if (x->kind == kind && x->from == from && x->to == to)
			goto found;
	}
	while (g->efree == NONE && g->ehigh == g->o.max_edges)
		if (!evict_one(g, from) || g->nodes[from].id != f->id || g->nodes[to].id != t->id) {
			g->st.edges_dropped++;
			if (f->kind == KL_GN_PROCESS && f->sess != NONE)
				g->sess[f->sess].truncated = 1;
			return NONE;
		}
	if (g->efree != NONE) {
		e = g->efree;
		g->efree = g->edges[e].hnext;
	} else {
		e = g->ehigh++;
	}
	x = &g->edges[e];
	memset(x, 0, sizeof(*x));
	x->from = from;
	x->to = to;
	x->kind = kind;
	x->first_ns = ts;
	x->first_seq = seq;
	x->hnext = g->ebuckets[key & g->emask];
	g->ebuckets[key & g->emask] = e;
	x->oprev = x->iprev = NONE;
	x->onext = f->out_head;
	if (f->out_head != NONE)
		g->edges[f->out_head].oprev = e;
	f->out_head = e;
	x->inext = t->in_head;
	if (t->in_head != NONE)
		g->edges[t->in_head].iprev = e;
	t->in_head = e;
	f->nedges++;
	t->nedges++;
	g->eused++;
	g->st.edges_by_kind[kind < KL_GE__COUNT ? kind : 0]++;
	if (f->kind == KL_GN_PROCESS && f->sess != NONE)
		g->sess[f->sess].edges++;
found:
	if (cross(f, t)) {
		flags |= KL_GF_CROSS_CTR;
		if (!(x->flags & KL_GF_CROSS_CTR)) {
			g->st.cross_container++;
			if (f->sess != NONE)
				g->sess[f->sess].cross = 1;
			if (t->sess != NONE)
				g->sess[t->sess].cross = 1;
		}
	}
	if (g->cur_runtime)
		flags |= KL_GF_RUNTIME;
	x->flags |= flags;
	if (!(flags & KL_GF_FAILED))
		x->flags &= ~(uint32_t)KL_GF_FAILED;   /* one success makes it a fact */
	if (!(flags & KL_GF_RUNTIME))
		x->flags &= ~(uint32_t)KL_GF_RUNTIME;  /* once the workload does it, it is the workload's */
	if (!x->arg)
		x->arg = arg;
	x->count++;
	if (ts > x->last_ns)
		x->last_ns = ts;
	x->last_seq = seq;
	x->seqs[x->seqpos] = seq;
	x->seqpos = (uint8_t)((x->seqpos + 1) % NSEQ);
	if (x->nseq < NSEQ)
		x->nseq++;
	x->dirty = 1;
	if (!x->emitted_ns || ts >= x->emitted_ns + g->o.update_ns)
		emit_edge(g, e);
	return e;
}

/* ---- processes ----------------------------------------------------------- */

static uint32_t node_get(struct kl_graphd *g, uint64_t id, uint16_t kind, const char *label, uint32_t keep)
{
	uint32_t i = node_find(g, id);

	if (i != NONE)
		return i;
	return node_alloc(g, id, kind, label, keep);
}

static void label_from(char *dst, size_t cap, uint16_t type, const void *rec, size_t len, uint16_t id,
		       const char *fallback)
{
	struct kl_field_view f;

	if (kl_field_find(type, rec, len, id, &f)) {
		size_t n = strnlen((const char *)f.data, f.len);
		if (n >= cap)
			n = cap - 1;
		memcpy(dst, f.data, n);
		dst[n] = 0;
	} else {
		snprintf(dst, cap, "%s", fallback ? fallback : "");
	}
}

/* The process's container changed (or is first known): a new session when it entered one from outside. */
static void proc_set_ctr(struct kl_graphd *g, uint32_t i, uint64_t cgid, uint32_t ctr_slot)
{
	struct node *n = &g->nodes[i];
	struct node *p = n->parent != NONE && g->nodes[n->parent].id == n->parent_id ? &g->nodes[n->parent] : NULL;
	const struct ctr *c;
	uint16_t origin;

	n->ctr_cgroup_id = cgid;
	n->ctr = ctr_slot;
	if (!cgid)
		return;
	c = ctr_get(g, ctr_slot, cgid);
	if (n->sess != NONE && g->sess[n->sess].ctr_cgroup_id == cgid) {
		/* runc's intermediate children enter the namespaces before the init is
		 * forked as pid 1: the session they opened is the container's */
		struct session *s = &g->sess[n->sess];
		if (s->origin == KL_GS_EXEC_IN && (n->ns_pid == 1 || (c && c->init_pid == n->pid)))
			s->origin = KL_GS_CONTAINER_INIT;
		return;
	}
	if (p && p->ctr_cgroup_id == cgid && n->sess == p->sess && n->sess != NONE)
		return;
	/* a container's init is pid 1 of its namespace (or named by the runtime record) */
	origin = n->ns_pid == 1 || (c && c->init_pid == n->pid) ? KL_GS_CONTAINER_INIT : KL_GS_EXEC_IN;
	sess_new(g, i, origin);
	/* the edge that brought it in now crosses containers */
	for (uint32_t e = n->in_head; e != NONE; e = g->edges[e].inext)
		if (g->edges[e].kind == KL_GE_FORK && cross(&g->nodes[g->edges[e].from], n)) {
			g->edges[e].flags |= KL_GF_CROSS_CTR;
			g->st.cross_container++;
			emit_edge(g, e);
		}
}

/*
 * The process behind an enriched event: found by (pid, start_ns), or
 * created with its parent (from the enricher) and a session.
 */
static uint32_t proc_get(struct kl_graphd *g, const struct kl_enriched *en, const void *rec, size_t len)
{
	uint64_t id = kl_graph_proc_id(en->ev.pid, en->ev.start_ns);
	uint32_t i = node_find(g, id);
	struct node *n;
	uint32_t slot = 0;

	if (en->ctr_cgroup_id) {
		slot = ctr_add(g, en->ctr_cgroup_id);
		if (slot)
			ctr_learn(g, &g->ctrs[slot - 1], KL_REC_ENRICHED, rec, len);
	}
	if (i != NONE) {
		n = &g->nodes[i];
		/* comm follows prctl(PR_SET_NAME) and exec: busybox applets re-exec as "exe" then rename */
		if (memcmp(n->comm, en->ev.comm, KL_COMM_LEN - 1)) {
			memcpy(n->comm, en->ev.comm, KL_COMM_LEN);
			n->comm[KL_COMM_LEN - 1] = 0;
		}
		if (n->ctr_cgroup_id != en->ctr_cgroup_id)
			proc_set_ctr(g, i, en->ctr_cgroup_id, slot);
		return i;
	}
	char exe[LABEL_MAX];
	label_from(exe, sizeof(exe), KL_REC_ENRICHED, rec, len, KL_F_EXE, NULL);
	if (!exe[0])
		memcpy(exe, en->ev.comm, strnlen(en->ev.comm, KL_COMM_LEN)), exe[strnlen(en->ev.comm, KL_COMM_LEN)] = 0;
	uint32_t parent = en->parent_pid ? node_find(g, kl_graph_proc_id(en->parent_pid, en->parent_start_ns)) : NONE;
	i = node_alloc(g, id, KL_GN_PROCESS, exe, parent);
	if (i == NONE)
		return NONE;
	n = &g->nodes[i];
	n->pid = en->ev.pid;
	n->ns_pid = en->ev.ns_pid;
	n->pid_ns = en->ev.pid_ns;
	n->start_ns = en->ev.start_ns;
	memcpy(n->comm, en->ev.comm, KL_COMM_LEN);
	n->comm[KL_COMM_LEN - 1] = 0;
	pid_index_add(g, i);
	if (parent != NONE) {
		struct node *p = &g->nodes[parent];
		n->parent = parent;
		n->parent_id = p->id;
		/* inherited pipe ends: the child holds what the parent held at fork */
		memcpy(n->pfd, p->pfd, sizeof(n->pfd));
		n->net_ns = p->net_ns;
		if (p->sess != NONE)
			sess_add_proc(g, p->sess, i);
	} else if (en->parent_pid) {
		n->parent_id = kl_graph_proc_id(en->parent_pid, en->parent_start_ns);
	}
	n->ctr_cgroup_id = 0;
	if (en->ctr_cgroup_id) {
		proc_set_ctr(g, i, en->ctr_cgroup_id, slot);
	} else if (n->sess == NONE) {
		sess_new(g, i, KL_GS_ORPHAN);
	}
	return i;
}

static void proc_exit(struct kl_graphd *g, uint32_t i, uint64_t ts)
{
	struct node *n = &g->nodes[i];

	if (n->flags & NF_EXITED)
		return;
	pid_index_del(g, i);
	n->flags |= NF_EXITED;
	n->exit_ns = ts;
	n->xprev = g->exited_tail;
	n->xnext = NONE;
	if (g->exited_tail != NONE)
		g->nodes[g->exited_tail].xnext = i;
	else
		g->exited_head = i;
	g->exited_tail = i;
	if (n->sess != NONE) {
		struct session *s = &g->sess[n->sess];
		if (s->live && --s->live == 0 && s->state == S_OPEN) {
			s->state = S_CLOSING;
			s->last_exit_ns = ts;
		}
	}
}

/* ---- pipes and sockets -------------------------------------------------- */

static struct pfd *pfd_find(struct node *n, int32_t fd)
{
	for (int k = 0; k < NPFD; k++)
		if (n->pfd[k].fd == fd && fd >= 0)
			return &n->pfd[k];
	return NULL;
}

static void pfd_set(struct node *n, int32_t fd, uint64_t pipe, uint32_t sockpair)
{
	struct pfd *p = pfd_find(n, fd);

	if (!p)
		for (int k = 0; k < NPFD && !p; k++)
			if (n->pfd[k].fd < 0)
				p = &n->pfd[k];
	if (!p)
		p = &n->pfd[NPFD - 1];   /* full: the newest wins */
	p->fd = fd;
	p->pipe = pipe;
	p->sockpair = sockpair;
}

static void pfd_close(struct node *n, int32_t lo, int32_t hi)
{
	for (int k = 0; k < NPFD; k++)
		if (n->pfd[k].fd >= lo && n->pfd[k].fd <= hi)
			n->pfd[k].fd = -1;
}

static struct pipe_slot *pipe_slot(struct kl_graphd *g, uint64_t pipe)
{
	return &g->pipes[mix64(pipe) & (PIPE_SLOTS - 1)];
}

/* One side used a pipe/socketpair end: link writer -> reader once both are known. */
static void pipe_use(struct kl_graphd *g, uint32_t i, const struct pfd *p, bool write, uint64_t seq, uint64_t ts)
{
	struct pipe_slot *s = pipe_slot(g, p->pipe);
	struct node *n = &g->nodes[i];
	uint32_t other;
	uint32_t fl = KL_GF_MATCHED | (p->sockpair ? KL_GF_IPC_SOCKPAIR : KL_GF_IPC_PIPE);

	if (s->pipe != p->pipe) {
		g->st.unresolved++;
		return;
	}
	if (write) {
		s->writer = n->id;
		other = s->reader ? node_find(g, s->reader) : NONE;
		if (other != NONE && other != i)
			edge_touch(g, i, other, KL_GE_IPC, fl, 0, seq, ts);
	} else {
		s->reader = n->id;
		other = s->writer ? node_find(g, s->writer) : NONE;
		if (other != NONE && other != i)
			edge_touch(g, other, i, KL_GE_IPC, fl, 0, seq, ts);
	}
}

struct addr {
	uint16_t family;
	uint16_t port;
	uint8_t ip[16];
	char text[112];
	uint64_t key;
	bool loopback, any;
};

static bool parse_addr(const void *data, size_t len, struct addr *a)
{
	sa_family_t fam;

	memset(a, 0, sizeof(*a));
	if (len < sizeof(fam))
		return false;
	memcpy(&fam, data, sizeof(fam));
	a->family = fam;
	if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in s;
		memcpy(&s, data, sizeof(s));
		a->port = ntohs(s.sin_port);
		memcpy(a->ip, &s.sin_addr, 4);
		a->loopback = a->ip[0] == 127;
		a->any = !s.sin_addr.s_addr;
		snprintf(a->text, sizeof(a->text), "%u.%u.%u.%u:%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3],
			 a->port);
	} else if (fam == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 s;
		static const uint8_t lo[16] = { [15] = 1 }, v4lo[12] = { [10] = 0xff, [11] = 0xff };
		static const uint8_t zero[16];
		memcpy(&s, data, sizeof(s));
		a->port = ntohs(s.sin6_port);
		memcpy(a->ip, &s.sin6_addr, 16);
		a->loopback = !memcmp(a->ip, lo, 16) || (!memcmp(a->ip, v4lo, 12) && a->ip[12] == 127);
		a->any = !memcmp(a->ip, zero, 16);
		char *t = a->text;
		t += sprintf(t, "[");
		for (int k = 0; k < 16; k += 2)
			t += sprintf(t, "%s%x", k ? ":" : "", (a->ip[k] << 8) | a->ip[k + 1]);
		sprintf(t, "]:%u", a->port);
	} else if (fam == AF_UNIX && len > sizeof(fam)) {
		const char *p = (const char *)data + sizeof(fam);
		size_t n = len - sizeof(fam);
		if (p[0] == 0) {       /* abstract: "@name" */
			size_t m = n - 1 < sizeof(a->text) - 2 ? n - 1 : sizeof(a->text) - 2;
			a->text[0] = '@';
			for (size_t k = 0; k < m; k++)
				a->text[k + 1] = (char)(p[k + 1] >= 32 && p[k + 1] < 127 ? p[k + 1] : '?');
			a->text[m + 1] = 0;
		} else {
			size_t m = strnlen(p, n);
			if (m >= sizeof(a->text))
				m = sizeof(a->text) - 1;
			memcpy(a->text, p, m);
			a->text[m] = 0;
		}
		a->key = hash_bytes(a->text, strlen(a->text), AF_UNIX);
		return a->text[0] != 0;
	} else {
		return false;
	}
	/* by port alone: a v6 wildcard listener also takes v4 connections (dual stack) */
	a->key = mix64(0x696e6574ull << 16 | a->port);
	return true;
}

static struct listen_slot *listen_slot(struct kl_graphd *g, const struct addr *a, uint32_t net_ns)
{
	/* inet: one slot per (net ns, port) — the bound address is checked by the caller's rule */
	uint64_t k = a->family == AF_UNIX ? a->key : mix64(a->key ^ net_ns);
	return &g->listens[k & (LISTEN_SLOTS - 1)];
}

static void on_bind(struct kl_graphd *g, uint32_t i, const struct addr *a)
{
	struct node *n = &g->nodes[i];
	struct listen_slot *l = listen_slot(g, a, a->family == AF_UNIX ? 0 : n->net_ns);

	l->key = a->key;
	l->proc = n->id;
	l->net_ns = n->net_ns;
	l->unix_ = a->family == AF_UNIX;
}

static uint32_t endpoint(struct kl_graphd *g, const struct addr *a, uint32_t keep)
{
	return node_get(g, with_kind(hash_bytes(a->text, strlen(a->text), 0x6e6574), KL_GN_ENDPOINT),
			KL_GN_ENDPOINT, a->text, keep);
}

static void on_connect(struct kl_graphd *g, uint32_t i, const struct addr *a, bool failed, uint64_t seq,
		       uint64_t ts)
{
	struct node *n = &g->nodes[i];
	uint32_t fl = failed ? KL_GF_FAILED : 0;
	uint32_t peer = NONE;

	if (a->family == AF_UNIX) {
		struct listen_slot *l = listen_slot(g, a, 0);
		if (l->key == a->key && l->proc)
			peer = node_find(g, l->proc);
		if (peer != NONE && peer != i) {
			edge_touch(g, i, peer, KL_GE_IPC, fl | KL_GF_MATCHED | KL_GF_IPC_UNIX, 0, seq, ts);
			return;
		}
		edge_touch(g, i, endpoint(g, a, i), KL_GE_IPC, fl | KL_GF_IPC_UNIX, 0, seq, ts);
		return;
	}
	/* loopback reaches a listener of the same network namespace; unknown ns: any listener on the port */
	if (a->loopback) {
		struct listen_slot *l = listen_slot(g, a, n->net_ns);
		if (l->key == a->key && l->proc && (!n->net_ns || l->net_ns == n->net_ns))
			peer = node_find(g, l->proc);
	}
	if (peer != NONE && peer != i) {
		edge_touch(g, i, peer, KL_GE_NET_CONNECT, fl | KL_GF_MATCHED | KL_GF_LOOPBACK, a->port, seq, ts);
	} else {
		edge_touch(g, i, endpoint(g, a, i), KL_GE_NET_CONNECT, fl | (a->loopback ? KL_GF_LOOPBACK : 0),
			   a->port, seq, ts);
	}
	if (!failed) {
		struct connect_slot *c = &g->connects[a->port & (CONNECT_SLOTS - 1)];
		c->proc = n->id;
		c->ts = ts;
		c->seq = seq;
		c->port = a->port;
		c->net_ns = n->net_ns;
		c->matched = peer != NONE && peer != i;
	}
}

/* An accepted connection: the latest connect to this port within the window is the other end. */
static void on_accept(struct kl_graphd *g, uint32_t i, const struct addr *local, uint64_t seq, uint64_t ts,
		      uint64_t ts_exit)
{
	struct connect_slot *c = &g->connects[local->port & (CONNECT_SLOTS - 1)];
	uint32_t peer;

	/* a blocking accept is stamped at entry, before the connect it returns: compare with its exit */
	if (!c->proc || c->port != local->port || ts_exit < c->ts || ts_exit - c->ts > g->o.net_window_ns)
		return;
	peer = node_find(g, c->proc);
	if (peer == NONE || peer == i)
		return;
	uint32_t fl = KL_GF_MATCHED | (local->loopback ? KL_GF_LOOPBACK : 0);
	edge_touch(g, i, peer, KL_GE_NET_ACCEPT, fl, local->port, seq, ts);
	if (!c->matched)
		edge_touch(g, peer, i, KL_GE_NET_CONNECT, fl, local->port, c->seq, c->ts);
	c->proc = 0;    /* one accept per connect */
}

/* ---- files ---------------------------------------------------------------- */

static void file_touch(struct kl_graphd *g, uint32_t i, const char *path, uint16_t kind, bool failed,
		       uint64_t seq, uint64_t ts)
{
	struct node *n = &g->nodes[i];
	uint32_t f;

	if (!path || path[0] != '/')
		return;
	f = node_get(g, file_id(path, n->ctr_cgroup_id), KL_GN_FILE, path, i);
	if (f == NONE)
		return;
	if (g->nodes[i].id != n->id)
		return;
	if (edge_touch(g, i, f, kind, failed ? KL_GF_FAILED : 0, 0, seq, ts) == NONE && !g->nodes[f].nedges)
		node_free(g, f);
	/* pseudo filesystems are per container (or devices): the same path is not a shared file */
	if (failed || !strncmp(path, "/dev/", 5) || !strncmp(path, "/proc/", 6) || !strncmp(path, "/sys/", 5))
		return;
	/* shared volume: the same path written in one container and read in another */
	uint64_t key = hash_bytes(path, strlen(path), 0x73686172);
	struct writer_slot *w = &g->writers[key & (WRITER_SLOTS - 1)];
	if (kind == KL_GE_FILE_WRITE) {
		w->key = key;
		w->proc = n->id;
		w->ctr = n->ctr_cgroup_id;
		w->ts = ts;
	} else if (kind == KL_GE_FILE_READ && w->key == key && w->ctr != n->ctr_cgroup_id &&
		   ts >= w->ts && ts - w->ts <= g->o.shared_window_ns) {
		uint32_t wr = node_find(g, w->proc);
			if (wr != NONE && wr != i) {
			/* arg: the file node (the writer's side) that carried it */
			edge_touch(g, wr, i, KL_GE_FILE_SHARED, 0, file_id(path, w->ctr), seq, ts);
		}
	}
}

/* ---- the event switch ------------------------------------------------------ */

static void on_syscall(struct kl_graphd *g, const struct kl_enriched *en, const void *rec, size_t len,
		       const void *raw, size_t raw_len)
{
	struct kl_syscall sc;
	struct kl_field_view f;
	char path[LABEL_MAX];
	uint32_t i;
	uint64_t seq = en->ev.seq, ts = en->ev.ts_ns;

	memcpy(&sc, raw, sizeof(sc));
	switch (sc.nr) {
	case NR_read: case NR_write: case NR_pread64: case NR_pwrite64: case NR_readv: case NR_writev:
	case NR_preadv: case NR_pwritev: case NR_sendto: case NR_recvfrom: case NR_sendmsg: case NR_recvmsg:
	case NR_open: case NR_openat: case NR_openat2: case NR_creat: case NR_close: case NR_dup:
	case NR_dup2: case NR_dup3: case NR_fcntl: case NR_pipe: case NR_pipe2: case NR_socketpair:
	case NR_connect: case NR_accept: case NR_accept4: case NR_bind: case NR_kill: case NR_tkill:
	case NR_tgkill: case NR_rt_sigqueueinfo: case NR_ptrace: case NR_setsid: case NR_close_range:
	case NR_sendfile:
		break;
	default:
		return;     /* not a graph fact: no process node for it either */
	}
	i = proc_get(g, en, rec, len);
	if (i == NONE)
		return;
	struct node *n = &g->nodes[i];
	bool failed = sc.ret < 0 && sc.ret != -EINPROGRESS;
	int32_t fd = (int32_t)sc.args[0];

	switch (sc.nr) {
	case NR_sendfile: {
		/* busybox cat: sendfile(out, in): a read of the second fd, a write to the first */
		if (sc.ret < 0)
			return;
		struct pfd *p = pfd_find(n, fd);
		if (p && en->fd_kind != KL_FD_FILE)
			pipe_use(g, i, p, true, seq, ts);
		else if (en->fd_kind == KL_FD_FILE) {
			label_from(path, sizeof(path), KL_REC_ENRICHED, rec, len, KL_F_FD_PATH, NULL);
			file_touch(g, i, path, KL_GE_FILE_WRITE, false, seq, ts);
		}
		p = pfd_find(n, (int32_t)sc.args[1]);
		if (p && en->fd2_kind != KL_FD_FILE)
			pipe_use(g, i, p, false, seq, ts);
		else if (en->fd2_kind == KL_FD_FILE) {
			label_from(path, sizeof(path), KL_REC_ENRICHED, rec, len, KL_F_FD_PATH2, NULL);
			file_touch(g, i, path, KL_GE_FILE_READ, false, seq, ts);
		}
		return;
	}
	case NR_read: case NR_pread64: case NR_readv: case NR_preadv: case NR_recvfrom: case NR_recvmsg:
	case NR_write: case NR_pwrite64: case NR_writev: case NR_pwritev: case NR_sendto: case NR_sendmsg: {
		bool wr = sc.nr == NR_write || sc.nr == NR_pwrite64 || sc.nr == NR_writev || sc.nr == NR_pwritev ||
			  sc.nr == NR_sendto || sc.nr == NR_sendmsg;
		if (sc.ret < 0)
			return;
		struct pfd *p = pfd_find(n, fd);
		if (p && (en->fd_kind == KL_FD_PIPE || en->fd_kind == KL_FD_SOCK_UNIX ||
			  en->fd_kind == KL_FD_SOCK_OTHER)) {
			pipe_use(g, i, p, wr, seq, ts);
			return;
		}
		if (en->fd_kind == KL_FD_FILE && kl_field_find(KL_REC_ENRICHED, rec, len, KL_F_FD_PATH, &f)) {
			label_from(path, sizeof(path), KL_REC_ENRICHED, rec, len, KL_F_FD_PATH, NULL);
			file_touch(g, i, path, wr ? KL_GE_FILE_WRITE : KL_GE_FILE_READ, false, seq, ts);
		}
		return;
	}
	case NR_open: case NR_openat: case NR_openat2: case NR_creat: {
		uint64_t flags = sc.nr == NR_open ? sc.args[1] : sc.nr == NR_creat ? (O_WRONLY | O_CREAT) : sc.args[2];
		if (sc.nr == NR_openat2)
			flags = 0;  /* how is in user memory the collector does not copy: reads decide */
		label_from(path, sizeof(path), KL_REC_ENRICHED, rec, len, KL_F_ABS_PATH, NULL);
		if (!path[0])
			label_from(path, sizeof(path), KL_REC_SYSCALL, raw, raw_len, KL_F_PATH, NULL);
		if ((flags & O_ACCMODE) == O_RDONLY && !(flags & (O_CREAT | O_TRUNC)) && sc.nr != NR_openat2)
			file_touch(g, i, path, KL_GE_FILE_READ, failed, seq, ts);
		else if ((flags & O_ACCMODE) == O_WRONLY || (flags & (O_CREAT | O_TRUNC)))
			file_touch(g, i, path, KL_GE_FILE_WRITE, failed, seq, ts);
		return;   /* O_RDWR: the reads and writes that follow decide */
	}
	case NR_pipe: case NR_pipe2: case NR_socketpair: {
		int32_t fds[2];
		uint16_t ft = KL_REC_SYSCALL;
		if (sc.ret < 0 || !kl_field_find(ft, raw, raw_len, KL_F_FDS, &f) || f.len < sizeof(fds))
			return;
		memcpy(fds, f.data, sizeof(fds));
		struct pipe_slot *s = pipe_slot(g, seq);
		s->pipe = seq;
		s->writer = s->reader = 0;
		s->sockpair = sc.nr == NR_socketpair;
		pfd_set(n, fds[0], seq, s->sockpair);
		pfd_set(n, fds[1], seq, s->sockpair);
		return;
	}
	case NR_dup: case NR_dup2: case NR_dup3: case NR_fcntl: {
		if (sc.ret < 0)
			return;
		if (sc.nr == NR_fcntl && sc.args[1] != F_DUPFD && sc.args[1] != F_DUPFD_CLOEXEC)
			return;
		int32_t nfd = (int32_t)sc.ret;
		struct pfd *p = pfd_find(n, fd);
		if (p && nfd != fd)
			pfd_set(n, nfd, p->pipe, p->sockpair);
		else if (!p)
			pfd_close(n, nfd, nfd);
		return;
	}
	case NR_close:
		pfd_close(n, fd, fd);
		return;
	case NR_close_range:
		pfd_close(n, (int32_t)sc.args[0], sc.args[1] > INT32_MAX ? INT32_MAX : (int32_t)sc.args[1]);
		return;
	case NR_connect: case NR_bind: {
		struct addr a;
		if (!kl_field_find(KL_REC_SYSCALL, raw, raw_len, KL_F_SOCKADDR, &f) || !parse_addr(f.data, f.len, &a))
			return;
		if (sc.nr == NR_bind) {
			if (sc.ret == 0)
				on_bind(g, i, &a);
		} else {
			on_connect(g, i, &a, failed, seq, ts);
		}
		return;
	}
	case NR_accept: case NR_accept4: {
		struct addr a;
		if (sc.ret < 0 || !kl_field_find(KL_REC_ENRICHED, rec, len, KL_F_LOCAL_ADDR, &f) ||
		    !parse_addr(f.data, f.len, &a) || a.family == AF_UNIX)
			return;
		on_accept(g, i, &a, seq, ts, ts + sc.duration_ns);
		return;
	}
	case NR_kill: case NR_tkill: case NR_tgkill: case NR_rt_sigqueueinfo: {
		int64_t target = (int64_t)(int32_t)sc.args[0];
		uint64_t sig = sc.nr == NR_tgkill ? sc.args[2] : sc.args[1];
		if (target <= 0 || !sig || (uint32_t)target == n->ns_pid)
			return;   /* groups, probes and itself are not edges */
		uint32_t t = pid_lookup(g, n->pid_ns, (uint32_t)target);
		if (t == NONE) {
			g->st.unresolved++;
			return;
		}
		edge_touch(g, i, t, KL_GE_SIGNAL, failed ? KL_GF_FAILED : 0, sig, seq, ts);
		return;
	}
	case NR_ptrace: {
		uint32_t t;
		if (sc.args[0] == 0) {        /* PTRACE_TRACEME: the parent traces us */
			t = n->parent;
			if (t != NONE && g->nodes[t].id == n->parent_id)
				edge_touch(g, t, i, KL_GE_PTRACE, failed ? KL_GF_FAILED : 0, 0, seq, ts);
			return;
		}
		t = pid_lookup(g, n->pid_ns, (uint32_t)sc.args[1]);
		if (t == NONE || t == i) {
			g->st.unresolved++;
			return;
		}
		edge_touch(g, i, t, KL_GE_PTRACE, failed ? KL_GF_FAILED : 0, sc.args[0], seq, ts);
		return;
	}
	case NR_setsid:
		/* a new session leader on the host (login, ssh); inside a container the container is the session */
		if (sc.ret > 0 && !n->ctr_cgroup_id && !(n->flags & NF_ROOT && g->sess[n->sess].root == i))
			sess_new(g, i, KL_GS_SETSID);
		return;
	}
}

static void on_proc(struct kl_graphd *g, const struct kl_enriched *en, const void *rec, size_t len,
		    const void *raw, size_t raw_len)
{
	struct kl_proc p;
	uint32_t i;
	char exe[LABEL_MAX];

	memcpy(&p, raw, sizeof(p));
	if (p.kind == KL_PROC_EXIT) {
		if (p.ev.pid != p.ev.tid)
			return;   /* a thread */
		i = node_find(g, kl_graph_proc_id(p.ev.pid, p.ev.start_ns));
		if (i != NONE)
			proc_exit(g, i, en->ev.ts_ns);
		return;
	}
	if (p.kind == KL_PROC_FORK && p.child_tid && p.child_tid != p.ev.pid)
		return;       /* a new thread, not a process */
	if (p.kind == KL_PROC_EXEC) {
		i = node_find(g, kl_graph_proc_id(p.ev.pid, p.ev.start_ns));
		if (i != NONE) {
			struct node *n = &g->nodes[i];
			char old[LABEL_MAX];
			snprintf(old, sizeof(old), "%s", n->label ? n->label : "");
			g->exec_old = old;
			label_from(exe, sizeof(exe), KL_REC_PROC, raw, raw_len, KL_F_EXE, NULL);
			if (!exe[0])
				label_from(exe, sizeof(exe), KL_REC_ENRICHED, rec, len, KL_F_EXE, n->comm);
			/* a re-exec of itself (busybox applets) keeps the image it had */
			if (!strcmp(exe, "/proc/self/exe") && old[0])
				snprintf(exe, sizeof(exe), "%s", old);
			node_set_label(g, n, exe);
			memcpy(n->comm, p.ev.comm, KL_COMM_LEN);
			n->comm[KL_COMM_LEN - 1] = 0;
			if (p.net_ns)
				n->net_ns = p.net_ns;
			/* EXEC: from label = the old image (the edge is a self loop; see emit_edge) */
			edge_touch(g, i, i, KL_GE_EXEC, 0, 0, en->ev.seq, en->ev.ts_ns);
			g->exec_old = NULL;
			file_touch(g, i, exe, KL_GE_FILE_EXEC, false, en->ev.seq, en->ev.ts_ns);
			/* the enricher may place it in a container only now (runc init execs the entrypoint) */
			proc_get(g, en, rec, len);
			return;
		}
	}
	i = proc_get(g, en, rec, len);
	if (i == NONE)
		return;
	struct node *n = &g->nodes[i];
	if (p.net_ns)
		n->net_ns = p.net_ns;
	if (p.kind == KL_PROC_FORK && n->parent != NONE && g->nodes[n->parent].id == n->parent_id)
		edge_touch(g, n->parent, i, KL_GE_FORK, 0, 0, en->ev.seq, en->ev.ts_ns);
	if (p.kind == KL_PROC_EXEC)
		file_touch(g, i, n->label, KL_GE_FILE_EXEC, false, en->ev.seq, en->ev.ts_ns);
}

static void on_container(struct kl_graphd *g, const void *raw, size_t raw_len)
{
	struct kl_container c;
	uint32_t s;

	memcpy(&c, raw, sizeof(c));
	if (!c.ev.cgroup_id)
		return;
	s = ctr_add(g, c.ev.cgroup_id);
	if (!s)
		return;
	struct ctr *k = &g->ctrs[s - 1];
	ctr_learn(g, k, KL_REC_CONTAINER, raw, raw_len);
	if (c.init_pid)
		k->init_pid = c.init_pid;
	k->stopped_ns = c.kind == KL_CTR_STOP ? (g->now ? g->now : 1) : 0;
}

/* ---- time -------------------------------------------------------------------- */

static void sweep(struct kl_graphd *g)
{
	for (uint32_t si = 0; si < g->shigh; si++) {
		struct session *s = &g->sess[si];
		if (s->state == S_CLOSING && g->now >= s->last_exit_ns + g->o.grace_ns) {
			/* flush what update_ns held back, then say it is over */
			for (uint32_t i = s->head; i != NONE; i = g->nodes[i].snext)
				for (uint32_t e = g->nodes[i].out_head; e != NONE; e = g->edges[e].onext)
					if (g->edges[e].dirty)
						emit_edge(g, e);
			s->state = S_CLOSED;
			s->end_ns = s->last_exit_ns;
			s->cprev = g->closed_tail;
			s->cnext = NONE;
			if (g->closed_tail != NONE)
				g->sess[g->closed_tail].cnext = si;
			else
				g->closed_head = si;
			g->closed_tail = si;
			g->st.sessions_closed++;
			g->st.sessions_open--;
			emit_session(g, s, KL_GOP_SESSION_CLOSE);
		}
	}
	while (g->closed_head != NONE && g->now >= g->sess[g->closed_head].end_ns + g->o.retention_ns)
		sess_evict(g, g->closed_head);
	g->last_sweep = g->now;
}

static void advance(struct kl_graphd *g, uint64_t ts)
{
	if (ts > g->now)
		g->now = ts;
	if (g->now >= g->last_sweep + SWEEP_NS)
		sweep(g);
}

int kl_graphd_process(struct kl_graphd *g, uint16_t type, const void *rec, size_t len)
{
	struct kl_enriched en;
	uint16_t rt;
	const void *raw;
	size_t rl;

	g->emitted = 0;
	if (type != KL_REC_ENRICHED)
		return 0;
	g->st.events++;
	if (kl_rec_validate(type, rec, len) != KL_REC_OK || kl_enriched_raw(rec, len, &rt, &raw, &rl)) {
		g->st.invalid++;
		return -EBADMSG;
	}
	memcpy(&en, rec, sizeof(en));
	g->cur_runtime = false;    /* what the clock sets off is nobody's setup */
	advance(g, en.ev.ts_ns);
	g->cur_runtime = (en.eflags & KL_EN_ENTERED) != 0;
	switch (rt) {
	case KL_REC_SYSCALL:
		on_syscall(g, &en, rec, len, raw, rl);
		break;
	case KL_REC_PROC:
		on_proc(g, &en, rec, len, raw, rl);
		break;
	case KL_REC_CONTAINER:
		on_container(g, raw, rl);
		break;
	default:
		break;
	}
	return g->emitted;
}

int kl_graphd_tick(struct kl_graphd *g, uint64_t now_ns)
{
	g->cur_runtime = false;
	g->emitted = 0;
	advance(g, now_ns);
	return g->emitted;
}

int kl_graphd_flush(struct kl_graphd *g)
{
	g->emitted = 0;
	for (uint32_t e = 0; e < g->ehigh; e++)
		if (g->edges[e].kind && g->edges[e].dirty)
			emit_edge(g, e);
	return g->emitted;
}

void kl_graphd_stats(const struct kl_graphd *g, struct kl_graphd_stats *st)
{
	*st = g->st;
	st->nodes = g->nused;
	st->edges = g->eused;
	st->sessions = g->sused;
	st->containers = g->nctrs;
	/* what is in use: slab slots up to their high-water marks, the buckets, labels */
	st->bytes = (uint64_t)g->nhigh * sizeof(struct node) + (uint64_t)g->ehigh * sizeof(struct edge) +
		    (uint64_t)(g->nmask + 1) * 8 + (uint64_t)(g->emask + 1) * 4 +
		    (uint64_t)g->shigh * sizeof(struct session) +
		    (uint64_t)g->nctrs * sizeof(struct ctr) + sizeof(*g) + g->label_bytes;
}

int kl_graphd_new(const struct kl_graphd_opts *opts, kl_graph_emit_fn emit, void *ctx, struct kl_graphd **out)
{
	struct kl_graphd *g;
	struct kl_graphd_opts o = { 0 };

	if (!emit || !out)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (!o.max_nodes) o.max_nodes = 1u << 20;
	if (!o.max_edges) o.max_edges = 2u << 20;
	if (!o.max_sessions) o.max_sessions = 65536;
	if (!o.max_containers) o.max_containers = 4096;
	if (!o.grace_ns) o.grace_ns = 5000000000ull;
	if (!o.retention_ns) o.retention_ns = 3600000000000ull;
	if (!o.shared_window_ns) o.shared_window_ns = 60000000000ull;
	if (!o.net_window_ns) o.net_window_ns = 2000000000ull;
	if (!o.update_ns) o.update_ns = 1000000000ull;
	if (o.max_nodes >= NONE / 2 || o.max_edges >= NONE / 2 || o.max_sessions >= NONE / 2 || o.max_nodes < 2)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->o = o;
	g->emit = emit;
	g->ctx = ctx;
	g->nmask = pow2_at_least(o.max_nodes) - 1;
	g->emask = pow2_at_least(o.max_edges) - 1;
	g->nodes = slab_alloc(o.max_nodes, sizeof(*g->nodes));
	g->edges = slab_alloc(o.max_edges, sizeof(*g->edges));
	g->sess = slab_alloc(o.max_sessions, sizeof(*g->sess));
	g->ctrs = calloc(o.max_containers, sizeof(*g->ctrs));
	g->nbuckets = slab_alloc((size_t)g->nmask + 1, 4);
	g->pbuckets = slab_alloc((size_t)g->nmask + 1, 4);
	g->ebuckets = slab_alloc((size_t)g->emask + 1, 4);
	if (!g->nodes || !g->edges || !g->sess || !g->ctrs || !g->nbuckets || !g->pbuckets || !g->ebuckets) {
		kl_graphd_free(g);
		return -ENOMEM;
	}
	memset(g->nbuckets, 0xff, (size_t)(g->nmask + 1) * 4);
	memset(g->pbuckets, 0xff, (size_t)(g->nmask + 1) * 4);
	memset(g->ebuckets, 0xff, (size_t)(g->emask + 1) * 4);
	g->nfree = g->efree = g->sfree = NONE;
	g->closed_head = g->closed_tail = g->exited_head = g->exited_tail = NONE;
	*out = g;
	return 0;
}

void kl_graphd_free(struct kl_graphd *g)
{
	if (!g)
		return;
	if (g->nodes)
		for (uint32_t i = 0; i < g->nhigh; i++)
			free(g->nodes[i].label);
	slab_free(g->nodes, g->o.max_nodes, sizeof(*g->nodes));
	slab_free(g->edges, g->o.max_edges, sizeof(*g->edges));
	slab_free(g->sess, g->o.max_sessions, sizeof(*g->sess));
	free(g->ctrs);
	slab_free(g->nbuckets, (size_t)g->nmask + 1, 4);
	slab_free(g->pbuckets, (size_t)g->nmask + 1, 4);
	slab_free(g->ebuckets, (size_t)g->emask + 1, 4);
	free(g);
}

/* ---- queries ----------------------------------------------------------------- */

void kl_gq_result_reset(struct kl_gq_result *r)
{
	r->nnodes = r->nedges = r->nsessions = 0;
	r->truncated = false;
}

void kl_gq_result_free(struct kl_gq_result *r)
{
	free(r->nodes);
	free(r->edges);
	free(r->sessions);
	memset(r, 0, sizeof(*r));
}

static int grow(void **p, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	void *q = realloc(*p, nc * sz);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

static int put_node(struct kl_graphd *g, struct kl_gq_result *r, uint32_t i)
{
	struct node *n = &g->nodes[i];
	struct kl_gq_node *q;

	if (n->qmark == g->qepoch)
		return 0;
	if (grow((void **)&r->nodes, &r->cap_nodes, r->nnodes, sizeof(*r->nodes)))
		return -ENOMEM;
	n->qmark = g->qepoch;
	q = &r->nodes[r->nnodes++];
	memset(q, 0, sizeof(*q));
	q->id = n->id;
	q->kind = n->kind;
	q->label = n->label ? n->label : "";
	if (n->kind == KL_GN_PROCESS) {
		q->pid = n->pid;
		q->start_ns = n->start_ns;
		q->exit_ns = n->flags & NF_EXITED ? (n->exit_ns ? n->exit_ns : 1) : 0;
		q->session_id = n->sess != NONE ? g->sess[n->sess].id : 0;
		q->comm = n->comm;
		q->parent_id = n->parent_id;
		node_ctr(g, n, &q->ctr);
	}
	return 0;
}

static int put_edge(struct kl_graphd *g, struct kl_gq_result *r, uint32_t e, uint32_t max)
{
	struct edge *x = &g->edges[e];
	struct kl_gq_edge *q;
	const struct node *f = &g->nodes[x->from];

	if (r->nedges >= max) {
		r->truncated = true;
		return -ENOSPC;
	}
	if (grow((void **)&r->edges, &r->cap_edges, r->nedges, sizeof(*r->edges)) ||
	    put_node(g, r, x->from) || put_node(g, r, x->to))
		return -ENOMEM;
	q = &r->edges[r->nedges++];
	q->from = f->id;
	q->to = g->nodes[x->to].id;
	q->kind = x->kind;
	q->flags = x->flags;
	q->session_id = f->kind == KL_GN_PROCESS && f->sess != NONE ? g->sess[f->sess].id : 0;
	q->first_ns = x->first_ns;
	q->last_ns = x->last_ns;
	q->count = x->count;
	q->first_seq = x->first_seq;
	q->last_seq = x->last_seq;
	q->arg = x->arg;
	q->nseqs = x->nseq;
	for (uint32_t k = 0; k < x->nseq; k++)
		q->seqs[k] = x->seqs[(x->seqpos + NSEQ - x->nseq + k) % NSEQ];
	return 0;
}

static int put_session(struct kl_graphd *g, struct kl_gq_result *r, uint32_t si)
{
	struct session *s = &g->sess[si];
	struct kl_gq_session *q;
	const struct ctr *k = ctr_get(g, s->ctr, s->ctr_cgroup_id);

	if (grow((void **)&r->sessions, &r->cap_sessions, r->nsessions, sizeof(*r->sessions)))
		return -ENOMEM;
	q = &r->sessions[r->nsessions++];
	memset(q, 0, sizeof(*q));
	q->id = s->id;
	q->origin = s->origin;
	q->open = s->state == S_OPEN || s->state == S_CLOSING;
	q->cross = s->cross;
	q->truncated = s->truncated;
	q->root_id = s->id;
	q->root_pid = s->root_pid;
	q->root_start_ns = s->root_start_ns;
	/* the root's current image when it is still held (it was runc's at fork, say) */
	q->root_label = s->root != NONE && g->nodes[s->root].label ? g->nodes[s->root].label : s->root_label;
	q->root_comm = s->root_comm;
	q->ctr.cgroup_id = s->ctr_cgroup_id;
	if (k) {
		q->ctr.id = k->id;
		q->ctr.name = k->name;
		q->ctr.image = k->image;
		q->ctr.pod = k->pod;
		q->ctr.pod_ns = k->pod_ns;
	}
	q->start_ns = s->start_ns;
	q->end_ns = s->state == S_CLOSED ? s->end_ns : 0;
	q->procs = s->procs;
	q->live = s->live;
	q->edges = s->edges;
	return 0;
}

static uint32_t sess_find(const struct kl_graphd *g, uint64_t id)
{
	for (uint32_t si = 0; si < g->shigh; si++)
		if (g->sess[si].state != S_FREE && g->sess[si].id == id)
			return si;
	return NONE;
}

static bool any_match(const char *v, const char *const *list, size_t n, bool prefix)
{
	if (!n)
		return true;
	for (size_t k = 0; k < n; k++)
		if (v && list[k] && (prefix ? !strncmp(v, list[k], strlen(list[k])) : !strcmp(v, list[k])))
			return true;
	return false;
}

int kl_graphd_sessions(struct kl_graphd *g, const struct kl_gq_filter *f, struct kl_gq_result *r)
{
	struct kl_gq_filter none = { 0 };
	uint32_t limit;

	if (!f)
		f = &none;
	limit = f->limit ? f->limit : 1000;
	for (uint32_t si = 0; si < g->shigh; si++) {
		struct session *s = &g->sess[si];
		const struct ctr *k;
		if (s->state == S_FREE)
			continue;
		bool open = s->state != S_CLOSED;
		if ((f->state == 1 && !open) || (f->state == 2 && open))
			continue;
		if (f->since_ns && !open && s->end_ns < f->since_ns)
			continue;
		if (f->until_ns && s->start_ns > f->until_ns)
			continue;
		k = ctr_get(g, s->ctr, s->ctr_cgroup_id);
		if (!any_match(k ? k->pod_ns : NULL, f->namespaces, f->nnamespaces, false) ||
		    !any_match(k ? k->pod : NULL, f->pods, f->npods, false))
			continue;
		if (f->ncontainers && !any_match(k ? k->id : NULL, f->containers, f->ncontainers, true) &&
		    !any_match(k ? k->name : NULL, f->containers, f->ncontainers, false))
			continue;
		if (r->nsessions >= limit) {
			r->truncated = true;
			break;
		}
		if (put_session(g, r, si))
			return -ENOMEM;
	}
	return 0;
}

/* A session's processes, their out-edges and the in-edges from outside it. */
static int add_session_graph(struct kl_graphd *g, uint32_t si, uint32_t max, struct kl_gq_result *r)
{
	struct session *s = &g->sess[si];
	int err;

	if (s->truncated)
		r->truncated = true;
	for (uint32_t i = s->head; i != NONE; i = g->nodes[i].snext)
		if (put_node(g, r, i))
			return -ENOMEM;
	for (uint32_t i = s->head; i != NONE; i = g->nodes[i].snext) {
		for (uint32_t e = g->nodes[i].out_head; e != NONE; e = g->edges[e].onext)
			if ((err = put_edge(g, r, e, max)))
				return err == -ENOSPC ? 0 : err;
		for (uint32_t e = g->nodes[i].in_head; e != NONE; e = g->edges[e].inext) {
			const struct node *f = &g->nodes[g->edges[e].from];
			if (f->kind == KL_GN_PROCESS && f->sess == si)
				continue;   /* listed as its out-edge */
			if ((err = put_edge(g, r, e, max)))
				return err == -ENOSPC ? 0 : err;
		}
	}
	return 0;
}

int kl_graphd_session_graph(struct kl_graphd *g, uint64_t session_id, uint32_t max_edges, struct kl_gq_result *r)
{
	uint32_t si = sess_find(g, session_id);

	if (si == NONE)
		return -ENOENT;
	g->qepoch++;
	if (put_session(g, r, si))
		return -ENOMEM;
	return add_session_graph(g, si, max_edges ? max_edges : 10000, r);
}

int kl_graphd_lineage(struct kl_graphd *g, uint32_t pid, uint64_t start_ns, uint32_t max_depth,
		      struct kl_gq_result *r)
{
	uint32_t i = NONE, *queue = NULL;
	size_t qh = 0, qt = 0, qcap = 0;
	uint32_t max = 100000;
	int err = 0;

	if (start_ns) {
		i = node_find(g, kl_graph_proc_id(pid, start_ns));
	} else {
		uint64_t best = 0;
		for (uint32_t k = 0; k < g->nhigh; k++)
			if (g->nodes[k].id && g->nodes[k].kind == KL_GN_PROCESS && g->nodes[k].pid == pid &&
			    (i == NONE || g->nodes[k].start_ns > best)) {
				i = k;
				best = g->nodes[k].start_ns;
			}
	}
	if (i == NONE)
		return -ENOENT;
	if (!max_depth)
		max_depth = 64;
	g->qepoch++;
	if (put_node(g, r, i))
		return -ENOMEM;
	/* ancestors: parent links, with the FORK edge that made each child */
	for (uint32_t c = i, hops = 0; hops < 4096; hops++) {
		struct node *n = &g->nodes[c];
		if (n->parent == NONE || g->nodes[n->parent].id != n->parent_id)
			break;
		for (uint32_t e = n->in_head; e != NONE; e = g->edges[e].inext)
			if (g->edges[e].kind == KL_GE_FORK && g->edges[e].from == n->parent && put_edge(g, r, e, max))
				return -ENOMEM;
		if (put_node(g, r, n->parent))
			return -ENOMEM;
		c = n->parent;
	}
	/* descendants: breadth first over FORK edges, depth-limited */
	queue = malloc(64 * sizeof(*queue) * 2);
	if (!queue)
		return -ENOMEM;
	qcap = 64;
	queue[qt++] = i;
	queue[qt++] = 0;
	while (qh < qt) {
		uint32_t c = queue[qh++], d = queue[qh++];
		if (d >= max_depth)
			continue;
		for (uint32_t e = g->nodes[c].out_head; e != NONE; e = g->edges[e].onext) {
			if (g->edges[e].kind != KL_GE_FORK)
				continue;
			if ((err = put_edge(g, r, e, max)))
				goto out;
			if (qt + 2 > qcap * 2) {
				uint32_t *q = realloc(queue, qcap * 4 * sizeof(*queue));
				if (!q) {
					err = -ENOMEM;
					goto out;
				}
				queue = q;
				qcap *= 2;
			}
			queue[qt++] = g->edges[e].to;
			queue[qt++] = d + 1;
		}
	}
out:
	free(queue);
	return err == -ENOSPC ? 0 : err;
}

int kl_graphd_file_touchers(struct kl_graphd *g, const char *path, const char *ctr, uint32_t max_edges,
			    struct kl_gq_result *r)
{
	uint32_t max = max_edges ? max_edges : 1000;
	bool found = false;
	int err;

	if (!path || !path[0])
		return -EINVAL;
	g->qepoch++;
	for (uint32_t k = 0; k < g->nhigh; k++) {
		struct node *n = &g->nodes[k];
		if (!n->id || n->kind != KL_GN_FILE || !n->label || strcmp(n->label, path))
			continue;
		for (uint32_t e = n->in_head; e != NONE; e = g->edges[e].inext) {
			const struct node *f = &g->nodes[g->edges[e].from];
			if (ctr && ctr[0]) {
				const struct ctr *c = ctr_get(g, f->ctr, f->ctr_cgroup_id);
				if (!c || (strncmp(c->id, ctr, strlen(ctr)) && strcmp(c->name, ctr)))
					continue;
			}
			found = true;
			if ((err = put_edge(g, r, e, max)))
				return err == -ENOSPC ? 0 : err;
		}
	}
	return found ? 0 : -ENOENT;
}

int kl_graphd_reach(struct kl_graphd *g, uint64_t session_id, uint32_t max_depth, uint32_t max_edges,
		    struct kl_gq_result *r)
{
	uint32_t si = sess_find(g, session_id);
	uint32_t max = max_edges ? max_edges : 10000;
	size_t done = 0;
	uint32_t depth = 0;

	if (si == NONE)
		return -ENOENT;
	if (!max_depth)
		max_depth = 4;
	g->qepoch++;
	if (put_session(g, r, si))
		return -ENOMEM;
	/* sessions[] doubles as the BFS queue: each level adds the sessions its out-edges reach */
	while (done < r->nsessions && depth <= max_depth) {
		size_t level_end = r->nsessions;
		for (; done < level_end; done++) {
			uint32_t cur = sess_find(g, r->sessions[done].id);
			if (cur == NONE || add_session_graph(g, cur, max, r))
				continue;
			if (depth == max_depth)
				continue;
			for (uint32_t i = g->sess[cur].head; i != NONE; i = g->nodes[i].snext)
				for (uint32_t e = g->nodes[i].out_head; e != NONE; e = g->edges[e].onext) {
					const struct node *t = &g->nodes[g->edges[e].to];
					if (t->kind != KL_GN_PROCESS || t->sess == NONE || t->sess == cur)
						continue;
					bool seen = false;
					for (size_t k = 0; k < r->nsessions && !seen; k++)
						seen = r->sessions[k].id == g->sess[t->sess].id;
					if (!seen && put_session(g, r, t->sess))
						return -ENOMEM;
				}
		}
		depth++;
	}
	return 0;
}
