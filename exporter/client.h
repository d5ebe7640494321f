/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.h - the C client of kl-exporter's protocol (docs/protocol.md):
 * unary calls over req, sessions over sub with gap repair. klctl, the
 * tests and exporter-bench use it.
 */
#ifndef KL_EXPORTER_CLIENT_H
#define KL_EXPORTER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "frame.h"
#include "kloudlens.pb-c.h"

struct kl_client {
	nng_socket req, sub;
	bool req_open, sub_open;
	int timeout_ms;
	struct kl_codec codec;
	struct xbuf out;
};

/* Either URL may be NULL (not used). Dials synchronously. Return: 0 or -errno. */
int kl_client_open(struct kl_client *c, const char *admin_url, const char *sub_url, int timeout_ms);
void kl_client_close(struct kl_client *c);
/*
 * For a process about to exit: close the req socket and free what is
 * ours, but leave the sub socket to the kernel. Closing a sub socket
 * whose pipe is still receiving can hang in Debian's nng 1.5.2
 * (nanomsg/nng#1713 and kin: `klctl stream` sat minutes in its close
 * after Ctrl-C, about one exit in five while envelopes flowed).
 */
void kl_client_close_at_exit(struct kl_client *c);

/* Send @len raw bytes on req, return the raw reply (nng_free(*reply, *rlen)). */
int kl_client_call_raw(struct kl_client *c, const void *body, size_t len, void **reply, size_t *rlen);

/* Decode a reply: the status, then (OK) the response of type @desc. */
int kl_client_parse_reply(struct kl_client *c, const void *reply, size_t len,
			  const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp,
			  char *err, size_t errlen);

/**
 * kl_client_call() - unary call. Return: the gRPC status code (>= 0; on
 * 0 *@resp is set, free with protobuf_c_message_free_unpacked), or -errno
 * when the exporter cannot be reached. @err gets the status message.
 */
int kl_client_call(struct kl_client *c, const char *method, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, char *err, size_t errlen);

/* One published message, decoded. */
struct kl_batch {
	char topic[96];
	Kloudlens__V1__BatchHeader *hdr;
	Kloudlens__V1__EventEnvelope **env;
	size_t n, cap;
	size_t wire_bytes;
};
void kl_batch_clear(struct kl_batch *b);
void kl_batch_free(struct kl_batch *b);
/* Decode topic + frames. Return: 0, or -EBADMSG etc. for a malformed message. */
int kl_batch_decode(struct kl_codec *codec, const uint8_t *p, size_t len, struct kl_batch *b);

int kl_client_subscribe_topic(struct kl_client *c, const char *topic);
/* Receive and decode one message. Return: 0, -ETIMEDOUT, or -errno. */
int kl_client_recv(struct kl_client *c, struct kl_batch *b, int timeout_ms);

/*
 * A followed session: delivers every envelope exactly once and in order,
 * repairing transport loss by asking the exporter to replay from the
 * first missing sequence number.
 */
struct kl_follow {
	struct kl_client *c;
	const char *method;            /* e.g. "/kloudlens.v1.EventService/SubscribeRaw" */
	Kloudlens__V1__SubscribeRequest req;
	char session[32];
	char topic[96];
	uint64_t expected;             /* next seq wanted */
	uint64_t delivered;
	uint64_t missed;               /* seqs lost in transport (repaired) */
	uint64_t server_gaps;          /* seqs the server reported lost (WAL corruption/retention) */
	uint64_t dups;                 /* envelopes dropped as already delivered */
	uint64_t repairs;
	uint64_t last_renew_ns, repair_ns, last_ack, last_msg_ns;
	uint64_t server_next;          /* head the exporter reported at the last renewal */
	bool repairing;
	struct kl_batch batch;
};

typedef int (*kl_follow_fn)(const Kloudlens__V1__EventEnvelope *env, void *ctx);

/* Open the session (replay from @since if @has_since). Return: gRPC code or -errno. */
int kl_follow_start(struct kl_follow *f, struct kl_client *c, const char *method,
		    const Kloudlens__V1__Filter *filter, bool has_since, uint64_t since,
		    char *err, size_t errlen);
/* Wait up to @timeout_ms for one message and deliver its envelopes. Return: envelopes delivered or -errno. */
int kl_follow_step(struct kl_follow *f, kl_follow_fn fn, void *ctx, int timeout_ms);
void kl_follow_stop(struct kl_follow *f);

#endif
