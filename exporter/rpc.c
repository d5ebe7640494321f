/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rpc.c - unary calls on the rep socket.
 *
 * Request: method path, NUL, then zero or one gRPC frame with the request
 * message. Reply: a frame with RpcStatus, then (status OK only) a frame
 * with the response. Every malformed request gets an error reply; the
 * server never dies or goes silent on bad input.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "exporter-internal.h"
#include "rpcsrv.h"

typedef int (*rpc_fn)(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
		      char *msg, size_t msglen, const char *method);

struct rpc_method {
	const char *name;
	const ProtobufCMessageDescriptor *req;
	rpc_fn fn;
	int stream;                /* for the Subscribe family */
};

#define RESP(type, fn) type *r = calloc(1, sizeof(*r)); if (!r) return KL_INTERNAL; fn(r); *resp = &r->base

static uint64_t u64_load(_Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* ---- unavailable stages ---------------------------------------------------- */

static int rpc_unavailable(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
			   char *msg, size_t msglen, const char *method)
{
	const char *stage = strstr(method, "Polic") ? "the policy store (kl-baselined / contractc)"
			    : strstr(method, "Baseline") ? "kl-baselined"
			    : "kl-graphd";

	snprintf(msg, msglen, "%s: %s has not landed on this node; no data to serve", method, stage);
	return KL_UNAVAILABLE;
}

/* ---- subscriptions --------------------------------------------------------- */

static struct kl_session *find_session(struct kl_exporter *e, const char *id)
{
	for (int i = 0; i < KL_MAX_SESSIONS; i++)
		if (e->sessions[i].in_use && !strcmp(e->sessions[i].id, id))
			return &e->sessions[i];
	return NULL;
}

static int rpc_subscribe_common(struct kl_exporter *e, const Kloudlens__V1__SubscribeRequest *q,
				int stream_id, ProtobufCMessage **resp, char *msg, size_t msglen)
{
	struct kl_session *ss = NULL;
	struct kl_stream *s = kl_stream_get(e, stream_id);
	struct kl_wal_stats st = { 0 };
	uint64_t head;
	int code = KL_OK, r;

	if (!s) {
		snprintf(msg, msglen, "unknown stream %d", stream_id);
		return KL_INVALID_ARGUMENT;
	}
	pthread_mutex_lock(&e->lock);
	head = s->next_seq;
	if (s->wal)
		kl_wal_get_stats(s->wal, &st);
	if (q->session_id && *q->session_id) {
		ss = find_session(e, q->session_id);
		if (!ss) {
			snprintf(msg, msglen, "session %s not found (expired?)", q->session_id);
			code = KL_NOT_FOUND;
			goto out;
		}
	} else {
		if (!s->cons && head == 0) {
			snprintf(msg, msglen, "stream %s unavailable: ring '%s' is not present in %s "
				 "(its stage is not running or has not landed)",
				 s->def->name, s->def->ring, e->rings_dir);
			code = KL_UNAVAILABLE;
			goto out;
		}
		for (int i = 0; i < KL_MAX_SESSIONS && !ss; i++)
			if (!e->sessions[i].in_use)
				ss = &e->sessions[i];
		if (!ss) {
			snprintf(msg, msglen, "too many sessions (%d)", KL_MAX_SESSIONS);
			code = KL_RESOURCE_EXHAUSTED;
			goto out;
		}
		memset(ss, 0, sizeof(*ss));
		r = kl_filter_from_pb(&ss->filter, q->filter);
		if (r) {
			snprintf(msg, msglen, "filter: %s", strerror(-r));
			code = KL_INTERNAL;
			ss = NULL;
			goto out;
		}
		kl_random_id(ss->id, sizeof(ss->id));
		snprintf(ss->topic, sizeof(ss->topic), KL_TOPIC_PREFIX "s/%s/", ss->id);
		ss->stream = stream_id;
		ss->next_seq = head;
		ss->ack_seq = head;
		ss->live = true;
		ss->in_use = true;
	}
	if (q->has_since) {
		if (!s->wal && q->since_seq < head) {
			snprintf(msg, msglen, "replay from %" PRIu64 " needs the WAL, which is disabled",
				 q->since_seq);
			code = KL_FAILED_PRECONDITION;
			if (!(q->session_id && *q->session_id))
				kl_session_free(ss);
			goto out;
		}
		/* past the head (a client from an older WAL): start at the head */
		ss->next_seq = q->since_seq < head ? q->since_seq : head;
		ss->ack_seq = ss->next_seq;
		ss->live = ss->next_seq == head;
	}
	if (q->ack_seq > ss->ack_seq)
		ss->ack_seq = q->ack_seq;
	ss->client_missed = q->client_missed;
	ss->lease_ms = q->lease_ms ? q->lease_ms : 30000;
	ss->expires_ns = kl_mono_ns() + (uint64_t)ss->lease_ms * 1000000ull;
	{
		Kloudlens__V1__SubscribeResponse *r2 = calloc(1, sizeof(*r2));

		if (!r2) {
			code = KL_INTERNAL;
			goto out;
		}
		kloudlens__v1__subscribe_response__init(r2);
		r2->topic = strdup(ss->topic);
		r2->session_id = strdup(ss->id);
		r2->next_seq = ss->next_seq;
		r2->head_seq = head;
		r2->oldest_seq = s->wal ? st.oldest_seq : head;
		r2->lease_ms = ss->lease_ms;
		r2->stream = stream_id;
		*resp = &r2->base;
	}
out:
	pthread_mutex_unlock(&e->lock);
	return code;
}

static const struct rpc_method *cur_method;

static int rpc_subscribe(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
			 char *msg, size_t msglen, const char *method)
{
	const Kloudlens__V1__SubscribeRequest *q = (const void *)req;
	int stream = cur_method->stream;

	if (!strcmp(method, "/kloudlens.v1.EventService/Subscribe") && q->stream)
		stream = q->stream;
	return rpc_subscribe_common(e, q, stream, resp, msg, msglen);
}

/*
 * A causal session live: the graph stream filtered to the edges of one
 * session (either end), i.e. SubscribeGraph with filter.graph_sessions.
 * Renewal and replay then go through Subscribe with the session id.
 */
static int rpc_subscribe_session(struct kl_exporter *e, const ProtobufCMessage *req,
				 ProtobufCMessage **resp, char *msg, size_t msglen, const char *method)
{
	const Kloudlens__V1__SessionRequest *sr = (const void *)req;
	Kloudlens__V1__SubscribeRequest q = KLOUDLENS__V1__SUBSCRIBE_REQUEST__INIT;
	Kloudlens__V1__Filter f = KLOUDLENS__V1__FILTER__INIT;
	char *id = sr->session_id;

	if (!*id) {
		snprintf(msg, msglen, "%s: session_id is required (klctl sessions lists them)", method);
		return KL_INVALID_ARGUMENT;
	}
	f.graph_sessions = &id;
	f.n_graph_sessions = 1;
	q.filter = &f;
	return rpc_subscribe_common(e, &q, KLOUDLENS__V1__STREAM__STREAM_GRAPH, resp, msg, msglen);
}

static int rpc_export(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
		      char *msg, size_t msglen, const char *method)
{
	const Kloudlens__V1__ExportRequest *x = (const void *)req;
	Kloudlens__V1__SubscribeRequest q = KLOUDLENS__V1__SUBSCRIBE_REQUEST__INIT;

	q.filter = x->filter;
	q.has_since = x->has_since;
	q.since_seq = x->since_seq;
	return rpc_subscribe_common(e, &q, KLOUDLENS__V1__STREAM__STREAM_INTENTS, resp, msg, msglen);
}

static int rpc_unsubscribe(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
			   char *msg, size_t msglen, const char *method)
{
	const Kloudlens__V1__UnsubscribeRequest *q = (const void *)req;
	struct kl_session *ss;
	int code = KL_OK;

	pthread_mutex_lock(&e->lock);
	ss = q->session_id ? find_session(e, q->session_id) : NULL;
	if (ss) {
		kl_session_free(ss);
	} else {
		snprintf(msg, msglen, "session %s not found", q->session_id ? q->session_id : "");
		code = KL_NOT_FOUND;
	}
	pthread_mutex_unlock(&e->lock);
	if (code == KL_OK) {
		RESP(Kloudlens__V1__UnsubscribeResponse, kloudlens__v1__unsubscribe_response__init);
	}
	return code;
}

/* ---- snapshot / status ----------------------------------------------------- */

static Kloudlens__V1__StreamStatus *stream_status(struct kl_exporter *e, struct kl_stream *s)
{
	Kloudlens__V1__StreamStatus *st = calloc(1, sizeof(*st));
	struct kl_wal_stats ws = { 0 };

	if (!st)
		return NULL;
	kloudlens__v1__stream_status__init(st);
	st->stream = s->def->id;
	st->ring = strdup(s->def->ring);
	st->attached = s->cons != NULL;
	st->head_seq = s->next_seq;
	if (s->wal) {
		kl_wal_get_stats(s->wal, &ws);
		st->oldest_seq = ws.oldest_seq;
		st->wal_bytes = ws.bytes;
	} else {
		st->oldest_seq = s->next_seq;
	}
	st->published = u64_load(&s->published);
	st->ring_missed = u64_load(&s->ring_missed);
	for (int i = 0; i < KL_MAX_SESSIONS; i++)
		st->subscribers += e->sessions[i].in_use && e->sessions[i].stream == s->def->id;
	return st;
}

static int fill_streams(struct kl_exporter *e, Kloudlens__V1__StreamStatus ***out, size_t *n)
{
	*out = calloc(KL_NSTREAMS, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (int i = 0; i < KL_NSTREAMS; i++) {
		(*out)[i] = stream_status(e, &e->streams[i]);
		if (!(*out)[i])
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

static int rpc_snapshot(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
			char *msg, size_t msglen, const char *method)
{
	size_t n = 0;
	int code = KL_OK;

	RESP(Kloudlens__V1__SnapshotResponse, kloudlens__v1__snapshot_response__init);
	pthread_mutex_lock(&e->lock);
	if (fill_streams(e, &r->streams, &r->n_streams))
		code = KL_INTERNAL;
	r->containers = calloc(e->ctrs->live + 1, sizeof(*r->containers));
	if (!r->containers)
		code = KL_INTERNAL;
	for (int i = 0; code == KL_OK && i < KL_CTR_SLOTS && n < e->ctrs->live; i++) {
		const struct kl_ctr *c = &e->ctrs->slot[i];
		Kloudlens__V1__ContainerMeta *m;

		if (!c->live)
			continue;
		m = calloc(1, sizeof(*m));
		if (!m) {
			code = KL_INTERNAL;
			break;
		}
		kloudlens__v1__container_meta__init(m);
		m->cgroup_id = c->cgroup_id;
		m->container_id = strdup(c->id);
		m->name = strdup(c->name);
		m->image = strdup(c->image);
		m->pod_name = strdup(c->pod);
		m->pod_namespace = strdup(c->ns);
		m->pod_uid = strdup(c->pod_uid);
		m->runtime = strdup(c->runtime);
		m->mnt_ns = c->mnt_ns;
		m->pid_ns = c->pid_ns;
		m->net_ns = c->net_ns;
		r->containers[n++] = m;
	}
	r->n_containers = n;
	pthread_mutex_unlock(&e->lock);
	return code;
}

/* the method table is at the end, after the handlers it names */
static size_t method_count(void);
static const char *method_name(size_t i);
static bool method_available(struct kl_exporter *e, const char *name);

static int rpc_status(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
		      char *msg, size_t msglen, const char *method)
{
	struct xbuf why = { 0 };
	int code = KL_OK;

	RESP(Kloudlens__V1__StatusResponse, kloudlens__v1__status_response__init);
	r->version = strdup(KL_VERSION);
	r->uptime_ns = kl_mono_ns() - e->start_ns;
	r->ready = kl_exporter_ready(e, &why);
	xbuf_free(&why);
	pthread_mutex_lock(&e->lock);
	if (fill_streams(e, &r->streams, &r->n_streams))
		code = KL_INTERNAL;
	for (int i = 0; i < KL_MAX_SESSIONS; i++)
		r->sessions += e->sessions[i].in_use;
	for (int i = 0; i < KL_NSTREAMS; i++) {
		struct kl_wal_stats ws;

		if (e->streams[i].wal) {
			kl_wal_get_stats(e->streams[i].wal, &ws);
			r->wal_corrupt_records += ws.corrupt_seqs;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return code;
}

static int rpc_caps(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
		    char *msg, size_t msglen, const char *method)
{
	size_t nm = method_count();

	RESP(Kloudlens__V1__CapabilitiesResponse, kloudlens__v1__capabilities_response__init);
	r->streams = calloc(KL_NSTREAMS, sizeof(*r->streams));
	r->methods = calloc(nm, sizeof(char *));
	r->unavailable = calloc(nm, sizeof(char *));
	if (!r->streams || !r->methods || !r->unavailable)
		return KL_INTERNAL;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < KL_NSTREAMS; i++)
		if (e->streams[i].cons)
			r->streams[r->n_streams++] = e->streams[i].def->id;
	pthread_mutex_unlock(&e->lock);
	for (size_t i = 0; i < nm; i++) {
		if (method_available(e, method_name(i)))
			r->methods[r->n_methods++] = strdup(method_name(i));
		else
			r->unavailable[r->n_unavailable++] = strdup(method_name(i));
	}
	r->wal = *e->wal_dir != 0;
	r->compression = e->compress_threshold != 0;
	r->compress_threshold = e->compress_threshold;
	return KL_OK;
}

static int add_check(Kloudlens__V1__DiagnoseResponse *r, const char *name, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int add_check(Kloudlens__V1__DiagnoseResponse *r, const char *name, bool ok, const char *fmt, ...)
{
	Kloudlens__V1__DiagnoseResponse__Check *c = calloc(1, sizeof(*c));
	char buf[512];
	va_list ap;

	if (!c)
		return -ENOMEM;
	kloudlens__v1__diagnose_response__check__init(c);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	c->name = strdup(name);
	c->ok = ok;
	c->detail = strdup(buf);
	r->checks[r->n_checks++] = c;
	return 0;
}

static int rpc_diagnose(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
			char *msg, size_t msglen, const char *method)
{
	struct xbuf why = { 0 };
	bool ready;
	char name[64];

	RESP(Kloudlens__V1__DiagnoseResponse, kloudlens__v1__diagnose_response__init);
	r->checks = calloc(KL_NSTREAMS * 2 + 8, sizeof(*r->checks));
	if (!r->checks)
		return KL_INTERNAL;
	add_check(r, "rings_dir", access(e->rings_dir, R_OK | X_OK) == 0, "%s", e->rings_dir);
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < KL_NSTREAMS; i++) {
		struct kl_stream *s = &e->streams[i];

		snprintf(name, sizeof(name), "ring/%s", s->def->ring);
		add_check(r, name, s->cons != NULL, "%s", s->cons ? "attached"
			  : s->ring ? "present, attach failed" : "absent (stage not running or not landed)");
		if (s->wal) {
			struct kl_wal_stats ws;

			kl_wal_get_stats(s->wal, &ws);
			snprintf(name, sizeof(name), "wal/%s", s->def->name);
			add_check(r, name, ws.errors == 0 && ws.corrupt_regions == 0,
				  "%" PRIu64 " bytes, %u segments, seq %" PRIu64 "..%" PRIu64
				  ", %" PRIu64 " append errors, %" PRIu64 " corrupt regions (%" PRIu64
				  " seqs), %" PRIu64 " torn bytes truncated",
				  ws.bytes, ws.segments, ws.oldest_seq, ws.next_seq, ws.errors,
				  ws.corrupt_regions, ws.corrupt_seqs, ws.torn_bytes);
		}
	}
	pthread_mutex_unlock(&e->lock);
	add_check(r, "pump", kl_mono_ns() - u64_load(&e->pump_beat_ns) < 5000000000ull,
		  "last beat %" PRIu64 " ms ago", (kl_mono_ns() - u64_load(&e->pump_beat_ns)) / 1000000);
	ready = kl_exporter_ready(e, &why);
	add_check(r, "ready", ready, "%.*s", (int)why.len, why.len ? (const char *)why.p : "ok");
	xbuf_free(&why);
	pthread_mutex_lock(&e->err_lock);
	add_check(r, "last_error", !e->last_error[0], "%s", e->last_error);
	pthread_mutex_unlock(&e->err_lock);
	return KL_OK;
}

/* ---- config ------------------------------------------------------------------ */

static int add_kv(Kloudlens__V1__ConfigResponse *r, const char *k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int add_kv(Kloudlens__V1__ConfigResponse *r, const char *k, const char *fmt, ...)
{
	Kloudlens__V1__ConfigResponse__ValuesEntry *kv = calloc(1, sizeof(*kv));
	char buf[512];
	va_list ap;

	if (!kv)
		return -ENOMEM;
	kloudlens__v1__config_response__values_entry__init(kv);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kv->key = strdup(k);
	kv->value = strdup(buf);
	r->values[r->n_values++] = kv;
	return 0;
}

static const char *const fsync_names[] = { "none", "batch", "interval" };

static int config_resp(struct kl_exporter *e, ProtobufCMessage **resp)
{
	RESP(Kloudlens__V1__ConfigResponse, kloudlens__v1__config_response__init);
	r->values = calloc(16, sizeof(*r->values));
	if (!r->values)
		return KL_INTERNAL;
	add_kv(r, "rings_dir", "%s", e->rings_dir);
	add_kv(r, "subscribe_url", "%s", e->sub_url);
	add_kv(r, "admin_url", "%s", e->admin_url);
	add_kv(r, "http_url", "%s", e->http_url);
	add_kv(r, "wal_dir", "%s", e->wal_dir);
	add_kv(r, "wal_fsync", "%s", fsync_names[e->wal_opts.fsync % 3]);
	add_kv(r, "wal_compress", "%s", e->wal_opts.compress ? "true" : "false");
	add_kv(r, "consumer", "%s (%s)", e->consumer_name, e->observer ? "observer" : "required");
	add_kv(r, "compress_threshold", "%u", e->compress_threshold);
	add_kv(r, "batch_max", "%u", e->batch_max);
	add_kv(r, "replay_window", "%u", e->replay_window);
	return KL_OK;
}

static int rpc_get_config(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
			  char *msg, size_t msglen, const char *method)
{
	return config_resp(e, resp);
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

static int rpc_set_config(struct kl_exporter *e, const ProtobufCMessage *req, ProtobufCMessage **resp,
			  char *msg, size_t msglen, const char *method)
{
	const Kloudlens__V1__SetConfigRequest *q = (const void *)req;
	uint32_t v;

	/* validate everything first: a call applies all of its values or none */
	for (size_t i = 0; i < q->n_values; i++) {
		const char *k = q->values[i]->key, *val = q->values[i]->value;

		if (strcmp(k, "compress_threshold") && strcmp(k, "replay_window")) {
			snprintf(msg, msglen, "%s cannot be changed at run time "
				 "(settable: compress_threshold, replay_window)", k);
			return KL_INVALID_ARGUMENT;
		}
		if (parse_u32(val, &v) || (!strcmp(k, "replay_window") && v == 0)) {
			snprintf(msg, msglen, "%s: bad value '%s'", k, val);
			return KL_INVALID_ARGUMENT;
		}
	}
	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < q->n_values; i++) {
		parse_u32(q->values[i]->value, &v);
		if (!strcmp(q->values[i]->key, "compress_threshold"))
			e->compress_threshold = v;
		else
			e->replay_window = v;
	}
	pthread_mutex_unlock(&e->lock);
	return config_resp(e, resp);
}

/* ---- dispatch ----------------------------------------------------------------- */

#define EV "/kloudlens.v1.EventService/"
#define AD "/kloudlens.v1.AdminService/"
#define D(x) &kloudlens__v1__##x##__descriptor

static const struct rpc_method methods[] = {
	{ EV "Subscribe", D(subscribe_request), rpc_subscribe, KLOUDLENS__V1__STREAM__STREAM_EVENTS },
	{ EV "SubscribeRaw", D(subscribe_request), rpc_subscribe, KLOUDLENS__V1__STREAM__STREAM_RAW },
	{ EV "SubscribeIntents", D(subscribe_request), rpc_subscribe, KLOUDLENS__V1__STREAM__STREAM_INTENTS },
	{ EV "SubscribeDeviations", D(subscribe_request), rpc_subscribe, KLOUDLENS__V1__STREAM__STREAM_DEVIATIONS },
	{ EV "Unsubscribe", D(unsubscribe_request), rpc_unsubscribe, 0 },
	{ EV "Snapshot", D(snapshot_request), rpc_snapshot, 0 },
	{ EV "QueryGraph", D(graph_query), rpc_unavailable, 0 },
	{ EV "SubscribeSession", D(session_request), rpc_subscribe_session, KLOUDLENS__V1__STREAM__STREAM_GRAPH },
	{ EV "SubscribeGraph", D(subscribe_request), rpc_subscribe, KLOUDLENS__V1__STREAM__STREAM_GRAPH },
	{ AD "GetStatus", D(status_request), rpc_status, 0 },
	{ AD "GetCapabilities", D(capabilities_request), rpc_caps, 0 },
	{ AD "Diagnose", D(diagnose_request), rpc_diagnose, 0 },
	{ AD "ListPolicies", D(list_policies_request), rpc_unavailable, 0 },
	{ AD "ApplyPolicy", D(apply_policy_request), rpc_unavailable, 0 },
	{ AD "DeletePolicy", D(delete_policy_request), rpc_unavailable, 0 },
	{ AD "BaselineReset", D(baseline_request), rpc_unavailable, 0 },
	{ AD "BaselinePromote", D(baseline_request), rpc_unavailable, 0 },
	{ AD "BaselineActivate", D(baseline_request), rpc_unavailable, 0 },
	{ AD "GetConfig", D(config_request), rpc_get_config, 0 },
	{ AD "SetConfig", D(set_config_request), rpc_set_config, 0 },
	{ "/kloudlens.v1.IntentExporter/Export", D(export_request), rpc_export, 0 },
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static size_t method_count(void)
{
	return NMETHODS;
}

static const char *method_name(size_t i)
{
	return methods[i].name;
}

static int forward_target(const char *method);

static bool method_available(struct kl_exporter *e, const char *name)
{
	int fw = forward_target(name);

	if (fw >= 0)
		return strncmp(e->fwd[fw].url, "ipc://", 6) || access(e->fwd[fw].url + 6, F_OK) == 0;
	for (size_t i = 0; i < NMETHODS; i++) {
		if (strcmp(methods[i].name, name))
			continue;
		if (methods[i].fn == rpc_unavailable)
			return false;
		if (methods[i].stream) {
			struct kl_stream *s = kl_stream_get(e, methods[i].stream);

			return s && (s->cons || atomic_load_explicit(&s->head_seq, memory_order_relaxed));
		}
		return true;
	}
	return false;
}

/* ---- calls served by another stage ------------------------------------------ */

/*
 * Graph and baseline calls belong to kl-graphd and kl-baselined, which
 * answer on their own rep sockets in this very protocol: the request is
 * forwarded byte for byte and the reply returned as is, so a stage can add
 * methods without the exporter knowing them.
 */
static int forward_target(const char *method)
{
	if (!strncmp(method, "/kloudlens.v1.GraphService/", 27) ||
	    !strcmp(method, EV "QueryGraph"))
		return KL_FWD_GRAPHD;
	if (!strncmp(method, "/kloudlens.v1.BaselineService/", 30) ||
	    !strncmp(method, AD "Baseline", strlen(AD "Baseline")))
		return KL_FWD_BASELINED;
	return -1;
}

static int fwd_status(struct kl_codec *codec, const uint8_t *p, size_t len)
{
	Kloudlens__V1__RpcStatus *st;
	const uint8_t *msg;
	size_t mlen, used;
	int code;

	if (kl_frame_next(codec, p, len, &msg, &mlen, &used))
		return KL_INTERNAL;
	st = kloudlens__v1__rpc_status__unpack(NULL, mlen, msg);
	if (!st)
		return KL_INTERNAL;
	code = st->code;
	kloudlens__v1__rpc_status__free_unpacked(st, NULL);
	return code;
}

static int forward(struct kl_exporter *e, int which, const char *method, const uint8_t *req,
		   size_t len, struct xbuf *out, struct kl_codec *codec, char *err, size_t errlen)
{
	struct kl_fwd *f = &e->fwd[which];
	nng_msg *m = NULL;
	int rv;

	/* no socket file: the stage is not running; say so at once instead of timing out */
	if (!strncmp(f->url, "ipc://", 6) && access(f->url + 6, F_OK) < 0) {
		snprintf(err, errlen, "%s: %s is not running on this node (no socket at %s)", method,
			 f->stage, f->url);
		return KL_UNAVAILABLE;
	}
	if (!f->open) {
		rv = nng_req0_open(&f->req);
		if (rv)
			goto nng_fail;
		nng_socket_set_ms(f->req, NNG_OPT_SENDTIMEO, 1000);
		nng_socket_set_ms(f->req, NNG_OPT_RECVTIMEO, 5000);
		rv = nng_dial(f->req, f->url, NULL, NNG_FLAG_NONBLOCK);
		if (rv) {
			nng_close(f->req);
			goto nng_fail;
		}
		f->open = true;
	}
	rv = nng_msg_alloc(&m, 0);
	if (!rv)
		rv = nng_msg_append(m, req, len);
	if (!rv)
		rv = nng_sendmsg(f->req, m, 0);
	if (rv) {
		nng_msg_free(m);
		goto nng_fail;
	}
	rv = nng_recvmsg(f->req, &m, 0);
	if (rv)
		goto nng_fail;
	rv = xbuf_append(out, nng_msg_body(m), nng_msg_len(m));
	len = nng_msg_len(m);
	if (rv) {
		nng_msg_free(m);
		snprintf(err, errlen, "%s: out of memory for the reply of %s", method, f->stage);
		return KL_INTERNAL;
	}
	rv = fwd_status(codec, out->p + out->len - len, len);
	nng_msg_free(m);
	return rv;
nng_fail:
	snprintf(err, errlen, "%s: %s at %s did not answer: %s", method, f->stage, f->url,
		 nng_strerror(rv));
	return KL_UNAVAILABLE;
}

void kl_rpc_forward_init(struct kl_exporter *e, const char *graphd_url, const char *baselined_url)
{
	static const char *const names[KL_FWD__COUNT] = { "kl-graphd", "kl-baselined" };
	const char *urls[KL_FWD__COUNT] = { graphd_url, baselined_url };

	for (int i = 0; i < KL_FWD__COUNT; i++) {
		e->fwd[i].stage = names[i];
		if (urls[i] && *urls[i])
			snprintf(e->fwd[i].url, sizeof(e->fwd[i].url), "%s", urls[i]);
		else
			kl_rpc_stage_url(e->fwd[i].url, sizeof(e->fwd[i].url), e->rings_dir, names[i]);
	}
}

void kl_rpc_forward_close(struct kl_exporter *e)
{
	for (int i = 0; i < KL_FWD__COUNT; i++) {
		if (e->fwd[i].open)
			nng_close(e->fwd[i].req);
		e->fwd[i].open = false;
	}
}

int kl_rpc_handle(struct kl_exporter *e, const uint8_t *req, size_t len, struct xbuf *out,
		  struct kl_codec *codec)
{
	const struct rpc_method *m = NULL;
	ProtobufCMessage *q = NULL, *resp = NULL;
	char method[256], err[512] = "";
	int code, fw;

	atomic_fetch_add_explicit(&e->rpc_requests, 1, memory_order_relaxed);
	code = kl_rpc_parse_method(req, len, method, sizeof(method), err, sizeof(err));
	if (code)
		goto reply;
	fw = forward_target(method);
	if (fw >= 0) {
		size_t mark = out->len;

		code = forward(e, fw, method, req, len, out, codec, err, sizeof(err));
		if (out->len != mark)
			goto counted;   /* the stage's own reply went out as is */
		goto reply;
	}
	for (size_t i = 0; i < NMETHODS; i++)
		if (!strcmp(methods[i].name, method))
			m = &methods[i];
	if (!m) {
		code = KL_UNIMPLEMENTED;
		snprintf(err, sizeof(err), "unknown method '%.200s'", method);
		goto reply;
	}
	code = kl_rpc_parse_body(codec, method, req, len, m->req, &q, err, sizeof(err));
	if (code)
		goto reply;
	cur_method = m;
	code = m->fn(e, q, &resp, err, sizeof(err), method);
reply:
	kl_rpc_put_status(codec, out, code, code == KL_OK ? "" : err);
	if (code == KL_OK && resp)
		kl_rpc_put_message(codec, out, resp, e->compress_threshold);
counted:
	atomic_fetch_add_explicit(&e->rpc_by_code[code & 15], 1, memory_order_relaxed);
	if (code != KL_OK)
		atomic_fetch_add_explicit(&e->rpc_errors, 1, memory_order_relaxed);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	if (q)
		protobuf_c_message_free_unpacked(q, NULL);
	return code;
}

void *kl_rep_main(void *arg)
{
	struct kl_exporter *e = arg;
	struct kl_codec codec;
	struct xbuf out = { 0 };

	kl_codec_init(&codec, 0);
	for (;;) {
		nng_msg *m, *rm;
		int rv = nng_recvmsg(e->rep, &m, 0);

		if (rv == NNG_ECLOSED || atomic_load(&e->stop))
			break;
		if (rv)
			continue;
		out.len = 0;
		kl_rpc_handle(e, nng_msg_body(m), nng_msg_len(m), &out, &codec);
		nng_msg_free(m);
		if (nng_msg_alloc(&rm, 0))
			continue;
		if (nng_msg_append(rm, out.p, out.len) || nng_sendmsg(e->rep, rm, 0))
			nng_msg_free(rm);
	}
	kl_codec_fini(&codec);
	xbuf_free(&out);
	return NULL;
}
