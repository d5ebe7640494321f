/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector.c - load and attach the sensor, drain its eight rings, put
 * the records back in per-task order and publish them to `raw`.
 *
 * Ordering: a record's sort key is when it left the kernel (exit time
 * for a syscall, the event time otherwise). A task emits its records in
 * that order, so releasing the merged stream by key, only once the key
 * is older than the start of the last full sweep minus a reorder
 * window, keeps every task's records in order across rings.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libgen.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <kloudlens/recutil.h>
#include <kloudlens/shm.h>

#include "collector.h"
#include "ctrwatch.h"
#include "kl.skel.h"

struct kc_ring_ctx {
	struct kc *c;
	uint32_t cat;
	uint64_t bytes;         /* drained this sweep */
	uint64_t size;
};

struct kc {
	struct kc_opts o;
	struct kc_caps caps;
	struct kl_bpf *skel;
	struct ring_buffer *rb;
	struct kc_ring_ctx rctx[KL_CAT__COUNT];
	struct bpf_link *cg_links[2];
	struct bpf_link *ident_links[2];   /* cgroup migrations -> identity cache generation */
	int cgfd;
	struct shm_ring *raw;
	struct shm_stats *stats;
	struct kl_ctrwatch *cw;         /* container lifecycle from the runtimes' state */
	struct kc_merge ro;
	struct kc_downgrade dg;
	uint64_t seq;
	uint64_t last_loss[KL_CNT__COUNT][KL_CAT__COUNT];
	uint64_t last_loss_ns;
	struct kc_counters ctr;
	uint64_t pend_events[KL_CAT__COUNT], pend_published;
	atomic_bool stop;
	int err;                /* first error inside a callback */
	/* stats cells */
	uint64_t *m_events[KL_CAT__COUNT], *m_lost[KL_CAT__COUNT], *m_shed[KL_CAT__COUNT];
	uint64_t *m_pending[KL_CAT__COUNT];
	uint64_t *m_published, *m_dropped, *m_level, *m_late, *m_snapshot, *m_fill, *m_steps;
	/* live filter (docker mode): the file, its watch, what is in force */
	int filt_fd;
	char filt_base[NAME_MAX + 1];
	struct kc_filter *filt;
	uint64_t filt_next_ns;          /* next check of the watch */
	struct kc_ctr *ctrs;            /* running containers, for selector matching */
	size_t nctrs;
	uint64_t *m_fupd, *m_frej, *m_fgen, *m_sampled[KL_CAT__COUNT];
};

/* A running container as its lifecycle record told it (the selectors need its labels). */
struct kc_ctr {
	uint64_t cgid;
	void *rec;
	size_t len;
};

static const char *const cat_names[KL_CAT__COUNT] = {
	"crit", "bulk_file", "bulk_net", "bulk_proc", "bulk_file_meta", "dns", "proc_lc", "sock_lc",
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* ---- reorder: per-ring FIFOs merged by key ------------------------------------ */

struct fifo_hdr {
	uint64_t key;
	uint32_t len;
	uint16_t type;
	uint16_t _pad;
};

#define REC_ALIGN(n) (((n) + 7u) & ~(size_t)7u)

int kc_merge_init(struct kc_merge *m, size_t max_bytes)
{
	memset(m, 0, sizeof(*m));
	m->max_bytes = max_bytes;
	return 0;
}

void kc_merge_free(struct kc_merge *m)
{
	for (int i = 0; i < KL_CAT__COUNT; i++)
		free(m->q[i].buf);
	memset(m->q, 0, sizeof(m->q));
}

void *kc_merge_push(struct kc_merge *m, uint32_t src, uint64_t key, uint16_t type, const void *rec, uint32_t len)
{
	struct kc_fifo *q = &m->q[src % KL_CAT__COUNT];
	size_t need = sizeof(struct fifo_hdr) + REC_ALIGN(len);
	struct fifo_hdr *h;

	if (q->tail + need > q->cap) {
		if (q->head && q->head >= q->tail - q->head) {
			/* slide the live part to the front only when it is no bigger than
			 * the space freed: each byte is moved O(1) times overall */
			memmove(q->buf, q->buf + q->head, q->tail - q->head);
			q->tail -= q->head;
			q->head = 0;
		}
		if (q->tail + need > q->cap) {
			size_t cap = q->cap ? q->cap : 1 << 20;
			uint8_t *b;

			while (cap < q->tail + need)
				cap *= 2;
			b = realloc(q->buf, cap);
			if (!b)
				return NULL;
			q->buf = b;
			q->cap = cap;
		}
	}
	h = (struct fifo_hdr *)(q->buf + q->tail);
	h->key = key;
	h->len = len;
	h->type = type;
	memcpy(h + 1, rec, len);
	q->tail += need;
	m->bytes += need;
	return h + 1;
}

bool kc_merge_peek(struct kc_merge *m, uint64_t watermark, struct kc_item *out)
{
	struct fifo_hdr *best = NULL;
	int bi = -1;

	for (int i = 0; i < KL_CAT__COUNT; i++) {
		struct kc_fifo *q = &m->q[i];
		struct fifo_hdr *h;

		if (q->head == q->tail)
			continue;
		h = (struct fifo_hdr *)(q->buf + q->head);
		if (!best || h->key < best->key) {
			best = h;
			bi = i;
		}
	}
	if (!best || (best->key >= watermark && m->bytes <= m->max_bytes))
		return false;
	out->key = best->key;
	out->len = best->len;
	out->type = best->type;
	out->src = bi;
	out->rec = best + 1;
	return true;
}

void kc_merge_next(struct kc_merge *m, const struct kc_item *it)
{
	struct kc_fifo *q = &m->q[it->src];
	size_t sz = sizeof(struct fifo_hdr) + REC_ALIGN(it->len);

	if (it->key < m->last_key)
		m->late++;
	else
		m->last_key = it->key;
	q->head += sz;
	m->bytes -= sz;
	if (q->head == q->tail)
		q->head = q->tail = 0;
}

uint64_t kc_record_key(uint16_t type, const void *rec, size_t len)
{
	const struct kl_event *ev = rec;

	if (len < sizeof(*ev))
		return 0;
	if (type == KL_REC_SYSCALL && len >= sizeof(struct kl_syscall)) {
		const struct kl_syscall *s = rec;

		return s->ev.ts_ns + s->duration_ns;
	}
	return ev->ts_ns;
}

/* ---- downgrade ------------------------------------------------------------- */

void kc_downgrade_init(struct kc_downgrade *d, uint32_t max, uint32_t high_pct, uint32_t low_pct, uint32_t hold)
{
	memset(d, 0, sizeof(*d));
	d->max = max;
	d->high_pct = high_pct;
	d->low_pct = low_pct;
	d->hold_ticks = hold;
}

uint32_t kc_downgrade_tick(struct kc_downgrade *d, uint32_t fill_pct)
{
	if (fill_pct >= d->high_pct) {
		d->calm = 0;
		if (d->level < d->max) {
			d->level++;
			d->steps_up++;
		}
	} else if (fill_pct < d->low_pct) {
		/* hysteresis: only a sustained calm steps back down, one level at a time */
		if (d->level > 0 && ++d->calm >= d->hold_ticks) {
			d->level--;
			d->steps_down++;
			d->calm = 0;
		}
	} else {
		d->calm = 0;
	}
	return d->level;
}

/* ---- publishing ------------------------------------------------------------ */

static int publish_one(struct kc *c, uint16_t type, const void *rec, uint32_t len)
{
	void *dst;
	int err;

	err = shm_reserve(c->raw, len, type, &dst);
	if (err == -ENOBUFS) {
		c->ctr.dropped_raw++;
		shm_stats_add(c->m_dropped, 1);
		c->seq++; /* the gap in seq shows where a record was lost */
		return 0;
	}
	if (err)
		return err;
	memcpy(dst, rec, len);
	if (kl_rec_info(type) && kl_rec_info(type)->has_event_head)
		((struct kl_event *)dst)->seq = c->seq;
	c->seq++;
	c->ctr.published++;
	c->pend_published++;
	return 0;
}

/* Container lifecycle records bypass the reorder window: a container's
 * START must not wait behind the events of its first processes. */
static void ctr_track(struct kc *c, const void *rec, size_t len);

static void ctr_emit(const void *rec, size_t len, void *ctx)
{
	struct kc *c = ctx;
	int err;

	if (c->o.filter_path)
		ctr_track(c, rec, len);
	err = publish_one(c, KL_REC_CONTAINER, rec, (uint32_t)len);

	if (err && !c->err)
		c->err = err;
}

static void ctr_log(int level, const char *msg, void *ctx)
{
	(void)ctx;
	kc_log(level, "containers: %s", msg);
}

static int emit_cb(void *ctx, uint16_t type, const void *rec, uint32_t len)
{
	struct kc *c = ctx;

	c->ctr.snapshot++;
	shm_stats_add(c->m_snapshot, 1);
	return publish_one(c, type, rec, len);
}

/* Mark records whose tail holds a cut field, so no consumer has to walk it to know. */
static void fix_trunc(uint16_t type, void *rec, uint32_t len)
{
	struct kl_field_iter it;
	struct kl_field_view f;
	struct kl_event *ev = rec;

	if (kl_field_iter_init(&it, type, rec, len))
		return;
	while (kl_field_next(&it, &f)) {
		if (f.truncated) {
			ev->flags |= KL_EV_TRUNCATED;
			if (type == KL_REC_SYSCALL)
				((struct kl_syscall *)rec)->sflags |= KL_SC_ARGS_TRUNC;
		}
	}
}

static int ring_cb(void *ctx, void *data, size_t size)
{
	struct kc_ring_ctx *rc = ctx;
	struct kc *c = rc->c;
	struct kl_event *ev = data;
	uint16_t type;
	void *copy;

	rc->bytes += size + 8;
	if (size < sizeof(*ev))
		return 0;
	type = (uint16_t)ev->seq; /* the type tag BPF put in place of seq */
	c->ctr.events[rc->cat]++;
	c->pend_events[rc->cat]++;
	copy = kc_merge_push(&c->ro, rc->cat, kc_record_key(type, data, size), type, data, size);
	if (!copy) {
		c->err = -ENOMEM;
		return -ENOMEM;
	}
	if (ev->tail_len)
		fix_trunc(type, copy, size);
	/* An exec in a container: its START must be out before this exec is
	 * released from the reorder window (ctr_emit publishes at once). */
	if (type == KL_REC_PROC && c->cw && size >= sizeof(struct kl_proc) &&
	    ((struct kl_proc *)copy)->kind == KL_PROC_EXEC) {
		int err = kl_ctrwatch_exec_seen(c->cw, copy, ctr_emit, c);

		if (err < 0 && err != -EAGAIN && err != -EINTR)
			kc_log(KC_WARN, "containers: %s", strerror(-err));
	}
	return 0;
}

/* Sum the per-CPU loss counters and publish what changed as kl_loss records. */
static int report_losses(struct kc *c)
{
	static const uint32_t where[KL_CNT__COUNT] = {
		[KL_CNT_RESERVE] = KL_LOSS_BPF_RESERVE,
		[KL_CNT_SHED] = KL_LOSS_SHED,
		[KL_CNT_PENDING] = KL_LOSS_PENDING,
	};
	uint64_t sum[KL_CNT__COUNT][KL_CAT__COUNT] = {};
	uint32_t ncpu = c->caps.ncpus ? c->caps.ncpus : KL_MAX_CPUS;
	int err;

	if (ncpu > KL_MAX_CPUS)
		ncpu = KL_MAX_CPUS;
	for (uint32_t cpu = 0; cpu < ncpu; cpu++)
		for (int w = 0; w < KL_CNT__COUNT; w++)
			for (int k = 0; k < KL_CAT__COUNT; k++)
				sum[w][k] += __atomic_load_n(&c->skel->bss->cnt[cpu][w * 8 + k], __ATOMIC_RELAXED);
	for (int k = 0; k < KL_CAT__COUNT; k++) {
		for (int w = 0; w < KL_CNT__COUNT; w++) {
			uint64_t d = sum[w][k] - c->last_loss[w][k];
			struct kl_loss l = {};

			if (!d)
				continue;
			c->last_loss[w][k] = sum[w][k];
			if (w == KL_CNT_RESERVE) {
				c->ctr.lost_reserve[k] += d;
				shm_stats_add(c->m_lost[k], d);
			} else if (w == KL_CNT_SHED) {
				c->ctr.shed[k] += d;
				shm_stats_add(c->m_shed[k], d);
			} else {
				c->ctr.lost_pending[k] += d;
				shm_stats_add(c->m_pending[k], d);
			}
			l.ev.ts_ns = mono_ns();
			l.where = where[w];
			l.category = k;
			l.count = d;
			err = publish_one(c, KL_REC_LOSS, &l, sizeof(l));
			if (err)
				return err;
		}
	}
	return 0;
}

static int release(struct kc *c, uint64_t watermark)
{
	struct kc_item it;
	int n = 0, err = 0;

	while (kc_merge_peek(&c->ro, watermark, &it)) {
		if (!err)
			err = publish_one(c, it.type, it.rec, it.len);
		kc_merge_next(&c->ro, &it);
		n++;
	}
	/* shared counters once per drain, not per record */
	for (int k = 0; k < KL_CAT__COUNT; k++) {
		if (c->pend_events[k]) {
			shm_stats_add(c->m_events[k], c->pend_events[k]);
			c->pend_events[k] = 0;
		}
	}
	if (c->pend_published) {
		shm_stats_add(c->m_published, c->pend_published);
		c->pend_published = 0;
	}
	if (c->ro.late != c->ctr.late) {
		shm_stats_add(c->m_late, c->ro.late - c->ctr.late);
		c->ctr.late = c->ro.late;
	}
	return err ? err : n;
}

static uint32_t fill_pct(struct kc *c)
{
	struct shm_ring_info *info;
	uint32_t pct = 0;

	for (int k = 0; k < KL_CAT__COUNT; k++) {
		uint32_t p = c->rctx[k].size ? (uint32_t)(c->rctx[k].bytes * 100 / c->rctx[k].size) : 0;

		if (p > pct)
			pct = p;
		c->rctx[k].bytes = 0;
	}
	/* the raw ring counts too: shedding is how the drain avoids dropping there */
	info = malloc(sizeof(*info));
	if (info && shm_ring_info(c->raw, info) == 0 && info->capacity) {
		for (uint32_t i = 0; i < SHM_MAX_CONSUMERS; i++) {
			uint32_t p;

			if (info->consumers[i].state != 1)
				continue;
			p = (uint32_t)(info->consumers[i].lag_bytes * 100 / info->capacity);
			if (p > pct)
				pct = p;
		}
	}
	free(info);
	return pct;
}

/* ---- live filter ------------------------------------------------------------ */

static uint32_t live_slot(struct kc *c)
{
	/* pairs with the acquire load in kl.bpf.c's live_out() */
	return __atomic_load_n(&c->skel->bss->live_cur, __ATOMIC_ACQUIRE) & 1;
}

/* Write a container's rule mask for slot @slot (and keep the other). */
static void ctr_set_mask(struct kc *c, uint64_t cgid, uint32_t slot, uint8_t mask, bool both)
{
	struct kl_cg_rules v = {};

	if (bpf_map__lookup_elem(c->skel->maps.cg_rules, &cgid, sizeof(cgid), &v, sizeof(v), 0) && !mask)
		return;
	v.r[slot & 1] = mask;
	if (both)
		v.r[!(slot & 1)] = mask;
	if (!v.r[0] && !v.r[1])
		bpf_map__delete_elem(c->skel->maps.cg_rules, &cgid, sizeof(cgid), 0);
	else if (bpf_map__update_elem(c->skel->maps.cg_rules, &cgid, sizeof(cgid), &v, sizeof(v), BPF_ANY))
		kc_log(KC_WARN, "filter: cgroup %llu: cannot update cg_rules: %s", (unsigned long long)cgid,
		       strerror(errno));
}

static void ctr_track(struct kc *c, const void *rec, size_t len)
{
	const struct kl_container *k = rec;
	uint64_t cgid;
	size_t i;

	if (len < sizeof(*k) || !c->skel)
		return;
	cgid = k->ev.cgroup_id;
	if (!cgid)
		return;
	for (i = 0; i < c->nctrs && c->ctrs[i].cgid != cgid; i++)
		;
	if (k->kind == KL_CTR_STOP) {
		if (i < c->nctrs) {
			free(c->ctrs[i].rec);
			c->ctrs[i] = c->ctrs[--c->nctrs];
		}
		ctr_set_mask(c, cgid, 0, 0, true);
		return;
	}
	if (i == c->nctrs) {
		struct kc_ctr *n = realloc(c->ctrs, (c->nctrs + 1) * sizeof(*n));

		if (!n)
			return;
		c->ctrs = n;
		c->ctrs[c->nctrs++] = (struct kc_ctr){ .cgid = cgid };
	}
	free(c->ctrs[i].rec);
	c->ctrs[i].rec = malloc(len);
	if (!c->ctrs[i].rec) {
		c->ctrs[i] = c->ctrs[--c->nctrs];
		return;
	}
	memcpy(c->ctrs[i].rec, rec, len);
	c->ctrs[i].len = len;
	/* both slots: the current one, and the next apply rewrites the other anyway */
	ctr_set_mask(c, cgid, live_slot(c), (uint8_t)kc_filter_match_container(c->filt, rec, len), true);
}

/* Fill the idle slot with @f, point every container at it, then flip. */
static int filter_apply(struct kc *c, struct kc_filter *f, char *err, size_t n)
{
	uint32_t cur = live_slot(c), nxt = !cur;
	struct kl_live *L = malloc(sizeof(*L));
	int rc;

	if (!L)
		return -ENOMEM;
	rc = kc_filter_compile(f, (const struct kl_sc_cfg *)c->skel->rodata->sc_cfg, c->skel->rodata->host_pidns, L,
			       err, n);
	if (rc) {
		free(L);
		return rc;
	}
	memcpy(&c->skel->bss->live[nxt], L, sizeof(*L));
	free(L);
	for (size_t i = 0; i < c->nctrs; i++)
		ctr_set_mask(c, c->ctrs[i].cgid, nxt,
			     (uint8_t)kc_filter_match_container(f, c->ctrs[i].rec, c->ctrs[i].len), false);
	/* pairs with the acquire loads in kl.bpf.c: the slot is complete before it is used */
	__atomic_store_n(&c->skel->bss->live_cur, nxt, __ATOMIC_RELEASE);
	return 0;
}

/* "<file>.applied": what is in force, for the supervisor and tests to read. */
static void filter_ack(struct kc *c, const char *error)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s.applied", c->o.filter_path);
	snprintf(tmp, sizeof(tmp), "%s.applied.tmp", c->o.filter_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "generation %llu\nrules %zu\nupdates %llu\nrejected %llu\n",
		(unsigned long long)c->ctr.filter_generation, kc_filter_nrules(c->filt),
		(unsigned long long)c->ctr.filter_updates, (unsigned long long)c->ctr.filter_rejected);
	if (error)
		fprintf(f, "error %s\n", error);
	if (fclose(f) == 0)
		rename(tmp, path);
}

int kc_filter_reload(struct kc *c)
{
	struct kc_filter *f = NULL;
	char err[512] = "";
	int rc;

	if (!c->o.filter_path)
		return -EINVAL;
	rc = kc_filter_parse(c->o.filter_path, &f, err, sizeof(err));
	if (rc == -ENOENT) {
		/* no file (yet, or removed): the built-in default, trace everything */
		f = NULL;
		rc = 0;
	}
	if (!rc)
		rc = filter_apply(c, f, err, sizeof(err));
	if (rc) {
		kc_filter_free(f);
		c->ctr.filter_rejected++;
		shm_stats_add(c->m_frej, 1);
		kc_log(KC_ERR, "filter %s rejected, generation %llu stays in force: %s", c->o.filter_path,
		       (unsigned long long)c->ctr.filter_generation, err[0] ? err : strerror(-rc));
		filter_ack(c, err[0] ? err : strerror(-rc));
		return rc;
	}
	kc_filter_free(c->filt);
	c->filt = f;
	c->ctr.filter_updates++;
	c->ctr.filter_generation = kc_filter_generation(f);
	shm_stats_add(c->m_fupd, 1);
	shm_stats_set(c->m_fgen, c->ctr.filter_generation);
	kc_log(KC_INFO, "filter: generation %llu applied (%zu rules, %zu containers known)",
	       (unsigned long long)c->ctr.filter_generation, kc_filter_nrules(f), c->nctrs);
	filter_ack(c, NULL);
	return 0;
}

static void filter_check(struct kc *c)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t n;

	while ((n = read(c->filt_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;

			if (e->len && !strcmp(e->name, c->filt_base))
				changed = true;
			if (e->mask & IN_Q_OVERFLOW)
				changed = true;
			p += sizeof(*e) + e->len;
		}
	}
	if (changed)
		kc_filter_reload(c);
	/* sampled-out counts travel with the filter check: same cadence, no loss records */
	uint32_t ncpu = c->caps.ncpus ? c->caps.ncpus : KL_MAX_CPUS;
	if (ncpu > KL_MAX_CPUS)
		ncpu = KL_MAX_CPUS;
	for (int k = 0; k < KL_CAT__COUNT; k++) {
		uint64_t sum = 0;

		for (uint32_t cpu = 0; cpu < ncpu; cpu++)
			sum += __atomic_load_n(&c->skel->bss->sampled_out[cpu][k], __ATOMIC_RELAXED);
		if (sum > c->ctr.sampled_out[k]) {
			shm_stats_add(c->m_sampled[k], sum - c->ctr.sampled_out[k]);
			c->ctr.sampled_out[k] = sum;
		}
	}
}

static int filter_setup(struct kc *c)
{
	char dir[PATH_MAX], base[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", c->o.filter_path);
	snprintf(base, sizeof(base), "%s", c->o.filter_path);
	snprintf(c->filt_base, sizeof(c->filt_base), "%s", basename(base));
	c->filt_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->filt_fd < 0)
		return -errno;
	/* the directory, not the file: the supervisor replaces the file by rename */
	if (inotify_add_watch(c->filt_fd, dirname(dir), IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE) < 0) {
		int err = -errno;

		kc_log(KC_ERR, "filter: watch %s: %s", dir, strerror(-err));
		return err;
	}
	/* a bad file at start: refused like any other; the default (everything) is in force */
	kc_filter_reload(c);
	return 0;
}

int kc_poll(struct kc *c, int timeout_ms)
{
	uint64_t sweep;
	uint32_t pct, level;
	int err, n;

	/* returns early only when a ring crossed wake_bytes and forced a wakeup */
	err = ring_buffer__poll(c->rb, timeout_ms);
	if (err < 0 && err != -EINTR)
		return err;
	sweep = mono_ns();
	err = ring_buffer__consume(c->rb);
	if (err < 0 && err != -EINTR)
		return err;
	if (c->cw) {
		err = kl_ctrwatch_dispatch(c->cw, 0, ctr_emit, c);
		if (err < 0 && err != -EAGAIN && err != -EINTR)
			kc_log(KC_WARN, "containers: %s", strerror(-err));
	}
	if (c->err)
		return c->err;
	if (c->o.filter_path && sweep >= c->filt_next_ns) {
		/* a read per 20 ms, not per drain: the 1 s budget allows it */
		c->filt_next_ns = sweep + 20000000ull;
		filter_check(c);
	}
	err = report_losses(c);
	if (err)
		return err;
	n = release(c, sweep - (uint64_t)c->o.reorder_ms * 1000000ull);
	if (n < 0)
		return n;
	shm_publish(c->raw);

	pct = fill_pct(c);
	shm_stats_set(c->m_fill, pct);
	level = kc_downgrade_tick(&c->dg, pct);
	if (level != c->ctr.level) {
		kc_log(KC_WARN, "downgrade: level %u -> %u (fill %u%%)", c->ctr.level, level, pct);
		c->ctr.level = level;
		c->skel->bss->shed_level = level;
		shm_stats_set(c->m_level, level);
		shm_stats_add(c->m_steps, 1);
	}
	return n;
}

int kc_flush(struct kc *c)
{
	int err, n;

	err = ring_buffer__consume(c->rb);
	if (err < 0)
		return err;
	err = report_losses(c);
	if (err)
		return err;
	n = release(c, UINT64_MAX);
	shm_publish(c->raw);
	return n;
}

int kc_run(struct kc *c)
{
	while (!atomic_load(&c->stop)) {
		int n = kc_poll(c, (int)c->o.drain_ms);

		if (n < 0 && n != -EINTR)
			return n;
	}
	return kc_flush(c) < 0 ? -EIO : 0;
}

void kc_stop(struct kc *c)
{
	atomic_store(&c->stop, true);
}

void kc_counters(struct kc *c, struct kc_counters *out)
{
	*out = c->ctr;
}

const struct kc_caps *kc_caps(const struct kc *c)
{
	return &c->caps;
}

/* ---- setup ------------------------------------------------------------------ */

static int setup_stats(struct kc *c)
{
	const char *name = c->o.stats_name ? c->o.stats_name : "kl-collector";
	char lbl[64];
	int err;

	err = shm_stats_create(c->o.dir, name, 128, &c->stats);
	if (err)
		return err;
	for (int k = 0; k < KL_CAT__COUNT; k++) {
		snprintf(lbl, sizeof(lbl), "category=\"%s\"", cat_names[k]);
		c->m_events[k] = shm_stats_metric(c->stats, "kloudlens_collector_events_total", lbl,
						  "Records received from the BPF rings", SHM_COUNTER);
		c->m_lost[k] = shm_stats_metric(c->stats, "kloudlens_collector_bpf_lost_total", lbl,
						"Records lost in BPF: ring buffer reserve failed", SHM_COUNTER);
		c->m_shed[k] = shm_stats_metric(c->stats, "kloudlens_collector_shed_total", lbl,
						"Records shed in BPF by the adaptive downgrade", SHM_COUNTER);
		c->m_pending[k] = shm_stats_metric(c->stats, "kloudlens_collector_pending_lost_total", lbl,
						   "Calls not traced: the pending table was full", SHM_COUNTER);
	}
	c->m_published = shm_stats_metric(c->stats, "kloudlens_collector_published_total", "",
					  "Records published to the raw ring", SHM_COUNTER);
	c->m_dropped = shm_stats_metric(c->stats, "kloudlens_collector_raw_dropped_total", "",
					"Records dropped at the raw ring (drop policy)", SHM_COUNTER);
	c->m_level = shm_stats_metric(c->stats, "kloudlens_collector_downgrade_level", "",
				      "Adaptive downgrade level (0 = everything traced)", SHM_GAUGE);
	c->m_steps = shm_stats_metric(c->stats, "kloudlens_collector_downgrade_steps_total", "",
				      "Downgrade level changes", SHM_COUNTER);
	c->m_late = shm_stats_metric(c->stats, "kloudlens_collector_late_total", "",
				     "Records that arrived behind the reorder window", SHM_COUNTER);
	c->m_snapshot = shm_stats_metric(c->stats, "kloudlens_collector_snapshot_total", "",
					 "Bootstrap snapshot records", SHM_COUNTER);
	c->m_fill = shm_stats_metric(c->stats, "kloudlens_collector_ring_fill_percent", "",
				     "Fill of the fullest ring at the last drain", SHM_GAUGE);
	for (int k = 0; k < KL_CAT__COUNT; k++) {
		snprintf(lbl, sizeof(lbl), "category=\"%s\"", cat_names[k]);
		c->m_sampled[k] = shm_stats_metric(c->stats, "kloudlens_collector_sampled_out_total", lbl,
						   "Records left out by HookSubscription sampling (chosen, not lost)",
						   SHM_COUNTER);
	}
	c->m_fupd = shm_stats_metric(c->stats, "kloudlens_collector_filter_updates_total", "",
				     "Live filter files applied to the BPF maps", SHM_COUNTER);
	c->m_frej = shm_stats_metric(c->stats, "kloudlens_collector_filter_rejected_total", "",
				     "Live filter files refused (the last good one stays in force)", SHM_COUNTER);
	c->m_fgen = shm_stats_metric(c->stats, "kloudlens_collector_filter_generation", "",
				     "Generation of the live filter in force", SHM_GAUGE);
	for (int k = 0; k < KL_CAT__COUNT; k++)
		if (!c->m_events[k] || !c->m_lost[k] || !c->m_shed[k] || !c->m_pending[k] || !c->m_sampled[k])
			return -ENOSPC;
	if (!c->m_fupd || !c->m_frej || !c->m_fgen)
		return -ENOSPC;
	if (!c->m_published || !c->m_dropped || !c->m_level || !c->m_steps || !c->m_late ||
	    !c->m_snapshot || !c->m_fill)
		return -ENOSPC;
	return 0;
}

static struct bpf_map *cat_map(struct kl_bpf *s, int k)
{
	struct bpf_map *m[KL_CAT__COUNT] = {
		s->maps.rb_crit, s->maps.rb_bulk_file, s->maps.rb_bulk_net, s->maps.rb_bulk_proc,
		s->maps.rb_bulk_file_meta, s->maps.rb_dns, s->maps.rb_proc_lc, s->maps.rb_sock_lc,
	};

	return m[k];
}

static int host_pidns_inum(uint32_t *inum)
{
	struct stat st;

	/* pid 1's namespace is the host's; where pid 1 cannot be inspected
	 * (a sandbox, a hardened /proc) our own is: the collector runs in the
	 * host pid namespace (hostPID in the DaemonSet) */
	if (stat("/proc/1/ns/pid", &st) < 0 && stat("/proc/self/ns/pid", &st) < 0)
		return -errno;
	*inum = (uint32_t)st.st_ino;
	return 0;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[8192];
	size_t n;

	if (level == LIBBPF_DEBUG)
		return 0;
	/* libbpf's own format string, handed to its print callback */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(buf, sizeof(buf), fmt, ap);
#pragma GCC diagnostic pop
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	kc_log(level == LIBBPF_WARN ? KC_WARN : KC_INFO, "libbpf: %s", buf);
	return 0;
}

/*
 * The syscall programs cache a task's uid/gid, ppid and cgroup id
 * between calls (bpf/kl.bpf.c fill_ident); a cached cgroup id is safe
 * only while every cgroup migration bumps ident_gen. Without both
 * tracepoints the cache stays off and every call reads them afresh.
 */
static void attach_ident_cache(struct kc *c)
{
	struct kl_bpf *s = c->skel;

	if (!bpf_program__autoload(s->progs.kl_cg_attach))
		return;
	c->ident_links[0] = bpf_program__attach(s->progs.kl_cg_attach);
	c->ident_links[1] = bpf_program__attach(s->progs.kl_cg_transfer);
	if (!c->ident_links[0] || !c->ident_links[1]) {
		kc_log(KC_INFO, "identity cache off: tracepoint cgroup/cgroup_%s: %s",
		       c->ident_links[0] ? "transfer_tasks" : "attach_task", strerror(errno));
		return;
	}
	__atomic_store_n(&s->bss->ident_cache, 1, __ATOMIC_RELEASE);
}

static int load_and_attach(struct kc *c)
{
	struct kl_bpf *s;
	bool raw = c->caps.hook[KC_HOOK_RAW_TP] && !c->o.force_tracepoint, btf;
	uint8_t one = 1;
	uint32_t me;
	int err;

	s = kl_bpf__open();
	if (!s)
		return -errno;
	c->skel = s;
	err = kc_syscall_table((struct kl_sc_cfg *)s->rodata->sc_cfg, c->o.syscalls);
	if (err) {
		kc_log(KC_ERR, "syscall set %s: unknown name", c->o.syscalls);
		return err;
	}
	s->rodata->filter_cgroup = c->o.ncgroups > 0;
	s->rodata->filter_pidns = c->o.npidns > 0;
	s->rodata->containers_only = c->o.containers_only;
	s->rodata->live_filters = c->o.filter_path != NULL;
	if (c->o.containers_only || c->o.filter_path) {
		uint32_t inum = 0;

		err = host_pidns_inum(&inum);
		if (err)
			return err;
		s->rodata->host_pidns = inum;
	}
	s->rodata->dns_enabled = !c->o.no_dns;
	/*
	 * 4 MiB per ring, bulk rings included: a ring is written front to
	 * back, so its whole size is the producer's working set. With 16 MiB
	 * bulk rings every record missed the caches and the TLB: the exit
	 * program cost about twice as much (docs/performance.md, "Ring
	 * size"). Bursts past what 4 MiB holds are the downgrade's job.
	 */
	for (int k = 0; k < KL_CAT__COUNT; k++) {
		uint32_t kb = c->o.bpf_ring_kb;

		if (!kb)
			kb = 4096;
		err = bpf_map__set_max_entries(cat_map(s, k), kb * 1024u);
		if (err)
			return err;
		c->rctx[k].size = kb * 1024ull;
		/* wake the drain early when any ring is a quarter full */
	}
	s->rodata->wake_bytes = (c->o.bpf_ring_kb ? c->o.bpf_ring_kb : 4096) * 1024ull / 4;

	/* one syscall flavour only: BTF tracepoints, else raw tracepoints, else tracepoints */
	btf = raw && c->caps.hook[KC_HOOK_TP_BTF];
	bpf_program__set_autoload(s->progs.kl_btf_enter, btf);
	bpf_program__set_autoload(s->progs.kl_btf_exit, btf);
	bpf_program__set_autoload(s->progs.kl_raw_enter, raw && !btf);
	bpf_program__set_autoload(s->progs.kl_raw_exit, raw && !btf);
	bpf_program__set_autoload(s->progs.kl_tp_enter, !raw);
	bpf_program__set_autoload(s->progs.kl_tp_exit, !raw);
	/* attached after the rest: the identity cache is an optimisation, not a requirement */
	bpf_program__set_autoload(s->progs.kl_cg_attach, raw);
	bpf_program__set_autoload(s->progs.kl_cg_transfer, raw);
	bpf_program__set_autoattach(s->progs.kl_cg_attach, false);
	bpf_program__set_autoattach(s->progs.kl_cg_transfer, false);
	kc_log(KC_INFO, "syscalls: attaching %s", btf ? "tp_btf" : raw ? "raw_tp" : "tracepoint");
	if (!raw)
		kc_log(KC_INFO, "syscalls: using tracepoint raw_syscalls/sys_{enter,exit} (%s)",
		       c->o.force_tracepoint ? "forced" : c->caps.reason[KC_HOOK_RAW_TP]);
	if (!c->caps.hook[KC_HOOK_RAW_TP]) {
		/* sched lifecycle needs task pointers: raw tracepoints only */
		bpf_program__set_autoload(s->progs.kl_fork, false);
		bpf_program__set_autoload(s->progs.kl_exec, false);
		bpf_program__set_autoload(s->progs.kl_exit, false);
		kc_log(KC_WARN, "process lifecycle: no raw tracepoints (%s); fork/exec/exit records off",
		       c->caps.reason[KC_HOOK_RAW_TP]);
	}
	if (c->o.no_dns || !c->caps.hook[KC_HOOK_CGROUP_SKB]) {
		bpf_program__set_autoload(s->progs.kl_dns_egress, false);
		bpf_program__set_autoload(s->progs.kl_dns_ingress, false);
		if (!c->o.no_dns)
			kc_log(KC_WARN, "dns: cgroup_skb unavailable (%s)", c->caps.reason[KC_HOOK_CGROUP_SKB]);
	}

	err = kl_bpf__load(s);
	if (err) {
		kc_log(KC_ERR, "load kl.bpf.o: %s%s", strerror(-err),
		       err == -EPERM || err == -EACCES ?
		       " (missing capabilities: run as root or with CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE;"
		       " docs/troubleshooting.md#missing-capabilities)" : "");
		return err;
	}
	/* exclusions and filters are in place before the first event */
	me = getpid();
	if (!c->o.no_self_exclude) {
		err = bpf_map__update_elem(s->maps.excl_tgid, &me, sizeof(me), &one, 1, BPF_ANY);
		if (err)
			return err;
	}
	for (int i = 0; i < c->o.nexclude; i++) {
		err = bpf_map__update_elem(s->maps.excl_tgid, &c->o.exclude_pids[i], 4, &one, 1, BPF_ANY);
		if (err)
			return err;
	}
	for (int i = 0; i < c->o.ncgroups; i++) {
		err = bpf_map__update_elem(s->maps.cg_allow, &c->o.cgroups[i], 8, &one, 1, BPF_ANY);
		if (err)
			return err;
	}
	for (int i = 0; i < c->o.npidns; i++) {
		err = bpf_map__update_elem(s->maps.pidns_allow, &c->o.pidns[i], 4, &one, 1, BPF_ANY);
		if (err)
			return err;
	}
	if (c->o.filter_path) {
		/* the file's filter is in force before the first event */
		err = filter_setup(c);
		if (err)
			return err;
	}
	err = kl_bpf__attach(s);
	if (err) {
		kc_log(KC_ERR, "attach: %s", strerror(-err));
		return err;
	}
	attach_ident_cache(c);
	if (bpf_program__autoload(s->progs.kl_dns_egress)) {
		c->cgfd = open(c->caps.cgroup2_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->cgfd < 0)
			return -errno;
		c->cg_links[0] = bpf_program__attach_cgroup(s->progs.kl_dns_egress, c->cgfd);
		c->cg_links[1] = bpf_program__attach_cgroup(s->progs.kl_dns_ingress, c->cgfd);
		if (!c->cg_links[0] || !c->cg_links[1]) {
			err = -errno;
			kc_log(KC_ERR, "attach cgroup_skb to %s: %s", c->caps.cgroup2_path, strerror(-err));
			return err;
		}
	}
	for (int k = 0; k < KL_CAT__COUNT; k++) {
		c->rctx[k].c = c;
		c->rctx[k].cat = k;
		if (!c->rb)
			c->rb = ring_buffer__new(bpf_map__fd(cat_map(s, k)), ring_cb, &c->rctx[k], NULL);
		else if (ring_buffer__add(c->rb, bpf_map__fd(cat_map(s, k)), ring_cb, &c->rctx[k]))
			return -errno;
		if (!c->rb)
			return -errno;
	}
	return 0;
}

int kc_open(const struct kc_opts *opts, struct kc **out)
{
	struct shm_ring_opts ro = SHM_RING_OPTS_INIT;
	struct kc *c;
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cgfd = -1;
	c->filt_fd = -1;
	c->o = *opts;
	if (!c->o.dir)
		c->o.dir = SHM_DEFAULT_DIR;
	if (!c->o.ring)
		c->o.ring = "raw";
	if (!c->o.drain_ms)
		c->o.drain_ms = 5;
	if (!c->o.reorder_ms)
		c->o.reorder_ms = 10;
	if (!c->o.high_pct)
		c->o.high_pct = 50;
	if (!c->o.low_pct)
		c->o.low_pct = 20;
	if (!c->o.shed_max || c->o.shed_max > KL_SHED__MAX)
		c->o.shed_max = KL_SHED__MAX;
	if (c->o.no_shed)
		c->o.shed_max = 0;
	/* older kernels charge BPF memory to RLIMIT_MEMLOCK */
	setrlimit(RLIMIT_MEMLOCK, &rl);
	libbpf_set_print(libbpf_log);

	kc_probe(&c->caps);
	if (!c->caps.btf) {
		/* CO-RE relocations need the kernel's BTF: nothing would load */
		kc_log(KC_ERR, "no BTF: /sys/kernel/btf/vmlinux is missing (kernel built without "
		       "CONFIG_DEBUG_INFO_BTF); docs/troubleshooting.md#no-btf");
		err = -EOPNOTSUPP;
		goto fail;
	}
	if (!c->caps.tracefs)
		kc_log(KC_WARN, "tracefs not mounted at /sys/kernel/tracing and could not be mounted; classic "
		       "tracepoints unavailable (docs/troubleshooting.md#tracefs-not-mounted)");
	if (!c->caps.hook[KC_HOOK_RAW_TP] && !c->caps.hook[KC_HOOK_TRACEPOINT]) {
		kc_log(KC_ERR, "no syscall hook attaches: tracepoint (%s), raw_tracepoint (%s)%s",
		       c->caps.reason[KC_HOOK_TRACEPOINT], c->caps.reason[KC_HOOK_RAW_TP],
		       c->caps.tracefs ? "; docs/troubleshooting.md#missing-capabilities" :
		       "; docs/troubleshooting.md#tracefs-not-mounted");
		err = -EOPNOTSUPP;
		goto fail;
	}
	if (!c->caps.hook[KC_HOOK_RINGBUF]) {
		kc_log(KC_ERR, "BPF ring buffers unavailable: %s", c->caps.reason[KC_HOOK_RINGBUF]);
		err = -EOPNOTSUPP;
		goto fail;
	}
	err = kc_merge_init(&c->ro, 256u << 20);
	if (err)
		goto fail;
	kc_downgrade_init(&c->dg, c->o.shed_max, c->o.high_pct, c->o.low_pct, 40);

	if (mkdir(c->o.dir, 0750) < 0 && errno != EEXIST) {
		err = -errno;
		kc_log(KC_ERR, "mkdir %s: %s%s", c->o.dir, strerror(-err),
		       err == -EACCES ? " (rings directory permissions; docs/troubleshooting.md#rings-directory-permissions)"
				      : "");
		goto fail;
	}
	ro.capacity = c->o.ring_capacity;
	ro.policy = SHM_POLICY_DROP;
	err = shm_ring_create(c->o.dir, c->o.ring, &ro, &c->raw);
	if (err) {
		kc_log(KC_ERR, "create ring %s/%s: %s%s", c->o.dir, c->o.ring, strerror(-err),
		       err == -EACCES || err == -EPERM ?
		       " (rings directory permissions; docs/troubleshooting.md#rings-directory-permissions)" : "");
		goto fail;
	}
	err = setup_stats(c);
	if (err) {
		kc_log(KC_ERR, "stats area in %s: %s", c->o.dir, strerror(-err));
		goto fail;
	}
	/* node-unique across restarts: start past every seq a previous run can have used */
	c->seq = kl_now_real_ns();

	err = load_and_attach(c);
	if (err)
		goto fail;
	/* after attach, so a process started meanwhile is in the snapshot or the stream */
	if (!c->o.no_bootstrap) {
		uint64_t n = 0;

		err = kc_bootstrap("/proc", c->caps.cgroup2_path, emit_cb, c, &n);
		if (err)
			kc_log(KC_WARN, "bootstrap: %s (%llu processes)", strerror(-err), (unsigned long long)n);
		shm_publish(c->raw);
	}
	if (!c->o.no_containers) {
		/* an exec is in the BPF rings before its init can die: the next
		 * drain has it, long before this runs out */
		struct kl_ctrwatch_opts wo = { .sz = sizeof(wo), .log = ctr_log,
					       .exec_hint_wait_ns = 250000000ull };
		wo.max_record = (uint32_t)shm_ring_max_record(c->raw);
		if (wo.max_record > 65536)
			wo.max_record = 65536;
		wo.cgroup2_mount = c->caps.cgroup2_path[0] ? c->caps.cgroup2_path : NULL;
		err = kl_ctrwatch_new(&wo, &c->cw);
		if (err) {
			/* Events still flow; they just carry no container metadata. */
			kc_log(KC_WARN, "containers: watcher unavailable: %s", strerror(-err));
			c->cw = NULL;
		} else {
			err = kl_ctrwatch_snapshot(c->cw, ctr_emit, c);
			if (err)
				kc_log(KC_WARN, "containers: snapshot: %s", strerror(-err));
			shm_publish(c->raw);
		}
	}
	if (!c->o.no_drop_caps) {
		err = kc_drop_caps();
		if (err) {
			kc_log(KC_ERR, "drop capabilities: %s", strerror(-err));
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	kc_close(c);
	return err;
}

void kc_close(struct kc *c)
{
	if (!c)
		return;
	kl_ctrwatch_free(c->cw);
	ring_buffer__free(c->rb);
	if (c->filt_fd >= 0)
		close(c->filt_fd);
	kc_filter_free(c->filt);
	for (size_t i = 0; i < c->nctrs; i++)
		free(c->ctrs[i].rec);
	free(c->ctrs);
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(c->cg_links[i]);
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(c->ident_links[i]);
	if (c->cgfd >= 0)
		close(c->cgfd);
	kl_bpf__destroy(c->skel);
	kc_merge_free(&c->ro);
	if (c->raw)
		shm_ring_close(c->raw);
	if (c->stats)
		shm_stats_close(c->stats);
	free(c);
}
