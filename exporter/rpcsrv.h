/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rpcsrv.h - a stage's own request/reply endpoint (kl-graphd,
 * kl-baselined), speaking exactly the exporter's unary protocol
 * (docs/protocol.md: "method path NUL [frame]" in, "RpcStatus frame
 * [response frame]" out) so that kl-exporter forwards a call by copying
 * bytes, and klctl or a test can also call the stage directly.
 * Handlers run on the server's own thread: the stage serialises them
 * against its engine with its own lock.
 */
#ifndef KL_EXPORTER_RPCSRV_H
#define KL_EXPORTER_RPCSRV_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "exporter.h"   /* status codes KL_OK, KL_NOT_FOUND, ... */

/*
 * Return a status code (KL_OK or an error with @msg set). On KL_OK
 * *@resp may be set: a message freed with protobuf_c_message_free_unpacked
 * (so every part of it must come from malloc) after it is sent.
 */
typedef int (*kl_rpc_fn)(void *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
			 char *msg, size_t msglen);

struct kl_rpc_def {
	const char *name;                          /* "/kloudlens.v1.GraphService/ListSessions" */
	const ProtobufCMessageDescriptor *req;
	kl_rpc_fn fn;
};

struct kl_rpc_server;

/* Default endpoint of a stage: "ipc://DIR/NAME.sock" (DIR: the rings directory, NULL = default;
 * NAME: "kl-graphd", "kl-baselined"). kl-exporter forwards to these. */
void kl_rpc_stage_url(char *buf, size_t len, const char *rings_dir, const char *stage);

/**
 * kl_rpc_server_start() - listen on @url (nng rep) and serve @defs
 * (@n entries, kept by reference) on a thread of its own.
 * Unknown methods get UNIMPLEMENTED, malformed requests INVALID_ARGUMENT.
 * For an ipc:// URL the socket file is made mode 0660 and, when running
 * as root and @owner names an existing user, owned by that user and its
 * group: call it before dropping privileges, so that the exporter (same
 * user/group) can connect. A stale socket file is replaced.
 * Return: 0 or -errno.
 */
int kl_rpc_server_start(const char *url, const struct kl_rpc_def *defs, size_t n, void *ctx,
			const char *owner, struct kl_rpc_server **out);
void kl_rpc_server_stop(struct kl_rpc_server *s);

/**
 * kl_rpc_dispatch() - serve one request held in memory (used by the
 * server thread, the exporter and tests). Appends the reply to @out.
 * Return: the status code sent.
 */
struct kl_codec;
struct xbuf;
int kl_rpc_dispatch(const struct kl_rpc_def *defs, size_t n, void *ctx, const uint8_t *req,
		    size_t len, struct xbuf *out, struct kl_codec *codec, size_t compress_threshold);

/* ---- pieces shared with kl-exporter's own rep socket ---------------------- */

/* Copy the NUL-terminated method name at @req into @method. Return: KL_OK or KL_INVALID_ARGUMENT (@err set). */
int kl_rpc_parse_method(const uint8_t *req, size_t len, char *method, size_t mlen, char *err,
			size_t errlen);
/* Unpack the frame after the method name as @desc (no frame = all defaults). Return: a status code. */
int kl_rpc_parse_body(struct kl_codec *codec, const char *method, const uint8_t *req, size_t len,
		      const ProtobufCMessageDescriptor *desc, ProtobufCMessage **q, char *err,
		      size_t errlen);
void kl_rpc_put_status(struct kl_codec *codec, struct xbuf *out, int code, const char *m);
void kl_rpc_put_message(struct kl_codec *codec, struct xbuf *out, const ProtobufCMessage *m,
			size_t compress_threshold);

#endif
