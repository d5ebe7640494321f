/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exporter.c - the pump (rings -> envelopes -> WAL -> pub), the rep
 * server for unary calls, and the shared state both read.
 *
 * Threads: one pump owns the ring consumers, the WALs and every publish
 * (live and replay), so live and replayed sequence numbers can never
 * interleave wrongly; one rep thread answers calls; nng's own threads
 * run the HTTP handlers. e->lock guards sessions, the container table
 * and stream state; the pump takes it once per batch, not per event.
 */
#include "exporter.h"
#include "exporter-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kloudlens/recutil.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

const struct kl_stream_def kl_stream_defs[KL_NSTREAMS] = {
	{ KLOUDLENS__V1__STREAM__STREAM_RAW, "raw", "raw" },
	{ KLOUDLENS__V1__STREAM__STREAM_EVENTS, "events", "enriched" },
	{ KLOUDLENS__V1__STREAM__STREAM_INTENTS, "intents", "intents" },
	{ KLOUDLENS__V1__STREAM__STREAM_GRAPH, "graph", "graph" },
	{ KLOUDLENS__V1__STREAM__STREAM_DEVIATIONS, "deviations", "deviations" },
};

uint64_t kl_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int kl_nng_errno(int rv)
{
	switch (rv) {
	case 0: return 0;
	case NNG_ENOMEM: return -ENOMEM;
	case NNG_EINVAL: return -EINVAL;
	case NNG_EADDRINUSE: return -EADDRINUSE;
	case NNG_EADDRINVAL: return -EADDRNOTAVAIL;
	case NNG_ECONNREFUSED: return -ECONNREFUSED;
	case NNG_ETIMEDOUT: return -ETIMEDOUT;
	case NNG_ECLOSED: return -EBADF;
	case NNG_EPERM: return -EPERM;
	case NNG_ENOTSUP: return -ENOTSUP;
	default: return -EIO;
	}
}

void kl_set_error(struct kl_exporter *e, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&e->err_lock);
	va_start(ap, fmt);
	vsnprintf(e->last_error, sizeof(e->last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&e->err_lock);
}

const char *kl_exporter_last_error(struct kl_exporter *e)
{
	return e->last_error;
}

struct kl_stream *kl_stream_get(struct kl_exporter *e, int id)
{
	for (int i = 0; i < KL_NSTREAMS; i++)
		if (e->streams[i].def->id == id)
			return &e->streams[i];
	return NULL;
}

/* ---- rings ---------------------------------------------------------------- */

/* Attach to rings that exist now; stages may come up after the exporter. */
static void attach_rings(struct kl_exporter *e)
{
	for (int i = 0; i < KL_NSTREAMS; i++) {
		struct kl_stream *s = &e->streams[i];
		int r;

		if (s->cons)
			continue;
		if (!s->ring) {
			r = shm_ring_open(e->rings_dir, s->def->ring, &s->ring);
			if (r) {
				s->ring = NULL;
				if (r != -ENOENT)
					kl_set_error(e, "open ring %s/%s: %s", e->rings_dir,
						     s->def->ring, strerror(-r));
				continue;
			}
		}
		r = shm_consumer_attach(s->ring, e->consumer_name,
					e->observer ? SHM_OBSERVER : SHM_REQUIRED, &s->cons);
		if (r) {
			s->cons = NULL;
			kl_set_error(e, "attach %s as %s: %s", s->def->ring, e->consumer_name,
				     strerror(-r));
			continue;
		}
		s->last_missed = shm_consumer_missed(s->cons);
		/* a ring re-created from scratch numbers from 0 again: nothing to skip */
		if (s->resume_ring_seq != UINT64_MAX) {
			struct shm_ring_info *ri = malloc(sizeof(*ri));

			if (ri && shm_ring_info(s->ring, ri) == 0 && ri->produced <= s->resume_ring_seq)
				s->resume_ring_seq = UINT64_MAX;
			free(ri);
		}
	}
}

/* ---- publishing ------------------------------------------------------------ */

static int pack_frame(struct kl_exporter *e, struct xbuf *out, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m), start = kl_frame_begin(out);
	int r = xbuf_reserve(out, n);

	if (r) {
		out->len = start;
		return r;
	}
	protobuf_c_message_pack(m, out->p + out->len);
	out->len += n;
	r = kl_frame_seal(&e->codec, out, start, e->compress_threshold);
	if (r)
		out->len = start;
	return r;
}

/* topic (NUL included) + BatchHeader frame + @frames, as one pub message. */
static int publish(struct kl_exporter *e, const char *topic, const struct kl_stream *s, uint64_t from,
		   uint64_t to, uint32_t count, bool replay, const struct xbuf *frames)
{
	Kloudlens__V1__BatchHeader h = KLOUDLENS__V1__BATCH_HEADER__INIT;
	nng_msg *m;
	int rv;

	if (!e->pub_open)
		return 0;
	h.stream = s->def->id;
	h.from_seq = from;
	h.to_seq = to;
	h.count = count;
	h.replay = replay;
	h.head_seq = s->next_seq ? s->next_seq - 1 : 0;
	e->hdr.len = 0;
	rv = pack_frame(e, &e->hdr, &h.base);
	if (rv)
		return rv;
	rv = nng_msg_alloc(&m, 0);
	if (rv)
		return kl_nng_errno(rv);
	if ((rv = nng_msg_append(m, topic, strlen(topic) + 1)) ||
	    (rv = nng_msg_append(m, e->hdr.p, e->hdr.len)) ||
	    (frames->len && (rv = nng_msg_append(m, frames->p, frames->len)))) {
		nng_msg_free(m);
		return kl_nng_errno(rv);
	}
	/* pub never blocks: a subscriber whose queue is full loses the oldest message */
	rv = nng_sendmsg(e->pub, m, 0);
	if (rv) {
		nng_msg_free(m);
		atomic_fetch_add_explicit(&e->pub_errors, 1, memory_order_relaxed);
		return kl_nng_errno(rv);
	}
	atomic_fetch_add_explicit(&e->pub_messages, 1, memory_order_relaxed);
	return 0;
}

static void set_cursor(struct kl_exporter *e, struct kl_stream *s, kl_env *env)
{
	snprintf(e->cursor, sizeof(e->cursor), "%s:%" PRIu64, s->def->name, env->seq);
	env->cursor = e->cursor;
}

/* Encode one envelope, append its frame to the stream batch and to every live session it matches. */
static int emit(struct kl_exporter *e, struct kl_stream *s, kl_env *env, int *live, int nlive)
{
	size_t start = e->batch.len;
	int r;

	env->seq = s->next_seq;
	env->stream = s->def->id;
	env->wall_ns = e->batch_wall_ns;
	set_cursor(e, s, env);
	r = pack_frame(e, &e->batch, &env->base);
	if (r)
		return r;
	for (int i = 0; i < nlive; i++) {
		struct kl_session *ss = &e->sessions[live[i]];

		if (kl_filter_match(&ss->filter, env)) {
			if (xbuf_append(&ss->buf, e->batch.p + start, e->batch.len - start) == 0)
				ss->buf_count++;
		}
	}
	s->next_seq++;
	s->batch_count++;
	return 0;
}

/* Write the batch to the WAL, publish it on the stream topic and on each live session's topic. */
static void flush_batch(struct kl_exporter *e, struct kl_stream *s, int *live, int nlive)
{
	uint64_t from = s->next_seq - s->batch_count, to = s->next_seq - 1;
	int r;

	if (!s->batch_count)
		return;
	if (s->wal) {
		r = kl_wal_append(s->wal, from, s->batch_count, s->batch_ring_seq, e->batch.p, e->batch.len);
		if (r) {
			/* the envelopes still go out live; replay will report the hole */
			atomic_fetch_add_explicit(&s->wal_errors, 1, memory_order_relaxed);
			kl_set_error(e, "wal append %s: %s", s->def->name, strerror(-r));
		}
	}
	if (e->stream_topics)
		publish(e, s->topic, s, from, to, s->batch_count, false, &e->batch);
	for (int i = 0; i < nlive; i++) {
		struct kl_session *ss = &e->sessions[live[i]];

		publish(e, ss->topic, s, from, to, ss->buf_count, false, &ss->buf);
		ss->sent += ss->buf_count;
		ss->next_seq = to + 1;
		ss->buf.len = 0;
		ss->buf_count = 0;
	}
	atomic_fetch_add_explicit(&s->published, s->batch_count, memory_order_relaxed);
	atomic_store_explicit(&s->head_seq, s->next_seq, memory_order_relaxed);
	e->batch.len = 0;
	s->batch_count = 0;
}

static void loss_envelope(struct kl_exporter *e, kl_env *env, Kloudlens__V1__LossEvent *l,
			  int where, uint64_t count, uint64_t from, uint64_t to)
{
	kloudlens__v1__event_envelope__init(env);
	kloudlens__v1__loss_event__init(l);
	l->where = where;
	l->count = count;
	l->from_seq = from;
	l->to_seq = to;
	l->category = (char *)"";
	env->payload_case = KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS;
	env->loss = l;
}

static int live_sessions(struct kl_exporter *e, struct kl_stream *s, int *live)
{
	int n = 0;

	for (int i = 0; i < KL_MAX_SESSIONS; i++) {
		struct kl_session *ss = &e->sessions[i];

		/* only a session exactly at the head takes live data: one behind replays first */
		if (ss->in_use && ss->stream == s->def->id && ss->live && ss->next_seq == s->next_seq) {
			ss->buf.len = 0;
			ss->buf_count = 0;
			live[n++] = i;
		}
	}
	return n;
}

static int pump_stream(struct kl_exporter *e, struct kl_stream *s, int timeout_ms)
{
	int n, nlive, live[KL_MAX_SESSIONS];
	uint64_t missed;
	kl_env env;

	n = shm_consumer_poll(s->cons, e->recs, (int)e->batch_max, timeout_ms);
	if (n <= 0)
		return n == -EINTR ? 0 : n;
	pthread_mutex_lock(&e->lock);
	e->batch_wall_ns = real_ns();
	nlive = live_sessions(e, s, live);
	missed = shm_consumer_missed(s->cons);
	if (missed > s->last_missed) {
		Kloudlens__V1__LossEvent l;

		/* the ring lapped us (observer mode): say so in the stream itself */
		loss_envelope(e, &env, &l, KLOUDLENS__V1__LOSS_EVENT__WHERE__EXPORTER_LAPPED,
			      missed - s->last_missed, 0, 0);
		env.ring_seq = e->recs[0].seq;
		atomic_fetch_add_explicit(&s->ring_missed, missed - s->last_missed, memory_order_relaxed);
		s->last_missed = missed;
		emit(e, s, &env, live, nlive);
	}
	for (int i = 0; i < n; i++) {
		const struct shm_rec *rec = &e->recs[i];

		atomic_fetch_add_explicit(&s->ring_records, 1, memory_order_relaxed);
		/* after a restart the ring may hand back records the WAL already holds */
		if (s->resume_ring_seq != UINT64_MAX) {
			if (rec->seq <= s->resume_ring_seq)
				continue;
			s->resume_ring_seq = UINT64_MAX;
		}
		kloudlens__v1__event_envelope__init(&env);
		if (kl_convert(&e->conv, rec->type, rec->data, rec->len, &env)) {
			atomic_fetch_add_explicit(&s->invalid, 1, memory_order_relaxed);
			continue;
		}
		env.ring_seq = rec->seq;
		s->batch_ring_seq = rec->seq;
		if (emit(e, s, &env, live, nlive))
			atomic_fetch_add_explicit(&s->encode_errors, 1, memory_order_relaxed);
	}
	flush_batch(e, s, live, nlive);
	pthread_mutex_unlock(&e->lock);
	/* release only after the WAL append: a crash before this re-reads, never loses */
	shm_consumer_release(s->cons);
	return n;
}

/* ---- replay ---------------------------------------------------------------- */

static size_t frame_wire_len(const uint8_t *p, size_t len)
{
	uint32_t n;

	if (len < KL_FRAME_HDR)
		return 0;
	n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	return n > len - KL_FRAME_HDR ? 0 : KL_FRAME_HDR + n;
}

/* Send one WAL block (or the gap in its place) to a session; false when there is nothing more. */
static bool replay_one(struct kl_exporter *e, struct kl_stream *s, struct kl_session *ss)
{
	struct kl_wal_block b;
	const uint8_t *p;
	size_t left;
	uint64_t seq;
	int r;

	r = kl_wal_read(s->wal, ss->next_seq, &b);
	if (r == -EAGAIN)
		return false;
	ss->buf.len = 0;
	ss->buf_count = 0;
	if (r == -ENODATA) {
		Kloudlens__V1__LossEvent l;
		kl_env env;

		loss_envelope(e, &env, &l,
			      b.gap_retention ? KLOUDLENS__V1__LOSS_EVENT__WHERE__WAL_RETENTION
					      : KLOUDLENS__V1__LOSS_EVENT__WHERE__WAL_CORRUPT,
			      b.gap_to - b.gap_from + 1, b.gap_from, b.gap_to);
		env.seq = b.gap_to;
		env.stream = s->def->id;
		set_cursor(e, s, &env);
		pack_frame(e, &ss->buf, &env.base);
		publish(e, ss->topic, s, b.gap_from, b.gap_to, 1, true, &ss->buf);
		ss->gaps++;
		ss->next_seq = b.gap_to + 1;
		return true;
	}
	if (r) {
		kl_set_error(e, "wal read %s at %" PRIu64 ": %s", s->def->name, ss->next_seq, strerror(-r));
		return false;
	}
	p = b.frames;
	left = b.len;
	for (seq = b.first_seq; seq < b.first_seq + b.count; seq++) {
		size_t fl = frame_wire_len(p, left);

		if (!fl)
			break;   /* cannot happen for a block whose CRC matched */
		if (seq >= ss->next_seq) {
			bool keep = true;

			if (!ss->filter.empty) {
				const uint8_t *msg;
				size_t mlen, used;
				kl_env *env;

				keep = false;
				if (kl_frame_next(&e->rcodec, p, fl, &msg, &mlen, &used) == 0) {
					env = (kl_env *)protobuf_c_message_unpack(
						&kloudlens__v1__event_envelope__descriptor, NULL, mlen, msg);
					if (env) {
						keep = kl_filter_match(&ss->filter, env);
						protobuf_c_message_free_unpacked(&env->base, NULL);
					}
				}
			}
			if (keep && xbuf_append(&ss->buf, p, fl) == 0)
				ss->buf_count++;
		}
		p += fl;
		left -= fl;
	}
	publish(e, ss->topic, s, ss->next_seq, b.first_seq + b.count - 1, ss->buf_count,
		true, &ss->buf);
	ss->replayed += ss->buf_count;
	ss->next_seq = b.first_seq + b.count;
	ss->buf.len = 0;
	ss->buf_count = 0;
	return true;
}

static int replay_step(struct kl_exporter *e)
{
	int did = 0;

	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < KL_MAX_SESSIONS; i++) {
		struct kl_session *ss = &e->sessions[i];
		struct kl_stream *s;

		if (!ss->in_use || ss->live)
			continue;
		s = kl_stream_get(e, ss->stream);
		/* bounded work per turn so live traffic on other streams keeps moving */
		for (int k = 0; k < 16 && ss->next_seq < s->next_seq; k++) {
			/* flow control: replay no further than the client acknowledged plus a window */
			if (ss->next_seq > ss->ack_seq + e->replay_window)
				break;
			if (!s->wal || !replay_one(e, s, ss))
				break;
			did++;
		}
		if (ss->next_seq >= s->next_seq) {
			ss->next_seq = s->next_seq;
			ss->live = true;
		}
	}
	pthread_mutex_unlock(&e->lock);
	return did;
}

static void expire_sessions(struct kl_exporter *e, uint64_t now)
{
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < KL_MAX_SESSIONS; i++) {
		struct kl_session *ss = &e->sessions[i];

		if (ss->in_use && ss->expires_ns < now) {
			e->sessions_expired++;
			kl_session_free(ss);
		}
	}
	pthread_mutex_unlock(&e->lock);
}

void kl_session_free(struct kl_session *ss)
{
	kl_filter_fini(&ss->filter);
	xbuf_free(&ss->buf);
	memset(ss, 0, sizeof(*ss));
}

static void *pump_main(void *arg)
{
	struct kl_exporter *e = arg;
	uint64_t last_tick = 0;

	while (!atomic_load(&e->stop)) {
		uint64_t now = kl_mono_ns();
		int did = 0, first = -1;

		atomic_store_explicit(&e->pump_beat_ns, now, memory_order_relaxed);
		if (now - last_tick >= 1000000000ull) {
			last_tick = now;
			attach_rings(e);
			expire_sessions(e, now);
			pthread_mutex_lock(&e->lock);
			for (int i = 0; i < KL_NSTREAMS; i++)
				if (e->streams[i].wal)
					kl_wal_maintain(e->streams[i].wal);
			pthread_mutex_unlock(&e->lock);
		}
		for (int i = 0; i < KL_NSTREAMS; i++) {
			struct kl_stream *s = &e->streams[i];
			int n;

			if (!s->cons)
				continue;
			if (first < 0)
				first = i;
			n = pump_stream(e, s, 0);
			if (n > 0)
				did += n;
		}
		did += replay_step(e);
		if (did)
			continue;
		/* idle: sleep on one ring's futex for a short while rather than spin */
		if (first >= 0)
			pump_stream(e, &e->streams[first], 2);
		else
			usleep(2000);
	}
	return NULL;
}

/* ---- lifecycle ------------------------------------------------------------- */

/* mkdir -p: the default /var/lib/kloudlens may not exist on a fresh node. */
static int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_wals(struct kl_exporter *e, const struct kl_exporter_opts *o)
{
	char path[4096];
	int r;

	r = mkdir_p(e->wal_dir, 0750);
	if (r) {
		kl_set_error(e, "create wal dir %s: %s", e->wal_dir, strerror(-r));
		return r;
	}
	/* two exporters appending to one WAL would interleave records: one owner only */
	if (snprintf(path, sizeof(path), "%s/LOCK", e->wal_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	e->wal_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (e->wal_lock_fd < 0 || flock(e->wal_lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		kl_set_error(e, "lock %s: %s%s", path, strerror(-r),
			     r == -EWOULDBLOCK ? " (another kl-exporter uses this WAL)" : "");
		return r;
	}
	for (int i = 0; i < KL_NSTREAMS; i++) {
		struct kl_stream *s = &e->streams[i];
		struct kl_wal_opts wo = o->wal;
		struct kl_wal_stats st;

		if (snprintf(path, sizeof(path), "%s/%s", e->wal_dir, s->def->name) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		wo.sz = sizeof(wo);
		wo.dir = path;
		r = kl_wal_open(&wo, &s->wal);
		if (r) {
			kl_set_error(e, "open wal %s: %s", path, strerror(-r));
			return r;
		}
		kl_wal_get_stats(s->wal, &st);
		s->next_seq = st.next_seq;
		s->resume_ring_seq = st.last_ring_seq;
		s->head_seq = s->next_seq;
	}
	return 0;
}

static int listen_pub(struct kl_exporter *e, const char *url, uint32_t sendbuf)
{
	int rv = nng_pub0_open(&e->pub);

	if (rv)
		return kl_nng_errno(rv);
	e->pub_open = true;
	nng_socket_set_int(e->pub, NNG_OPT_SENDBUF, sendbuf ? (int)sendbuf : 1024);
	rv = nng_listen(e->pub, url, NULL, 0);
	if (rv)
		kl_set_error(e, "listen %s: %s", url, nng_strerror(rv));
	return kl_nng_errno(rv);
}

static int listen_rep(struct kl_exporter *e, const char *url)
{
	int rv = nng_rep0_open(&e->rep);

	if (rv)
		return kl_nng_errno(rv);
	e->rep_open = true;
	/* requests are small; anything much larger is abuse */
	nng_socket_set_size(e->rep, NNG_OPT_RECVMAXSZ, 4 << 20);
	rv = nng_listen(e->rep, url, NULL, 0);
	if (rv)
		kl_set_error(e, "listen %s: %s", url, nng_strerror(rv));
	return kl_nng_errno(rv);
}

int kl_exporter_create(const struct kl_exporter_opts *o, struct kl_exporter **out)
{
	struct kl_exporter *e;
	int r;

	if (!o || o->sz < sizeof(size_t) || o->sz > sizeof(*o))
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->err_lock, NULL);
	e->wal_lock_fd = -1;
	e->start_ns = kl_mono_ns();
	e->rings_dir = strdup(o->rings_dir ? o->rings_dir : SHM_DEFAULT_DIR);
	e->wal_dir = strdup(o->wal_dir ? o->wal_dir : KL_DEFAULT_WAL_DIR);
	e->consumer_name = strdup(o->consumer_name ? o->consumer_name : "kl-exporter");
	e->sub_url = strdup(o->sub_url ? o->sub_url : KL_DEFAULT_SUB_URL);
	e->admin_url = strdup(o->admin_url ? o->admin_url : KL_DEFAULT_ADMIN_URL);
	e->http_url = strdup(o->http_url ? o->http_url : KL_DEFAULT_HTTP_URL);
	if (!e->rings_dir || !e->wal_dir || !e->consumer_name || !e->sub_url || !e->admin_url ||
	    !e->http_url) {
		r = -ENOMEM;
		goto fail;
	}
	e->observer = o->observer;
	e->stream_topics = !o->no_stream_topics;
	e->compress_threshold = o->compress_threshold;
	e->batch_max = o->batch_max ? o->batch_max : 256;
	e->replay_window = o->replay_window ? o->replay_window : 65536;
	e->wal_opts = o->wal;
	kl_rpc_forward_init(e, o->graphd_url, o->baselined_url);
	e->recs = calloc(e->batch_max, sizeof(*e->recs));
	e->ctrs = calloc(1, sizeof(*e->ctrs));
	if (!e->recs || !e->ctrs) {
		r = -ENOMEM;
		goto fail;
	}
	kl_codec_init(&e->codec, 0);
	kl_codec_init(&e->rcodec, 0);
	r = kl_conv_init(&e->conv, e->ctrs);
	if (r)
		goto fail;
	for (int i = 0; i < KL_NSTREAMS; i++) {
		struct kl_stream *s = &e->streams[i];

		s->def = &kl_stream_defs[i];
		s->resume_ring_seq = UINT64_MAX;
		snprintf(s->topic, sizeof(s->topic), KL_TOPIC_PREFIX "%s/", s->def->name);
	}
	if (*e->wal_dir) {
		r = open_wals(e, o);
		if (r)
			goto fail;
	}
	if (*e->sub_url && (r = listen_pub(e, e->sub_url, o->pub_sendbuf)))
		goto fail;
	if (*e->admin_url && (r = listen_rep(e, e->admin_url)))
		goto fail;
	if (*e->http_url && (r = kl_http_start(e, e->http_url)))
		goto fail;
	attach_rings(e);
	*out = e;
	return 0;
fail:
	if (o->errbuf && o->errlen)
		snprintf(o->errbuf, o->errlen, "%s", e->last_error[0] ? e->last_error : strerror(-r));
	kl_exporter_destroy(e);
	return r;
}

int kl_exporter_start(struct kl_exporter *e)
{
	int r;

	r = -pthread_create(&e->pump_thr, NULL, pump_main, e);
	if (r)
		return r;
	e->pump_running = true;
	if (e->rep_open) {
		r = -pthread_create(&e->rep_thr, NULL, kl_rep_main, e);
		if (r)
			return r;
		e->rep_running = true;
	}
	return 0;
}

void kl_exporter_destroy(struct kl_exporter *e)
{
	if (!e)
		return;
	atomic_store(&e->stop, true);
	for (int i = 0; i < KL_NSTREAMS; i++)
		if (e->streams[i].cons)
			shm_consumer_interrupt(e->streams[i].cons);
	if (e->pump_running)
		pthread_join(e->pump_thr, NULL);
	kl_http_stop(e);
	if (e->rep_open)
		nng_close(e->rep);   /* wakes the rep thread's recv with NNG_ECLOSED */
	if (e->rep_running)
		pthread_join(e->rep_thr, NULL);
	if (e->pub_open)
		nng_close(e->pub);
	for (int i = 0; i < KL_NSTREAMS; i++) {
		struct kl_stream *s = &e->streams[i];

		/*
		 * Keep the slot: a restarted exporter resumes at this cursor
		 * within the ring's grace period, and the WAL's last ring_seq
		 * filters what it already wrote.
		 */
		if (s->cons)
			shm_consumer_abandon(s->cons);
		if (s->ring)
			shm_ring_close(s->ring);
		kl_wal_close(s->wal);
	}
	for (int i = 0; i < KL_MAX_SESSIONS; i++)
		if (e->sessions[i].in_use)
			kl_session_free(&e->sessions[i]);
	if (e->wal_lock_fd >= 0)
		close(e->wal_lock_fd);
	kl_rpc_forward_close(e);
	kl_conv_fini(&e->conv);
	kl_codec_fini(&e->codec);
	kl_codec_fini(&e->rcodec);
	xbuf_free(&e->batch);
	xbuf_free(&e->hdr);
	free(e->recs);
	free(e->ctrs);
	free(e->rings_dir);
	free(e->wal_dir);
	free(e->consumer_name);
	free(e->sub_url);
	free(e->admin_url);
	free(e->http_url);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->err_lock);
	free(e);
}

void kl_exporter_counters(struct kl_exporter *e, struct kl_exporter_counters *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < KL_NSTREAMS; i++) {
		struct kl_stream *s = &e->streams[i];

		c->published += atomic_load_explicit(&s->published, memory_order_relaxed);
		c->ring_records += atomic_load_explicit(&s->ring_records, memory_order_relaxed);
		c->ring_missed += atomic_load_explicit(&s->ring_missed, memory_order_relaxed);
	}
	c->pub_messages = atomic_load_explicit(&e->pub_messages, memory_order_relaxed);
	c->rpc_requests = atomic_load_explicit(&e->rpc_requests, memory_order_relaxed);
	c->rpc_errors = atomic_load_explicit(&e->rpc_errors, memory_order_relaxed);
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < KL_MAX_SESSIONS; i++)
		c->sessions += e->sessions[i].in_use;
	pthread_mutex_unlock(&e->lock);
}

int kl_random_id(char *buf, size_t len)
{
	uint8_t raw[8];

	if (len < 17)
		return -EINVAL;
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
		uint64_t t = kl_mono_ns() ^ ((uint64_t)getpid() << 32);

		memcpy(raw, &t, sizeof(raw));
	}
	for (size_t i = 0; i < 8; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	return 0;
}
