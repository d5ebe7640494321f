/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - /metrics, /healthz and /readyz on nng's HTTP server.
 *
 * /metrics is built per scrape from the exporter's own counters, every
 * ring's shm_ring_info and every stage's <name>.stats area in the rings
 * directory. A stage's metric whose name or labels would break the text
 * format is skipped and counted, never passed through.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter-internal.h"

#define MAX_STAGE_METRICS 1024

static int bprintf(struct xbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bprintf(struct xbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || xbuf_reserve(b, n + 1))
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf((char *)b->p + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
	return 0;
}

static void family(struct xbuf *b, const char *name, const char *type, const char *help)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t ld(_Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static bool pid_alive(int32_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* ---- stage stats areas ------------------------------------------------------- */

struct stage_metric {
	struct shm_metric m;
	char stage[SHM_NAME_MAX];
};

static bool valid_name(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != ':')
			return false;
	return true;
}

/* k="v"(,k="v")* with no raw newline; the only form we splice into {…}. */
static bool valid_labels(const char *s)
{
	if (!*s)
		return true;
	for (;;) {
		const char *k = s;

		while (isalnum((unsigned char)*s) || *s == '_')
			s++;
		if (s == k || isdigit((unsigned char)*k) || *s++ != '=' || *s++ != '"')
			return false;
		while (*s && *s != '"') {
			if (*s == '\n')
				return false;
			if (*s == '\\') {
				s++;
				if (*s != '\\' && *s != '"' && *s != 'n')
					return false;
			}
			s++;
		}
		if (*s++ != '"')
			return false;
		if (!*s)
			return true;
		if (*s++ != ',')
			return false;
	}
}

static int cmp_metric(const void *a, const void *b)
{
	const struct stage_metric *x = a, *y = b;
	int c = strcmp(x->m.name, y->m.name);

	return c ? c : strcmp(x->stage, y->stage);
}

static void stage_metrics(struct kl_exporter *e, struct xbuf *b, uint64_t *rejected, uint32_t *areas)
{
	struct stage_metric *all = calloc(MAX_STAGE_METRICS, sizeof(*all));
	struct shm_metric *tmp = calloc(MAX_STAGE_METRICS, sizeof(*tmp));
	int n = 0;
	DIR *d;
	struct dirent *de;
	const char *prev = "";

	if (!all || !tmp)
		goto out;
	d = opendir(e->rings_dir);
	if (!d)
		goto out;
	while ((de = readdir(d)) && n < MAX_STAGE_METRICS) {
		size_t l = strlen(de->d_name);
		char stage[SHM_NAME_MAX];
		struct shm_stats *st;
		int k;

		if (l <= 6 || l - 6 >= sizeof(stage) || strcmp(de->d_name + l - 6, ".stats"))
			continue;
		memcpy(stage, de->d_name, l - 6);
		stage[l - 6] = 0;
		if (shm_stats_open(e->rings_dir, stage, &st))
			continue;
		(*areas)++;
		k = shm_stats_read(st, tmp, MAX_STAGE_METRICS - n);
		shm_stats_close(st);
		for (int i = 0; i < k; i++) {
			struct stage_metric *sm = &all[n];

			sm->m = tmp[i];
			sm->m.name[sizeof(sm->m.name) - 1] = 0;
			sm->m.labels[sizeof(sm->m.labels) - 1] = 0;
			sm->m.help[sizeof(sm->m.help) - 1] = 0;
			if (!valid_name(sm->m.name) || !valid_labels(sm->m.labels) ||
			    strlen(sm->m.name) > sizeof(sm->m.name) - 7) {
				(*rejected)++;
				continue;
			}
			/* lint wants counters to end in _total; add it rather than drop the metric */
			if (sm->m.type == SHM_COUNTER) {
				size_t nl = strlen(sm->m.name);

				if (nl < 6 || strcmp(sm->m.name + nl - 6, "_total"))
					strcat(sm->m.name, "_total");
			}
			for (char *h = sm->m.help; *h; h++)
				if (*h == '\n' || *h == '\\')
					*h = ' ';
			snprintf(sm->stage, sizeof(sm->stage), "%s", stage);
			n++;
		}
	}
	closedir(d);
	qsort(all, n, sizeof(*all), cmp_metric);
	for (int i = 0; i < n; i++) {
		struct stage_metric *sm = &all[i];

		if (strcmp(prev, sm->m.name)) {
			/* one family, one type: a later stage disagreeing on the type is dropped */
			family(b, sm->m.name, sm->m.type == SHM_COUNTER ? "counter" : "gauge",
			       *sm->m.help ? sm->m.help : "stage metric");
			prev = sm->m.name;
		} else if (sm->m.type != all[i - 1].m.type) {
			(*rejected)++;
			continue;
		}
		bprintf(b, "%s{stage=\"%s\"%s%s} %" PRIu64 "\n", sm->m.name, sm->stage,
			*sm->m.labels ? "," : "", sm->m.labels, sm->m.value);
	}
out:
	free(all);
	free(tmp);
}

/* ---- rings ----------------------------------------------------------------- */

static void ring_metrics(struct kl_exporter *e, struct xbuf *b)
{
	struct shm_ring_info *info = calloc(KL_NSTREAMS, sizeof(*info));
	bool have[KL_NSTREAMS] = { false };
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "kloudlens_ring_capacity_bytes", "gauge", "Data capacity of the ring." },
		{ "kloudlens_ring_fill_bytes", "gauge", "Bytes between the slowest live consumer and the producer." },
		{ "kloudlens_ring_produced_total", "counter", "Records published into the ring." },
		{ "kloudlens_ring_dropped_total", "counter", "Records the producer dropped (drop policy)." },
		{ "kloudlens_ring_producer_blocked_seconds_total", "counter", "Time the producer waited for consumers (block policy)." },
		{ "kloudlens_ring_producer_up", "gauge", "1 if the ring's producer process is alive." },
		{ "kloudlens_ring_consumer_lag_bytes", "gauge", "Bytes the consumer has yet to read." },
		{ "kloudlens_ring_consumer_consumed_total", "counter", "Records delivered to the consumer." },
		{ "kloudlens_ring_consumer_dropped_total", "counter", "Records the consumer lost to the drop policy." },
		{ "kloudlens_ring_consumer_missed_total", "counter", "Records the consumer lost by being lapped or detached." },
	};

	if (!info)
		return;
	/* open our own handles: the pump's are not ours to share across threads */
	for (int i = 0; i < KL_NSTREAMS; i++) {
		struct shm_ring *r;

		if (shm_ring_open(e->rings_dir, kl_stream_defs[i].ring, &r))
			continue;
		have[i] = shm_ring_info(r, &info[i]) == 0;
		shm_ring_close(r);
	}
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		family(b, fam[f].name, fam[f].type, fam[f].help);
		for (int i = 0; i < KL_NSTREAMS; i++) {
			const struct shm_ring_info *ri = &info[i];
			const char *rn = kl_stream_defs[i].ring;
			uint64_t v = 0, minc = ri->head;

			if (!have[i])
				continue;
			switch (f) {
			case 0: v = ri->capacity; break;
			case 1:
				for (uint32_t c = 0; c < ri->nconsumers && c < SHM_MAX_CONSUMERS; c++)
					if (ri->consumers[c].state == 1 && ri->consumers[c].cursor < minc)
						minc = ri->consumers[c].cursor;
				v = ri->head - minc;
				break;
			case 2: v = ri->produced; break;
			case 3: v = ri->dropped; break;
			case 4:
				bprintf(b, "%s{ring=\"%s\"} %.9f\n", fam[f].name, rn, ri->blocked_ns / 1e9);
				continue;
			case 5: v = pid_alive(ri->producer_pid); break;
			default:
				for (uint32_t c = 0; c < ri->nconsumers && c < SHM_MAX_CONSUMERS; c++) {
					const struct shm_consumer_info *ci = &ri->consumers[c];
					char name[SHM_NAME_MAX + 1];

					if (ci->state == 0)
						continue;
					snprintf(name, sizeof(name), "%s", ci->name);
					for (char *p = name; *p; p++)
						if (*p == '"' || *p == '\\' || *p == '\n')
							*p = '_';
					v = f == 6 ? ci->lag_bytes : f == 7 ? ci->consumed
					  : f == 8 ? ci->dropped : ci->missed;
					bprintf(b, "%s{ring=\"%s\",consumer=\"%s\"} %" PRIu64 "\n",
						fam[f].name, rn, name, v);
				}
				continue;
			}
			bprintf(b, "%s{ring=\"%s\"} %" PRIu64 "\n", fam[f].name, rn, v);
		}
	}
	free(info);
}

/* ---- exporter's own ----------------------------------------------------------- */

static void own_metrics(struct kl_exporter *e, struct xbuf *b)
{
	struct kl_wal_stats ws[KL_NSTREAMS];
	bool have_wal[KL_NSTREAMS];
	struct {
		char id[24], stream[16];
		uint64_t backlog, missed, sent, replayed, gaps;
	} sess[KL_MAX_SESSIONS];
	int ns = 0;

	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < KL_NSTREAMS; i++) {
		have_wal[i] = e->streams[i].wal != NULL;
		if (have_wal[i])
			kl_wal_get_stats(e->streams[i].wal, &ws[i]);
	}
	for (int i = 0; i < KL_MAX_SESSIONS; i++) {
		struct kl_session *ss = &e->sessions[i];
		struct kl_stream *s;

		if (!ss->in_use)
			continue;
		s = kl_stream_get(e, ss->stream);
		snprintf(sess[ns].id, sizeof(sess[ns].id), "%s", ss->id);
		snprintf(sess[ns].stream, sizeof(sess[ns].stream), "%s", s->def->name);
		sess[ns].backlog = s->next_seq > ss->ack_seq ? s->next_seq - ss->ack_seq : 0;
		sess[ns].missed = ss->client_missed;
		sess[ns].sent = ss->sent;
		sess[ns].replayed = ss->replayed;
		sess[ns].gaps = ss->gaps;
		ns++;
	}
	pthread_mutex_unlock(&e->lock);

	family(b, "kloudlens_exporter_up", "gauge", "1 while kl-exporter runs.");
	bprintf(b, "kloudlens_exporter_up 1\n");
	family(b, "kloudlens_exporter_uptime_seconds", "gauge", "Seconds since kl-exporter started.");
	bprintf(b, "kloudlens_exporter_uptime_seconds %.3f\n", (kl_mono_ns() - e->start_ns) / 1e9);

#define PER_STREAM(mname, type, help, expr)                                                   \
	do {                                                                                 \
		family(b, mname, type, help);                                                \
		for (int i = 0; i < KL_NSTREAMS; i++) {                                      \
			struct kl_stream *s = &e->streams[i];                                \
			(void)s;                                                             \
			bprintf(b, mname "{stream=\"%s\"} %" PRIu64 "\n", s->def->name,       \
				(uint64_t)(expr));                                           \
		}                                                                            \
	} while (0)

	PER_STREAM("kloudlens_exporter_ring_attached", "gauge", "1 if the exporter consumes the stream's ring.",
		   s->cons != NULL);
	PER_STREAM("kloudlens_exporter_envelopes_total", "counter", "Envelopes published per stream.",
		   ld(&s->published));
	PER_STREAM("kloudlens_exporter_ring_records_total", "counter", "Ring records consumed per stream.",
		   ld(&s->ring_records));
	PER_STREAM("kloudlens_exporter_ring_missed_total", "counter",
		   "Ring records the exporter missed by being lapped (observer mode).", ld(&s->ring_missed));
	PER_STREAM("kloudlens_exporter_invalid_records_total", "counter",
		   "Ring records rejected by validation.", ld(&s->invalid));
	PER_STREAM("kloudlens_exporter_head_seq", "gauge", "Next envelope sequence number per stream.",
		   ld(&s->head_seq));
	PER_STREAM("kloudlens_exporter_wal_bytes", "gauge", "WAL size on disk.",
		   have_wal[i] ? ws[i].bytes : 0);
	PER_STREAM("kloudlens_exporter_wal_segments", "gauge", "WAL segment files.",
		   have_wal[i] ? ws[i].segments : 0);
	PER_STREAM("kloudlens_exporter_wal_oldest_seq", "gauge", "Oldest sequence number still in the WAL.",
		   have_wal[i] ? ws[i].oldest_seq : 0);
	PER_STREAM("kloudlens_exporter_wal_append_errors_total", "counter",
		   "WAL appends that failed (the envelopes still went out live).", ld(&s->wal_errors));
	PER_STREAM("kloudlens_exporter_wal_fsyncs_total", "counter", "fdatasync calls on the WAL.",
		   have_wal[i] ? ws[i].fsyncs : 0);
	PER_STREAM("kloudlens_exporter_wal_corrupt_regions_total", "counter",
		   "Corrupt WAL regions skipped (never served).", have_wal[i] ? ws[i].corrupt_regions : 0);
	PER_STREAM("kloudlens_exporter_wal_corrupt_seqs_total", "counter",
		   "Sequence numbers lost to WAL corruption.", have_wal[i] ? ws[i].corrupt_seqs : 0);
	PER_STREAM("kloudlens_exporter_wal_torn_bytes_total", "counter",
		   "Bytes of torn tail truncated at start.", have_wal[i] ? ws[i].torn_bytes : 0);
	PER_STREAM("kloudlens_exporter_wal_retention_deleted_total", "counter",
		   "WAL segments deleted by size/age retention (overflow).",
		   have_wal[i] ? ws[i].retention_deleted : 0);

	family(b, "kloudlens_exporter_pub_messages_total", "counter", "Messages sent on the pub socket.");
	bprintf(b, "kloudlens_exporter_pub_messages_total %" PRIu64 "\n", ld(&e->pub_messages));
	family(b, "kloudlens_exporter_pub_errors_total", "counter", "Messages the pub socket refused.");
	bprintf(b, "kloudlens_exporter_pub_errors_total %" PRIu64 "\n", ld(&e->pub_errors));
	family(b, "kloudlens_exporter_compressed_frames_total", "counter", "Frames sent gzip-compressed.");
	bprintf(b, "kloudlens_exporter_compressed_frames_total %" PRIu64 "\n", e->codec.compressed);
	family(b, "kloudlens_exporter_rpc_requests_total", "counter", "Unary calls answered, by gRPC status code.");
	for (int c = 0; c < 16; c++)
		if (ld(&e->rpc_by_code[c]))
			bprintf(b, "kloudlens_exporter_rpc_requests_total{code=\"%d\"} %" PRIu64 "\n", c,
				ld(&e->rpc_by_code[c]));
	family(b, "kloudlens_exporter_sessions", "gauge", "Subscription sessions open.");
	bprintf(b, "kloudlens_exporter_sessions %d\n", ns);
	family(b, "kloudlens_exporter_sessions_expired_total", "counter", "Sessions dropped after their lease ran out.");
	bprintf(b, "kloudlens_exporter_sessions_expired_total %" PRIu64 "\n", e->sessions_expired);
	family(b, "kloudlens_exporter_subscriber_backlog", "gauge",
	       "Envelopes published but not yet acknowledged by the session.");
	for (int i = 0; i < ns; i++)
		bprintf(b, "kloudlens_exporter_subscriber_backlog{session=\"%s\",stream=\"%s\"} %" PRIu64 "\n",
			sess[i].id, sess[i].stream, sess[i].backlog);
	family(b, "kloudlens_exporter_subscriber_missed_total", "counter",
	       "Envelopes the session's client reported missing (transport loss).");
	for (int i = 0; i < ns; i++)
		bprintf(b, "kloudlens_exporter_subscriber_missed_total{session=\"%s\",stream=\"%s\"} %" PRIu64 "\n",
			sess[i].id, sess[i].stream, sess[i].missed);
	family(b, "kloudlens_exporter_sink_envelopes_total", "counter", "Envelopes sent per sink (session), live or replayed.");
	for (int i = 0; i < ns; i++) {
		bprintf(b, "kloudlens_exporter_sink_envelopes_total{session=\"%s\",stream=\"%s\",mode=\"live\"} %" PRIu64 "\n",
			sess[i].id, sess[i].stream, sess[i].sent);
		bprintf(b, "kloudlens_exporter_sink_envelopes_total{session=\"%s\",stream=\"%s\",mode=\"replay\"} %" PRIu64 "\n",
			sess[i].id, sess[i].stream, sess[i].replayed);
	}
}

int kl_exporter_metrics(struct kl_exporter *e, struct xbuf *b)
{
	uint64_t rejected = 0;
	uint32_t areas = 0;

	b->len = 0;
	own_metrics(e, b);
	ring_metrics(e, b);
	stage_metrics(e, b, &rejected, &areas);
	family(b, "kloudlens_exporter_stats_areas", "gauge", "Stage stats areas found in the rings directory.");
	bprintf(b, "kloudlens_exporter_stats_areas %u\n", areas);
	family(b, "kloudlens_exporter_stats_rejected_total", "counter",
	       "Stage metrics skipped because their name, labels or type were invalid.");
	bprintf(b, "kloudlens_exporter_stats_rejected_total %" PRIu64 "\n", rejected);
	return b->p ? 0 : -ENOMEM;
}

/* ---- readiness ----------------------------------------------------------------- */

bool kl_exporter_ready(struct kl_exporter *e, struct xbuf *why)
{
	bool ok = true, any = false;

	if (kl_mono_ns() - atomic_load(&e->pump_beat_ns) > 5000000000ull) {
		bprintf(why, "exporter pump stalled; ");
		ok = false;
	}
	for (int i = 0; i < KL_NSTREAMS; i++) {
		const struct kl_stream_def *d = &kl_stream_defs[i];
		struct shm_ring_info *ri;
		struct shm_ring *r;
		bool live_cons = false;

		if (shm_ring_open(e->rings_dir, d->ring, &r)) {
			if (i == 0) {
				bprintf(why, "ring raw absent: collector not running; ");
				ok = false;
			}
			continue;
		}
		any = true;
		ri = calloc(1, sizeof(*ri));
		if (ri && shm_ring_info(r, ri) == 0) {
			if (!pid_alive(ri->producer_pid)) {
				bprintf(why, "ring %s: producer (pid %d) gone; ", d->ring, ri->producer_pid);
				ok = false;
			}
			for (uint32_t c = 0; c < ri->nconsumers && c < SHM_MAX_CONSUMERS; c++)
				live_cons |= ri->consumers[c].state == 1;
			if (!live_cons) {
				bprintf(why, "ring %s: no live consumer attached; ", d->ring);
				ok = false;
			}
		}
		free(ri);
		shm_ring_close(r);
		pthread_mutex_lock(&e->lock);
		if (!e->streams[i].cons) {
			bprintf(why, "exporter not attached to ring %s; ", d->ring);
			ok = false;
		}
		pthread_mutex_unlock(&e->lock);
	}
	if (!any && ok) {
		bprintf(why, "no rings in %s; ", e->rings_dir);
		ok = false;
	}
	return ok;
}

/* ---- HTTP plumbing ------------------------------------------------------------- */

static void reply(nng_aio *aio, uint16_t status, const char *ctype, const void *body, size_t len)
{
	nng_http_res *res;
	int rv = nng_http_res_alloc(&res);

	if (rv) {
		nng_aio_finish(aio, rv);
		return;
	}
	nng_http_res_set_status(res, status);
	nng_http_res_set_header(res, "Content-Type", ctype);
	if ((rv = nng_http_res_copy_data(res, body, len))) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static struct kl_exporter *handler_exp(nng_aio *aio)
{
	return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void h_metrics(nng_aio *aio)
{
	struct kl_exporter *e = handler_exp(aio);
	struct xbuf b = { 0 };

	atomic_fetch_add_explicit(&e->http_requests, 1, memory_order_relaxed);
	if (kl_exporter_metrics(e, &b))
		reply(aio, 500, "text/plain", "out of memory\n", 14);
	else
		reply(aio, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
	xbuf_free(&b);
}

static void h_healthz(nng_aio *aio)
{
	struct kl_exporter *e = handler_exp(aio);
	bool alive = kl_mono_ns() - atomic_load(&e->pump_beat_ns) < 5000000000ull;

	if (alive)
		reply(aio, 200, "text/plain", "ok\n", 3);
	else
		reply(aio, 503, "text/plain", "pump stalled\n", 13);
}

static void h_readyz(nng_aio *aio)
{
	struct kl_exporter *e = handler_exp(aio);
	struct xbuf why = { 0 };
	bool ok = kl_exporter_ready(e, &why);

	if (ok)
		reply(aio, 200, "text/plain", "ready\n", 6);
	else {
		xbuf_append(&why, "\n", 1);
		reply(aio, 503, "text/plain", why.p, why.len);
	}
	xbuf_free(&why);
}

int kl_http_start(struct kl_exporter *e, const char *url)
{
	static const struct {
		const char *path;
		void (*fn)(nng_aio *);
	} routes[] = { { "/metrics", h_metrics }, { "/healthz", h_healthz }, { "/readyz", h_readyz } };
	nng_url *u = NULL;
	int rv;

	rv = nng_url_parse(&u, url);
	if (rv)
		goto out;
	rv = nng_http_server_hold(&e->http, u);
	if (rv)
		goto out;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		nng_http_handler *h;

		rv = nng_http_handler_alloc(&h, routes[i].path, routes[i].fn);
		if (rv)
			goto out;
		nng_http_handler_set_data(h, e, NULL);
		rv = nng_http_server_add_handler(e->http, h);
		if (rv) {
			nng_http_handler_free(h);
			goto out;
		}
	}
	rv = nng_http_server_start(e->http);
out:
	if (rv)
		kl_set_error(e, "http %s: %s", url, nng_strerror(rv));
	if (u)
		nng_url_free(u);
	return kl_nng_errno(rv);
}

void kl_http_stop(struct kl_exporter *e)
{
	if (!e->http)
		return;
	nng_http_server_stop(e->http);
	nng_http_server_release(e->http);
	e->http = NULL;
}
