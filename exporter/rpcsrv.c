/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rpcsrv.c - the unary request/reply protocol (docs/protocol.md) for any
 * table of methods: request parsing and status replies shared with
 * kl-exporter's own rep socket, and a small server stages run on a
 * thread of their own.
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include <kloudlens/shm.h>

#include "exporter-internal.h"
#include "rpcsrv.h"

void kl_rpc_put_status(struct kl_codec *codec, struct xbuf *out, int code, const char *m)
{
	Kloudlens__V1__RpcStatus st = KLOUDLENS__V1__RPC_STATUS__INIT;
	size_t n, start;

	st.code = code;
	st.message = (char *)m;
	n = protobuf_c_message_get_packed_size(&st.base);
	start = kl_frame_begin(out);
	if (xbuf_reserve(out, n))
		return;
	protobuf_c_message_pack(&st.base, out->p + out->len);
	out->len += n;
	kl_frame_seal(codec, out, start, 0);
}

void kl_rpc_put_message(struct kl_codec *codec, struct xbuf *out, const ProtobufCMessage *m,
			size_t compress_threshold)
{
	size_t n = protobuf_c_message_get_packed_size(m), start = kl_frame_begin(out);

	if (xbuf_reserve(out, n) == 0) {
		protobuf_c_message_pack(m, out->p + out->len);
		out->len += n;
		kl_frame_seal(codec, out, start, compress_threshold);
	}
}

static const char *frame_err(int r)
{
	switch (r) {
	case -EBADMSG: return "truncated frame (fewer bytes than the 5-byte header announces)";
	case -EMSGSIZE: return "frame length exceeds the 16 MiB limit";
	case -EPROTO: return "bad compressed flag (must be 0 or 1)";
	case -EILSEQ: return "compressed flag set but body is not valid gzip";
	default: return "bad frame";
	}
}

int kl_rpc_parse_method(const uint8_t *req, size_t len, char *method, size_t mlen, char *err,
			size_t errlen)
{
	const uint8_t *nul = memchr(req, 0, len < mlen ? len : mlen);
	size_t n;

	if (!nul) {
		snprintf(err, errlen, "request must start with a NUL-terminated method name "
			 "of at most %zu bytes", mlen - 1);
		return KL_INVALID_ARGUMENT;
	}
	n = (size_t)(nul - req);
	memcpy(method, req, n);
	method[n] = 0;
	return KL_OK;
}

int kl_rpc_parse_body(struct kl_codec *codec, const char *method, const uint8_t *req, size_t len,
		      const ProtobufCMessageDescriptor *desc, ProtobufCMessage **q, char *err,
		      size_t errlen)
{
	const uint8_t *msg = (const uint8_t *)"";
	size_t mlen = 0, used = 0, skip = strlen(method) + 1;
	int r;

	req += skip;
	len -= skip;
	if (len) {
		r = kl_frame_next(codec, req, len, &msg, &mlen, &used);
		if (r) {
			snprintf(err, errlen, "%s: %s", method, frame_err(r));
			return KL_INVALID_ARGUMENT;
		}
		if (used != len) {
			snprintf(err, errlen, "%s: %zu bytes after the request frame (wrong length?)",
				 method, len - used);
			return KL_INVALID_ARGUMENT;
		}
	}
	*q = protobuf_c_message_unpack(desc, NULL, mlen, msg);
	if (!*q) {
		snprintf(err, errlen, "%s: request is not a valid %s", method, desc->name);
		return KL_INVALID_ARGUMENT;
	}
	return KL_OK;
}

int kl_rpc_dispatch(const struct kl_rpc_def *defs, size_t n, void *ctx, const uint8_t *req,
		    size_t len, struct xbuf *out, struct kl_codec *codec, size_t compress_threshold)
{
	const struct kl_rpc_def *d = NULL;
	ProtobufCMessage *q = NULL, *resp = NULL;
	char method[256], err[512] = "";
	int code;

	code = kl_rpc_parse_method(req, len, method, sizeof(method), err, sizeof(err));
	if (code)
		goto reply;
	for (size_t i = 0; i < n && !d; i++)
		if (!strcmp(defs[i].name, method))
			d = &defs[i];
	if (!d) {
		code = KL_UNIMPLEMENTED;
		snprintf(err, sizeof(err), "unknown method '%.200s'", method);
		goto reply;
	}
	code = kl_rpc_parse_body(codec, method, req, len, d->req, &q, err, sizeof(err));
	if (code)
		goto reply;
	code = d->fn(ctx, q, &resp, err, sizeof(err));
reply:
	kl_rpc_put_status(codec, out, code, code == KL_OK ? "" : err);
	if (code == KL_OK && resp)
		kl_rpc_put_message(codec, out, resp, compress_threshold);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	if (q)
		protobuf_c_message_free_unpacked(q, NULL);
	return code;
}

void kl_rpc_stage_url(char *buf, size_t len, const char *rings_dir, const char *stage)
{
	snprintf(buf, len, "ipc://%s/%s.sock", rings_dir && *rings_dir ? rings_dir : SHM_DEFAULT_DIR,
		 stage);
}

struct kl_rpc_server {
	nng_socket rep;
	pthread_t thr;
	bool started;
	_Atomic bool stop;
	const struct kl_rpc_def *defs;
	size_t n;
	void *ctx;
};

static void *server_main(void *arg)
{
	struct kl_rpc_server *s = arg;
	struct kl_codec codec;
	struct xbuf out = { 0 };

	kl_codec_init(&codec, 0);
	for (;;) {
		nng_msg *m, *rm;
		int rv = nng_recvmsg(s->rep, &m, 0);

		if (rv == NNG_ECLOSED || atomic_load(&s->stop))
			break;
		if (rv)
			continue;
		out.len = 0;
		kl_rpc_dispatch(s->defs, s->n, s->ctx, nng_msg_body(m), nng_msg_len(m), &out, &codec,
				1024);
		nng_msg_free(m);
		if (nng_msg_alloc(&rm, 0))
			continue;
		if (nng_msg_append(rm, out.p, out.len) || nng_sendmsg(s->rep, rm, 0))
			nng_msg_free(rm);
	}
	kl_codec_fini(&codec);
	xbuf_free(&out);
	return NULL;
}

/* ipc sockets: the file the exporter (running as the stage user) must be able to open */
static int own_ipc_path(const char *url, const char *owner)
{
	const char *path = url + strlen("ipc://");
	struct passwd *pw;

	if (chmod(path, 0660) < 0)
		return -errno;
	if (geteuid() != 0 || !owner || !*owner)
		return 0;
	pw = getpwnam(owner);
	if (!pw)
		return 0;   /* kl_drop_privileges() falls back to nobody and says so */
	if (chown(path, pw->pw_uid, pw->pw_gid) < 0)
		return -errno;
	return 0;
}

int kl_rpc_server_start(const char *url, const struct kl_rpc_def *defs, size_t n, void *ctx,
			const char *owner, struct kl_rpc_server **out)
{
	struct kl_rpc_server *s;
	bool ipc = !strncmp(url, "ipc://", 6);
	int rv, err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->defs = defs;
	s->n = n;
	s->ctx = ctx;
	rv = nng_rep0_open(&s->rep);
	if (rv) {
		free(s);
		return -ENOMEM;
	}
	/* a socket file left by a crashed predecessor would make the bind fail */
	if (ipc)
		unlink(url + 6);
	rv = nng_listen(s->rep, url, NULL, 0);
	if (rv) {
		err = rv == NNG_EADDRINUSE ? -EADDRINUSE : rv == NNG_EADDRINVAL ? -EINVAL
		      : rv == NNG_EPERM ? -EACCES : -EIO;
		goto fail;
	}
	if (ipc) {
		err = own_ipc_path(url, owner);
		if (err)
			goto fail;
	}
	err = -pthread_create(&s->thr, NULL, server_main, s);
	if (err)
		goto fail;
	s->started = true;
	*out = s;
	return 0;
fail:
	nng_close(s->rep);
	free(s);
	return err;
}

void kl_rpc_server_stop(struct kl_rpc_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	nng_close(s->rep);
	if (s->started)
		pthread_join(s->thr, NULL);
	free(s);
}
