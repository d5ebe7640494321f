/* SPDX-License-Identifier: Apache-2.0 */
/*
 * recutil.c - the record-type registry and bounds-checked access to the
 * TLV tail. Everything that reads a record from a ring or a file goes
 * through kl_rec_validate() first; the iterator re-checks bounds anyway
 * so a caller that skipped validation still cannot read past the end.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <kloudlens/recutil.h>

extern const uint32_t kl_syscall_count;
extern const char *const kl_syscall_names[];

static const struct kl_rec_info registry[] = {
	{ KL_REC_SYSCALL, "syscall", sizeof(struct kl_syscall), true },
	{ KL_REC_PROC, "proc", sizeof(struct kl_proc), true },
	{ KL_REC_CONTAINER, "container", sizeof(struct kl_container), true },
	{ KL_REC_DNS, "dns", sizeof(struct kl_dns), true },
	{ KL_REC_SOCK, "sock", sizeof(struct kl_sock), true },
	{ KL_REC_LOSS, "loss", sizeof(struct kl_loss), true },
	{ KL_REC_ENRICHED, "enriched", sizeof(struct kl_enriched), true, true },
	{ KL_REC_INTENT, "intent", sizeof(struct kl_intent), true },
	{ KL_REC_GRAPH, "graph", sizeof(struct kl_graph), true },     /* graph (kl-graphd) */
	{ KL_REC_DEVIATION, "deviation", sizeof(struct kl_deviation), true }, /* deviation (kl-baselined) */
	{ KL_REC_MARK, "mark", sizeof(struct kl_mark), true },
};

static _Atomic uint64_t rejected[KL_REC_E__COUNT];

const struct kl_rec_info *kl_rec_info(uint16_t type)
{
	for (size_t i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
		if (registry[i].type == type)
			return &registry[i];
	return NULL;
}

uint64_t kl_rec_rejected(enum kl_rec_err why)
{
	if ((unsigned)why >= KL_REC_E__COUNT)
		return 0;
	return atomic_load_explicit(&rejected[why], memory_order_relaxed);
}

const char *kl_rec_strerror(enum kl_rec_err why)
{
	switch (why) {
	case KL_REC_OK: return "ok";
	case KL_REC_E_UNKNOWN_TYPE: return "unknown record type";
	case KL_REC_E_SHORT: return "record shorter than its fixed struct";
	case KL_REC_E_TAIL_OVERRUN: return "declared tail length overruns the record";
	case KL_REC_E_FIELD_OVERRUN: return "a tail field overruns the tail";
	case KL_REC_E_BAD_FIELD: return "invalid tail field id";
	case KL_REC_E_BAD_EMBEDDED: return "embedded raw record is invalid";
	default: return "unknown error";
	}
}

static enum kl_rec_err reject(enum kl_rec_err why)
{
	atomic_fetch_add_explicit(&rejected[why], 1, memory_order_relaxed);
	return why;
}

/* Locate the tail of a record; on success [*p, *end) is the tail. */
static enum kl_rec_err tail_bounds(uint16_t type, const void *rec, size_t len,
				   const uint8_t **p, const uint8_t **end)
{
	const struct kl_rec_info *ri = kl_rec_info(type);
	struct kl_event ev;

	if (!ri)
		return KL_REC_E_UNKNOWN_TYPE;
	if (len < ri->fixed_size)
		return KL_REC_E_SHORT;
	if (!ri->has_event_head) {
		*p = *end = (const uint8_t *)rec + ri->fixed_size;
		return KL_REC_OK;
	}
	memcpy(&ev, rec, sizeof(ev));
	if (ev.tail_len > len - ri->fixed_size)
		return KL_REC_E_TAIL_OVERRUN;
	*p = (const uint8_t *)rec + ri->fixed_size;
	*end = *p + ev.tail_len;
	if (ri->embeds_raw) {
		struct kl_enriched en;
		memcpy(&en, rec, sizeof(en));
		uint64_t span = ((uint64_t)en.raw_len + 7) & ~7ull;
		if (span > ev.tail_len)
			return KL_REC_E_TAIL_OVERRUN;
		*p += span;
	}
	return KL_REC_OK;
}

int kl_enriched_raw(const void *rec, size_t len, uint16_t *type, const void **raw, size_t *raw_len)
{
	struct kl_enriched en;

	if (len < sizeof(en))
		return -EINVAL;
	memcpy(&en, rec, sizeof(en));
	if (en.raw_len > len - sizeof(en) || en.raw_len > en.ev.tail_len)
		return -EINVAL;
	*type = en.raw_type;
	*raw = (const uint8_t *)rec + sizeof(en);
	*raw_len = en.raw_len;
	return 0;
}

const char *kl_fd_kind_name(uint32_t kind)
{
	static const char *const n[] = { "unknown", "file", "inet", "inet6", "unix", "socket", "pipe", "memfd" };
	return kind < sizeof(n) / sizeof(n[0]) ? n[kind] : "unknown";
}

enum kl_rec_err kl_rec_validate(uint16_t type, const void *rec, size_t len)
{
	struct kl_field_iter it;
	struct kl_field_view f;
	enum kl_rec_err e = tail_bounds(type, rec, len, &it.p, &it.end);

	if (e)
		return reject(e);
	if (type == KL_REC_ENRICHED) {
		uint16_t rt;
		const void *raw;
		size_t rl;
		if (kl_enriched_raw(rec, len, &rt, &raw, &rl) || rt == KL_REC_ENRICHED ||
		    kl_rec_validate(rt, raw, rl) != KL_REC_OK)
			return reject(KL_REC_E_BAD_EMBEDDED);
	}
	it.err = 0;
	while (kl_field_next(&it, &f))
		;
	if (it.err)
		return reject((enum kl_rec_err)it.err);
	return KL_REC_OK;
}

int kl_field_iter_init(struct kl_field_iter *it, uint16_t type, const void *rec, size_t len)
{
	enum kl_rec_err e = tail_bounds(type, rec, len, &it->p, &it->end);

	it->err = (int)e;
	if (e) {
		it->p = it->end = NULL;
		return -EINVAL;
	}
	return 0;
}

bool kl_field_next(struct kl_field_iter *it, struct kl_field_view *f)
{
	struct kl_field h;

	if (it->err || !it->p || it->p >= it->end)
		return false;
	if ((size_t)(it->end - it->p) < sizeof(h)) {
		it->err = KL_REC_E_FIELD_OVERRUN;
		return false;
	}
	memcpy(&h, it->p, sizeof(h));
	if ((size_t)(it->end - it->p) - sizeof(h) < h.len) {
		it->err = KL_REC_E_FIELD_OVERRUN;
		return false;
	}
	uint16_t id = (uint16_t)(h.id & KL_FIELD_ID_MASK);
	if (id == 0 || id >= KL_F__MAX) {
		it->err = KL_REC_E_BAD_FIELD;
		return false;
	}
	f->id = id;
	f->truncated = (h.id & KL_FIELD_TRUNC) != 0;
	f->len = h.len;
	f->data = it->p + sizeof(h);
	it->p += sizeof(h) + h.len;
	return true;
}

bool kl_field_find(uint16_t type, const void *rec, size_t len, uint16_t id, struct kl_field_view *f)
{
	struct kl_field_iter it;

	if (kl_field_iter_init(&it, type, rec, len))
		return false;
	while (kl_field_next(&it, f))
		if (f->id == id)
			return true;
	return false;
}

const char *kl_field_name(uint16_t id)
{
	switch (id) {
	case KL_F_PATH: return "path";
	case KL_F_PATH2: return "path2";
	case KL_F_ARGV: return "argv";
	case KL_F_EXE: return "exe";
	case KL_F_CWD: return "cwd";
	case KL_F_SOCKADDR: return "sockaddr";
	case KL_F_SOCKADDR2: return "sockaddr2";
	case KL_F_DATA: return "data";
	case KL_F_FILENAME: return "filename";
	case KL_F_ENV: return "env";
	case KL_F_CONTAINER_ID: return "container_id";
	case KL_F_CONTAINER_NAME: return "container_name";
	case KL_F_IMAGE: return "image";
	case KL_F_LABELS: return "labels";
	case KL_F_ANNOTATIONS: return "annotations";
	case KL_F_POD_NAME: return "pod_name";
	case KL_F_POD_NAMESPACE: return "pod_namespace";
	case KL_F_POD_UID: return "pod_uid";
	case KL_F_SANDBOX_ID: return "sandbox_id";
	case KL_F_CGROUP_PATH: return "cgroup_path";
	case KL_F_BUNDLE: return "bundle";
	case KL_F_RUNTIME: return "oci_runtime"; /* "runtime" is the enum on the struct */
	case KL_F_NAME: return "name";
	case KL_F_PARENT_EXE: return "parent_exe";
	case KL_F_FD_PATH: return "fd_path";
	case KL_F_FD_PATH2: return "fd2_path";
	case KL_F_LOCAL_ADDR: return "local_addr";
	case KL_F_PEER_ADDR: return "peer_addr";
	case KL_F_ABS_PATH: return "abs_path";
	case KL_F_ABS_PATH2: return "abs_path2";
	case KL_F_FDS: return "fds";
	case KL_F_NODE: return "node";
	case KL_F_DNS_NAME: return "dns_name";
	case KL_F_DNS_ANSWERS: return "dns_answers";
	/* graph (kl-graphd) */
	case KL_F_GRAPH_FROM: return "graph_from";
	case KL_F_GRAPH_TO: return "graph_to";
	case KL_F_GRAPH_FROM_CTR: return "graph_from_ctr";
	case KL_F_GRAPH_TO_CTR: return "graph_to_ctr";
	case KL_F_GRAPH_SEQS: return "graph_seqs";
	case KL_F_GRAPH_POD: return "graph_pod";
	/* deviation (kl-baselined) */
	case KL_F_DEV_WORKLOAD: return "workload";
	case KL_F_DEV_PROFILE: return "profile";
	case KL_F_DEV_ITEM: return "item";
	case KL_F_DEV_PARENT: return "item_parent";
	case KL_F_DEV_REASON: return "reason";
	default: return NULL;
	}
}

void kl_tail_init(struct kl_tail_builder *b, void *rec, size_t fixed, size_t cap)
{
	b->base = rec;
	b->fixed = fixed;
	b->cap = cap;
	b->len = fixed;
	b->truncated = false;
}

int kl_tail_add(struct kl_tail_builder *b, uint16_t id, const void *data, size_t len)
{
	struct kl_field h = { .id = id };
	size_t room;

	if (b->len + sizeof(h) >= b->cap) {
		b->truncated = true;
		return -ENOSPC;
	}
	room = b->cap - b->len - sizeof(h);
	if (room > UINT16_MAX)
		room = UINT16_MAX;
	if (len > room) {
		len = room;
		h.id |= KL_FIELD_TRUNC;
		b->truncated = true;
	}
	h.len = (uint16_t)len;
	memcpy(b->base + b->len, &h, sizeof(h));
	if (len)
		memcpy(b->base + b->len + sizeof(h), data, len);
	b->len += sizeof(h) + len;
	return 0;
}

int kl_tail_add_str(struct kl_tail_builder *b, uint16_t id, const char *s)
{
	return kl_tail_add(b, id, s, s ? strlen(s) : 0);
}

size_t kl_tail_finish(struct kl_tail_builder *b)
{
	struct kl_event ev;

	memcpy(&ev, b->base, sizeof(ev));
	ev.tail_len = (uint32_t)(b->len - b->fixed);
	if (b->truncated)
		ev.flags |= KL_EV_TRUNCATED;
	memcpy(b->base, &ev, sizeof(ev));
	return b->len;
}

const char *kl_syscall_name(uint32_t nr)
{
	return nr < kl_syscall_count ? kl_syscall_names[nr] : NULL;
}

int kl_syscall_nr(const char *name)
{
	for (uint32_t i = 0; i < kl_syscall_count; i++)
		if (kl_syscall_names[i] && !strcmp(kl_syscall_names[i], name))
			return (int)i;
	return -1;
}

uint32_t kl_syscall_max(void)
{
	return kl_syscall_count;
}

static const char *const cat_names[KL_CAT__COUNT] = {
	[KL_CAT_CRIT] = "crit",
	[KL_CAT_BULK_FILE] = "bulk_file",
	[KL_CAT_BULK_NET] = "bulk_net",
	[KL_CAT_BULK_PROC] = "bulk_proc",
	[KL_CAT_BULK_FILE_META] = "bulk_file_meta",
	[KL_CAT_DNS] = "dns",
	[KL_CAT_PROC_LC] = "proc_lc",
	[KL_CAT_SOCK_LC] = "sock_lc",
};

const char *kl_category_name(uint32_t cat)
{
	return cat < KL_CAT__COUNT ? cat_names[cat] : NULL;
}

int kl_category_from_name(const char *name)
{
	for (int i = 0; i < KL_CAT__COUNT; i++)
		if (!strcmp(cat_names[i], name))
			return i;
	return -1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t kl_now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t kl_now_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}
