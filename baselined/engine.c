/* SPDX-License-Identifier: Apache-2.0 */
/*
 * engine.c - per-workload learning and detection (docs/baseline.md).
 *
 * Learning may allocate (a new item is copied once); detection never
 * does: a check is a hash of the item text built in a stack buffer, one
 * probe of the workload's item index, and for a miss one probe of the
 * preallocated rate-limit table and a record built in a preallocated
 * buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <kloudlens/recutil.h>

#include "engine.h"

#define MAX_PODS 64
#define CACHE_SLOTS 4096          /* raw context hash -> workload, direct mapped */
#define OUT_CAP 4096
#define EPH_LO 32768
#define EPH_HI 60999

struct bl_workload {
	uint64_t id;
	char *key, *ns, *owner, *container, *image;
	bool host;
	bool has_policy;
	bool dirty;
	enum bl_state state;
	struct bl_policy pol;           /* a copy: the policy set may change under it */
	uint64_t win_start_ns, win_end_ns, promoted_ns;
	uint64_t samples, containers;
	uint64_t pod_h[MAX_PODS];
	uint32_t npods;
	uint64_t profile_id;
	uint64_t deviations;
	uint64_t items_overflow;
	/* items: dense array + open-addressing index (slot = item index + 1, 0 empty) */
	struct bl_item *items;
	size_t nitems, capitems;
	uint32_t *idx;
	size_t idxcap;                  /* power of two */
	uint64_t syscalls[BL_NSYSCALLS];
	uint64_t sys_attempts[BL_NSYSCALLS];
	uint32_t sketch[BL_SKETCH_DEPTH * BL_SKETCH_WIDTH];
	uint64_t sketch_total;
};

struct rate_slot {
	uint64_t key;                   /* 0 = empty */
	uint64_t last_emit_ns;
	uint64_t occurrences;
	uint64_t suppressed;
};

struct cache_slot {
	uint64_t h;
	struct bl_workload *w;
};

struct bl_engine {
	struct bl_config cfg;
	bl_emit_fn emit;
	void *emit_ctx;
	struct bl_stats st;
	struct bl_workload **w;
	size_t nw;
	uint32_t *widx;                 /* workload index by id, slot = index + 1 */
	size_t widxcap;
	struct cache_slot cache[CACHE_SLOTS];
	struct rate_slot *rate;
	struct bl_policy *pol;
	size_t npol;
	struct bl_policy def;
	size_t dirty_cursor;
	uint64_t seq;
	uint8_t out[OUT_CAP];
};

/* ---- helpers ------------------------------------------------------------- */

uint64_t bl_hash(const void *p, size_t n, uint64_t seed)
{
	/* FNV-1a with a final avalanche: short strings, no alignment needs. */
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

uint64_t bl_item_hash(enum bl_cat c, const char *text, size_t len)
{
	uint64_t h = bl_hash(text, len, (uint64_t)(c + 1) * 0x9e3779b97f4a7c15ULL);
	return h ? h : 1;
}

uint64_t bl_profile_id(const char *key, uint64_t win_start_ns, uint64_t window_ns)
{
	uint64_t h = bl_hash(key, strlen(key), 0x70726f66);
	h = bl_hash(&win_start_ns, sizeof(win_start_ns), h);
	return bl_hash(&window_ns, sizeof(window_ns), h);
}

static inline uint32_t sketch_col(uint64_t h, int row)
{
	uint64_t x = h * (0x9e3779b97f4a7c15ULL + 2 * (uint64_t)row);
	return (uint32_t)(x >> 40) & (BL_SKETCH_WIDTH - 1);
}

void bl_sketch_add(uint32_t *sk, uint64_t h, uint32_t n)
{
	for (int r = 0; r < BL_SKETCH_DEPTH; r++) {
		uint32_t *c = &sk[r * BL_SKETCH_WIDTH + sketch_col(h, r)];
		*c = *c > UINT32_MAX - n ? UINT32_MAX : *c + n;  /* saturate, never wrap */
	}
}

uint64_t bl_sketch_estimate(const uint32_t *sk, uint64_t h)
{
	uint64_t m = UINT64_MAX;

	for (int r = 0; r < BL_SKETCH_DEPTH; r++) {
		uint32_t c = sk[r * BL_SKETCH_WIDTH + sketch_col(h, r)];
		if (c < m)
			m = c;
	}
	return m;
}

static bool has_digit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= '0' && s[i] <= '9')
			return true;
	return false;
}

static bool all_digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * contractc's generalisations (docs/contractc.md): /proc/<pid>/ and
 * /task/<tid>/ become *, and under /tmp/, /var/tmp/, /dev/shm/ a component
 * that is all digits, or 6+ characters with a digit, becomes *: pids and
 * mkstemp names differ in every run, so learning them literally would
 * make every run deviate.
 */
size_t bl_generalise_path(char *out, size_t cap, const char *in, size_t len)
{
	size_t o = 0, i = 0;
	bool tmp = false;
	int comp = 0;
	bool proc = false, task = false;

	if (!cap)
		return 0;
	if ((len >= 5 && !memcmp(in, "/tmp/", 5)) || (len >= 9 && !memcmp(in, "/var/tmp/", 9)) ||
	    (len >= 9 && !memcmp(in, "/dev/shm/", 9)))
		tmp = true;
	while (i < len) {
		if (in[i] == '/') {
			if (o + 1 < cap)
				out[o++] = '/';
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && in[j] != '/')
			j++;
		const char *c = in + i;
		size_t n = j - i;
		bool star = false;
		comp++;
		if ((proc && comp == 2 && all_digits(c, n)) || (task && all_digits(c, n)) ||
		    (tmp && comp >= 2 && (all_digits(c, n) || (n >= 6 && has_digit(c, n)))))
			star = true;
		task = proc && n == 4 && !memcmp(c, "task", 4);
		if (comp == 1)
			proc = n == 4 && !memcmp(c, "proc", 4);
		if (star) {
			if (o + 1 < cap)
				out[o++] = '*';
		} else {
			size_t k = n < cap - 1 - o ? n : cap - 1 - o;
			memcpy(out + o, c, k);
			o += k;
		}
		i = j;
	}
	out[o] = 0;
	return o;
}

static bool alnum_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

/*
 * Replicas share a baseline: "web-7d4b9c8f6d-x2x9z" (Deployment:
 * ReplicaSet hash 6-10 + pod suffix 5) -> "web", "db-0" (StatefulSet)
 * -> "db", "agent-x2x9z" (DaemonSet/Job, 5) -> "agent".
 */
size_t bl_pod_owner(char *out, size_t cap, const char *pod, size_t len)
{
	size_t n = len;
	const char *d1 = memrchr(pod, '-', n);

	if (d1 && d1 > pod) {
		size_t sl = n - (size_t)(d1 + 1 - pod);
		if (all_digits(d1 + 1, sl)) {
			n = (size_t)(d1 - pod);
		} else if (sl == 5 && alnum_lower(d1 + 1, sl)) {
			n = (size_t)(d1 - pod);
			const char *d2 = memrchr(pod, '-', n);
			if (d2 && d2 > pod) {
				size_t hl = n - (size_t)(d2 + 1 - pod);
				if (hl >= 6 && hl <= 10 && alnum_lower(d2 + 1, hl))
					n = (size_t)(d2 - pod);
			}
		}
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(out, pod, n);
	out[n] = 0;
	return n;
}

const char *bl_state_name(enum bl_state s)
{
	switch (s) {
	case BL_LEARNING: return "learning";
	case BL_INSUFFICIENT: return "insufficient";
	case BL_READY: return "ready";
	case BL_ACTIVE: return "active";
	case BL_IDLE: return "idle";
	}
	return "unknown";
}

static const char *const cat_names[BL_C__COUNT] = {
	"exec", "transition", "file", "egress", "ingress", "listen", "dns", "privilege", "uid",
};

const char *bl_cat_name(enum bl_cat c)
{
	return (unsigned)c < BL_C__COUNT ? cat_names[c] : "unknown";
}

int bl_cat_from_name(const char *s)
{
	for (int i = 0; i < BL_C__COUNT; i++)
		if (!strcmp(s, cat_names[i]))
			return i;
	return -1;
}

void bl_policy_default(struct bl_policy *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "default");
	p->window_ns = 3600ULL * 1000000000ULL;
	p->min_samples = 1000;
	p->min_pods = 1;
	p->learn = BL_LEARN_ALL;
	p->emit = true;
}

void bl_config_default(struct bl_config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_workloads = 4096;
	c->max_items = 65536;
	c->rate_slots = 65536;
	c->rate_window_ns = 60ULL * 1000000000ULL;
}

/* ---- engine lifetime ----------------------------------------------------- */

int bl_engine_new(const struct bl_config *cfg, bl_emit_fn emit, void *emit_ctx, struct bl_engine **out)
{
	struct bl_engine *e = calloc(1, sizeof(*e));
	int r = -ENOMEM;

	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	if (!e->cfg.max_workloads)
		e->cfg.max_workloads = 4096;
	if (e->cfg.rate_slots < 64 || (e->cfg.rate_slots & (e->cfg.rate_slots - 1))) {
		r = -EINVAL;
		goto fail;
	}
	e->emit = emit;
	e->emit_ctx = emit_ctx;
	e->w = calloc(e->cfg.max_workloads, sizeof(*e->w));
	e->widxcap = 16;
	while (e->widxcap < 2 * (size_t)e->cfg.max_workloads)
		e->widxcap <<= 1;
	e->widx = calloc(e->widxcap, sizeof(*e->widx));
	e->rate = calloc(e->cfg.rate_slots, sizeof(*e->rate));
	if (!e->w || !e->widx || !e->rate)
		goto fail;
	bl_policy_default(&e->def);
	*out = e;
	return 0;
fail:
	bl_engine_free(e);
	return r;
}

static void items_clear(struct bl_workload *w)
{
	for (size_t i = 0; i < w->nitems; i++) {
		free(w->items[i].text);
		free(w->items[i].aux);
	}
	w->nitems = 0;
	if (w->idx)
		memset(w->idx, 0, w->idxcap * sizeof(*w->idx));
	memset(w->syscalls, 0, sizeof(w->syscalls));
	memset(w->sys_attempts, 0, sizeof(w->sys_attempts));
	memset(w->sketch, 0, sizeof(w->sketch));
	w->sketch_total = 0;
	w->items_overflow = 0;
}

static void workload_free(struct bl_workload *w)
{
	if (!w)
		return;
	items_clear(w);
	free(w->items);
	free(w->idx);
	free(w->key);
	free(w->ns);
	free(w->owner);
	free(w->container);
	free(w->image);
	free(w);
}

void bl_engine_free(struct bl_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nw; i++)
		workload_free(e->w[i]);
	free(e->w);
	free(e->widx);
	free(e->rate);
	free(e->pol);
	free(e);
}

const struct bl_stats *bl_engine_stats(const struct bl_engine *e)
{
	return &e->st;
}

/* ---- policies -------------------------------------------------------------- */

static bool image_match(const char *want, const char *have)
{
	size_t wl = strlen(want);
	const char *slash = strrchr(want, '/');
	const char *colon = strrchr(want, ':');

	if (!*want)
		return true;
	if (!strcmp(want, have))
		return true;
	/* without a tag (no ':' after the last '/', no digest) = any tag or digest */
	if ((!colon || (slash && colon < slash)) && !strchr(want, '@'))
		return !strncmp(want, have, wl) && (have[wl] == ':' || have[wl] == '@');
	return false;
}

static bool policy_match(const struct bl_policy *p, const struct bl_workload *w)
{
	if (w->host)
		return !p->container[0] && !p->image[0] && !p->labels_len;
	if (p->ns[0] && w->ns[0] && strcmp(p->ns, w->ns))
		return false;
	if (p->container[0] && strcmp(p->container, w->container))
		return false;
	/* podLabels: the rings carry no labels (docs/baseline.md), so they cannot narrow it;
	 * a selector of labels alone would select everything, so it selects nothing */
	if (p->labels_len && !p->container[0] && !p->image[0])
		return false;
	return image_match(p->image, w->image);
}

static void workload_start_learning(struct bl_workload *w, uint64_t ts)
{
	items_clear(w);
	w->state = w->has_policy ? BL_LEARNING : BL_IDLE;
	w->win_start_ns = ts;
	w->win_end_ns = 0;
	w->samples = 0;
	w->npods = 0;
	w->containers = 0;
	w->profile_id = 0;
	w->deviations = 0;
	w->dirty = true;
}

static void resolve_policy(struct bl_engine *e, struct bl_workload *w)
{
	const struct bl_policy *p = NULL;
	bool had = w->has_policy;

	for (size_t i = 0; i < e->npol && !p; i++)
		if (policy_match(&e->pol[i], w))
			p = &e->pol[i];
	if (!p && !e->cfg.policies_only)
		p = &e->def;
	w->has_policy = p != NULL;
	if (p)
		w->pol = *p;
	if (!p && w->state != BL_IDLE) {
		w->state = BL_IDLE;
		w->dirty = true;
	} else if (p && !had && w->state == BL_IDLE) {
		/* newly selected: learn from its next event (win_start 0 = unset) */
		w->state = BL_LEARNING;
		w->win_start_ns = 0;
	}
}

int bl_engine_set_policies(struct bl_engine *e, const struct bl_policy *pol, size_t n,
			   const struct bl_policy *def)
{
	struct bl_policy *np = NULL;

	if (n) {
		np = malloc(n * sizeof(*np));
		if (!np)
			return -ENOMEM;
		memcpy(np, pol, n * sizeof(*np));
	}
	free(e->pol);
	e->pol = np;
	e->npol = n;
	if (def)
		e->def = *def;
	for (size_t i = 0; i < e->nw; i++)
		resolve_policy(e, e->w[i]);
	return 0;
}

/* ---- workloads ------------------------------------------------------------- */

/* The context fields of an intent or enriched record that the engine reads. */
struct ctx {
	const char *exe, *parent_exe, *ctr_id, *ctr_name, *image, *pod, *pod_ns, *pod_uid;
	uint16_t exe_l, parent_l, ctr_id_l, ctr_name_l, image_l, pod_l, pod_ns_l, pod_uid_l;
	const uint8_t *path, *path2, *local, *peer, *dns;
	uint16_t path_l, path2_l, local_l, peer_l, dns_l;
	uint64_t raw_h;                 /* hash of the raw key fields (cache key) */
};

static inline uint16_t slen(const uint8_t *d, uint16_t n)
{
	const void *z = memchr(d, 0, n);
	return z ? (uint16_t)((const uint8_t *)z - d) : n;
}

static int read_ctx(uint16_t type, const void *rec, size_t len, struct ctx *c)
{
	struct kl_field_iter it;
	struct kl_field_view f;

	memset(c, 0, sizeof(*c));
	if (kl_field_iter_init(&it, type, rec, len))
		return -EINVAL;
	while (kl_field_next(&it, &f)) {
		uint16_t n = slen(f.data, f.len);
		const char *s = (const char *)f.data;
		switch (f.id) {
		case KL_F_EXE: c->exe = s; c->exe_l = n; break;
		case KL_F_PARENT_EXE: c->parent_exe = s; c->parent_l = n; break;
		case KL_F_CONTAINER_ID: c->ctr_id = s; c->ctr_id_l = n; break;
		case KL_F_CONTAINER_NAME: c->ctr_name = s; c->ctr_name_l = n; break;
		case KL_F_IMAGE: c->image = s; c->image_l = n; break;
		case KL_F_POD_NAME: c->pod = s; c->pod_l = n; break;
		case KL_F_POD_NAMESPACE: c->pod_ns = s; c->pod_ns_l = n; break;
		case KL_F_POD_UID: c->pod_uid = s; c->pod_uid_l = n; break;
		case KL_F_PATH: c->path = f.data; c->path_l = n; break;
		case KL_F_PATH2: c->path2 = f.data; c->path2_l = n; break;
		case KL_F_ABS_PATH: c->path = f.data; c->path_l = n; break;  /* enriched: prefer absolute */
		case KL_F_LOCAL_ADDR: c->local = f.data; c->local_l = f.len; break;
		case KL_F_PEER_ADDR: c->peer = f.data; c->peer_l = f.len; break;
		case KL_F_DNS_NAME: c->dns = f.data; c->dns_l = n; break;
		default: break;
		}
	}
	if (it.err)
		return -EINVAL;
	uint64_t h = 0x6b6c;
	if (c->ctr_id || c->ctr_name || c->pod) {
		h = bl_hash(c->pod_ns, c->pod_ns_l, h);
		h = bl_hash(c->pod, c->pod_l, h + 1);
		h = bl_hash(c->ctr_name ? c->ctr_name : c->ctr_id,
			    c->ctr_name ? c->ctr_name_l : c->ctr_id_l, h + 2);
		h = bl_hash(c->image, c->image_l, h + 3);
	} else {
		h = bl_hash(c->exe, c->exe_l, h + 4);
	}
	c->raw_h = h ? h : 1;
	return 0;
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		if (n)
			memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static struct bl_workload *find_id(struct bl_engine *e, uint64_t id, const char *key)
{
	size_t m = e->widxcap - 1;

	for (size_t i = id & m;; i = (i + 1) & m) {
		uint32_t s = e->widx[i];
		if (!s)
			return NULL;
		struct bl_workload *w = e->w[s - 1];
		if (w->id == id && (!key || !strcmp(w->key, key)))
			return w;
	}
}

static struct bl_workload *workload_new(struct bl_engine *e, const char *key, const char *ns,
					const char *owner, const char *container, const char *image,
					bool host)
{
	struct bl_workload *w;
	uint64_t id = bl_hash(key, strlen(key), 0x776b);

	if (e->nw >= e->cfg.max_workloads) {
		e->st.workloads_dropped++;
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->id = id;
	w->key = strdup(key);
	w->ns = strdup(ns);
	w->owner = strdup(owner);
	w->container = strdup(container);
	w->image = strdup(image);
	w->host = host;
	w->idxcap = 64;
	w->idx = calloc(w->idxcap, sizeof(*w->idx));
	if (!w->key || !w->ns || !w->owner || !w->container || !w->image || !w->idx) {
		workload_free(w);
		return NULL;
	}
	w->state = BL_IDLE;
	resolve_policy(e, w);
	if (!w->has_policy)
		e->st.unselected++;
	size_t m = e->widxcap - 1, i = id & m;
	while (e->widx[i])
		i = (i + 1) & m;
	e->w[e->nw++] = w;
	e->widx[i] = (uint32_t)e->nw;
	e->st.workloads = e->nw;
	return w;
}

/* Build the workload key from the context (docs/baseline.md "Workloads"). */
static struct bl_workload *workload_of(struct bl_engine *e, const struct ctx *c)
{
	struct cache_slot *cs = &e->cache[c->raw_h & (CACHE_SLOTS - 1)];
	char key[1400], owner[256], ns[256], ctr[256], img[512];
	bool host;

	if (cs->h == c->raw_h && cs->w)
		return cs->w;
	host = !(c->ctr_id || c->ctr_name || c->pod);
	if (host) {
		snprintf(key, sizeof(key), "host:%.*s", (int)c->exe_l, c->exe ? c->exe : "");
		ns[0] = owner[0] = ctr[0] = img[0] = 0;
	} else {
		snprintf(ns, sizeof(ns), "%.*s", (int)c->pod_ns_l, c->pod_ns ? c->pod_ns : "");
		if (c->pod)
			bl_pod_owner(owner, sizeof(owner), c->pod, c->pod_l);
		else
			owner[0] = 0;
		if (c->ctr_name)
			snprintf(ctr, sizeof(ctr), "%.*s", (int)c->ctr_name_l, c->ctr_name);
		else
			snprintf(ctr, sizeof(ctr), "%.*s", (int)c->ctr_id_l, c->ctr_id);
		snprintf(img, sizeof(img), "%.*s", (int)c->image_l, c->image ? c->image : "");
		snprintf(key, sizeof(key), "%s/%s/%s@%s", ns, owner, ctr, img);
	}
	uint64_t id = bl_hash(key, strlen(key), 0x776b);
	struct bl_workload *w = find_id(e, id, key);
	if (!w)
		w = workload_new(e, key, ns, owner, ctr, img, host);
	if (w) {
		cs->h = c->raw_h;
		cs->w = w;
	}
	return w;
}

size_t bl_engine_nworkloads(const struct bl_engine *e)
{
	return e->nw;
}

struct bl_workload *bl_engine_workload(struct bl_engine *e, size_t i)
{
	return i < e->nw ? e->w[i] : NULL;
}

struct bl_workload *bl_engine_find(struct bl_engine *e, const char *key)
{
	return find_id(e, bl_hash(key, strlen(key), 0x776b), key);
}

struct bl_workload *bl_engine_next_dirty(struct bl_engine *e)
{
	for (; e->dirty_cursor < e->nw; e->dirty_cursor++) {
		struct bl_workload *w = e->w[e->dirty_cursor];
		if (w->dirty) {
			w->dirty = false;
			e->dirty_cursor++;
			return w;
		}
	}
	e->dirty_cursor = 0;
	return NULL;
}

void bl_workload_view(const struct bl_workload *w, struct bl_wview *v)
{
	v->key = w->key;
	v->id = w->id;
	v->ns = w->ns;
	v->owner = w->owner;
	v->container = w->container;
	v->image = w->image;
	v->host = w->host;
	v->state = w->state;
	v->policy = w->has_policy ? w->pol.name : "";
	v->window_ns = w->pol.window_ns;
	v->win_start_ns = w->win_start_ns;
	v->win_end_ns = w->win_end_ns;
	v->samples = w->samples;
	v->pods = w->npods;
	v->containers = w->containers;
	v->profile_id = w->profile_id;
	v->deviations = w->deviations;
	v->items_overflow = w->items_overflow;
	v->nitems = w->nitems;
	v->items = w->items;
	v->syscalls = w->syscalls;
	v->sys_attempts = w->sys_attempts;
	v->sketch = w->sketch;
	v->sketch_total = w->sketch_total;
}

/* ---- items ------------------------------------------------------------------ */

static struct bl_item *item_find(const struct bl_workload *w, uint64_t h, uint16_t cat,
				 const char *text, size_t len)
{
	size_t m = w->idxcap - 1;

	for (size_t i = h & m;; i = (i + 1) & m) {
		uint32_t s = w->idx[i];
		if (!s)
			return NULL;
		struct bl_item *it = &w->items[s - 1];
		if (it->h == h && it->cat == cat && it->len == len && !memcmp(it->text, text, len))
			return it;
	}
}

static int idx_grow(struct bl_workload *w)
{
	size_t cap = w->idxcap * 2;
	uint32_t *n = calloc(cap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t k = 0; k < w->nitems; k++) {
		size_t i = w->items[k].h & (cap - 1);
		while (n[i])
			i = (i + 1) & (cap - 1);
		n[i] = (uint32_t)(k + 1);
	}
	free(w->idx);
	w->idx = n;
	w->idxcap = cap;
	return 0;
}

/* Add (or find) an item; NULL when the workload is at its item cap (or out of memory). */
static struct bl_item *item_add(struct bl_engine *e, struct bl_workload *w, uint64_t h,
				uint16_t cat, const char *text, size_t len)
{
	struct bl_item *it = item_find(w, h, cat, text, len);

	if (it)
		return it;
	if (w->nitems >= e->cfg.max_items)
		return NULL;
	if ((w->nitems + 1) * 2 > w->idxcap && idx_grow(w))
		return NULL;
	if (w->nitems == w->capitems) {
		size_t nc = w->capitems ? w->capitems * 2 : 32;
		struct bl_item *ni = realloc(w->items, nc * sizeof(*ni));
		if (!ni)
			return NULL;
		w->items = ni;
		w->capitems = nc;
	}
	it = &w->items[w->nitems];
	memset(it, 0, sizeof(*it));
	it->text = dupn(text, len);
	if (!it->text)
		return NULL;
	it->h = h;
	it->cat = cat;
	it->len = (uint32_t)len;
	it->attempt = 1;    /* cleared by the first success */
	size_t m = w->idxcap - 1, i = h & m;
	while (w->idx[i])
		i = (i + 1) & m;
	w->nitems++;
	w->idx[i] = (uint32_t)w->nitems;
	return it;
}

/* ---- deviations ---------------------------------------------------------------- */

struct trigger {
	uint16_t type;                  /* KL_REC_INTENT or KL_REC_ENRICHED */
	const void *rec;
	size_t len;
	const struct kl_event *ev;
	const struct kl_intent *in;     /* NULL for a syscall */
	uint64_t first_seq, last_seq;
	uint64_t ctr_cgroup_id;
	bool failed;
};

static const uint16_t ctx_ids[] = {
	KL_F_EXE, KL_F_ARGV, KL_F_PARENT_EXE, KL_F_CONTAINER_ID, KL_F_CONTAINER_NAME,
	KL_F_IMAGE, KL_F_POD_NAME, KL_F_POD_NAMESPACE, KL_F_POD_UID,
};

static uint16_t severity_of(uint16_t kind, uint32_t access, uint64_t number, bool uid)
{
	switch (kind) {
	case KL_DEV_NEW_EXEC: return KL_DEV_SEV_HIGH;
	case KL_DEV_NEW_TRANSITION: return KL_DEV_SEV_MEDIUM;
	case KL_DEV_NEW_FILE:
		return access & (KL_IA_WRITE | KL_IA_EXEC) ? KL_DEV_SEV_MEDIUM : KL_DEV_SEV_LOW;
	case KL_DEV_NEW_EGRESS: return KL_DEV_SEV_MEDIUM;
	case KL_DEV_NEW_INGRESS: return KL_DEV_SEV_LOW;
	case KL_DEV_NEW_LISTEN: return KL_DEV_SEV_HIGH;
	case KL_DEV_NEW_DNS: return KL_DEV_SEV_LOW;
	case KL_DEV_NEW_SYSCALL: return KL_DEV_SEV_MEDIUM;
	case KL_DEV_PRIVILEGE: return uid && number == 0 ? KL_DEV_SEV_CRITICAL : KL_DEV_SEV_HIGH;
	default: return KL_DEV_SEV_INFO;
	}
}

static const char *const dev_words[KL_DEV__COUNT] = {
	[KL_DEV_NEW_EXEC] = "new executable", [KL_DEV_NEW_TRANSITION] = "new exec transition",
	[KL_DEV_NEW_FILE] = "new file access", [KL_DEV_NEW_EGRESS] = "new egress peer",
	[KL_DEV_NEW_INGRESS] = "new ingress port", [KL_DEV_NEW_LISTEN] = "new listening socket",
	[KL_DEV_NEW_DNS] = "new DNS name", [KL_DEV_NEW_SYSCALL] = "new syscall",
	[KL_DEV_PRIVILEGE] = "privilege change", [KL_DEV_RARE] = "rare",
};

/*
 * One (workload, kind, item) is emitted at most once per rate window;
 * the occurrences in between are counted and carried by the next one.
 * Return: true to emit (with occ and supp filled).
 */
static bool rate_check(struct bl_engine *e, uint64_t key, uint64_t ts, uint64_t *occ, uint64_t *supp,
		       bool *repeat)
{
	size_t m = e->cfg.rate_slots - 1, i = key & m;
	struct rate_slot *victim = NULL;

	key = key ? key : 1;
	for (int p = 0; p < 8; p++, i = (i + 1) & m) {
		struct rate_slot *s = &e->rate[i];
		if (s->key == key) {
			s->occurrences++;
			if (ts >= s->last_emit_ns + e->cfg.rate_window_ns) {
				*occ = s->occurrences;
				*supp = s->suppressed;
				*repeat = true;
				s->suppressed = 0;
				s->last_emit_ns = ts;
				return true;
			}
			s->suppressed++;
			e->st.suppressed++;
			return false;
		}
		if (!s->key) {
			victim = s;
			break;
		}
		if (!victim || s->last_emit_ns < victim->last_emit_ns)
			victim = s;
	}
	if (victim->key)
		e->st.rate_evicted++;
	victim->key = key;
	victim->last_emit_ns = ts;
	victim->occurrences = 1;
	victim->suppressed = 0;
	*occ = 1;
	*supp = 0;
	*repeat = false;
	return true;
}

static void deviate(struct bl_engine *e, struct bl_workload *w, const struct trigger *t,
		    uint16_t kind, const char *item, size_t ilen, const char *parent, size_t plen,
		    uint32_t access, uint64_t number, uint64_t estimate, uint64_t ih)
{
	struct kl_deviation *d = (struct kl_deviation *)e->out;
	struct kl_tail_builder b;
	uint64_t occ, supp;
	bool repeat;
	char reason[640], pid[24];

	if (!rate_check(e, bl_hash(&ih, 8, w->id ^ ((uint64_t)kind << 56)), t->ev->ts_ns, &occ, &supp,
			&repeat))
		return;
	memset(d, 0, sizeof(*d));
	d->ev = *t->ev;
	d->ev.seq = ++e->seq;
	d->ev.tail_len = 0;
	d->ev.flags &= ~KL_EV_TRUNCATED;
	d->kind = kind;
	d->access = (uint16_t)access;
	d->severity = severity_of(kind, access, number, kind == KL_DEV_PRIVILEGE && !parent);
	d->dflags = (t->failed ? KL_DV_ATTEMPT : 0) | (repeat ? KL_DV_REPEAT : 0) |
		    (t->in ? 0 : KL_DV_SYSCALL);
	if (kind == KL_DEV_RARE) {
		uint64_t f = e->cfg.rare_floor ? e->cfg.rare_floor : 1;
		d->score = estimate >= f ? 0 : (uint32_t)(1000 - estimate * 1000 / f);
	} else {
		d->score = 1000;
	}
	d->intent_kind = t->in ? t->in->kind : 0;
	d->profile_id = w->profile_id;
	d->workload_id = w->id;
	d->intent_seq = t->in ? t->ev->seq : 0;
	d->first_seq = t->first_seq;
	d->last_seq = t->last_seq;
	d->occurrences = occ;
	d->suppressed = supp;
	d->number = number;
	d->estimate = estimate;
	d->ctr_cgroup_id = t->ctr_cgroup_id;

	kl_tail_init(&b, e->out, sizeof(*d), sizeof(e->out));
	if (t->in) {
		struct kl_field_view f;
		if (kl_field_find(t->type, t->rec, t->len, KL_F_NODE, &f))
			kl_tail_add(&b, KL_F_NODE, f.data, f.len);
	} else if (e->cfg.node[0]) {
		kl_tail_add_str(&b, KL_F_NODE, e->cfg.node);
	}
	{
		struct kl_field_iter it;
		struct kl_field_view f;
		if (!kl_field_iter_init(&it, t->type, t->rec, t->len))
			while (kl_field_next(&it, &f))
				for (size_t k = 0; k < sizeof(ctx_ids) / sizeof(ctx_ids[0]); k++)
					if (f.id == ctx_ids[k]) {
						kl_tail_add(&b, f.id, f.data, f.len);
						break;
					}
	}
	kl_tail_add_str(&b, KL_F_DEV_WORKLOAD, w->key);
	snprintf(pid, sizeof(pid), "prof-%016llx", (unsigned long long)w->profile_id);
	kl_tail_add_str(&b, KL_F_DEV_PROFILE, pid);
	kl_tail_add(&b, KL_F_DEV_ITEM, item, ilen);
	if (parent)
		kl_tail_add(&b, KL_F_DEV_PARENT, parent, plen);
	if (parent)
		snprintf(reason, sizeof(reason), "%s%s %.*s -> %.*s", t->failed ? "attempted " : "",
			 dev_words[kind], (int)plen, parent, (int)ilen, item);
	else
		snprintf(reason, sizeof(reason), "%s%s %.*s", t->failed ? "attempted " : "",
			 dev_words[kind], (int)ilen, item);
	kl_tail_add_str(&b, KL_F_DEV_REASON, reason);
	size_t n = kl_tail_finish(&b);
	w->deviations++;
	e->st.deviations++;
	e->st.by_kind[kind]++;
	if (e->emit && e->emit(e->emit_ctx, e->out, n))
		e->st.emit_errors++;
}

/* ---- learning and checking one item ---------------------------------------------- */

static uint16_t cat_kind(uint16_t cat)
{
	switch (cat) {
	case BL_C_EXEC: return KL_DEV_NEW_EXEC;
	case BL_C_TRANS: return KL_DEV_NEW_TRANSITION;
	case BL_C_FILE: return KL_DEV_NEW_FILE;
	case BL_C_EGRESS: return KL_DEV_NEW_EGRESS;
	case BL_C_INGRESS: return KL_DEV_NEW_INGRESS;
	case BL_C_LISTEN: return KL_DEV_NEW_LISTEN;
	case BL_C_DNS: return KL_DEV_NEW_DNS;
	default: return KL_DEV_PRIVILEGE;
	}
}

/*
 * Learn or check one observation. @mode: FILE access bits. Returns true
 * when it is covered (so callers can chain: a transition is only checked
 * when its executable is known).
 */
static bool observe(struct bl_engine *e, struct bl_workload *w, const struct trigger *t,
		    uint16_t cat, const char *text, size_t len, uint32_t mode, const char *aux,
		    size_t auxlen, uint64_t number)
{
	uint64_t h = bl_item_hash(cat, text, len);

	if (w->state == BL_LEARNING || w->state == BL_INSUFFICIENT) {
		struct bl_item *it;
		bl_sketch_add(w->sketch, h, 1);
		w->sketch_total++;
		it = item_add(e, w, h, cat, text, len);
		if (!it) {
			w->items_overflow++;
			e->st.items_overflow++;
			return true;
		}
		if (!it->count && !it->first_ns)
			it->first_ns = t->ev->ts_ns;
		it->last_ns = t->ev->ts_ns;
		if (t->failed) {
			it->mode |= mode << 16; /* attempted modes: known, never allowed */
			return true;
		}
		it->attempt = 0;
		it->count++;
		it->mode |= mode;
		if (aux && auxlen && !it->aux)
			it->aux = dupn(aux, auxlen);
		e->st.learned++;
		return true;
	}
	if (w->state != BL_ACTIVE)
		return true;

	const struct bl_item *it = item_find(w, h, cat, text, len);
	uint16_t kind = cat_kind(cat);
	const char *parent = NULL;
	size_t plen = 0;
	const char *item = text;
	size_t ilen = len;

	if (cat == BL_C_TRANS) {
		parent = text;
		plen = strnlen(text, len);
		item = text + plen + 1;
		ilen = len > plen + 1 ? len - plen - 1 : 0;
	}
	if (it && !it->attempt) {
		uint32_t missing = mode & ~it->mode & 0xffffu;
		if (cat == BL_C_FILE && missing) {
			if (t->failed && !(missing & ~(it->mode >> 16)))
				return true;    /* the same failed attempt as in training */
			deviate(e, w, t, kind, item, ilen, parent, plen, missing, number, 0, h);
			return false;
		}
		if (e->cfg.rare_floor && it->count < e->cfg.rare_floor && !t->failed) {
			deviate(e, w, t, KL_DEV_RARE, item, ilen, parent, plen, 0, kind, it->count, h);
			return false;   /* one report: a rare exec does not also flag its transition */
		}
		return true;
	}
	if (it && it->attempt && t->failed)
		return true;                /* the same failure as in training */
	if (!it && w->items_overflow) {
		/* past the item cap only the sketch knows it; no false negatives there */
		uint64_t est = bl_sketch_estimate(w->sketch, h);
		if (est) {
			if (e->cfg.rare_floor && est < e->cfg.rare_floor && !t->failed)
				deviate(e, w, t, KL_DEV_RARE, item, ilen, parent, plen, 0, kind, est, h);
			return true;
		}
	}
	deviate(e, w, t, kind, item, ilen, parent, plen, cat == BL_C_FILE ? mode : 0, number, 0, h);
	return false;
}

/* ---- window ---------------------------------------------------------------------- */

static void promote(struct bl_engine *e, struct bl_workload *w, uint64_t ts)
{
	w->win_end_ns = ts > w->win_start_ns ? ts : w->win_start_ns;
	w->promoted_ns = ts;
	w->profile_id = bl_profile_id(w->key, w->win_start_ns, w->pol.window_ns);
	w->state = w->pol.emit ? BL_ACTIVE : BL_READY;
	w->dirty = true;
	e->st.promotions++;
}

static void tick_workload(struct bl_engine *e, struct bl_workload *w, uint64_t ts)
{
	if (w->state == BL_IDLE)
		return;
	if (!w->win_start_ns && (w->state == BL_LEARNING))
		w->win_start_ns = ts;
	if ((w->state == BL_LEARNING || w->state == BL_INSUFFICIENT) &&
	    ts >= w->win_start_ns + w->pol.window_ns) {
		if (w->samples >= w->pol.min_samples && w->npods >= w->pol.min_pods)
			promote(e, w, ts);
		else
			w->state = BL_INSUFFICIENT;
	} else if ((w->state == BL_ACTIVE || w->state == BL_READY) && w->pol.relearn_ns &&
		   ts >= w->promoted_ns + w->pol.relearn_ns) {
		workload_start_learning(w, ts);
	}
}

static void count_instance(struct bl_workload *w, const struct ctx *c)
{
	const char *s = c->pod_uid ? c->pod_uid : c->ctr_id;
	size_t n = c->pod_uid ? c->pod_uid_l : c->ctr_id_l;
	uint64_t h;

	if (!s) {
		if (!w->npods)
			w->npods = 1;   /* a host workload is one instance */
		return;
	}
	h = bl_hash(s, n, 0x706f64);
	for (uint32_t i = 0; i < w->npods; i++)
		if (w->pod_h[i] == h)
			return;
	if (w->npods < MAX_PODS)
		w->pod_h[w->npods++] = h;
	w->containers = w->npods;
}

/* ---- intents -------------------------------------------------------------------- */

/* "1.2.3.4:443/TCP", "[::1]:53/UDP"; port 0 when absent. Return length, 0 if not inet. */
static size_t fmt_sockaddr(char *out, size_t cap, const uint8_t *sa, size_t len, const char *proto,
			   bool with_addr, uint16_t *port_out)
{
	uint16_t fam;
	char a[INET6_ADDRSTRLEN];
	int n;

	if (!sa || len < 2)
		return 0;
	memcpy(&fam, sa, 2);
	if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in s;
		memcpy(&s, sa, sizeof(s));
		uint16_t p = ntohs(s.sin_port);
		if (p >= EPH_LO && p <= EPH_HI)
			p = EPH_LO;         /* ephemeral: the kernel picks it (contractc's rule) */
		*port_out = p;
		inet_ntop(AF_INET, &s.sin_addr, a, sizeof(a));
		n = with_addr ? snprintf(out, cap, "%s:%u/%s", a, p, proto) : snprintf(out, cap, "%u/%s", p, proto);
	} else if (fam == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 s;
		memcpy(&s, sa, sizeof(s));
		uint16_t p = ntohs(s.sin6_port);
		if (p >= EPH_LO && p <= EPH_HI)
			p = EPH_LO;
		*port_out = p;
		inet_ntop(AF_INET6, &s.sin6_addr, a, sizeof(a));
		n = with_addr ? snprintf(out, cap, "[%s]:%u/%s", a, p, proto) : snprintf(out, cap, "%u/%s", p, proto);
	} else if (fam == AF_UNIX && len > 2) {
		size_t pl = strnlen((const char *)sa + 2, len - 2);
		if (!pl && len > 3) /* abstract: "@name" */
			n = snprintf(out, cap, "unix:@%.*s", (int)strnlen((const char *)sa + 3, len - 3),
				     (const char *)sa + 3);
		else
			n = snprintf(out, cap, "unix:%.*s", (int)pl, (const char *)sa + 2);
		*port_out = 0;
	} else {
		return 0;
	}
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static size_t addr_only(char *out, size_t cap, const uint8_t *sa, size_t len)
{
	uint16_t fam;
	if (!sa || len < 2)
		return 0;
	memcpy(&fam, sa, 2);
	if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in s;
		memcpy(&s, sa, sizeof(s));
		inet_ntop(AF_INET, &s.sin_addr, out, (socklen_t)cap);
	} else if (fam == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 s;
		memcpy(&s, sa, sizeof(s));
		inet_ntop(AF_INET6, &s.sin6_addr, out, (socklen_t)cap);
	} else {
		return 0;
	}
	return strlen(out);
}

static int feed_intent(struct bl_engine *e, const void *rec, size_t len)
{
	struct kl_intent in;
	struct ctx c;
	struct bl_workload *w;
	struct trigger t;
	char buf[1100], aux[128];
	size_t n;
	uint32_t learn;

	memcpy(&in, rec, sizeof(in));
	/* a container runtime's init setting the container up (runc exec, kubectl
	 * exec): the runtime's behaviour, not the workload's; its exec is what counts */
	if (in.iflags & KL_IN_ENTERED) {
		e->st.runtime_skipped++;
		return 0;
	}
	if (read_ctx(KL_REC_INTENT, rec, len, &c)) {
		e->st.invalid++;
		return -EINVAL;
	}
	w = workload_of(e, &c);
	if (!w || w->state == BL_IDLE)
		return 0;
	tick_workload(e, w, in.ev.ts_ns);
	t = (struct trigger){ .type = KL_REC_INTENT, .rec = rec, .len = len, .ev = &in.ev, .in = &in,
			      .first_seq = in.first_seq, .last_seq = in.last_seq,
			      .ctr_cgroup_id = in.ctr_cgroup_id, .failed = in.iflags & KL_IN_FAILED };
	if (w->state == BL_LEARNING || w->state == BL_INSUFFICIENT) {
		count_instance(w, &c);
		if (t.failed)
			e->st.attempts_seen++;
		else
			w->samples++;
	}
	learn = w->pol.learn;

	const char *proto = (in.arg[1] & 0xf) == SOCK_DGRAM ? "UDP" : "TCP";
	switch (in.kind) {
	case KL_INTENT_PROCESS_START:
	case KL_INTENT_EXEC_FROM_MEMORY: {
		const char *exe = c.exe;
		size_t el = c.exe_l;
		if (in.kind == KL_INTENT_EXEC_FROM_MEMORY && c.path) {
			exe = (const char *)c.path;
			el = c.path_l;
		}
		if (!(learn & BL_LEARN_EXEC) || !exe || !el)
			break;
		if (observe(e, w, &t, BL_C_EXEC, exe, el, 0, NULL, 0, 0) && c.parent_exe &&
		    in.kind == KL_INTENT_PROCESS_START && c.parent_l + 1 + el < sizeof(buf)) {
			memcpy(buf, c.parent_exe, c.parent_l);
			buf[c.parent_l] = 0;
			memcpy(buf + c.parent_l + 1, exe, el);
			observe(e, w, &t, BL_C_TRANS, buf, c.parent_l + 1 + el, 0, NULL, 0, 0);
		}
		break;
	}
	case KL_INTENT_FILE_ACCESS:
	case KL_INTENT_FILE_META_CHANGE: {
		uint32_t mode = 0;
		if (!c.path || !c.path_l)
			break;
		if (in.kind == KL_INTENT_FILE_META_CHANGE) {
			mode = KL_IA_WRITE;
		} else {
			if (in.dflags & KL_IA_READ)
				mode |= KL_IA_READ;
			if (in.dflags & (KL_IA_WRITE | KL_IA_CREATE | KL_IA_TRUNCATE | KL_IA_APPEND))
				mode |= KL_IA_WRITE;
			if (in.dflags & KL_IA_EXEC)
				mode |= KL_IA_EXEC;
			if (!mode)
				mode = KL_IA_READ;  /* O_PATH, stat-like use: a read of the name */
		}
		uint32_t want = (learn & BL_LEARN_FILE_R ? KL_IA_READ : 0) |
				(learn & BL_LEARN_FILE_W ? KL_IA_WRITE : 0) |
				(learn & BL_LEARN_FILE_X ? KL_IA_EXEC : 0);
		mode &= want;
		if (!mode)
			break;
		n = bl_generalise_path(buf, sizeof(buf), (const char *)c.path, c.path_l);
		observe(e, w, &t, BL_C_FILE, buf, n, mode, NULL, 0, 0);
		if (in.kind == KL_INTENT_FILE_META_CHANGE && c.path2 && c.path2_l &&
		    (in.op == 82 || in.op == 264 || in.op == 316)) {   /* rename*: the target is written too */
			n = bl_generalise_path(buf, sizeof(buf), (const char *)c.path2, c.path2_l);
			observe(e, w, &t, BL_C_FILE, buf, n, mode, NULL, 0, 0);
		}
		break;
	}
	case KL_INTENT_NETWORK_EXCHANGE: {
		uint16_t port = 0;
		if (in.iflags & KL_IN_ACCEPT) {
			if (!(learn & BL_LEARN_INGRESS))
				break;
			n = fmt_sockaddr(buf, sizeof(buf), c.local, c.local_l, proto, false, &port);
			if (!n && c.path && c.path_l)
				n = (size_t)snprintf(buf, sizeof(buf), "unix:%.*s", (int)c.path_l, c.path);
			if (!n)
				break;
			size_t al = addr_only(aux, sizeof(aux), c.peer, c.peer_l);
			observe(e, w, &t, BL_C_INGRESS, buf, n, 0, aux, al, port);
		} else {
			if (!(learn & BL_LEARN_EGRESS))
				break;
			n = fmt_sockaddr(buf, sizeof(buf), c.peer, c.peer_l, proto, true, &port);
			if (!n && c.path && c.path_l && (in.iflags & KL_IN_CONNECT))
				n = (size_t)snprintf(buf, sizeof(buf), "unix:%.*s", (int)c.path_l, c.path);
			if (!n)
				break;
			if (n >= sizeof(buf))
				n = sizeof(buf) - 1;
			observe(e, w, &t, BL_C_EGRESS, buf, n, 0, (const char *)c.dns, c.dns_l, port);
		}
		break;
	}
	case KL_INTENT_NETWORK_LISTEN: {
		uint16_t port = 0;
		if (!(learn & BL_LEARN_LISTEN))
			break;
		n = fmt_sockaddr(buf, sizeof(buf), c.local, c.local_l, proto, false, &port);
		if (!n && c.path && c.path_l)
			n = (size_t)snprintf(buf, sizeof(buf), "unix:%.*s", (int)c.path_l, c.path);
		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		if (n)
			observe(e, w, &t, BL_C_LISTEN, buf, n, 0, NULL, 0, port);
		break;
	}
	case KL_INTENT_DNS_QUERY: {
		if (!(learn & BL_LEARN_DNS) || !c.dns || !c.dns_l)
			break;
		n = c.dns_l < sizeof(buf) ? c.dns_l : sizeof(buf) - 1;
		for (size_t i = 0; i < n; i++) {
			uint8_t ch = c.dns[i];
			buf[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32u : ch);
		}
		if (n > 1 && buf[n - 1] == '.')
			n--;
		/* a failed lookup (NXDOMAIN, timeout) is an attempt, like a denied open */
		observe(e, w, &t, BL_C_DNS, buf, n, 0, NULL, 0, 0);
		break;
	}
	case KL_INTENT_PRIVILEGE_CHANGE:
	case KL_INTENT_NAMESPACE_CHANGE:
	case KL_INTENT_MODULE_LOAD:
	case KL_INTENT_BPF_LOAD:
	case KL_INTENT_PTRACE: {
		const char *op = in.op ? kl_syscall_name(in.op) : NULL;
		if (!(learn & BL_LEARN_UIDS))
			break;
		if (!op)
			op = in.kind == KL_INTENT_BPF_LOAD ? "bpf" : in.kind == KL_INTENT_PTRACE ? "ptrace" : "op";
		/* set*id calls: which id matters; bpf/ptrace: the command; the rest by name */
		if (in.kind == KL_INTENT_PRIVILEGE_CHANGE && strcmp(op, "setgroups") && strcmp(op, "capset"))
			n = (size_t)snprintf(buf, sizeof(buf), "%s(%lld)", op, (long long)(int32_t)in.arg[0]);
		else if (in.kind == KL_INTENT_BPF_LOAD || in.kind == KL_INTENT_PTRACE)
			n = (size_t)snprintf(buf, sizeof(buf), "%s(%llu)", op, (unsigned long long)in.arg[0]);
		else
			n = (size_t)snprintf(buf, sizeof(buf), "%s", op);
		observe(e, w, &t, BL_C_PRIV, buf, n, 0, NULL, 0, in.arg[0]);
		break;
	}
	default:
		break;
	}
	if (learn & BL_LEARN_UIDS) {
		n = (size_t)snprintf(buf, sizeof(buf), "%u", in.ev.uid);
		if (w->state == BL_ACTIVE) {
			/* checked with its own words: "uid 0" */
			uint64_t h = bl_item_hash(BL_C_UID, buf, n);
			const struct bl_item *it = item_find(w, h, BL_C_UID, buf, n);
			if (!it || it->attempt) {
				char item[32];
				int il = snprintf(item, sizeof(item), "uid %u", in.ev.uid);
				deviate(e, w, &t, KL_DEV_PRIVILEGE, item, (size_t)il, NULL, 0, 0, in.ev.uid, 0, h);
			}
		} else {
			observe(e, w, &t, BL_C_UID, buf, n, 0, NULL, 0, in.ev.uid);
		}
	}
	return 0;
}

/* ---- syscalls (enriched ring) ----------------------------------------------------- */

static int feed_enriched(struct bl_engine *e, const void *rec, size_t len)
{
	struct kl_enriched en;
	struct kl_syscall sc;
	uint16_t rt;
	const void *raw;
	size_t rl;
	struct ctx c;
	struct bl_workload *w;

	if (kl_enriched_raw(rec, len, &rt, &raw, &rl)) {
		e->st.invalid++;
		return -EINVAL;
	}
	if (rt != KL_REC_SYSCALL || rl < sizeof(sc))
		return 0;
	memcpy(&en, rec, sizeof(en));
	memcpy(&sc, raw, sizeof(sc));
	if (en.ev.flags & KL_EV_SELF)
		return 0;
	if (en.eflags & KL_EN_ENTERED) {
		e->st.runtime_skipped++;
		return 0;
	}
	if (read_ctx(KL_REC_ENRICHED, rec, len, &c)) {
		e->st.invalid++;
		return -EINVAL;
	}
	w = workload_of(e, &c);
	if (!w || w->state == BL_IDLE || !(w->pol.learn & BL_LEARN_SYSCALLS) || sc.nr >= BL_NSYSCALLS)
		return 0;
	/* denied by policy or unknown to the kernel: an attempt, not something it does */
	bool failed = sc.ret == -1 || sc.ret == -13 || sc.ret == -38;
	tick_workload(e, w, en.ev.ts_ns);
	if (w->state == BL_LEARNING || w->state == BL_INSUFFICIENT) {
		if (failed)
			w->sys_attempts[sc.nr]++;
		else
			w->syscalls[sc.nr]++;
		return 0;
	}
	if (w->state != BL_ACTIVE || w->syscalls[sc.nr] || (failed && w->sys_attempts[sc.nr]))
		return 0;
	struct trigger t = { .type = KL_REC_ENRICHED, .rec = rec, .len = len, .ev = &en.ev,
			     .first_seq = en.ev.seq, .last_seq = en.ev.seq,
			     .ctr_cgroup_id = en.ctr_cgroup_id, .failed = failed };
	const char *name = kl_syscall_name(sc.nr);
	char nb[24];
	if (!name) {
		snprintf(nb, sizeof(nb), "syscall_%u", sc.nr);
		name = nb;
	}
	deviate(e, w, &t, KL_DEV_NEW_SYSCALL, name, strlen(name), NULL, 0, 0, sc.nr, 0,
		bl_item_hash(BL_C__COUNT, name, strlen(name)));
	return 0;
}

int bl_engine_feed(struct bl_engine *e, uint16_t type, const void *rec, size_t len)
{
	if (type != KL_REC_INTENT && type != KL_REC_ENRICHED)
		return 0;
	if (kl_rec_validate(type, rec, len) != KL_REC_OK) {
		e->st.invalid++;
		return -EINVAL;
	}
	if (type == KL_REC_INTENT) {
		e->st.intents++;
		return feed_intent(e, rec, len);
	}
	e->st.syscalls++;
	return feed_enriched(e, rec, len);
}

/* ---- admin ------------------------------------------------------------------------ */

static bool key_sel(const struct bl_workload *w, const char *key)
{
	return !key || !*key || !strcmp(w->key, key);
}

int bl_engine_reset(struct bl_engine *e, const char *key)
{
	int n = 0;

	for (size_t i = 0; i < e->nw; i++)
		if (key_sel(e->w[i], key) && e->w[i]->has_policy) {
			workload_start_learning(e->w[i], 0);
			n++;
		}
	return n;
}

int bl_engine_promote(struct bl_engine *e, const char *key)
{
	int n = 0;

	for (size_t i = 0; i < e->nw; i++) {
		struct bl_workload *w = e->w[i];
		if (!key_sel(w, key) || (w->state != BL_LEARNING && w->state != BL_INSUFFICIENT))
			continue;
		uint64_t last = w->win_start_ns;
		for (size_t k = 0; k < w->nitems; k++)
			if (w->items[k].last_ns > last)
				last = w->items[k].last_ns;
		promote(e, w, last);
		n++;
	}
	return n;
}

int bl_engine_activate(struct bl_engine *e, const char *key)
{
	int n = 0;

	for (size_t i = 0; i < e->nw; i++) {
		struct bl_workload *w = e->w[i];
		if (!key_sel(w, key) || w->state != BL_READY)
			continue;
		w->state = BL_ACTIVE;
		w->dirty = true;
		n++;
	}
	return n;
}

int bl_engine_install(struct bl_engine *e, const struct bl_install *in)
{
	struct bl_workload *w = bl_engine_find(e, in->key);

	if (!w)
		w = workload_new(e, in->key, in->ns ? in->ns : "", in->owner ? in->owner : "",
				 in->container ? in->container : "", in->image ? in->image : "", in->host);
	if (!w)
		return -ENOSPC;
	if (!in->merge)
		items_clear(w);
	for (size_t i = 0; i < in->nitems; i++) {
		const struct bl_item *s = &in->items[i];
		struct bl_item *it = item_add(e, w, bl_item_hash(s->cat, s->text, s->len), s->cat,
					      s->text, s->len);
		if (!it)
			return -ENOMEM;
		it->count += s->count;
		it->mode |= s->mode;
		it->attempt = it->attempt && s->attempt;
		if (!it->first_ns || (s->first_ns && s->first_ns < it->first_ns))
			it->first_ns = s->first_ns;
		if (s->last_ns > it->last_ns)
			it->last_ns = s->last_ns;
		if (s->aux && !it->aux && !(it->aux = strdup(s->aux)))
			return -ENOMEM;
	}
	if (in->merge) {
		/* counts add up; the window covers both */
		for (size_t i = 0; i < BL_NSYSCALLS; i++) {
			w->syscalls[i] += in->syscalls ? in->syscalls[i] : 0;
			w->sys_attempts[i] += in->sys_attempts ? in->sys_attempts[i] : 0;
		}
		for (size_t i = 0; in->sketch && i < (size_t)BL_SKETCH_DEPTH * BL_SKETCH_WIDTH; i++)
			w->sketch[i] = w->sketch[i] > UINT32_MAX - in->sketch[i] ? UINT32_MAX
										 : w->sketch[i] + in->sketch[i];
		w->sketch_total += in->sketch_total;
		w->items_overflow += in->items_overflow;
		w->samples += in->samples;
		w->npods = (uint32_t)(w->npods + in->pods < MAX_PODS ? w->npods + in->pods : MAX_PODS);
		w->containers += in->containers;
		if (!w->win_start_ns || (in->win_start_ns && in->win_start_ns < w->win_start_ns))
			w->win_start_ns = in->win_start_ns;
		if (in->win_end_ns > w->win_end_ns)
			w->win_end_ns = in->win_end_ns;
	} else {
		if (in->syscalls)
			memcpy(w->syscalls, in->syscalls, sizeof(w->syscalls));
		if (in->sys_attempts)
			memcpy(w->sys_attempts, in->sys_attempts, sizeof(w->sys_attempts));
		if (in->sketch)
			memcpy(w->sketch, in->sketch, sizeof(w->sketch));
		w->sketch_total = in->sketch_total;
		w->items_overflow = in->items_overflow;
		w->samples = in->samples;
		w->npods = (uint32_t)(in->pods < MAX_PODS ? in->pods : MAX_PODS);
		w->containers = in->containers;
		w->win_start_ns = in->win_start_ns;
		w->win_end_ns = in->win_end_ns;
	}
	w->promoted_ns = in->win_end_ns;
	w->profile_id = in->profile_id;
	if (in->window_ns)
		w->pol.window_ns = in->window_ns;
	/* an installed profile is used even where no policy selects the workload any more */
	w->state = in->state;
	if (!w->has_policy) {
		w->has_policy = true;
		w->pol.learn = BL_LEARN_ALL;
		w->pol.emit = true;
		snprintf(w->pol.name, sizeof(w->pol.name), "%s", in->policy && *in->policy ? in->policy : "profile");
	}
	w->dirty = false;
	return 0;
}
