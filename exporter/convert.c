/* SPDX-License-Identifier: Apache-2.0 */
#include "convert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <kloudlens/record.h>
#include <kloudlens/recutil.h>

static const char *const stream_names[] = {
	[KLOUDLENS__V1__STREAM__STREAM_RAW] = "raw",
	[KLOUDLENS__V1__STREAM__STREAM_EVENTS] = "events",
	[KLOUDLENS__V1__STREAM__STREAM_INTENTS] = "intents",
	[KLOUDLENS__V1__STREAM__STREAM_GRAPH] = "graph",
	[KLOUDLENS__V1__STREAM__STREAM_DEVIATIONS] = "deviations",
};

const char *kl_stream_name(int s)
{
	if (s <= 0 || s >= (int)(sizeof(stream_names) / sizeof(stream_names[0])))
		return "unspecified";
	return stream_names[s];
}

int kl_stream_from_name(const char *s)
{
	for (int i = 1; i < (int)(sizeof(stream_names) / sizeof(stream_names[0])); i++)
		if (!strcmp(s, stream_names[i]))
			return i;
	return -1;
}

/* ---- container table ---------------------------------------------------- */

static uint32_t ctr_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (uint32_t)k & (KL_CTR_SLOTS - 1);
}

const struct kl_ctr *kl_ctr_find(const struct kl_ctr_table *t, uint64_t cg)
{
	uint32_t h = ctr_hash(cg);

	if (!cg)
		return NULL;
	for (uint32_t i = 0; i < KL_CTR_SLOTS; i++) {
		const struct kl_ctr *c = &t->slot[(h + i) & (KL_CTR_SLOTS - 1)];

		if (c->cgroup_id == cg)
			return c->live ? c : NULL;
		if (!c->cgroup_id)
			return NULL;
	}
	return NULL;
}

/* Slot for @cg: its own, else the first free or dead one on its probe path. */
static struct kl_ctr *ctr_slot(struct kl_ctr_table *t, uint64_t cg)
{
	uint32_t h = ctr_hash(cg);
	struct kl_ctr *dead = NULL;

	for (uint32_t i = 0; i < KL_CTR_SLOTS; i++) {
		struct kl_ctr *c = &t->slot[(h + i) & (KL_CTR_SLOTS - 1)];

		if (c->cgroup_id == cg)
			return c;
		if (!c->live && !dead)
			dead = c;
		if (!c->cgroup_id)
			break;
	}
	return dead;
}

static void copy_field(char *dst, size_t cap, const struct kl_field_view *f)
{
	size_t n = f->len < cap - 1 ? f->len : cap - 1;

	memcpy(dst, f->data, n);
	dst[n] = 0;
	dst[strnlen(dst, n)] = 0;
}

static const char *runtime_name(uint32_t rt)
{
	static const char *const n[] = { "unknown", "containerd", "runc", "crun", "cri-o", "docker" };

	return rt < sizeof(n) / sizeof(n[0]) ? n[rt] : "unknown";
}

static void ctr_update(struct kl_ctr_table *t, const struct kl_container *kc, size_t len)
{
	struct kl_field_iter it;
	struct kl_field_view f;
	struct kl_ctr *c;

	if (kc->kind == KL_CTR_STOP) {
		c = (struct kl_ctr *)kl_ctr_find(t, kc->ev.cgroup_id);
		if (c) {
			/* keep the key so probe chains stay intact; the slot is reusable */
			c->live = false;
			t->live--;
		}
		return;
	}
	c = ctr_slot(t, kc->ev.cgroup_id);
	if (!c)
		return;   /* table full: lookups fall back to the bare cgroup id */
	if (!c->live || c->cgroup_id != kc->ev.cgroup_id)
		t->live++;
	memset(c, 0, sizeof(*c));
	c->cgroup_id = kc->ev.cgroup_id;
	c->live = true;
	c->init_pid = kc->init_pid;
	c->mnt_ns = kc->mnt_ns;
	c->pid_ns = kc->pid_ns;
	c->net_ns = kc->net_ns;
	snprintf(c->runtime, sizeof(c->runtime), "%s", runtime_name(kc->runtime));
	if (kl_field_iter_init(&it, KL_REC_CONTAINER, kc, len))
		return;
	while (kl_field_next(&it, &f)) {
		switch (f.id) {
		case KL_F_CONTAINER_ID: copy_field(c->id, sizeof(c->id), &f); break;
		case KL_F_CONTAINER_NAME: copy_field(c->name, sizeof(c->name), &f); break;
		case KL_F_IMAGE: copy_field(c->image, sizeof(c->image), &f); break;
		case KL_F_POD_NAME: copy_field(c->pod, sizeof(c->pod), &f); break;
		case KL_F_POD_NAMESPACE: copy_field(c->ns, sizeof(c->ns), &f); break;
		case KL_F_POD_UID: copy_field(c->pod_uid, sizeof(c->pod_uid), &f); break;
		default: break;
		}
	}
}

/* ---- conversion --------------------------------------------------------- */

int kl_conv_init(struct kl_conv *cv, struct kl_ctr_table *ctrs)
{
	memset(cv, 0, sizeof(*cv));
	cv->ctrs = ctrs;
	cv->arena_cap = 64 << 10;
	cv->arena = malloc(cv->arena_cap);
	return cv->arena ? 0 : -ENOMEM;
}

void kl_conv_fini(struct kl_conv *cv)
{
	if (!cv)
		return;
	free(cv->arena);
	cv->arena = NULL;
}

static void *arena_get(struct kl_conv *cv, size_t n, size_t align)
{
	size_t off = (cv->arena_len + align - 1) & ~(align - 1);

	if (off + n > cv->arena_cap)
		return NULL;   /* cannot happen: kl_convert sized the arena for the record */
	cv->arena_len = off + n;
	return cv->arena + off;
}

static char *arena_str(struct kl_conv *cv, const void *p, size_t n)
{
	char *s = arena_get(cv, n + 1, 1);

	if (!s)
		return (char *)protobuf_c_empty_string;
	memcpy(s, p, n);
	s[n] = 0;
	return s;
}

static char *fstr(struct kl_conv *cv, const struct kl_field_view *f)
{
	return arena_str(cv, f->data, strnlen((const char *)f->data, f->len));
}

static void fill_ctr(struct kl_conv *cv, uint64_t cg)
{
	Kloudlens__V1__ContainerMeta *m = &cv->cm;
	const struct kl_ctr *c = kl_ctr_find(cv->ctrs, cg);

	kloudlens__v1__container_meta__init(m);
	m->cgroup_id = cg;
	if (!c)
		return;
	m->container_id = (char *)c->id;
	m->name = (char *)c->name;
	m->image = (char *)c->image;
	m->pod_name = (char *)c->pod;
	m->pod_namespace = (char *)c->ns;
	m->pod_uid = (char *)c->pod_uid;
	m->runtime = (char *)c->runtime;
	m->mnt_ns = c->mnt_ns;
	m->pid_ns = c->pid_ns;
	m->net_ns = c->net_ns;
}

static Kloudlens__V1__ProcessMeta *fill_proc(struct kl_conv *cv, const struct kl_event *ev)
{
	Kloudlens__V1__ProcessMeta *p = &cv->pm;

	kloudlens__v1__process_meta__init(p);
	p->pid = ev->pid;
	p->tid = ev->tid;
	p->ns_pid = ev->ns_pid;
	p->ppid = ev->ppid;
	p->uid = ev->uid;
	p->gid = ev->gid;
	p->start_ns = ev->start_ns;
	p->comm = arena_str(cv, ev->comm, strnlen(ev->comm, KL_COMM_LEN));
	p->mnt_ns = ev->mnt_ns;
	p->pid_ns = ev->pid_ns;
	p->cgroup_id = ev->cgroup_id;
	fill_ctr(cv, ev->cgroup_id);
	return p;
}

/* argv is NUL-separated; split it into a char* array in the arena. */
static void fill_argv(struct kl_conv *cv, const struct kl_field_view *f)
{
	size_t n = 0, i;
	const char *s = (const char *)f->data, *end = s + f->len;
	char **v;

	for (i = 0; i < f->len; i++)
		if (!s[i])
			n++;
	if (f->len && s[f->len - 1])
		n++;
	v = arena_get(cv, n * sizeof(char *), sizeof(char *));
	if (!v)
		return;
	for (i = 0; i < n && s < end; i++) {
		size_t l = strnlen(s, end - s);

		v[i] = arena_str(cv, s, l);
		s += l + 1;
	}
	cv->pm.argv = v;
	cv->pm.n_argv = i;
}

static char *addr_str(struct kl_conv *cv, uint16_t family, const uint8_t *a, uint16_t port)
{
	char ip[INET6_ADDRSTRLEN] = "?", *s = arena_get(cv, INET6_ADDRSTRLEN + 10, 1);

	if (!s)
		return (char *)protobuf_c_empty_string;
	inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, a, ip, sizeof(ip));
	snprintf(s, INET6_ADDRSTRLEN + 10, family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
	return s;
}

/* sockaddr bytes as "ip:port", "[ip6]:port" or a unix path. */
static char *sockaddr_str(struct kl_conv *cv, const struct kl_field_view *f)
{
	char ip[INET6_ADDRSTRLEN], *s;
	sa_family_t fam;

	if (f->len < sizeof(fam))
		return (char *)protobuf_c_empty_string;
	memcpy(&fam, f->data, sizeof(fam));
	if (fam == AF_INET && f->len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;

		memcpy(&sin, f->data, sizeof(sin));
		inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
		s = arena_get(cv, INET6_ADDRSTRLEN + 10, 1);
		if (s)
			snprintf(s, INET6_ADDRSTRLEN + 10, "%s:%u", ip, ntohs(sin.sin_port));
		return s ? s : (char *)protobuf_c_empty_string;
	}
	if (fam == AF_INET6 && f->len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, f->data, sizeof(sin6));
		inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof(ip));
		s = arena_get(cv, INET6_ADDRSTRLEN + 10, 1);
		if (s)
			snprintf(s, INET6_ADDRSTRLEN + 10, "[%s]:%u", ip, ntohs(sin6.sin6_port));
		return s ? s : (char *)protobuf_c_empty_string;
	}
	if (fam == AF_UNIX) {
		const char *path = (const char *)f->data + sizeof(fam);
		size_t plen = f->len - sizeof(fam);

		/* abstract sockets start with a NUL; show them as "@name" */
		if (plen && !path[0]) {
			s = arena_get(cv, plen + 1, 1);
			if (!s)
				return (char *)protobuf_c_empty_string;
			s[0] = '@';
			memcpy(s + 1, path + 1, plen - 1);
			s[plen] = 0;
			return s;
		}
		return arena_str(cv, path, strnlen(path, plen));
	}
	return (char *)protobuf_c_empty_string;
}

/* Container/process context carried in an enriched or intent tail. */
static bool context_field(struct kl_conv *cv, const struct kl_field_view *f)
{
	Kloudlens__V1__ContainerMeta *m = &cv->cm;

	switch (f->id) {
	case KL_F_CONTAINER_ID: m->container_id = fstr(cv, f); return true;
	case KL_F_CONTAINER_NAME: m->name = fstr(cv, f); return true;
	case KL_F_IMAGE: m->image = fstr(cv, f); return true;
	case KL_F_POD_NAME: m->pod_name = fstr(cv, f); return true;
	case KL_F_POD_NAMESPACE: m->pod_namespace = fstr(cv, f); return true;
	case KL_F_POD_UID: m->pod_uid = fstr(cv, f); return true;
	case KL_F_SANDBOX_ID: m->sandbox_id = fstr(cv, f); return true;
	case KL_F_RUNTIME: m->runtime = fstr(cv, f); return true;
	case KL_F_EXE: cv->pm.exe = fstr(cv, f); return true;
	case KL_F_CWD: cv->pm.cwd = fstr(cv, f); return true;
	case KL_F_ARGV: fill_argv(cv, f); return true;
	case KL_F_PARENT_EXE: cv->pm.parent_exe = fstr(cv, f); return true;
	default: return false;
	}
}

static void conv_syscall(struct kl_conv *cv, const struct kl_syscall *r, size_t len, kl_env *env)
{
	Kloudlens__V1__SyscallEvent *e = &cv->sc;
	struct kl_field_iter it;
	struct kl_field_view f;
	const char *name;

	kloudlens__v1__syscall_event__init(e);
	e->source_seq = r->ev.seq;
	e->ts_ns = r->ev.ts_ns;
	e->process = fill_proc(cv, &r->ev);
	e->container = &cv->cm;
	e->nr = r->nr;
	name = kl_syscall_name(r->nr);
	e->name = (char *)(name ? name : "");
	memcpy(cv->args, r->args, sizeof(cv->args));
	e->args = cv->args;
	e->n_args = 6;
	e->ret = r->ret;
	e->duration_ns = r->duration_ns;
	name = kl_category_name(r->category);
	e->category = (char *)(name ? name : "");
	e->flags = r->sflags | (r->ev.flags << 16);
	e->truncated = (r->ev.flags & KL_EV_TRUNCATED) || (r->sflags & KL_SC_ARGS_TRUNC);
	if (kl_field_iter_init(&it, KL_REC_SYSCALL, r, len) == 0) {
		while (kl_field_next(&it, &f)) {
			switch (f.id) {
			case KL_F_PATH: e->path = fstr(cv, &f); break;
			case KL_F_PATH2: e->path2 = fstr(cv, &f); break;
			case KL_F_FILENAME: e->filename = fstr(cv, &f); break;
			case KL_F_SOCKADDR:
				e->sockaddr.data = (uint8_t *)f.data;
				e->sockaddr.len = f.len;
				break;
			case KL_F_SOCKADDR2:
				e->sockaddr2.data = (uint8_t *)f.data;
				e->sockaddr2.len = f.len;
				break;
			case KL_F_ARGV: fill_argv(cv, &f); break;
			case KL_F_EXE: cv->pm.exe = fstr(cv, &f); break;
			case KL_F_CWD: cv->pm.cwd = fstr(cv, &f); break;
			default: break;
			}
		}
	}
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL;
	env->syscall = e;
}

static void proc_tail(struct kl_conv *cv, uint16_t type, const void *r, size_t len)
{
	struct kl_field_iter it;
	struct kl_field_view f;

	if (kl_field_iter_init(&it, type, r, len))
		return;
	while (kl_field_next(&it, &f)) {
		switch (f.id) {
		case KL_F_ARGV: fill_argv(cv, &f); break;
		case KL_F_EXE: cv->pm.exe = fstr(cv, &f); break;
		case KL_F_CWD: cv->pm.cwd = fstr(cv, &f); break;
		default: break;
		}
	}
}

static void conv_proc(struct kl_conv *cv, const struct kl_proc *r, size_t len, kl_env *env)
{
	Kloudlens__V1__ProcessEvent *e = &cv->pe;

	kloudlens__v1__process_event__init(e);
	e->source_seq = r->ev.seq;
	e->ts_ns = r->ev.ts_ns;
	e->kind = r->kind <= 4 ? (Kloudlens__V1__ProcessEvent__Kind)r->kind : 0;
	e->process = fill_proc(cv, &r->ev);
	e->container = &cv->cm;
	e->parent_pid = r->parent_pid;
	e->parent_start_ns = r->parent_start_ns;
	e->exit_code = r->exit_code;
	e->child_tid = r->child_tid;
	e->old_pid = r->old_pid;
	e->nthreads = r->nthreads;
	e->euid = r->euid;
	e->cap_effective = r->cap_effective;
	proc_tail(cv, KL_REC_PROC, r, len);
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_PROCESS;
	env->process = e;
}

static void conv_container(struct kl_conv *cv, const struct kl_container *r, size_t len, kl_env *env)
{
	Kloudlens__V1__ContainerLifecycleEvent *e = &cv->ce;
	struct kl_field_iter it;
	struct kl_field_view f;

	if (r->kind != KL_CTR_STOP)
		ctr_update(cv->ctrs, r, len);
	kloudlens__v1__container_lifecycle_event__init(e);
	e->source_seq = r->ev.seq;
	e->ts_ns = r->ev.ts_ns;
	e->kind = r->kind <= 3 ? (Kloudlens__V1__ContainerLifecycleEvent__Kind)r->kind : 0;
	fill_ctr(cv, r->ev.cgroup_id);
	e->container = &cv->cm;
	e->init_pid = r->init_pid;
	e->exit_code = r->exit_code;
	if (kl_field_iter_init(&it, KL_REC_CONTAINER, r, len) == 0) {
		while (kl_field_next(&it, &f)) {
			switch (f.id) {
			/* a STOP may name a container the table never saw */
			case KL_F_CONTAINER_ID:
				if (!*cv->cm.container_id)
					cv->cm.container_id = fstr(cv, &f);
				break;
			case KL_F_BUNDLE: e->bundle = fstr(cv, &f); break;
			case KL_F_CGROUP_PATH: e->cgroup_path = fstr(cv, &f); break;
			default: break;
			}
		}
	}
	if (!cv->cm.runtime || !*cv->cm.runtime)
		cv->cm.runtime = (char *)runtime_name(r->runtime);
	/* after the copy into the envelope, so the STOP still names the container */
	if (r->kind == KL_CTR_STOP) {
		const struct kl_ctr *c = kl_ctr_find(cv->ctrs, r->ev.cgroup_id);

		if (c) {
			/* the envelope points into the table: keep those strings alive */
			struct kl_ctr *m = (struct kl_ctr *)c;

			m->live = false;
			cv->ctrs->live--;
		}
	}
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_CONTAINER;
	env->container = e;
}

static void conv_dns(struct kl_conv *cv, const struct kl_dns *r, size_t len, kl_env *env)
{
	Kloudlens__V1__DnsEvent *e = &cv->dns;
	struct kl_field_view f;

	kloudlens__v1__dns_event__init(e);
	e->source_seq = r->ev.seq;
	e->ts_ns = r->ev.ts_ns;
	e->process = fill_proc(cv, &r->ev);
	e->container = &cv->cm;
	e->egress = r->direction == KL_DIR_EGRESS;
	e->proto = r->proto;
	e->src = addr_str(cv, r->family, r->saddr, r->sport);
	e->dst = addr_str(cv, r->family, r->daddr, r->dport);
	e->message_len = r->msg_len;
	if (kl_field_find(KL_REC_DNS, r, len, KL_F_DATA, &f)) {
		e->message.data = (uint8_t *)f.data;
		e->message.len = f.len;
	}
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_DNS;
	env->dns = e;
}

static void conv_sock(struct kl_conv *cv, const struct kl_sock *r, kl_env *env)
{
	Kloudlens__V1__SocketEvent *e = &cv->so;

	kloudlens__v1__socket_event__init(e);
	e->source_seq = r->ev.seq;
	e->ts_ns = r->ev.ts_ns;
	e->process = fill_proc(cv, &r->ev);
	e->container = &cv->cm;
	e->close = r->kind == KL_SOCK_CLOSE;
	e->proto = r->proto;
	e->src = addr_str(cv, r->family, r->saddr, r->sport);
	e->dst = addr_str(cv, r->family, r->daddr, r->dport);
	e->old_state = r->old_state;
	e->new_state = r->new_state;
	e->bytes_sent = r->bytes_sent;
	e->bytes_received = r->bytes_received;
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SOCKET;
	env->socket = e;
}

static void conv_loss(struct kl_conv *cv, const struct kl_loss *r, kl_env *env)
{
	Kloudlens__V1__LossEvent *e = &cv->loss;
	const char *cat = kl_category_name(r->category);

	kloudlens__v1__loss_event__init(e);
	e->where = r->where <= 4 ? (Kloudlens__V1__LossEvent__Where)r->where : 0;
	e->category = (char *)(cat ? cat : "");
	e->count = r->count;
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS;
	env->loss = e;
}

static void conv_raw(struct kl_conv *cv, uint16_t type, const void *data, size_t len, kl_env *env);

/*
 * kl-enricher's record: the raw record embedded whole, then enrichment
 * fields. Decode the raw one as usual and lay the enrichment over it.
 */
static void conv_enriched(struct kl_conv *cv, const struct kl_enriched *en, size_t len, kl_env *env)
{
	struct kl_field_iter it;
	struct kl_field_view f;
	const void *raw;
	size_t rlen;
	uint16_t rtype;
	Kloudlens__V1__SyscallEvent *sc = NULL;

	if (kl_enriched_raw(en, len, &rtype, &raw, &rlen))
		return;   /* cannot happen: kl_rec_validate checked the embedded record */
	conv_raw(cv, rtype, raw, rlen, env);
	cv->pm.parent_start_ns = en->parent_start_ns;
	if (en->ctr_cgroup_id && en->ctr_cgroup_id != cv->cm.cgroup_id) {
		/* the container's cgroup, not the process's (nested cgroups) */
		fill_ctr(cv, en->ctr_cgroup_id);
	}
	if (env->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL) {
		sc = env->syscall;
		sc->enriched = true;
		sc->enrich_flags = en->eflags;
		sc->fd_kind = (char *)kl_fd_kind_name(en->fd_kind);
	}
	if (kl_field_iter_init(&it, KL_REC_ENRICHED, en, len))
		return;
	while (kl_field_next(&it, &f)) {
		if (context_field(cv, &f) || !sc)
			continue;
		switch (f.id) {
		case KL_F_FD_PATH: sc->fd_path = fstr(cv, &f); break;
		case KL_F_FD_PATH2: sc->fd_path2 = fstr(cv, &f); break;
		case KL_F_ABS_PATH: sc->abs_path = fstr(cv, &f); break;
		case KL_F_ABS_PATH2: sc->abs_path2 = fstr(cv, &f); break;
		case KL_F_LOCAL_ADDR: sc->local_addr = sockaddr_str(cv, &f); break;
		case KL_F_PEER_ADDR: sc->peer_addr = sockaddr_str(cv, &f); break;
		default: break;
		}
	}
}

/* enum kl_intent_kind -> kloudlens.v1.IntentKind */
static int intent_kind(uint16_t k)
{
	static const int map[KL_INTENT__COUNT] = {
		[KL_INTENT_PROCESS_START] = KLOUDLENS__V1__INTENT_KIND__PROCESS_START,
		[KL_INTENT_PROCESS_EXIT] = KLOUDLENS__V1__INTENT_KIND__PROCESS_EXIT,
		[KL_INTENT_FILE_ACCESS] = KLOUDLENS__V1__INTENT_KIND__FILE_ACCESS,
		[KL_INTENT_FILE_META_CHANGE] = KLOUDLENS__V1__INTENT_KIND__FILE_META_CHANGE,
		[KL_INTENT_NETWORK_EXCHANGE] = KLOUDLENS__V1__INTENT_KIND__NETWORK_EXCHANGE,
		[KL_INTENT_NETWORK_LISTEN] = KLOUDLENS__V1__INTENT_KIND__NETWORK_LISTEN,
		[KL_INTENT_DNS_QUERY] = KLOUDLENS__V1__INTENT_KIND__DNS_QUERY,
		[KL_INTENT_PRIVILEGE_CHANGE] = KLOUDLENS__V1__INTENT_KIND__PRIVILEGE_CHANGE,
		[KL_INTENT_NAMESPACE_CHANGE] = KLOUDLENS__V1__INTENT_KIND__NAMESPACE_CHANGE,
		[KL_INTENT_MODULE_LOAD] = KLOUDLENS__V1__INTENT_KIND__MODULE_LOAD,
		[KL_INTENT_BPF_LOAD] = KLOUDLENS__V1__INTENT_KIND__BPF_LOAD,
		[KL_INTENT_PTRACE] = KLOUDLENS__V1__INTENT_KIND__PTRACE,
		[KL_INTENT_EXEC_FROM_MEMORY] = KLOUDLENS__V1__INTENT_KIND__EXEC_FROM_MEMORY,
		[KL_INTENT_SIGNAL] = KLOUDLENS__V1__INTENT_KIND__IPC_SIGNAL,
		[KL_INTENT_IPC] = KLOUDLENS__V1__INTENT_KIND__IPC,
	};

	return k < KL_INTENT__COUNT ? map[k] : 0;
}

static void conv_intent(struct kl_conv *cv, const struct kl_intent *r, size_t len, kl_env *env)
{
	Kloudlens__V1__IntentEvent *e = &cv->in;
	struct kl_field_iter it;
	struct kl_field_view f;
	const char *op;

	kloudlens__v1__intent_event__init(e);
	e->id = r->ev.seq;
	e->kind = intent_kind(r->kind);
	e->ts_ns = r->ev.ts_ns;
	e->start_ns = r->first_ts;
	e->end_ns = r->last_ts;
	e->process = fill_proc(cv, &r->ev);
	cv->pm.ppid = r->parent_pid ? r->parent_pid : cv->pm.ppid;
	cv->pm.parent_start_ns = r->parent_start_ns;
	if (r->ctr_cgroup_id && r->ctr_cgroup_id != cv->cm.cgroup_id)
		fill_ctr(cv, r->ctr_cgroup_id);
	e->container = &cv->cm;
	e->bytes_in = r->bytes_in;
	e->bytes_out = r->bytes_out;
	e->ops_in = r->ops_in;
	e->ops_out = r->ops_out;
	e->count = r->count;
	e->result = r->result;
	e->flags = r->iflags;
	e->access = r->dflags;
	e->op = r->op;
	op = r->op ? kl_syscall_name(r->op) : NULL;
	e->op_name = (char *)(op ? op : "");
	e->first_seq = r->first_seq;
	e->last_seq = r->last_seq;
	memcpy(cv->in_args, r->arg, sizeof(cv->in_args));
	e->args = cv->in_args;
	e->n_args = 4;
	if (kl_field_iter_init(&it, KL_REC_INTENT, r, len) == 0) {
		while (kl_field_next(&it, &f)) {
			if (context_field(cv, &f))
				continue;
			switch (f.id) {
			case KL_F_NODE: e->node = fstr(cv, &f); break;
			case KL_F_PATH: case KL_F_ABS_PATH: e->path = fstr(cv, &f); break;
			case KL_F_PATH2: case KL_F_ABS_PATH2: e->path2 = fstr(cv, &f); break;
			case KL_F_LOCAL_ADDR: e->local = sockaddr_str(cv, &f); break;
			case KL_F_PEER_ADDR: e->peer = sockaddr_str(cv, &f); break;
			case KL_F_DNS_NAME:
				e->dns_name = fstr(cv, &f);
				if (!*e->peer)
					e->peer = e->dns_name;
				break;
			case KL_F_DNS_ANSWERS: {
				/* reuse the argv splitter: NUL-separated list */
				char **save = cv->pm.argv;
				size_t nsave = cv->pm.n_argv;

				fill_argv(cv, &f);
				e->dns_answers = cv->pm.argv;
				e->n_dns_answers = cv->pm.n_argv;
				cv->pm.argv = save;
				cv->pm.n_argv = nsave;
				break;
			}
			case KL_F_NAME: e->name = fstr(cv, &f); break;
			default: break;
			}
		}
	}
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_INTENT;
	env->intent = e;
}

static char *hex_id(struct kl_conv *cv, uint64_t id)
{
	char *s = arena_get(cv, 17, 1);

	if (!s)
		return (char *)protobuf_c_empty_string;
	snprintf(s, 17, "%016" PRIx64, id);
	return s;
}

/* "namespace/pod" of a graph record -> the container meta's pod fields */
static void split_pod(struct kl_conv *cv, Kloudlens__V1__ContainerMeta *m, const struct kl_field_view *f)
{
	char *ns = fstr(cv, f), *slash = strchr(ns, '/');

	if (!slash)
		return;
	*slash = 0;
	m->pod_namespace = ns;
	m->pod_name = slash + 1;
}

/* deviation kinds as DeviationEvent.kind strings (docs/baseline.md) */
static const char *const deviation_kinds[KL_DEV__COUNT] = {
	[KL_DEV_NEW_EXEC] = "new_exec", [KL_DEV_NEW_TRANSITION] = "new_transition",
	[KL_DEV_NEW_FILE] = "new_file", [KL_DEV_NEW_EGRESS] = "new_egress",
	[KL_DEV_NEW_INGRESS] = "new_ingress", [KL_DEV_NEW_LISTEN] = "new_listen",
	[KL_DEV_NEW_DNS] = "new_dns", [KL_DEV_NEW_SYSCALL] = "new_syscall",
	[KL_DEV_PRIVILEGE] = "privilege", [KL_DEV_RARE] = "rare",
};

static void conv_deviation(struct kl_conv *cv, const struct kl_deviation *r, size_t len, kl_env *env)
{
	Kloudlens__V1__DeviationEvent *d = &cv->dev;
	Kloudlens__V1__IntentEvent *in = &cv->in;
	struct kl_field_iter it;
	struct kl_field_view f;

	kloudlens__v1__deviation_event__init(d);
	/* the trigger as an intent: process, container and kind, so the
	 * subscription filters (pid, namespace, kind) apply to deviations too */
	kloudlens__v1__intent_event__init(in);
	in->id = r->intent_seq;
	in->kind = intent_kind(r->intent_kind);
	in->ts_ns = r->ev.ts_ns;
	in->process = fill_proc(cv, &r->ev);
	if (r->ctr_cgroup_id && r->ctr_cgroup_id != cv->cm.cgroup_id)
		fill_ctr(cv, r->ctr_cgroup_id);
	in->container = &cv->cm;
	in->first_seq = r->first_seq;
	in->last_seq = r->last_seq;
	in->flags = (r->dflags & KL_DV_ATTEMPT) ? KL_IN_FAILED : 0;
	in->access = r->access;
	d->id = r->ev.seq;
	d->ts_ns = r->ev.ts_ns;
	d->severity = r->severity <= KL_DEV_SEV_CRITICAL ? r->severity : 0;
	d->intent = in;
	d->container = &cv->cm;
	cv->dev_seqs[0] = r->first_seq;
	cv->dev_seqs[1] = r->last_seq;
	d->source_seqs = cv->dev_seqs;
	d->n_source_seqs = r->first_seq == r->last_seq ? 1 : 2;
	d->kind = (char *)(r->kind < KL_DEV__COUNT && deviation_kinds[r->kind] ? deviation_kinds[r->kind]
										 : "unknown");
	d->score = r->score;
	d->occurrences = r->occurrences;
	d->suppressed = r->suppressed;
	d->attempt = (r->dflags & KL_DV_ATTEMPT) != 0;
	d->number = r->number;
	d->intent_seq = r->intent_seq;
	d->profile_id = hex_id(cv, r->profile_id);
	if (kl_field_iter_init(&it, KL_REC_DEVIATION, r, len) == 0) {
		while (kl_field_next(&it, &f)) {
			if (context_field(cv, &f))
				continue;
			switch (f.id) {
			case KL_F_NODE: in->node = fstr(cv, &f); break;
			case KL_F_DEV_WORKLOAD: d->workload = fstr(cv, &f); break;
			case KL_F_DEV_PROFILE: d->profile_id = fstr(cv, &f); break;
			case KL_F_DEV_ITEM: d->item = fstr(cv, &f); break;
			case KL_F_DEV_PARENT: d->item_parent = fstr(cv, &f); break;
			case KL_F_DEV_REASON: d->reason = fstr(cv, &f); break;
			default: break;
			}
		}
	}
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_DEVIATION;
	env->deviation = d;
}

static void conv_graph(struct kl_conv *cv, const struct kl_graph *r, size_t len, kl_env *env)
{
	Kloudlens__V1__GraphEdge *g = &cv->ge;
	Kloudlens__V1__GraphNode *from = &cv->gfrom, *to = &cv->gto;
	Kloudlens__V1__ContainerMeta *tocm = &cv->cm2;
	struct kl_field_iter it;
	struct kl_field_view f;

	kloudlens__v1__graph_edge__init(g);
	kloudlens__v1__graph_node__init(from);
	kloudlens__v1__graph_node__init(to);
	kloudlens__v1__container_meta__init(tocm);
	g->from = r->from_id;
	g->to = r->to_id;
	g->kind = r->kind;
	g->first_ns = r->first_ns;
	g->last_ns = r->last_ns;
	g->count = r->count;
	g->session_id = hex_id(cv, r->session_id);
	g->to_session_id = r->to_session_id ? hex_id(cv, r->to_session_id) : (char *)protobuf_c_empty_string;
	g->cross_container = (r->gflags & KL_GF_CROSS_CTR) != 0;
	g->flags = r->gflags;
	g->update = r->op;
	g->arg = r->arg;
	cv->dev_seqs[0] = r->first_seq;
	cv->dev_seqs[1] = r->last_seq;
	g->source_seqs = cv->dev_seqs;
	g->n_source_seqs = r->first_seq == r->last_seq ? 1 : 2;
	from->id = r->from_id;
	from->kind = r->from_kind;
	from->session_id = g->session_id;
	if (r->from_kind == KL_GN_PROCESS || r->op != KL_GOP_EDGE)
		from->process = fill_proc(cv, &r->ev);
	else
		fill_ctr(cv, r->from_ctr_cgroup_id);
	if (r->from_ctr_cgroup_id && r->from_ctr_cgroup_id != cv->cm.cgroup_id)
		fill_ctr(cv, r->from_ctr_cgroup_id);
	from->container = &cv->cm;
	to->id = r->to_id;
	to->kind = r->to_kind;
	to->session_id = g->to_session_id;
	if (r->to_kind == KL_GN_PROCESS) {
		kloudlens__v1__process_meta__init(&cv->pm2);
		cv->pm2.pid = r->to_pid;
		cv->pm2.start_ns = r->to_start_ns;
		to->process = &cv->pm2;
	}
	if (r->to_ctr_cgroup_id) {
		const struct kl_ctr *c = kl_ctr_find(cv->ctrs, r->to_ctr_cgroup_id);

		tocm->cgroup_id = r->to_ctr_cgroup_id;
		if (c) {
			tocm->container_id = (char *)c->id;
			tocm->name = (char *)c->name;
			tocm->image = (char *)c->image;
			tocm->pod_name = (char *)c->pod;
			tocm->pod_namespace = (char *)c->ns;
		}
		to->container = tocm;
	}
	if (kl_field_iter_init(&it, KL_REC_GRAPH, r, len) == 0) {
		while (kl_field_next(&it, &f)) {
			switch (f.id) {
			case KL_F_GRAPH_FROM: from->label = fstr(cv, &f); break;
			case KL_F_GRAPH_TO: to->label = fstr(cv, &f); break;
			case KL_F_GRAPH_FROM_CTR:
				if (f.len && !*cv->cm.container_id)
					cv->cm.container_id = fstr(cv, &f);
				break;
			case KL_F_GRAPH_TO_CTR:
				if (f.len) {
					tocm->container_id = fstr(cv, &f);
					to->container = tocm;
				}
				break;
			case KL_F_GRAPH_POD:
				if (!*cv->cm.pod_name)
					split_pod(cv, &cv->cm, &f);
				break;
			case KL_F_GRAPH_SEQS: {
				size_t n = f.len / sizeof(uint64_t);
				uint64_t *v = n ? arena_get(cv, n * sizeof(uint64_t), sizeof(uint64_t)) : NULL;

				if (v) {
					memcpy(v, f.data, n * sizeof(uint64_t));
					g->source_seqs = v;
					g->n_source_seqs = n;
				}
				break;
			}
			default: break;
			}
		}
	}
	g->from_node = from;
	g->to_node = to;
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_EDGE;
	env->edge = g;
}

static void conv_raw(struct kl_conv *cv, uint16_t type, const void *data, size_t len, kl_env *env)
{
	switch (type) {
	case KL_REC_SYSCALL: conv_syscall(cv, data, len, env); break;
	case KL_REC_PROC: conv_proc(cv, data, len, env); break;
	case KL_REC_CONTAINER: conv_container(cv, data, len, env); break;
	case KL_REC_DNS: conv_dns(cv, data, len, env); break;
	case KL_REC_SOCK: conv_sock(cv, data, env); break;
	case KL_REC_LOSS: conv_loss(cv, data, env); break;
	case KL_REC_ENRICHED: conv_enriched(cv, data, len, env); break;
	case KL_REC_INTENT: conv_intent(cv, data, len, env); break;
	case KL_REC_DEVIATION: conv_deviation(cv, data, len, env); break;
	case KL_REC_GRAPH: conv_graph(cv, data, len, env); break;
	default:
		kloudlens__v1__opaque_record__init(&cv->op);
		cv->op.type = type;
		cv->op.data.data = (uint8_t *)data;
		cv->op.data.len = len;
		env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_OPAQUE;
		env->opaque = &cv->op;
		cv->opaque++;
		break;
	}
}

int kl_convert(struct kl_conv *cv, uint16_t type, const void *data, uint32_t len, kl_env *env)
{
	const struct kl_rec_info *ri = kl_rec_info(type);
	/* worst case: every tail byte copied once plus pointers for argv */
	size_t need = (size_t)len * 2 + sizeof(char *) * (len + 1) + 512;

	cv->arena_len = 0;
	if (need > cv->arena_cap) {
		char *n = realloc(cv->arena, need);

		if (!n)
			return -ENOMEM;
		cv->arena = n;
		cv->arena_cap = need;
	}
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD__NOT_SET;
	if (!ri || type == KL_REC_MARK) {
		/* no decoder here: pass through untouched rather than guess */
		kloudlens__v1__opaque_record__init(&cv->op);
		cv->op.type = type;
		cv->op.data.data = (uint8_t *)data;
		cv->op.data.len = len;
		env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_OPAQUE;
		env->opaque = &cv->op;
		cv->opaque++;
		return 0;
	}
	if (kl_rec_validate(type, data, len) != KL_REC_OK) {
		cv->invalid++;
		return -EBADMSG;
	}
	conv_raw(cv, type, data, len, env);
	return 0;
}

/* ---- filters ------------------------------------------------------------ */

static int dup_strv(char ***dst, size_t *n, char *const *src, size_t cnt)
{
	*n = 0;
	if (!cnt)
		return 0;
	*dst = calloc(cnt, sizeof(char *));
	if (!*dst)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		(*dst)[i] = strdup(src[i] ? src[i] : "");
		if (!(*dst)[i])
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

int kl_filter_from_pb(struct kl_filter *f, const Kloudlens__V1__Filter *pb)
{
	int r = 0;

	memset(f, 0, sizeof(*f));
	f->empty = true;
	if (!pb)
		return 0;
	if ((r = dup_strv(&f->ns, &f->n_ns, pb->namespaces, pb->n_namespaces)) ||
	    (r = dup_strv(&f->pods, &f->n_pods, pb->pods, pb->n_pods)) ||
	    (r = dup_strv(&f->ctrs, &f->n_ctrs, pb->containers, pb->n_containers)) ||
	    (r = dup_strv(&f->syscalls, &f->n_syscalls, pb->syscalls, pb->n_syscalls)) ||
	    (r = dup_strv(&f->gsess, &f->n_gsess, pb->graph_sessions, pb->n_graph_sessions)))
		goto fail;
	if (pb->n_kinds) {
		f->kinds = calloc(pb->n_kinds, sizeof(int));
		if (!f->kinds) {
			r = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < pb->n_kinds; i++)
			f->kinds[i] = pb->kinds[i];
		f->n_kinds = pb->n_kinds;
	}
	if (pb->n_pids) {
		f->pids = calloc(pb->n_pids, sizeof(uint32_t));
		if (!f->pids) {
			r = -ENOMEM;
			goto fail;
		}
		memcpy(f->pids, pb->pids, pb->n_pids * sizeof(uint32_t));
		f->n_pids = pb->n_pids;
	}
	f->empty = !(f->n_ns || f->n_pods || f->n_ctrs || f->n_syscalls || f->n_kinds || f->n_pids ||
		     f->n_gsess);
	return 0;
fail:
	kl_filter_fini(f);
	return r;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void kl_filter_fini(struct kl_filter *f)
{
	if (!f)
		return;
	free_strv(f->ns, f->n_ns);
	free_strv(f->pods, f->n_pods);
	free_strv(f->ctrs, f->n_ctrs);
	free_strv(f->syscalls, f->n_syscalls);
	free_strv(f->gsess, f->n_gsess);
	free(f->kinds);
	free(f->pids);
	memset(f, 0, sizeof(*f));
	f->empty = true;
}

static bool any_eq(char *const *v, size_t n, const char *s)
{
	if (!n)
		return true;
	if (!s)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

static void env_subjects(const kl_env *e, const Kloudlens__V1__ProcessMeta **p,
			 const Kloudlens__V1__ContainerMeta **c)
{
	*p = NULL;
	*c = NULL;
	switch (e->payload_case) {
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL: *p = e->syscall->process; *c = e->syscall->container; break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_PROCESS: *p = e->process->process; *c = e->process->container; break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_CONTAINER: *c = e->container->container; break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_DNS: *p = e->dns->process; *c = e->dns->container; break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SOCKET: *p = e->socket->process; *c = e->socket->container; break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_INTENT: *p = e->intent->process; *c = e->intent->container; break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_DEVIATION:
		*c = e->deviation->container;
		if (e->deviation->intent)
			*p = e->deviation->intent->process;
		break;
	case KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_EDGE:
		if (e->edge->from_node) {
			*p = e->edge->from_node->process;
			*c = e->edge->from_node->container;
		}
		break;
	default: break;
	}
}

bool kl_filter_match(const struct kl_filter *f, const kl_env *e)
{
	const Kloudlens__V1__ProcessMeta *p;
	const Kloudlens__V1__ContainerMeta *c;

	if (f->empty)
		return true;
	/* loss reports concern every subscriber: a filter must not hide them */
	if (e->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS)
		return true;
	env_subjects(e, &p, &c);
	if (!any_eq(f->ns, f->n_ns, c ? c->pod_namespace : NULL) ||
	    !any_eq(f->pods, f->n_pods, c ? c->pod_name : NULL))
		return false;
	if (f->n_ctrs) {
		bool hit = false;

		for (size_t i = 0; c && i < f->n_ctrs && !hit; i++) {
			size_t l = strlen(f->ctrs[i]);

			hit = (l && c->container_id && !strncmp(c->container_id, f->ctrs[i], l)) ||
			      (c->name && !strcmp(c->name, f->ctrs[i]));
		}
		if (!hit)
			return false;
	}
	if (f->n_pids) {
		bool hit = false;

		for (size_t i = 0; p && i < f->n_pids && !hit; i++)
			hit = p->pid == f->pids[i];
		if (!hit)
			return false;
	}
	if (f->n_gsess) {
		if (e->payload_case != KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_EDGE ||
		    !(any_eq(f->gsess, f->n_gsess, e->edge->session_id) ||
		      any_eq(f->gsess, f->n_gsess, e->edge->to_session_id)))
			return false;
	}
	if (f->n_syscalls) {
		if (e->payload_case != KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_SYSCALL ||
		    !any_eq(f->syscalls, f->n_syscalls, e->syscall->name))
			return false;
	}
	if (f->n_kinds) {
		const Kloudlens__V1__IntentEvent *in = NULL;
		bool hit = false;

		if (e->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_INTENT)
			in = e->intent;
		else if (e->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_DEVIATION)
			in = e->deviation->intent;
		for (size_t i = 0; in && i < f->n_kinds && !hit; i++)
			hit = (int)in->kind == f->kinds[i];
		if (!hit)
			return false;
	}
	return true;
}
