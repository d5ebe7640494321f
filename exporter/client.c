/* SPDX-License-Identifier: Apache-2.0 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int nerr(int rv)
{
	switch (rv) {
	case 0: return 0;
	case NNG_ETIMEDOUT: return -ETIMEDOUT;
	case NNG_ECONNREFUSED: return -ECONNREFUSED;
	case NNG_ENOMEM: return -ENOMEM;
	case NNG_ECLOSED: return -EBADF;
	case NNG_EADDRINVAL: return -EADDRNOTAVAIL;
	case NNG_EINVAL: return -EINVAL;
	default: return -EIO;
	}
}

int kl_client_open(struct kl_client *c, const char *admin_url, const char *sub_url, int timeout_ms)
{
	int rv;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 3000;
	kl_codec_init(&c->codec, 0);
	if (admin_url) {
		if ((rv = nng_req0_open(&c->req)))
			goto fail;
		c->req_open = true;
		nng_socket_set_ms(c->req, NNG_OPT_RECVTIMEO, c->timeout_ms);
		nng_socket_set_ms(c->req, NNG_OPT_SENDTIMEO, c->timeout_ms);
		/* a lost reply is retried by the req protocol itself */
		nng_socket_set_ms(c->req, NNG_OPT_REQ_RESENDTIME, c->timeout_ms * 2);
		if ((rv = nng_dial(c->req, admin_url, NULL, 0)))
			goto fail;
	}
	if (sub_url) {
		if ((rv = nng_sub0_open(&c->sub)))
			goto fail;
		c->sub_open = true;
		/* deep queue: the pub side drops the oldest when ours is full */
		nng_socket_set_int(c->sub, NNG_OPT_RECVBUF, 8192);
		nng_socket_set_size(c->sub, NNG_OPT_RECVMAXSZ, 64 << 20);
		if ((rv = nng_dial(c->sub, sub_url, NULL, 0)))
			goto fail;
	}
	return 0;
fail:
	kl_client_close(c);
	return nerr(rv);
}

void kl_client_close(struct kl_client *c)
{
	if (c->req_open)
		nng_close(c->req);
	if (c->sub_open)
		nng_close(c->sub);
	c->req_open = c->sub_open = false;
	kl_codec_fini(&c->codec);
	xbuf_free(&c->out);
}

void kl_client_close_at_exit(struct kl_client *c)
{
	c->sub_open = false;    /* exit(2) closes its connection: no close, no hang */
	kl_client_close(c);
}

int kl_client_call_raw(struct kl_client *c, const void *body, size_t len, void **reply, size_t *rlen)
{
	nng_msg *m;
	int rv;

	if (!c->req_open)
		return -ENOTCONN;
	if ((rv = nng_msg_alloc(&m, 0)))
		return nerr(rv);
	if ((rv = nng_msg_append(m, body, len)) || (rv = nng_sendmsg(c->req, m, 0))) {
		nng_msg_free(m);
		return nerr(rv);
	}
	if ((rv = nng_recvmsg(c->req, &m, 0)))
		return nerr(rv);
	*rlen = nng_msg_len(m);
	*reply = malloc(*rlen ? *rlen : 1);
	if (!*reply) {
		nng_msg_free(m);
		return -ENOMEM;
	}
	memcpy(*reply, nng_msg_body(m), *rlen);
	nng_msg_free(m);
	return 0;
}

int kl_client_parse_reply(struct kl_client *c, const void *reply, size_t len,
			  const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp,
			  char *err, size_t errlen)
{
	const uint8_t *p = reply, *msg;
	size_t mlen, used;
	Kloudlens__V1__RpcStatus *st;
	int code, r;

	if (resp)
		*resp = NULL;
	r = kl_frame_next(&c->codec, p, len, &msg, &mlen, &used);
	if (r)
		return r == -EAGAIN ? -EBADMSG : r;
	st = kloudlens__v1__rpc_status__unpack(NULL, mlen, msg);
	if (!st)
		return -EBADMSG;
	code = st->code;
	if (err && errlen)
		snprintf(err, errlen, "%s", st->message ? st->message : "");
	kloudlens__v1__rpc_status__free_unpacked(st, NULL);
	if (code != 0 || !desc || !resp)
		return code;
	p += used;
	len -= used;
	r = kl_frame_next(&c->codec, p, len, &msg, &mlen, &used);
	if (r)
		return r == -EAGAIN ? -EBADMSG : r;
	*resp = protobuf_c_message_unpack(desc, NULL, mlen, msg);
	return *resp ? 0 : -EBADMSG;
}

int kl_client_call(struct kl_client *c, const char *method, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, char *err, size_t errlen)
{
	size_t n = req ? protobuf_c_message_get_packed_size(req) : 0, start;
	void *reply;
	size_t rlen;
	int r;

	c->out.len = 0;
	if ((r = xbuf_append(&c->out, method, strlen(method) + 1)))
		return r;
	if (req) {
		start = kl_frame_begin(&c->out);
		if ((r = xbuf_reserve(&c->out, n)))
			return r;
		protobuf_c_message_pack(req, c->out.p + c->out.len);
		c->out.len += n;
		if ((r = kl_frame_seal(&c->codec, &c->out, start, 0)))
			return r;
	}
	r = kl_client_call_raw(c, c->out.p, c->out.len, &reply, &rlen);
	if (r) {
		if (err && errlen)
			snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	r = kl_client_parse_reply(c, reply, rlen, desc, resp, err, errlen);
	free(reply);
	return r;
}

void kl_batch_clear(struct kl_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		kloudlens__v1__event_envelope__free_unpacked(b->env[i], NULL);
	b->n = 0;
	if (b->hdr)
		kloudlens__v1__batch_header__free_unpacked(b->hdr, NULL);
	b->hdr = NULL;
}

void kl_batch_free(struct kl_batch *b)
{
	kl_batch_clear(b);
	free(b->env);
	memset(b, 0, sizeof(*b));
}

int kl_batch_decode(struct kl_codec *codec, const uint8_t *p, size_t len, struct kl_batch *b)
{
	const uint8_t *nul = memchr(p, 0, len < sizeof(b->topic) ? len : sizeof(b->topic)), *msg;
	size_t mlen, used;
	int r;

	kl_batch_clear(b);
	b->wire_bytes = len;
	if (!nul)
		return -EBADMSG;
	memcpy(b->topic, p, nul - p + 1);
	len -= nul - p + 1;
	p = nul + 1;
	r = kl_frame_next(codec, p, len, &msg, &mlen, &used);
	if (r)
		return r == -EAGAIN ? -EBADMSG : r;
	b->hdr = kloudlens__v1__batch_header__unpack(NULL, mlen, msg);
	if (!b->hdr)
		return -EBADMSG;
	p += used;
	len -= used;
	while ((r = kl_frame_next(codec, p, len, &msg, &mlen, &used)) == 0) {
		Kloudlens__V1__EventEnvelope *e = kloudlens__v1__event_envelope__unpack(NULL, mlen, msg);

		if (!e)
			return -EBADMSG;
		if (b->n == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 64;
			void *np = realloc(b->env, cap * sizeof(*b->env));

			if (!np) {
				kloudlens__v1__event_envelope__free_unpacked(e, NULL);
				return -ENOMEM;
			}
			b->env = np;
			b->cap = cap;
		}
		b->env[b->n++] = e;
		p += used;
		len -= used;
	}
	if (r != -EAGAIN)
		return r;
	return b->n == b->hdr->count ? 0 : -EBADMSG;
}

int kl_client_subscribe_topic(struct kl_client *c, const char *topic)
{
	/* the NUL is part of the topic so "kl.v1/raw/" never matches "kl.v1/rawx/" */
	return nerr(nng_socket_set(c->sub, NNG_OPT_SUB_SUBSCRIBE, topic, strlen(topic) + 1));
}

int kl_client_recv(struct kl_client *c, struct kl_batch *b, int timeout_ms)
{
	nng_msg *m;
	int rv, r;

	nng_socket_set_ms(c->sub, NNG_OPT_RECVTIMEO, timeout_ms);
	rv = nng_recvmsg(c->sub, &m, 0);
	if (rv)
		return nerr(rv);
	r = kl_batch_decode(&c->codec, nng_msg_body(m), nng_msg_len(m), b);
	nng_msg_free(m);
	return r;
}

/* ---- follow ----------------------------------------------------------------- */

static int follow_call(struct kl_follow *f, bool since, uint64_t seq, char *err, size_t errlen)
{
	Kloudlens__V1__SubscribeRequest q = f->req;
	Kloudlens__V1__SubscribeResponse *r = NULL;
	int code;

	q.session_id = f->session[0] ? f->session : (char *)"";
	q.has_since = since;
	q.since_seq = seq;
	q.ack_seq = f->expected;
	q.client_missed = f->missed;
	code = kl_client_call(f->c, f->method, &q.base, &kloudlens__v1__subscribe_response__descriptor,
			      (ProtobufCMessage **)&r, err, errlen);
	if (code)
		return code;
	if (!f->session[0]) {
		snprintf(f->session, sizeof(f->session), "%s", r->session_id);
		snprintf(f->topic, sizeof(f->topic), "%s", r->topic);
		f->expected = r->next_seq;
		f->last_msg_ns = mono_ns();
	}
	f->server_next = r->head_seq;
	kloudlens__v1__subscribe_response__free_unpacked(r, NULL);
	f->last_renew_ns = mono_ns();
	f->last_ack = f->expected;
	return 0;
}

int kl_follow_start(struct kl_follow *f, struct kl_client *c, const char *method,
		    const Kloudlens__V1__Filter *filter, bool has_since, uint64_t since,
		    char *err, size_t errlen)
{
	Kloudlens__V1__SubscribeRequest init = KLOUDLENS__V1__SUBSCRIBE_REQUEST__INIT;
	int code;

	memset(f, 0, sizeof(*f));
	f->c = c;
	f->method = method;
	f->req = init;
	f->req.filter = (Kloudlens__V1__Filter *)filter;
	code = follow_call(f, has_since, since, err, errlen);
	if (code)
		return code;
	return kl_client_subscribe_topic(c, f->topic);
}

static int deliver(struct kl_follow *f, kl_follow_fn fn, void *ctx)
{
	Kloudlens__V1__BatchHeader *h = f->batch.hdr;
	int n = 0;

	if (h->to_seq < f->expected) {
		f->dups += f->batch.n;
		return 0;
	}
	if (h->from_seq > f->expected) {
		/* transport loss: have the exporter replay from what we miss */
		if (!f->repairing || mono_ns() - f->repair_ns > 2000000000ull) {
			f->missed += h->from_seq - f->expected;
			f->repairs++;
			f->repairing = true;
			f->repair_ns = mono_ns();
			follow_call(f, true, f->expected, NULL, 0);
		}
		return 0;
	}
	f->repairing = false;
	for (size_t i = 0; i < f->batch.n; i++) {
		const Kloudlens__V1__EventEnvelope *e = f->batch.env[i];

		if (e->seq < f->expected && !(e->payload_case ==
					      KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS && e->loss->to_seq)) {
			f->dups++;
			continue;
		}
		if (e->payload_case == KLOUDLENS__V1__EVENT_ENVELOPE__PAYLOAD_LOSS && e->loss->to_seq)
			f->server_gaps += e->loss->to_seq - e->loss->from_seq + 1;
		if (fn && fn(e, ctx))
			return -ECANCELED;
		f->delivered++;
		n++;
	}
	f->expected = h->to_seq + 1;
	return n;
}

int kl_follow_step(struct kl_follow *f, kl_follow_fn fn, void *ctx, int timeout_ms)
{
	int r;

	/* renew the lease, and ack often enough that replay never waits on the window */
	if (mono_ns() - f->last_renew_ns > 1000000000ull || f->expected - f->last_ack > 16384)
		follow_call(f, false, 0, NULL, 0);   /* lease renewal + ack */
	r = kl_client_recv(f->c, &f->batch, timeout_ms);
	if (r == -ETIMEDOUT) {
		/*
		 * Loss at the tail shows no jump: nothing more arrives. The
		 * renewal tells us the head; behind it and silent for a while
		 * means the last messages were lost.
		 */
		if (f->server_next > f->expected && mono_ns() - f->last_msg_ns > 1000000000ull &&
		    (!f->repairing || mono_ns() - f->repair_ns > 2000000000ull)) {
			f->missed += f->server_next - f->expected;
			f->repairs++;
			f->repairing = true;
			f->repair_ns = mono_ns();
			follow_call(f, true, f->expected, NULL, 0);
		}
		return 0;
	}
	if (r)
		return r;
	if (strcmp(f->batch.topic, f->topic))
		return 0;
	f->last_msg_ns = mono_ns();
	return deliver(f, fn, ctx);
}

void kl_follow_stop(struct kl_follow *f)
{
	Kloudlens__V1__UnsubscribeRequest q = KLOUDLENS__V1__UNSUBSCRIBE_REQUEST__INIT;
	ProtobufCMessage *r = NULL;

	if (f->session[0] && f->c->req_open) {
		q.session_id = f->session;
		if (kl_client_call(f->c, "/kloudlens.v1.EventService/Unsubscribe", &q.base,
				   &kloudlens__v1__unsubscribe_response__descriptor, &r, NULL, 0) == 0)
			protobuf_c_message_free_unpacked(r, NULL);
	}
	kl_batch_free(&f->batch);
}
