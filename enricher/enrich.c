/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enrich.c - the enricher's tables and per-event work.
 *
 * Identity of a process is (pid, start_ns): the collector stamps every
 * event with the thread-group leader's start time, so a reused pid is a
 * different key and can never inherit a dead process's exe or fds.
 * Every table is bounded; what does not fit is evicted (exited first,
 * then least recently seen) and counted. Expiry runs on event time, so
 * replaying a recorded stream gives the same output every time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <kloudlens/record.h>
#include <kloudlens/recutil.h>

#include "enrich.h"

#define PATH_CAP 4096
#define ENRICH_MAX ((size_t)6 * PATH_CAP)
#define TOMB ((void *)1)

/* x86_64 syscall numbers the tables react to */
enum {
	NR_read = 0, NR_write = 1, NR_open = 2, NR_close = 3, NR_fstat = 5, NR_lseek = 8, NR_mmap = 9,
	NR_pread64 = 17, NR_pwrite64 = 18, NR_readv = 19, NR_writev = 20, NR_pipe = 22, NR_dup = 32,
	NR_dup2 = 33, NR_sendfile = 40, NR_socket = 41, NR_connect = 42, NR_accept = 43, NR_sendto = 44,
	NR_recvfrom = 45, NR_sendmsg = 46, NR_recvmsg = 47, NR_shutdown = 48, NR_bind = 49, NR_listen = 50,
	NR_getsockname = 51, NR_getpeername = 52, NR_socketpair = 53, NR_setsockopt = 54,
	NR_getsockopt = 55, NR_execve = 59, NR_fcntl = 72, NR_flock = 73, NR_fsync = 74,
	NR_fdatasync = 75, NR_truncate = 76, NR_ftruncate = 77, NR_getdents = 78, NR_chdir = 80,
	NR_fchdir = 81, NR_rename = 82, NR_mkdir = 83, NR_rmdir = 84, NR_creat = 85, NR_link = 86,
	NR_unlink = 87, NR_symlink = 88, NR_readlink = 89, NR_chmod = 90, NR_fchmod = 91, NR_chown = 92,
	NR_fchown = 93, NR_lchown = 94, NR_mknod = 133, NR_pivot_root = 155, NR_chroot = 161,
	NR_mount = 165, NR_umount2 = 166, NR_getdents64 = 217, NR_openat = 257, NR_mkdirat = 258,
	NR_mknodat = 259, NR_fchownat = 260, NR_newfstatat = 262, NR_unlinkat = 263, NR_renameat = 264,
	NR_linkat = 265, NR_symlinkat = 266, NR_readlinkat = 267, NR_fchmodat = 268, NR_faccessat = 269,
	NR_splice = 275, NR_tee = 276, NR_accept4 = 288, NR_dup3 = 292, NR_pipe2 = 293,
	NR_recvmmsg = 299, NR_sendmmsg = 307, NR_renameat2 = 316, NR_memfd_create = 319,
	NR_execveat = 322, NR_copy_file_range = 326, NR_statx = 332, NR_close_range = 436,
	NR_openat2 = 437, NR_faccessat2 = 439,
};

#define AT_FDCWD_ARG ((uint64_t)(int64_t)-100)
#define CLOSE_RANGE_CLOEXEC_FLAG 4u
#define DUPFD 0
#define SETFD 2
#define DUPFD_CLOEXEC 1030

struct fdent {
	char *path;             /* files, pipes, memfds */
	uint8_t *local;         /* sockaddr bytes */
	uint8_t *peer;
	uint16_t local_len;
	uint16_t peer_len;
	uint8_t kind;           /* enum kl_fd_kind; KL_FD_UNKNOWN = slot empty */
	uint8_t cloexec;
};

struct proc;

struct ctr {
	uint64_t cgroup_id;
	uint32_t mnt_ns;
	uint32_t runtime;
	uint64_t stop_ns;       /* 0 while running */
	char *id, *name, *image, *pod, *pod_ns, *pod_uid;
	struct ctr *next_stopped;
};

struct proc {
	uint32_t pid;
	uint64_t start_ns;
	uint32_t ppid;
	uint64_t pstart;
	uint32_t uid, gid;
	char *exe;
	char *argv;             /* NUL-separated */
	uint32_t argv_len;
	char *cwd;
	struct fdent *fds;
	uint32_t nfds;          /* allocated slots */
	uint64_t exit_ns;       /* 0 while alive */
	bool stub;
	bool entered;           /* a runtime's init put into a container, not exec'd since */
	uint64_t ctr_cache_cg;  /* cgroup id the cached match was made for */
	uint64_t ctr_cache_gen; /* table generation it was made in */
	struct ctr *ctr_cache;  /* may be NULL: "on the host" is cached too */
	bool ctr_cache_by_ns;
	struct proc *lru_prev, *lru_next;  /* live list, most recent first */
	struct proc *exit_next;             /* exited FIFO */
};

/* Open-addressing map keyed by (a, b). */
struct kent {
	uint64_t a, b;
	void *v;
};

struct kmap {
	struct kent *e;
	uint32_t cap;           /* power of two */
	uint32_t n;
	uint32_t tombs;
};

struct kl_enricher {
	struct kl_enricher_opts o;
	struct kmap procs;
	struct kmap ctrs_cg;    /* cgroup id -> ctr */
	struct kmap ctrs_mnt;   /* mnt ns -> ctr */
	struct proc *lru_head, *lru_tail;
	struct proc *exit_head, *exit_tail;
	struct ctr *stop_head, *stop_tail;
	struct kl_enricher_stats st;
	uint64_t now;           /* latest event time seen */
	uint64_t ctr_gen;       /* bumped on any container table change: invalidates caches */
	char scratch[PATH_CAP];
	char scratch2[PATH_CAP];
};

/* ---- map --------------------------------------------------------------- */

static uint64_t mix64(uint64_t a, uint64_t b)
{
	uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x7f4a7c159e3779b9ULL + (a << 6) + (a >> 2));
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x;
}

static int kmap_init(struct kmap *m, uint32_t cap)
{
	m->e = calloc(cap, sizeof(*m->e));
	if (!m->e)
		return -ENOMEM;
	m->cap = cap;
	m->n = m->tombs = 0;
	return 0;
}

static void *kmap_get(const struct kmap *m, uint64_t a, uint64_t b)
{
	uint32_t mask = m->cap - 1, i = (uint32_t)mix64(a, b) & mask;

	for (uint32_t k = 0; k < m->cap; k++, i = (i + 1) & mask) {
		struct kent *e = &m->e[i];
		if (!e->v)
			return NULL;
		if (e->v != TOMB && e->a == a && e->b == b)
			return e->v;
	}
	return NULL;
}

static int kmap_rehash(struct kmap *m, uint32_t cap);

static int kmap_put(struct kmap *m, uint64_t a, uint64_t b, void *v)
{
	if ((m->n + m->tombs + 1) * 4 > m->cap * 3) {
		int err = kmap_rehash(m, m->n * 4 > m->cap ? m->cap * 2 : m->cap);
		if (err)
			return err;
	}
	uint32_t mask = m->cap - 1, i = (uint32_t)mix64(a, b) & mask;
	struct kent *tomb = NULL;

	for (;; i = (i + 1) & mask) {
		struct kent *e = &m->e[i];
		if (!e->v) {
			if (tomb) {
				e = tomb;
				m->tombs--;
			}
			e->a = a;
			e->b = b;
			e->v = v;
			m->n++;
			return 0;
		}
		if (e->v == TOMB) {
			if (!tomb)
				tomb = e;
		} else if (e->a == a && e->b == b) {
			e->v = v;
			return 0;
		}
	}
}

static int kmap_rehash(struct kmap *m, uint32_t cap)
{
	struct kmap n;
	int err = kmap_init(&n, cap);

	if (err)
		return err;
	for (uint32_t i = 0; i < m->cap; i++)
		if (m->e[i].v && m->e[i].v != TOMB)
			kmap_put(&n, m->e[i].a, m->e[i].b, m->e[i].v);
	free(m->e);
	*m = n;
	return 0;
}

static void kmap_del(struct kmap *m, uint64_t a, uint64_t b, const void *v)
{
	uint32_t mask = m->cap - 1, i = (uint32_t)mix64(a, b) & mask;

	for (uint32_t k = 0; k < m->cap; k++, i = (i + 1) & mask) {
		struct kent *e = &m->e[i];
		if (!e->v)
			return;
		if (e->v != TOMB && e->a == a && e->b == b) {
			if (v && e->v != v)
				return;  /* the key now names a newer object */
			e->v = TOMB;
			m->n--;
			m->tombs++;
			return;
		}
	}
}

/* ---- helpers ------------------------------------------------------------ */

static char *xstrndup(const void *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

static void *xmemdup(const void *s, size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p)
		memcpy(p, s, n);
	return p;
}

static void set_str(char **dst, const void *s, size_t n)
{
	char *p = xstrndup(s, n);

	if (p) {
		free(*dst);
		*dst = p;
	}
}

static bool field_str(uint16_t type, const void *rec, size_t len, uint16_t id, char *buf, size_t cap)
{
	struct kl_field_view f;
	size_t n;

	if (!kl_field_find(type, rec, len, id, &f))
		return false;
	n = strnlen((const char *)f.data, f.len);
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, f.data, n);
	buf[n] = 0;
	return true;
}

/* ---- fd table --------------------------------------------------------- */

static void fd_clear(struct kl_enricher *e, struct fdent *f)
{
	if (f->kind == KL_FD_UNKNOWN)
		return;
	free(f->path);
	free(f->local);
	free(f->peer);
	memset(f, 0, sizeof(*f));
	e->st.fd_entries--;
}

static struct fdent *fd_get(struct proc *p, int64_t fd)
{
	if (fd < 0 || (uint64_t)fd >= p->nfds || p->fds[fd].kind == KL_FD_UNKNOWN)
		return NULL;
	return &p->fds[fd];
}

/* A fresh (cleared) slot for @fd, or NULL if over the caps (counted). */
static struct fdent *fd_slot(struct kl_enricher *e, struct proc *p, int64_t fd)
{
	if (fd < 0 || (uint64_t)fd >= e->o.max_fds_per_proc) {
		e->st.fd_untracked++;
		return NULL;
	}
	if ((uint64_t)fd >= p->nfds) {
		uint32_t n = p->nfds ? p->nfds : 16;
		while (n <= (uint64_t)fd)
			n *= 2;
		if (n > e->o.max_fds_per_proc)
			n = e->o.max_fds_per_proc;
		struct fdent *nf = realloc(p->fds, (size_t)n * sizeof(*nf));
		if (!nf) {
			e->st.fd_untracked++;
			return NULL;
		}
		memset(nf + p->nfds, 0, (size_t)(n - p->nfds) * sizeof(*nf));
		p->fds = nf;
		p->nfds = n;
	}
	struct fdent *f = &p->fds[fd];
	fd_clear(e, f);
	if (e->st.fd_entries >= e->o.max_fd_entries) {
		e->st.fd_untracked++;
		return NULL;
	}
	e->st.fd_entries++;
	return f;
}

static void fd_copy(struct kl_enricher *e, struct proc *p, int64_t to, const struct fdent *from, bool cloexec)
{
	struct fdent src = *from;   /* from may move when the table grows */
	char *path = src.path ? strdup(src.path) : NULL;
	uint8_t *l = src.local ? xmemdup(src.local, src.local_len) : NULL;
	uint8_t *r = src.peer ? xmemdup(src.peer, src.peer_len) : NULL;
	struct fdent *f = fd_slot(e, p, to);

	if (!f) {
		free(path);
		free(l);
		free(r);
		return;
	}
	f->kind = src.kind;
	f->path = path;
	f->local = l;
	f->local_len = l ? src.local_len : 0;
	f->peer = r;
	f->peer_len = r ? src.peer_len : 0;
	f->cloexec = cloexec;
}

static void fd_table_free(struct kl_enricher *e, struct proc *p)
{
	for (uint32_t i = 0; i < p->nfds; i++)
		fd_clear(e, &p->fds[i]);
	free(p->fds);
	p->fds = NULL;
	p->nfds = 0;
}

/* ---- process table ---------------------------------------------------- */

static void lru_unlink(struct kl_enricher *e, struct proc *p)
{
	if (p->lru_prev)
		p->lru_prev->lru_next = p->lru_next;
	else if (e->lru_head == p)
		e->lru_head = p->lru_next;
	if (p->lru_next)
		p->lru_next->lru_prev = p->lru_prev;
	else if (e->lru_tail == p)
		e->lru_tail = p->lru_prev;
	p->lru_prev = p->lru_next = NULL;
}

static void lru_push(struct kl_enricher *e, struct proc *p)
{
	p->lru_prev = NULL;
	p->lru_next = e->lru_head;
	if (e->lru_head)
		e->lru_head->lru_prev = p;
	e->lru_head = p;
	if (!e->lru_tail)
		e->lru_tail = p;
}

static void proc_free(struct kl_enricher *e, struct proc *p)
{
	kmap_del(&e->procs, p->pid, p->start_ns, p);
	fd_table_free(e, p);
	free(p->exe);
	free(p->argv);
	free(p->cwd);
	free(p);
	e->st.procs--;
}

static void evict_one(struct kl_enricher *e)
{
	struct proc *p = e->exit_head;

	if (p) {
		e->exit_head = p->exit_next;
		if (!e->exit_head)
			e->exit_tail = NULL;
	} else {
		p = e->lru_tail;
		if (!p)
			return;
		lru_unlink(e, p);
	}
	e->st.procs_evicted++;
	proc_free(e, p);
}

static void expire(struct kl_enricher *e)
{
	while (e->exit_head && e->now > e->exit_head->exit_ns + e->o.exit_grace_ns) {
		struct proc *p = e->exit_head;
		e->exit_head = p->exit_next;
		if (!e->exit_head)
			e->exit_tail = NULL;
		e->st.procs_expired++;
		proc_free(e, p);
	}
	while (e->stop_head && e->now > e->stop_head->stop_ns + e->o.ctr_grace_ns) {
		struct ctr *c = e->stop_head;
		e->stop_head = c->next_stopped;
		if (!e->stop_head)
			e->stop_tail = NULL;
		kmap_del(&e->ctrs_cg, c->cgroup_id, 0, c);
		kmap_del(&e->ctrs_mnt, c->mnt_ns, 0, c);
		e->ctr_gen++;
		free(c->id);
		free(c->name);
		free(c->image);
		free(c->pod);
		free(c->pod_ns);
		free(c->pod_uid);
		free(c);
		e->st.containers--;
	}
}

static struct proc *proc_new(struct kl_enricher *e, uint32_t pid, uint64_t start_ns)
{
	struct proc *p;

	if (e->st.procs >= e->o.max_procs)
		evict_one(e);
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->start_ns = start_ns;
	if (kmap_put(&e->procs, pid, start_ns, p)) {
		free(p);
		return NULL;
	}
	lru_push(e, p);
	e->st.procs++;
	return p;
}

static void proc_touch(struct kl_enricher *e, struct proc *p)
{
	if (!p->exit_ns && e->lru_head != p) {
		lru_unlink(e, p);
		lru_push(e, p);
	}
}

/* The process an event belongs to; a stub if the agent never saw it start. */
static struct proc *proc_for(struct kl_enricher *e, const struct kl_event *ev)
{
	struct proc *p = kmap_get(&e->procs, ev->pid, ev->start_ns);

	if (p) {
		proc_touch(e, p);
		return p;
	}
	p = proc_new(e, ev->pid, ev->start_ns);
	if (!p)
		return NULL;
	p->stub = true;
	p->ppid = ev->ppid;
	p->uid = ev->uid;
	p->gid = ev->gid;
	e->st.procs_stub++;
	return p;
}

static void proc_exit(struct kl_enricher *e, struct proc *p, uint64_t ts)
{
	if (p->exit_ns)
		return;
	p->exit_ns = ts ? ts : 1;
	lru_unlink(e, p);
	p->exit_next = NULL;
	if (e->exit_tail)
		e->exit_tail->exit_next = p;
	else
		e->exit_head = p;
	e->exit_tail = p;
	/* Late events may still name its fds, so they stay until expiry. */
}

/* ---- containers ------------------------------------------------------- */

static struct ctr *ctr_for(struct kl_enricher *e, struct proc *p, const struct kl_event *ev, bool *by_ns)
{
	struct ctr *c;

	*by_ns = false;
	if (p && p->ctr_cache_gen == e->ctr_gen && p->ctr_cache_cg == ev->cgroup_id) {
		*by_ns = p->ctr_cache_by_ns;
		return p->ctr_cache;
	}
	c = kmap_get(&e->ctrs_cg, ev->cgroup_id, 0);
	if (!c && ev->mnt_ns) {
		c = kmap_get(&e->ctrs_mnt, ev->mnt_ns, 0);
		*by_ns = c != NULL;
	}
	if (p) {
		p->ctr_cache = c;
		p->ctr_cache_cg = ev->cgroup_id;
		p->ctr_cache_gen = e->ctr_gen;
		p->ctr_cache_by_ns = *by_ns;
	}
	return c;
}

static void ctr_record(struct kl_enricher *e, const void *rec, size_t len)
{
	struct kl_container kc;
	struct kl_field_iter it;
	struct kl_field_view f;
	struct ctr *c;

	memcpy(&kc, rec, sizeof(kc));
	c = kmap_get(&e->ctrs_cg, kc.ev.cgroup_id, 0);
	e->ctr_gen++;
	if (kc.kind == KL_CTR_STOP) {
		if (c && !c->stop_ns) {
			c->stop_ns = kc.ev.ts_ns ? kc.ev.ts_ns : 1;
			c->next_stopped = NULL;
			if (e->stop_tail)
				e->stop_tail->next_stopped = c;
			else
				e->stop_head = c;
			e->stop_tail = c;
		}
		return;
	}
	if (!c) {
		if (e->st.containers >= e->o.max_containers) {
			e->st.containers_evicted++;
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c)
			return;
		c->cgroup_id = kc.ev.cgroup_id;
		if (kmap_put(&e->ctrs_cg, c->cgroup_id, 0, c)) {
			free(c);
			return;
		}
		e->st.containers++;
	} else if (c->stop_ns) {
		return;  /* a stopped container is not revived by a late start record */
	}
	c->runtime = kc.runtime;
	if (kc.mnt_ns && kc.mnt_ns != c->mnt_ns) {
		c->mnt_ns = kc.mnt_ns;
		kmap_put(&e->ctrs_mnt, c->mnt_ns, 0, c);
	}
	if (kl_field_iter_init(&it, KL_REC_CONTAINER, rec, len))
		return;
	while (kl_field_next(&it, &f)) {
		size_t n = strnlen((const char *)f.data, f.len);
		switch (f.id) {
		case KL_F_CONTAINER_ID: set_str(&c->id, f.data, n); break;
		case KL_F_CONTAINER_NAME: set_str(&c->name, f.data, n); break;
		case KL_F_IMAGE: set_str(&c->image, f.data, n); break;
		case KL_F_POD_NAME: set_str(&c->pod, f.data, n); break;
		case KL_F_POD_NAMESPACE: set_str(&c->pod_ns, f.data, n); break;
		case KL_F_POD_UID: set_str(&c->pod_uid, f.data, n); break;
		}
	}
}

/* ---- lifecycle -------------------------------------------------------- */

static void proc_record(struct kl_enricher *e, const void *rec, size_t len)
{
	struct kl_proc kp;
	struct kl_field_view f;
	struct proc *p;

	memcpy(&kp, rec, sizeof(kp));
	switch (kp.kind) {
	case KL_PROC_FORK: {
		if (kp.child_tid && kp.child_tid != kp.ev.pid)
			return;  /* a new thread: same process */
		struct proc *parent = kmap_get(&e->procs, kp.parent_pid, kp.parent_start_ns);
		p = kmap_get(&e->procs, kp.ev.pid, kp.ev.start_ns);
		if (!p)
			p = proc_new(e, kp.ev.pid, kp.ev.start_ns);
		if (!p)
			return;
		p->stub = false;
		p->ppid = kp.parent_pid;
		p->pstart = kp.parent_start_ns;
		p->uid = kp.ev.uid;
		p->gid = kp.ev.gid;
		/* born into another pid namespace, or the child of such a process before
		 * it exec'd: still the runtime's image (runc/crun init) */
		p->entered = (kp.ev.flags & KL_EV_NEW_PIDNS) || (parent && parent != p && parent->entered);
		if (parent && parent != p) {
			if (parent->exe)
				set_str(&p->exe, parent->exe, strlen(parent->exe));
			if (parent->argv) {
				free(p->argv);
				p->argv = xstrndup(parent->argv, parent->argv_len);
				p->argv_len = p->argv ? parent->argv_len : 0;
			}
			if (parent->cwd)
				set_str(&p->cwd, parent->cwd, strlen(parent->cwd));
			/* The child inherits a copy of the parent's descriptor table. */
			for (uint32_t i = 0; i < parent->nfds; i++)
				if (parent->fds[i].kind != KL_FD_UNKNOWN)
					fd_copy(e, p, i, &parent->fds[i], parent->fds[i].cloexec);
		}
		break;
	}
	case KL_PROC_EXEC:
	case KL_PROC_SNAPSHOT:
		p = kmap_get(&e->procs, kp.ev.pid, kp.ev.start_ns);
		if (!p)
			p = proc_new(e, kp.ev.pid, kp.ev.start_ns);
		if (!p)
			return;
		p->stub = false;
		if (kp.kind == KL_PROC_SNAPSHOT || !p->ppid) {
			p->ppid = kp.parent_pid ? kp.parent_pid : kp.ev.ppid;
			if (kp.parent_start_ns)
				p->pstart = kp.parent_start_ns;
		}
		p->uid = kp.ev.uid;
		p->gid = kp.ev.gid;
		if (kl_field_find(KL_REC_PROC, rec, len, KL_F_EXE, &f) ||
		    kl_field_find(KL_REC_PROC, rec, len, KL_F_FILENAME, &f))
			set_str(&p->exe, f.data, strnlen((const char *)f.data, f.len));
		if (kl_field_find(KL_REC_PROC, rec, len, KL_F_ARGV, &f)) {
			free(p->argv);
			p->argv = xstrndup(f.data, f.len);
			p->argv_len = p->argv ? f.len : 0;
		}
		if (kl_field_find(KL_REC_PROC, rec, len, KL_F_CWD, &f))
			set_str(&p->cwd, f.data, strnlen((const char *)f.data, f.len));
		if (kp.kind == KL_PROC_EXEC)
			p->entered = false;   /* the image the runtime was asked to run: the workload */
		if (kp.kind == KL_PROC_EXEC)
			for (uint32_t i = 0; i < p->nfds; i++)
				if (p->fds[i].cloexec)
					fd_clear(e, &p->fds[i]);
		break;
	case KL_PROC_EXIT:
		p = kmap_get(&e->procs, kp.ev.pid, kp.ev.start_ns);
		if (p)
			proc_exit(e, p, kp.ev.ts_ns);
		break;
	}
}

/* ---- syscalls --------------------------------------------------------- */

static uint8_t sock_kind(uint64_t domain)
{
	switch (domain) {
	case AF_INET: return KL_FD_SOCK_INET;
	case AF_INET6: return KL_FD_SOCK_INET6;
	case AF_UNIX: return KL_FD_SOCK_UNIX;
	default: return KL_FD_SOCK_OTHER;
	}
}

/*
 * Absolute form of a path argument: against cwd when @dirfd_arg is -1 or
 * the argument holds AT_FDCWD, against the directory fd otherwise.
 * Return: true with @out filled.
 */
static bool abs_path(struct proc *p, const struct kl_syscall *sc, const char *path, int dirfd_arg,
		     char *out, size_t cap)
{
	const char *base = NULL;

	if (path[0] == '/') {
		return kl_path_join(NULL, path, out, cap) == 0;
	}
	if (dirfd_arg < 0 || sc->args[dirfd_arg] == AT_FDCWD_ARG) {
		base = p ? p->cwd : NULL;
	} else {
		struct fdent *f = p ? fd_get(p, (int64_t)sc->args[dirfd_arg]) : NULL;
		base = f ? f->path : NULL;
	}
	if (!base)
		return false;
	return kl_path_join(base, path, out, cap) == 0;
}

/* Which argument is a dirfd for the first and second path: -1 = cwd, -2 = not a path. */
static void path_dirfds(uint32_t nr, int *d1, int *d2)
{
	*d1 = -1;
	*d2 = -2;
	switch (nr) {
	case NR_openat: case NR_openat2: case NR_mkdirat: case NR_mknodat: case NR_fchownat:
	case NR_unlinkat: case NR_fchmodat: case NR_newfstatat: case NR_readlinkat: case NR_faccessat:
	case NR_faccessat2: case NR_execveat: case NR_statx:
		*d1 = 0;
		break;
	case NR_renameat: case NR_renameat2: case NR_linkat:
		*d1 = 0;
		*d2 = 2;
		break;
	case NR_rename: case NR_link: case NR_mount: case NR_pivot_root:
		*d2 = -1;
		break;
	case NR_symlink:
		*d1 = -2;       /* the target is link content, not resolved */
		*d2 = -1;
		break;
	case NR_symlinkat:
		*d1 = -2;
		*d2 = 1;
		break;
	case NR_memfd_create:
		*d1 = -2;
		break;
	}
}

/* The fd arguments a syscall acts on (first, second), or -1. */
static void fd_args(uint32_t nr, int *a1, int *a2)
{
	*a1 = -1;
	*a2 = -1;
	switch (nr) {
	case NR_read: case NR_write: case NR_close: case NR_fstat: case NR_lseek: case NR_pread64:
	case NR_pwrite64: case NR_readv: case NR_writev: case NR_dup: case NR_connect: case NR_accept:
	case NR_sendto: case NR_recvfrom: case NR_sendmsg: case NR_recvmsg: case NR_shutdown:
	case NR_bind: case NR_listen: case NR_getsockname: case NR_getpeername: case NR_setsockopt:
	case NR_getsockopt: case NR_fcntl: case NR_flock: case NR_fsync: case NR_fdatasync:
	case NR_ftruncate: case NR_getdents: case NR_fchdir: case NR_fchmod: case NR_fchown:
	case NR_getdents64: case NR_accept4: case NR_recvmmsg: case NR_sendmmsg:
		*a1 = 0;
		break;
	case NR_dup2: case NR_dup3:
		*a1 = 0;
		*a2 = 1;
		break;
	case NR_mmap:
		*a1 = 4;
		break;
	case NR_sendfile:          /* out_fd, in_fd */
		*a1 = 0;
		*a2 = 1;
		break;
	case NR_splice: case NR_copy_file_range:  /* fd_in, off, fd_out */
		*a1 = 0;
		*a2 = 2;
		break;
	case NR_tee:
		*a1 = 0;
		*a2 = 1;
		break;
	}
}

/* Update the fd table and cwd from a completed syscall. */
static void syscall_effects(struct kl_enricher *e, struct proc *p, const struct kl_syscall *sc,
			    const void *rec, size_t len, const char *abs1)
{
	int64_t ret = sc->ret;
	struct kl_field_view fv;
	struct fdent *f, *src;

	if (!p || (sc->sflags & KL_SC_ENTRY_ONLY))
		return;
	switch (sc->nr) {
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
		if (ret < 0)
			return;
		f = fd_slot(e, p, ret);
		if (!f)
			return;
		f->kind = KL_FD_FILE;
		if (abs1)
			f->path = strdup(abs1);
		else if (field_str(KL_REC_SYSCALL, rec, len, KL_F_PATH, e->scratch2, sizeof(e->scratch2)))
			f->path = strdup(e->scratch2);  /* relative to something we do not know */
		if (sc->nr == NR_open)
			f->cloexec = (sc->args[1] & O_CLOEXEC) != 0;
		else if (sc->nr == NR_openat)
			f->cloexec = (sc->args[2] & O_CLOEXEC) != 0;
		break;
	case NR_memfd_create:
		if (ret < 0)
			return;
		f = fd_slot(e, p, ret);
		if (!f)
			return;
		f->kind = KL_FD_MEMFD;
		if (field_str(KL_REC_SYSCALL, rec, len, KL_F_PATH, e->scratch2, sizeof(e->scratch2)) ||
		    field_str(KL_REC_SYSCALL, rec, len, KL_F_NAME, e->scratch2, sizeof(e->scratch2))) {
			size_t n = strlen(e->scratch2);
			f->path = malloc(n + 8);
			if (f->path) {
				memcpy(f->path, "memfd:", 6);
				memcpy(f->path + 6, e->scratch2, n + 1);
			}
		}
		f->cloexec = (sc->args[1] & 1u) != 0;  /* MFD_CLOEXEC */
		break;
	case NR_socket:
		if (ret < 0)
			return;
		f = fd_slot(e, p, ret);
		if (!f)
			return;
		f->kind = sock_kind(sc->args[0]);
		f->cloexec = (sc->args[1] & SOCK_CLOEXEC) != 0;
		break;
	case NR_socketpair: case NR_pipe: case NR_pipe2: {
		int32_t fds[2];
		if (ret < 0 || !kl_field_find(KL_REC_SYSCALL, rec, len, KL_F_FDS, &fv) || fv.len < sizeof(fds))
			return;
		memcpy(fds, fv.data, sizeof(fds));
		bool cloexec = sc->nr == NR_socketpair ? (sc->args[1] & SOCK_CLOEXEC) != 0
			     : sc->nr == NR_pipe2 ? (sc->args[1] & O_CLOEXEC) != 0 : false;
		for (int i = 0; i < 2; i++) {
			f = fd_slot(e, p, fds[i]);
			if (!f)
				continue;
			f->kind = sc->nr == NR_socketpair ? sock_kind(sc->args[0]) : KL_FD_PIPE;
			f->path = strdup(sc->nr == NR_socketpair ? "socketpair" : i ? "pipe:w" : "pipe:r");
			f->cloexec = cloexec;
		}
		break;
	}
	case NR_accept: case NR_accept4: {
		if (ret < 0)
			return;
		src = fd_get(p, (int64_t)sc->args[0]);
		struct fdent lst = src ? *src : (struct fdent){ 0 };
		uint8_t *local = lst.local ? xmemdup(lst.local, lst.local_len) : NULL;
		f = fd_slot(e, p, ret);
		if (!f) {
			free(local);
			return;
		}
		f->kind = lst.kind != KL_FD_UNKNOWN ? lst.kind : KL_FD_SOCK_OTHER;
		f->local = local;
		f->local_len = local ? lst.local_len : 0;
		if (kl_field_find(KL_REC_SYSCALL, rec, len, KL_F_SOCKADDR2, &fv) ||
		    kl_field_find(KL_REC_SYSCALL, rec, len, KL_F_SOCKADDR, &fv)) {
			f->peer = xmemdup(fv.data, fv.len);
			f->peer_len = f->peer ? fv.len : 0;
		}
		f->cloexec = sc->nr == NR_accept4 && (sc->args[3] & SOCK_CLOEXEC);
		break;
	}
	case NR_connect: case NR_bind:
		if (ret != 0 && !(sc->nr == NR_connect && ret == -115 /* EINPROGRESS */))
			return;
		f = fd_get(p, (int64_t)sc->args[0]);
		if (!f || !kl_field_find(KL_REC_SYSCALL, rec, len, KL_F_SOCKADDR, &fv))
			return;
		if (sc->nr == NR_connect) {
			free(f->peer);
			f->peer = xmemdup(fv.data, fv.len);
			f->peer_len = f->peer ? fv.len : 0;
		} else {
			free(f->local);
			f->local = xmemdup(fv.data, fv.len);
			f->local_len = f->local ? fv.len : 0;
		}
		break;
	case NR_close:
		/* Linux frees the descriptor even when close reports EINTR. */
		if (ret == 0 || ret == -4) {
			f = fd_get(p, (int64_t)sc->args[0]);
			if (f)
				fd_clear(e, f);
		}
		break;
	case NR_close_range: {
		if (ret != 0)
			return;
		uint64_t lo = sc->args[0], hi = sc->args[1];
		if (hi >= p->nfds)
			hi = p->nfds ? p->nfds - 1 : 0;
		for (uint64_t i = lo; i <= hi && i < p->nfds; i++) {
			if (sc->args[2] & CLOSE_RANGE_CLOEXEC_FLAG)
				p->fds[i].cloexec = p->fds[i].kind != KL_FD_UNKNOWN;
			else
				fd_clear(e, &p->fds[i]);
		}
		break;
	}
	case NR_dup: case NR_dup2: case NR_dup3:
		if (ret < 0)
			return;
		src = fd_get(p, (int64_t)sc->args[0]);
		if (sc->nr != NR_dup && sc->args[0] == sc->args[1])
			return;  /* dup2(fd, fd) changes nothing */
		if (!src) {
			/* Unknown source: the target no longer is what we thought. */
			f = fd_get(p, ret);
			if (f)
				fd_clear(e, f);
			return;
		}
		fd_copy(e, p, ret, src, sc->nr == NR_dup3 && (sc->args[2] & O_CLOEXEC));
		break;
	case NR_fcntl:
		if (ret < 0)
			return;
		if (sc->args[1] == DUPFD || sc->args[1] == DUPFD_CLOEXEC) {
			src = fd_get(p, (int64_t)sc->args[0]);
			if (src)
				fd_copy(e, p, ret, src, sc->args[1] == DUPFD_CLOEXEC);
		} else if (sc->args[1] == SETFD) {
			f = fd_get(p, (int64_t)sc->args[0]);
			if (f)
				f->cloexec = (sc->args[2] & FD_CLOEXEC) != 0;
		}
		break;
	case NR_chdir:
		if (ret == 0 && abs1)
			set_str(&p->cwd, abs1, strlen(abs1));
		break;
	case NR_fchdir:
		if (ret == 0) {
			f = fd_get(p, (int64_t)sc->args[0]);
			if (f && f->path)
				set_str(&p->cwd, f->path, strlen(f->path));
		}
		break;
	}
}

/* ---- output ------------------------------------------------------------- */

static void add_fd_fields(struct kl_tail_builder *b, const struct fdent *f, uint16_t path_id, bool addrs)
{
	if (f->path)
		kl_tail_add_str(b, path_id, f->path);
	if (addrs && f->local)
		kl_tail_add(b, KL_F_LOCAL_ADDR, f->local, f->local_len);
	if (addrs && f->peer)
		kl_tail_add(b, KL_F_PEER_ADDR, f->peer, f->peer_len);
}

size_t kl_enricher_out_size(size_t len)
{
	return sizeof(struct kl_enriched) + ((len + 7) & ~(size_t)7) + ENRICH_MAX;
}

long kl_enricher_process(struct kl_enricher *e, uint16_t type, const void *rec, size_t len,
			 void *out, size_t cap)
{
	struct kl_enriched en;
	struct kl_event ev;
	struct kl_tail_builder b;
	struct kl_syscall sc;
	struct proc *p = NULL;
	struct ctr *c = NULL;
	bool by_ns = false, have_abs1 = false, have_abs2 = false;
	size_t span = (len + 7) & ~(size_t)7;

	e->st.events++;
	if (kl_rec_validate(type, rec, len) != KL_REC_OK || type == KL_REC_ENRICHED ||
	    !kl_rec_info(type)->has_event_head) {
		e->st.invalid++;
		return -EBADMSG;
	}
	if (cap < sizeof(en) + span + 64)
		return -EMSGSIZE;
	memcpy(&ev, rec, sizeof(ev));
	if (ev.ts_ns > e->now)
		e->now = ev.ts_ns;
	expire(e);

	/* Lifecycle records update the tables before they are described. */
	if (type == KL_REC_PROC)
		proc_record(e, rec, len);
	else if (type == KL_REC_CONTAINER)
		ctr_record(e, rec, len);

	if (ev.pid && type != KL_REC_CONTAINER) {
		p = kmap_get(&e->procs, ev.pid, ev.start_ns);
		if (p)
			proc_touch(e, p);
		else if (type == KL_REC_SYSCALL || type == KL_REC_SOCK || type == KL_REC_DNS)
			p = proc_for(e, &ev);
	}
	c = ctr_for(e, p, &ev, &by_ns);

	memset(&en, 0, sizeof(en));
	en.ev = ev;
	en.ev.flags &= ~KL_EV_TRUNCATED;
	en.raw_type = type;
	en.raw_len = (uint32_t)len;
	if (p) {
		en.eflags |= p->stub ? KL_EN_PROC_STUB : KL_EN_PROC_KNOWN;
		if (p->entered)
			en.eflags |= KL_EN_ENTERED;
		if (p->exit_ns && type != KL_REC_PROC)
			en.eflags |= KL_EN_EXITED;
		en.parent_pid = p->ppid;
		en.parent_start_ns = p->pstart;
	}
	if (c) {
		en.eflags |= KL_EN_CTR_KNOWN | (by_ns ? KL_EN_CTR_BY_NS : 0);
		en.ctr_cgroup_id = c->cgroup_id;
		e->st.ctr_matched++;
		if (by_ns)
			e->st.ctr_by_ns++;
	}

	uint8_t *o = out;
	memcpy(o + sizeof(en), rec, len);
	memset(o + sizeof(en) + len, 0, span - len);
	kl_tail_init(&b, o, sizeof(en), cap);
	b.len = sizeof(en) + span;

	if (p) {
		if (p->exe)
			kl_tail_add_str(&b, KL_F_EXE, p->exe);
		if (p->argv)
			kl_tail_add(&b, KL_F_ARGV, p->argv,
				    p->argv_len < e->o.max_argv ? p->argv_len : e->o.max_argv);
		if (p->cwd)
			kl_tail_add_str(&b, KL_F_CWD, p->cwd);
		struct proc *pp = p->ppid ? kmap_get(&e->procs, p->ppid, p->pstart) : NULL;
		if (pp && pp->exe)
			kl_tail_add_str(&b, KL_F_PARENT_EXE, pp->exe);
	}
	if (c) {
		if (c->id)
			kl_tail_add_str(&b, KL_F_CONTAINER_ID, c->id);
		if (c->name)
			kl_tail_add_str(&b, KL_F_CONTAINER_NAME, c->name);
		if (c->image)
			kl_tail_add_str(&b, KL_F_IMAGE, c->image);
		if (c->pod)
			kl_tail_add_str(&b, KL_F_POD_NAME, c->pod);
		if (c->pod_ns)
			kl_tail_add_str(&b, KL_F_POD_NAMESPACE, c->pod_ns);
		if (c->pod_uid)
			kl_tail_add_str(&b, KL_F_POD_UID, c->pod_uid);
	}

	if (type == KL_REC_SYSCALL) {
		int d1, d2, a1, a2;
		memcpy(&sc, rec, sizeof(sc));
		path_dirfds(sc.nr, &d1, &d2);
		/* e->scratch holds the absolute first path until syscall_effects() is done. */
		if (d1 != -2 && field_str(type, rec, len, KL_F_PATH, e->scratch2, sizeof(e->scratch2)))
			have_abs1 = abs_path(p, &sc, e->scratch2, d1, e->scratch, sizeof(e->scratch));
		if (have_abs1)
			kl_tail_add_str(&b, KL_F_ABS_PATH, e->scratch);
		if (d2 != -2 && field_str(type, rec, len, KL_F_PATH2, e->scratch2, sizeof(e->scratch2))) {
			char tmp[PATH_CAP];
			have_abs2 = abs_path(p, &sc, e->scratch2, d2, tmp, sizeof(tmp));
			if (have_abs2)
				kl_tail_add_str(&b, KL_F_ABS_PATH2, tmp);
		}
		/* Describe the fds as they were before the call changed them. */
		fd_args(sc.nr, &a1, &a2);
		if (p && a1 >= 0) {
			struct fdent *f = fd_get(p, (int64_t)sc.args[a1]);
			if (f) {
				en.eflags |= KL_EN_FD_RESOLVED;
				en.fd_kind = f->kind;
				add_fd_fields(&b, f, KL_F_FD_PATH, true);
				e->st.fd_resolved++;
			} else {
				e->st.fd_unresolved++;
			}
		}
		if (p && a2 >= 0) {
			struct fdent *f = fd_get(p, (int64_t)sc.args[a2]);
			if (f) {
				en.eflags |= KL_EN_FD2_RESOLVED;
				en.fd2_kind = f->kind;
				add_fd_fields(&b, f, KL_F_FD_PATH2, a1 < 0);
			}
		}
		syscall_effects(e, p, &sc, rec, len, have_abs1 ? e->scratch : NULL);
		/* accept/socket/open: describe the new fd too, if nothing else was */
		if (p && sc.ret >= 0 && !(en.eflags & KL_EN_FD2_RESOLVED) &&
		    (sc.nr == NR_accept || sc.nr == NR_accept4)) {
			struct fdent *f = fd_get(p, sc.ret);
			if (f && f->peer)
				kl_tail_add(&b, KL_F_PEER_ADDR, f->peer, f->peer_len);
		}
	}
	if (b.truncated)
		e->st.truncated++;
	memcpy(o, &en, sizeof(en));
	return (long)kl_tail_finish(&b);
}

int kl_enricher_new(const struct kl_enricher_opts *opts, struct kl_enricher **out)
{
	struct kl_enricher *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	if (opts)
		e->o = *opts;
	if (!e->o.max_procs)
		e->o.max_procs = 65536;
	if (!e->o.max_containers)
		e->o.max_containers = 4096;
	if (!e->o.max_fds_per_proc)
		e->o.max_fds_per_proc = 4096;
	if (!e->o.max_fd_entries)
		e->o.max_fd_entries = 1u << 20;
	if (!e->o.exit_grace_ns)
		e->o.exit_grace_ns = 5ull * 1000000000ull;
	if (!e->o.ctr_grace_ns)
		e->o.ctr_grace_ns = 30ull * 1000000000ull;
	if (!e->o.max_argv)
		e->o.max_argv = 1024;
	e->ctr_gen = 1;
	if (kmap_init(&e->procs, 1024) || kmap_init(&e->ctrs_cg, 64) || kmap_init(&e->ctrs_mnt, 64)) {
		kl_enricher_free(e);
		return -ENOMEM;
	}
	*out = e;
	return 0;
}

void kl_enricher_free(struct kl_enricher *e)
{
	if (!e)
		return;
	for (uint32_t i = 0; e->procs.e && i < e->procs.cap; i++) {
		struct proc *p = e->procs.e[i].v;
		if (p && p != TOMB) {
			fd_table_free(e, p);
			free(p->exe);
			free(p->argv);
			free(p->cwd);
			free(p);
		}
	}
	for (uint32_t i = 0; e->ctrs_cg.e && i < e->ctrs_cg.cap; i++) {
		struct ctr *c = e->ctrs_cg.e[i].v;
		if (c && c != TOMB) {
			free(c->id);
			free(c->name);
			free(c->image);
			free(c->pod);
			free(c->pod_ns);
			free(c->pod_uid);
			free(c);
		}
	}
	free(e->procs.e);
	free(e->ctrs_cg.e);
	free(e->ctrs_mnt.e);
	free(e);
}

void kl_enricher_stats(const struct kl_enricher *e, struct kl_enricher_stats *st)
{
	*st = e->st;
}
